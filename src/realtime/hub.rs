//! Who is joined to which topic, their outgoing queues, and presence.

use super::filter::Binding;
use super::protocol::{encode, encode_broadcast, Message, Vsn};
use crate::policy::context::RequestContext;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// A socket's id, unique in this process.
pub type SocketId = u64;

/// A frame waiting to go out.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// A socket's outgoing queue. Bounded: a client that does not read fast enough is cut off
/// instead of slowing the writer or anyone else.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    overflow: Arc<Notify>,
    vsn: Vsn,
}

impl Outbox {
    /// A queue of `depth` frames; `overflow` is signalled when it fills.
    pub fn new(depth: usize, vsn: Vsn) -> (Outbox, mpsc::Receiver<Frame>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(depth);
        let overflow = Arc::new(Notify::new());
        (
            Outbox {
                tx,
                overflow: overflow.clone(),
                vsn,
            },
            rx,
            overflow,
        )
    }

    /// Queue a message; false (and the socket is told to close) when the queue is full.
    pub fn push(&self, m: &Message) -> bool {
        // vsn 2.0.0 clients take user broadcasts as binary frames (no JSON re-parse of the
        // envelope); everything else is a text frame.
        let frame = match (self.vsn, encode_broadcast(m)) {
            (Vsn::V2, Some(bytes)) => Frame::Binary(bytes),
            _ => Frame::Text(encode(m, self.vsn)),
        };
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// One socket's membership of one topic.
pub struct Member {
    pub socket: SocketId,
    pub join_ref: Option<String>,
    pub out: Outbox,
    pub ctx: Arc<RequestContext>,
    pub bindings: Vec<Binding>,
    pub broadcast_self: bool,
}

/// A topic's presence: socket → (presence key, metas).
type Tracked = HashMap<SocketId, (String, Vec<Value>)>;

/// The registry shared by every socket and the change dispatcher.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, HashMap<SocketId, Arc<Member>>>>,
    presence: Mutex<HashMap<String, Tracked>>,
    next_id: AtomicU64,
    /// Open sockets.
    pub sockets: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Hub {
    /// A fresh id for a socket or a postgres_changes binding.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Add (or replace) a socket's membership of `topic`.
    pub fn join(&self, topic: &str, member: Member) {
        lock(&self.channels)
            .entry(topic.to_string())
            .or_default()
            .insert(member.socket, Arc::new(member));
    }

    /// The members of `topic`.
    pub fn members(&self, topic: &str) -> Vec<Arc<Member>> {
        lock(&self.channels)
            .get(topic)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every member with postgres_changes bindings, with its topic.
    pub fn change_listeners(&self) -> Vec<(String, Arc<Member>)> {
        lock(&self.channels)
            .iter()
            .flat_map(|(t, ms)| {
                ms.values()
                    .filter(|m| !m.bindings.is_empty())
                    .map(move |m| (t.clone(), m.clone()))
            })
            .collect()
    }

    /// Remove a socket from `topic`; its presence leaves.
    pub fn leave(&self, topic: &str, socket: SocketId) {
        {
            let mut channels = lock(&self.channels);
            if let Some(ms) = channels.get_mut(topic) {
                ms.remove(&socket);
                if ms.is_empty() {
                    channels.remove(topic);
                }
            }
        }
        self.untrack(topic, socket);
    }

    /// Send `m` to every member of `topic` except `skip`, with each member's join_ref.
    pub fn broadcast(&self, topic: &str, m: &Message, skip: Option<SocketId>) {
        for member in self.members(topic) {
            if Some(member.socket) == skip {
                continue;
            }
            let mut msg = m.clone();
            msg.join_ref = member.join_ref.clone();
            member.out.push(&msg);
        }
    }

    /// `{key: {metas: [...]}}` for everyone tracked on `topic`.
    pub fn presence_state(&self, topic: &str) -> Value {
        let presence = lock(&self.presence);
        let mut state = Map::new();
        if let Some(entries) = presence.get(topic) {
            for (key, metas) in entries.values() {
                let slot = state
                    .entry(key.clone())
                    .or_insert_with(|| json!({"metas": []}));
                if let Some(list) = slot["metas"].as_array_mut() {
                    list.extend(metas.iter().cloned());
                }
            }
        }
        Value::Object(state)
    }

    /// Track `meta` for a socket under `key` (replacing what it tracked); tells the topic.
    pub fn track(&self, topic: &str, socket: SocketId, key: &str, meta: Value) {
        let previous = lock(&self.presence)
            .entry(topic.to_string())
            .or_default()
            .insert(socket, (key.to_string(), vec![meta.clone()]));
        let mut leaves = Map::new();
        if let Some((old_key, metas)) = previous {
            leaves.insert(old_key, json!({ "metas": metas }));
        }
        let mut joins = Map::new();
        joins.insert(key.to_string(), json!({ "metas": [meta] }));
        self.diff(topic, joins, leaves);
    }

    /// Stop tracking a socket on `topic`; tells the topic.
    pub fn untrack(&self, topic: &str, socket: SocketId) {
        let removed = {
            let mut presence = lock(&self.presence);
            let removed = presence.get_mut(topic).and_then(|p| p.remove(&socket));
            if presence.get(topic).is_some_and(HashMap::is_empty) {
                presence.remove(topic);
            }
            removed
        };
        if let Some((key, metas)) = removed {
            let mut leaves = Map::new();
            leaves.insert(key, json!({ "metas": metas }));
            self.diff(topic, Map::new(), leaves);
        }
    }

    fn diff(&self, topic: &str, joins: Map<String, Value>, leaves: Map<String, Value>) {
        let m = Message {
            join_ref: None,
            msg_ref: None,
            topic: topic.to_string(),
            event: "presence_diff".into(),
            payload: json!({"joins": joins, "leaves": leaves}),
        };
        self.broadcast(topic, &m, None);
    }
}
