//! In-process requests from a function to Outpost's own APIs (the built-in `outpost` module's
//! database queries and broadcasts): the request goes through the same router, auth and
//! policies as one from the network, without a socket.

use super::runtime::{arg_str, bytes_of, call_limits, headers_of, reply_object};
use boa_engine::{js_string, Context, JsError, JsResult, JsValue};
use tower::ServiceExt;

/// The router a function's in-process requests go through.
#[derive(Clone)]
pub struct Local(pub axum::Router);

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Local")
    }
}

/// The APIs a function may reach in-process; the admin API is not among them.
const ALLOWED: [&str; 4] = [
    "/rest/v1/",
    "/realtime/v1/api/",
    "/storage/v1/",
    "/auth/v1/",
];

fn type_error(msg: String) -> JsError {
    boa_engine::JsNativeError::typ().with_message(msg).into()
}

/// `__outpost.local(method, path, [[name, value]…], bytes)` → `{status, headers, body}`.
pub fn native_local(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let method = arg_str(args, 0, ctx)?;
    let path = arg_str(args, 1, ctx)?;
    let headers = headers_of(&args.get(2).cloned().unwrap_or_default(), ctx)?;
    let body = bytes_of(&args.get(3).cloned().unwrap_or_default(), ctx)?;
    if !ALLOWED.iter().any(|p| path.starts_with(p)) {
        return Err(type_error(format!(
            "{path}: only the REST, realtime, storage and auth APIs are reachable in-process"
        )));
    }
    let (router, max_body) = super::runtime::local_router()
        .ok_or_else(|| type_error("Outpost's APIs are not reachable from here".into()))?;
    let deadline = call_limits().map(|(d, _)| d);
    let mut req = axum::http::Request::builder()
        .method(method.as_str())
        .uri(path.as_str());
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut req = req
        .body(axum::body::Body::from(body))
        .map_err(|e| type_error(format!("{method} {path}: {e}")))?;
    // Handlers that rate-limit by address see the loopback, as for a local client.
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    let result = super::fetch::block_on(async move {
        let work = async {
            let res = router.0.oneshot(req).await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let headers = super::runtime::header_pairs(res.headers());
            let bytes = axum::body::to_bytes(res.into_body(), max_body)
                .await
                .map_err(|e| format!("the answer is too large: {e}"))?;
            Ok::<_, String>((status, headers, bytes.to_vec()))
        };
        match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), work)
                .await
                .unwrap_or_else(|_| Err("no answer before the function's deadline".into())),
            None => work.await,
        }
    })
    .and_then(|r| r);
    let (status, headers, bytes) =
        result.map_err(|e| type_error(format!("{method} {path}: {e}")))?;
    // A JSON answer arrives parsed too: building the values from Rust is much cheaper than
    // decoding the text and running JSON.parse in the engine.
    let json = headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.contains("json"))
        .then(|| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .flatten();
    let out = reply_object(status, headers, bytes, ctx)?;
    if let (Some(json), Some(obj)) = (json, out.as_object()) {
        let value = JsValue::from_json(&json, ctx)?;
        obj.set(js_string!("json"), value, false, ctx)?;
    }
    Ok(out)
}
