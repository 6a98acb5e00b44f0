//! Outbound `fetch` for functions: made by the worker thread itself (it waits, nothing else
//! does), within the host allow-list and the invocation's deadline.

use super::runtime::{arg_str, bytes_of, call_limits, headers_of, reply_object};
use boa_engine::{Context, JsError, JsResult, JsValue};

thread_local! {
    /// Each worker's own runtime and client.
    static HTTP: Option<(tokio::runtime::Runtime, reqwest::Client)> =
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()
            .zip(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::limited(5))
                    .build()
                    .ok(),
            );
}

fn type_error(msg: String) -> JsError {
    boa_engine::JsNativeError::typ().with_message(msg).into()
}

/// Run `work` to completion on this worker's own runtime.
pub fn block_on<F: std::future::Future>(work: F) -> Result<F::Output, String> {
    HTTP.with(|h| {
        let (rt, _) = h
            .as_ref()
            .ok_or_else(|| "no runtime in this worker".to_string())?;
        Ok(rt.block_on(work))
    })
}

/// `__outpost.fetch(method, url, [[name, value]…], bytes)` → `{status, headers, body}`.
pub fn native_fetch(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let method = arg_str(args, 0, ctx)?;
    let url = arg_str(args, 1, ctx)?;
    let headers = headers_of(&args.get(2).cloned().unwrap_or_default(), ctx)?;
    let body = bytes_of(&args.get(3).cloned().unwrap_or_default(), ctx)?;
    let (deadline, allow) =
        call_limits().ok_or_else(|| type_error("fetch outside an invocation".into()))?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| type_error(format!("fetch {url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(type_error(format!("fetch {url}: only http and https")));
    }
    let host = parsed.host_str().unwrap_or_default().to_string();
    if !allow
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(&host))
    {
        return Err(type_error(format!(
            "fetch {url}: {host} is not in OUTPOST_FUNCTIONS_FETCH_ALLOW"
        )));
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| type_error(format!("fetch: bad method {method}")))?;
    let result = HTTP.with(|h| {
        let (rt, client) = h
            .as_ref()
            .ok_or_else(|| "no HTTP client in this worker".to_string())?;
        rt.block_on(async {
            let mut req = client.request(method, parsed).timeout(left).body(body);
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let res = req.send().await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let headers = super::runtime::header_pairs(res.headers());
            let bytes = res.bytes().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, headers, bytes.to_vec()))
        })
    });
    let (status, headers, bytes) = result.map_err(|e| type_error(format!("fetch {url}: {e}")))?;
    reply_object(status, headers, bytes, ctx)
}
