//! Phoenix frames as realtime-js speaks them: vsn 2.0.0 JSON arrays, vsn 1.0.0 JSON objects,
//! and the binary broadcast push.

use serde_json::{json, Value};

/// The serializer a socket asked for with `vsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

/// One Phoenix message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Read a text frame.
pub fn decode_text(frame: &str, vsn: Vsn) -> Result<Message, String> {
    let v: Value = serde_json::from_str(frame).map_err(|e| format!("malformed frame: {e}"))?;
    let (join_ref, msg_ref, topic, event, payload) = match (vsn, v) {
        (Vsn::V2, Value::Array(mut parts)) if parts.len() == 5 => {
            let payload = parts.pop().unwrap_or(Value::Null);
            let event = parts.pop().unwrap_or(Value::Null);
            let topic = parts.pop().unwrap_or(Value::Null);
            let r = parts.pop().unwrap_or(Value::Null);
            let jr = parts.pop().unwrap_or(Value::Null);
            (text(&jr), text(&r), topic, event, payload)
        }
        (Vsn::V1, Value::Object(mut o)) => (
            o.get("join_ref").and_then(text),
            o.get("ref").and_then(text),
            o.remove("topic").unwrap_or(Value::Null),
            o.remove("event").unwrap_or(Value::Null),
            o.remove("payload").unwrap_or(Value::Null),
        ),
        _ => return Err("a frame must be [join_ref, ref, topic, event, payload]".into()),
    };
    let (Value::String(topic), Value::String(event)) = (topic, event) else {
        return Err("topic and event must be strings".into());
    };
    Ok(Message {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
    })
}

/// Read a binary frame: only the client's broadcast push (kind 3) exists.
pub fn decode_binary(frame: &[u8]) -> Result<Message, String> {
    if frame.len() < 7 || frame[0] != 3 {
        return Err("unknown binary frame".into());
    }
    let lens: Vec<usize> = frame[1..6].iter().map(|b| *b as usize).collect();
    let encoding = frame[6];
    let mut at = 7;
    let mut strings = Vec::with_capacity(5);
    for len in lens {
        let end = at + len;
        let s = frame.get(at..end).ok_or("truncated binary frame")?;
        strings.push(String::from_utf8(s.to_vec()).map_err(|_| "binary frame text is not UTF-8")?);
        at = end;
    }
    let body = &frame[at..];
    let inner = if encoding == 1 {
        serde_json::from_slice(body).map_err(|e| format!("broadcast payload is not JSON: {e}"))?
    } else {
        Value::String(String::from_utf8_lossy(body).into_owned())
    };
    let nonempty = |s: &String| (!s.is_empty()).then(|| s.clone());
    let mut payload = json!({"type": "broadcast", "event": strings[3], "payload": inner});
    if !strings[4].is_empty() {
        if let Ok(meta) = serde_json::from_str::<Value>(&strings[4]) {
            payload["meta"] = meta;
        }
    }
    Ok(Message {
        join_ref: nonempty(&strings[0]),
        msg_ref: nonempty(&strings[1]),
        topic: strings[2].clone(),
        event: "broadcast".into(),
        payload,
    })
}

/// Write a message as a text frame.
pub fn encode(m: &Message, vsn: Vsn) -> String {
    match vsn {
        Vsn::V2 => json!([m.join_ref, m.msg_ref, m.topic, m.event, m.payload]).to_string(),
        Vsn::V1 => json!({"join_ref": m.join_ref, "ref": m.msg_ref, "topic": m.topic,
                          "event": m.event, "payload": m.payload})
        .to_string(),
    }
}

/// A broadcast as the server's binary frame (kind 4): `[4, topic len, event len, meta len,
/// encoding, topic, event, meta, payload]`; `None` when `m` is no user broadcast or does not fit.
pub fn encode_broadcast(m: &Message) -> Option<Vec<u8>> {
    if m.event != "broadcast" || m.payload.get("type").and_then(Value::as_str) != Some("broadcast")
    {
        return None;
    }
    let event = m.payload.get("event").and_then(Value::as_str)?;
    let meta = match m.payload.get("meta") {
        Some(v) if !v.is_null() => v.to_string(),
        _ => String::new(),
    };
    let (topic_len, event_len, meta_len) = (
        u8::try_from(m.topic.len()).ok()?,
        u8::try_from(event.len()).ok()?,
        u8::try_from(meta.len()).ok()?,
    );
    let body = m.payload.get("payload").unwrap_or(&Value::Null).to_string();
    let mut out = Vec::with_capacity(5 + m.topic.len() + event.len() + meta.len() + body.len());
    out.extend_from_slice(&[4, topic_len, event_len, meta_len, 1]);
    out.extend_from_slice(m.topic.as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

/// A reply to the push `to`.
pub fn reply(to: &Message, status: &str, response: Value) -> Message {
    Message {
        join_ref: to.join_ref.clone(),
        msg_ref: to.msg_ref.clone(),
        topic: to.topic.clone(),
        event: "phx_reply".into(),
        payload: json!({"status": status, "response": response}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_object_frames() {
        let m = decode_text(r#"[null,"1","phoenix","heartbeat",{}]"#, Vsn::V2).unwrap();
        assert_eq!(
            (m.join_ref, m.msg_ref.as_deref(), m.event.as_str()),
            (None, Some("1"), "heartbeat")
        );
        let m = decode_text(
            r#"{"topic":"realtime:a","event":"phx_join","payload":{},"ref":"3","join_ref":"3"}"#,
            Vsn::V1,
        )
        .unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("3"));
        assert!(encode(&m, Vsn::V1).starts_with('{'));
        assert!(decode_text("[1,2]", Vsn::V2).is_err());
    }

    #[test]
    fn binary_broadcast_push() {
        let mut f = vec![3u8, 1, 1, 14, 3, 0, 1];
        f.extend_from_slice(b"67realtime:room1msg{\"hello\":1}");
        let m = decode_binary(&f).unwrap();
        assert_eq!(m.topic, "realtime:room1");
        assert_eq!(m.join_ref.as_deref(), Some("6"));
        assert_eq!(m.msg_ref.as_deref(), Some("7"));
        assert_eq!(
            m.payload,
            json!({"type": "broadcast", "event": "msg", "payload": {"hello": 1}})
        );
        assert!(decode_binary(&f[..9]).is_err());
        assert!(decode_binary(&[4, 0]).is_err());
        let out = Message {
            join_ref: None,
            msg_ref: None,
            topic: "realtime:room1".into(),
            event: "broadcast".into(),
            payload: json!({"type": "broadcast", "event": "msg", "payload": {"hello": 1}}),
        };
        let bytes = encode_broadcast(&out).unwrap();
        assert_eq!(&bytes[..5], &[4, 14, 3, 0, 1]);
        assert_eq!(&bytes[5..], b"realtime:room1msg{\"hello\":1}");
    }
}
