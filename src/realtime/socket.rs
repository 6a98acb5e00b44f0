//! One WebSocket connection: frames in, joins, broadcasts, presence, token updates; frames out
//! from the socket's bounded queue.

use super::filter::{parse_filter, Binding};
use super::hub::{Frame, Member, Outbox, SocketId};
use super::protocol::{decode_binary, decode_text, reply, Message, Vsn};
use super::Realtime;
use crate::app::AppState;
use crate::keys::Caller;
use crate::policy::context::RequestContext;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Seconds between checks that joined channels' auth sessions still exist.
const SESSION_CHECK_TICKS: u64 = 15;

/// A channel this socket joined.
struct Joined {
    join_ref: Option<String>,
    /// The auth session the token belongs to (user tokens): signing out revokes the channel.
    session_id: Option<String>,
    /// When the channel's token expires (unix seconds).
    exp: Option<i64>,
    private: bool,
    ctx: Arc<RequestContext>,
    presence_key: String,
}

struct Conn {
    state: AppState,
    id: SocketId,
    out: Outbox,
    apikey: String,
    joined: HashMap<String, Joined>,
}

fn ws_frame(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(t) => WsMessage::Text(t.into()),
        Frame::Binary(b) => WsMessage::Binary(b.into()),
    }
}

fn session_of(caller: &Caller) -> Option<String> {
    caller
        .claims
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Whether an auth session still exists (it is deleted by sign-out, bans and deletion).
async fn session_alive(state: &AppState, id: String) -> bool {
    state
        .db
        .read(None, move |conn| {
            crate::auth::sessions::by_id(conn, &id)
                .map(|s| s.is_some())
                .map_err(crate::db::DbError::from)
        })
        .await
        .unwrap_or(true)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn system(
    topic: &str,
    join_ref: Option<String>,
    status: &str,
    message: &str,
    extension: &str,
) -> Message {
    Message {
        join_ref,
        msg_ref: None,
        topic: topic.to_string(),
        event: "system".into(),
        payload: json!({"extension": extension, "status": status, "message": message,
                        "channel": topic.strip_prefix("realtime:").unwrap_or(topic)}),
    }
}

/// Serve one upgraded connection until it closes.
pub async fn serve(socket: WebSocket, state: AppState, apikey: String, vsn: Vsn) {
    let rt: &Realtime = &state.realtime;
    let (out, mut queue, overflow) = Outbox::new(rt.limits.queue_depth, vsn);
    let id = rt.hub.next_id();
    let mut conn = Conn {
        state: state.clone(),
        id,
        out,
        apikey,
        joined: HashMap::new(),
    };
    let (mut sink, mut stream) = socket.split();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    let close_reason: Option<(u16, String)> = loop {
        tokio::select! {
            frame = stream.next() => {
                let message = match frame {
                    Some(Ok(WsMessage::Text(t))) => decode_text(t.as_str(), vsn),
                    Some(Ok(WsMessage::Binary(b))) => decode_binary(&b),
                    Some(Ok(WsMessage::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        // Frames over the size limit end the socket with 1009, as RFC 6455 says.
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("Space limit") {
                            break Some((1009, "message too big".to_string()));
                        }
                        break None;
                    }
                    Some(Ok(_)) => continue,
                };
                match message {
                    Ok(m) => conn.handle(m).await,
                    Err(why) => tracing::debug!(%why, "realtime frame refused"),
                }
            }
            Some(frame) = queue.recv() => {
                if sink.send(ws_frame(frame)).await.is_err() {
                    break None;
                }
            }
            _ = overflow.notified() => {
                break Some((1008, "the client reads too slowly: its message queue overflowed".to_string()));
            }
            _ = tick.tick() => {
                conn.expire_tokens();
                ticks += 1;
                if ticks.is_multiple_of(SESSION_CHECK_TICKS) {
                    conn.check_sessions().await;
                }
            }
        }
    };
    if let Some((code, reason)) = close_reason {
        tracing::warn!(socket = id, %reason, "closing realtime socket");
        let _ = sink
            .send(WsMessage::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    } else {
        // Flush what is queued (replies to the last pushes) before the socket goes.
        while let Ok(frame) = queue.try_recv() {
            if sink.send(ws_frame(frame)).await.is_err() {
                break;
            }
        }
    }
    for topic in conn.joined.keys() {
        rt.hub.leave(topic, id);
    }
    rt.hub
        .sockets
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

impl Conn {
    fn send(&self, m: &Message) {
        self.out.push(m);
    }

    async fn handle(&mut self, m: Message) {
        if m.topic == "phoenix" && m.event == "heartbeat" {
            self.send(&reply(&m, "ok", json!({})));
            return;
        }
        match m.event.as_str() {
            "phx_join" => self.join(m).await,
            "phx_leave" => {
                self.leave(&m.topic);
                self.send(&reply(&m, "ok", json!({})));
            }
            "access_token" => self.access_token(m).await,
            "broadcast" => self.broadcast(m).await,
            "presence" => self.presence(m).await,
            _ => {
                if m.msg_ref.is_some() {
                    self.send(&reply(
                        &m,
                        "error",
                        json!({"reason": format!("unknown event `{}`", m.event)}),
                    ));
                }
            }
        }
    }

    fn verify(&self, token: &str) -> Result<Arc<Caller>, String> {
        self.state.verifier.verify(token).map_err(|e| match e {
            crate::keys::TokenError::Expired => "Token has expired".to_string(),
            crate::keys::TokenError::Invalid(why) => format!("Invalid token: {why}"),
        })
    }

    fn leave(&mut self, topic: &str) {
        if self.joined.remove(topic).is_some() {
            self.state.realtime.hub.leave(topic, self.id);
        }
    }

    async fn join(&mut self, m: Message) {
        let state = self.state.clone();
        let rt = &state.realtime;
        let fail = |why: String| reply(&m, "error", json!({ "reason": why }));
        if !self.joined.contains_key(&m.topic) && self.joined.len() >= rt.limits.channels_per_socket
        {
            self.send(&fail(format!(
                "Too many channels on one connection (at most {})",
                rt.limits.channels_per_socket
            )));
            return;
        }
        let config = m.payload.get("config").cloned().unwrap_or(Value::Null);
        let token = m
            .payload
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| self.apikey.clone());
        let caller = match self.verify(&token) {
            Ok(c) => c,
            Err(why) => return self.send(&fail(why)),
        };
        let ctx = RequestContext::for_caller(&caller);
        let private = config
            .get("private")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let name = m
            .topic
            .strip_prefix("realtime:")
            .unwrap_or(&m.topic)
            .to_string();
        let readable = super::private::allowed(&self.state, &ctx, &name, false, "broadcast").await
            || super::private::allowed(&self.state, &ctx, &name, false, "presence").await;
        if private && !readable {
            return self.send(&fail(format!(
                "Unauthorized: You do not have permissions to read from this Channel topic: {name}"
            )));
        }
        let mut bindings = Vec::new();
        let mut echoed = Vec::new();
        if let Some(list) = config.get("postgres_changes").and_then(Value::as_array) {
            for b in list {
                let event = b
                    .get("event")
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string();
                if !matches!(
                    event.to_ascii_uppercase().as_str(),
                    "*" | "INSERT" | "UPDATE" | "DELETE"
                ) {
                    return self.send(&fail(format!("Invalid postgres_changes event `{event}`")));
                }
                let schema = b
                    .get("schema")
                    .and_then(Value::as_str)
                    .unwrap_or("public")
                    .to_string();
                let table = b.get("table").and_then(Value::as_str).map(str::to_string);
                let filter_text = b.get("filter").and_then(Value::as_str).map(str::to_string);
                let filter = match filter_text.as_deref().map(parse_filter).transpose() {
                    Ok(f) => f,
                    Err(why) => return self.send(&fail(why)),
                };
                let id = rt.hub.next_id();
                echoed.push(json!({"id": id, "event": event, "schema": schema, "table": table, "filter": filter_text}));
                bindings.push(Binding {
                    id,
                    event,
                    schema,
                    table,
                    filter,
                    filter_text,
                });
            }
        }
        let broadcast_self = config
            .pointer("/broadcast/self")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let presence_key = config
            .pointer("/presence/key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // A rejoin of the same topic replaces the old membership.
        self.leave(&m.topic);
        let has_changes = !bindings.is_empty();
        rt.hub.join(
            &m.topic,
            Member {
                socket: self.id,
                join_ref: m.join_ref.clone(),
                out: self.out.clone(),
                ctx: ctx.clone(),
                bindings,
                broadcast_self,
            },
        );
        self.joined.insert(
            m.topic.clone(),
            Joined {
                join_ref: m.join_ref.clone(),
                session_id: session_of(&caller),
                exp: caller.claims.get("exp").and_then(Value::as_i64),
                private,
                ctx,
                presence_key,
            },
        );
        self.send(&reply(&m, "ok", json!({ "postgres_changes": echoed })));
        self.send(&Message {
            join_ref: m.join_ref.clone(),
            msg_ref: None,
            topic: m.topic.clone(),
            event: "presence_state".into(),
            payload: rt.hub.presence_state(&m.topic),
        });
        if has_changes {
            self.send(&system(
                &m.topic,
                m.join_ref.clone(),
                "ok",
                "Subscribed to PostgreSQL",
                "postgres_changes",
            ));
        }
    }

    async fn access_token(&mut self, m: Message) {
        let Some(token) = m.payload.get("access_token").and_then(Value::as_str) else {
            return;
        };
        let Some(joined) = self.joined.get(&m.topic) else {
            return;
        };
        let join_ref = joined.join_ref.clone();
        let private = joined.private;
        match self.verify(token) {
            Ok(caller) => {
                let ctx = RequestContext::for_caller(&caller);
                if private {
                    let name = m
                        .topic
                        .strip_prefix("realtime:")
                        .unwrap_or(&m.topic)
                        .to_string();
                    let readable =
                        super::private::allowed(&self.state, &ctx, &name, false, "broadcast").await
                            || super::private::allowed(&self.state, &ctx, &name, false, "presence")
                                .await;
                    if !readable {
                        return self.close_channel(
                            &m.topic,
                            join_ref,
                            "Unauthorized: the new token may not read this channel",
                        );
                    }
                }
                let rt = &self.state.realtime;
                if let Some(old) = rt
                    .hub
                    .members(&m.topic)
                    .into_iter()
                    .find(|x| x.socket == self.id)
                {
                    rt.hub.join(
                        &m.topic,
                        Member {
                            socket: self.id,
                            join_ref: old.join_ref.clone(),
                            out: self.out.clone(),
                            ctx: ctx.clone(),
                            bindings: old.bindings.clone(),
                            broadcast_self: old.broadcast_self,
                        },
                    );
                }
                if let Some(j) = self.joined.get_mut(&m.topic) {
                    j.session_id = session_of(&caller);
                    j.exp = caller.claims.get("exp").and_then(Value::as_i64);
                    j.ctx = ctx;
                }
            }
            Err(why) => self.close_channel(&m.topic, join_ref, &why),
        }
    }

    /// Close a channel from the server side, telling the client why.
    fn close_channel(&mut self, topic: &str, join_ref: Option<String>, why: &str) {
        self.send(&system(topic, join_ref.clone(), "error", why, "system"));
        self.send(&Message {
            join_ref,
            msg_ref: None,
            topic: topic.to_string(),
            event: "phx_close".into(),
            payload: json!({}),
        });
        self.leave(topic);
    }

    /// Close channels whose auth session has ended since they joined.
    async fn check_sessions(&mut self) {
        let sessions: Vec<(String, Option<String>, String)> = self
            .joined
            .iter()
            .filter_map(|(t, j)| {
                j.session_id
                    .clone()
                    .map(|s| (t.clone(), j.join_ref.clone(), s))
            })
            .collect();
        for (topic, join_ref, sid) in sessions {
            if !session_alive(&self.state, sid).await {
                self.close_channel(
                    &topic,
                    join_ref,
                    "Session has ended (signed out or revoked)",
                );
            }
        }
    }

    fn expire_tokens(&mut self) {
        let now = unix_now();
        let expired: Vec<(String, Option<String>)> = self
            .joined
            .iter()
            .filter(|(_, j)| j.exp.is_some_and(|e| e <= now))
            .map(|(t, j)| (t.clone(), j.join_ref.clone()))
            .collect();
        for (topic, join_ref) in expired {
            self.close_channel(&topic, join_ref, "Token has expired");
        }
    }

    async fn broadcast(&mut self, m: Message) {
        let Some(joined) = self.joined.get(&m.topic) else {
            if m.msg_ref.is_some() {
                self.send(&reply(
                    &m,
                    "error",
                    json!({"reason": "join the channel before broadcasting"}),
                ));
            }
            return;
        };
        let (private, ctx) = (joined.private, joined.ctx.clone());
        let name = m
            .topic
            .strip_prefix("realtime:")
            .unwrap_or(&m.topic)
            .to_string();
        if private && !super::private::allowed(&self.state, &ctx, &name, true, "broadcast").await {
            self.send(&reply(&m, "error", json!({"reason": format!("Unauthorized: You do not have permissions to write to this Channel topic: {name}")})));
            return;
        }
        let rt = &self.state.realtime;
        let self_too = rt
            .hub
            .members(&m.topic)
            .iter()
            .find(|x| x.socket == self.id)
            .is_some_and(|x| x.broadcast_self);
        let out = Message {
            join_ref: None,
            msg_ref: None,
            topic: m.topic.clone(),
            event: "broadcast".into(),
            payload: m.payload.clone(),
        };
        rt.hub
            .broadcast(&m.topic, &out, (!self_too).then_some(self.id));
        if m.msg_ref.is_some() {
            self.send(&reply(&m, "ok", json!({})));
        }
    }

    async fn presence(&mut self, m: Message) {
        let Some(joined) = self.joined.get(&m.topic) else {
            self.send(&reply(
                &m,
                "error",
                json!({"reason": "join the channel before tracking presence"}),
            ));
            return;
        };
        let key = joined.presence_key.clone();
        let (private, ctx) = (joined.private, joined.ctx.clone());
        let name = m
            .topic
            .strip_prefix("realtime:")
            .unwrap_or(&m.topic)
            .to_string();
        let tracking = m.payload.get("event").and_then(Value::as_str) == Some("track");
        if private
            && tracking
            && !super::private::allowed(&self.state, &ctx, &name, true, "presence").await
        {
            self.send(&reply(&m, "error", json!({"reason": format!("Unauthorized: You do not have permissions to track presence on this Channel topic: {name}")})));
            return;
        }
        let rt = &self.state.realtime;
        match m.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
                let mut meta = m
                    .payload
                    .get("payload")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                if !meta.is_object() {
                    meta = json!({});
                }
                meta["phx_ref"] = json!(uuid::Uuid::new_v4().simple().to_string());
                rt.hub.track(&m.topic, self.id, &key, meta);
                self.send(&reply(&m, "ok", json!({})));
            }
            Some("untrack") => {
                rt.hub.untrack(&m.topic, self.id);
                self.send(&reply(&m, "ok", json!({})));
            }
            _ => self.send(&reply(
                &m,
                "error",
                json!({"reason": "presence event must be track or untrack"}),
            )),
        }
    }
}
