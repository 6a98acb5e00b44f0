//! On a read replica with `OUTPOST_PROXY_WRITES=true`, writes are forwarded to the primary
//! (`OUTPOST_PRIMARY_URL`) instead of refused, so an app can point at the replica nearest to it
//! for everything. The request and the answer are streamed through unchanged; the app then
//! reads its own write from the replica once the replica has applied it (replica lag).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where writes go and the client that takes them there.
#[derive(Clone)]
pub struct Proxy {
    primary: String,
    client: reqwest::Client,
}

/// Headers that belong to one hop, never forwarded.
const HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwardable(name: &HeaderName) -> bool {
    !HOP.contains(&name.as_str()) && name != "host" && name != "content-length"
}

/// Whether a request changes state on the primary: every method but GET, HEAD and OPTIONS on
/// the data, auth and storage APIs, except storage's listing and search (POST reads).
pub fn is_write(method: &Method, path: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let api = ["/rest/v1/", "/auth/v1/", "/storage/v1/"]
        .iter()
        .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'));
    api && !path.starts_with("/storage/v1/object/list/")
}

impl Proxy {
    /// A proxy to `primary` (its base URL, e.g. `https://primary.example.com`).
    pub fn new(primary: &str) -> Result<Proxy, String> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the write proxy: {e}"))?;
        Ok(Proxy {
            primary: primary.trim_end_matches('/').to_string(),
            client,
        })
    }

    /// Forward `req` to the primary and hand its answer back.
    pub async fn forward(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut headers = HeaderMap::new();
        for (k, v) in parts.headers.iter().filter(|(k, _)| forwardable(k)) {
            headers.append(k.clone(), v.clone());
        }
        let sent = self
            .client
            .request(parts.method, format!("{}{path}", self.primary))
            .headers(headers)
            .body(reqwest::Body::wrap_stream(body.into_data_stream()))
            .send()
            .await;
        match sent {
            Ok(res) => {
                let mut out = Response::builder().status(res.status());
                if let Some(h) = out.headers_mut() {
                    for (k, v) in res.headers().iter().filter(|(k, _)| forwardable(k)) {
                        h.append(k.clone(), v.clone());
                    }
                }
                out.body(Body::from_stream(res.bytes_stream()))
                    .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
            }
            Err(e) => {
                tracing::warn!(error = %e, primary = %self.primary, "cannot reach the primary");
                (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(serde_json::json!({
                        "code": "PGRST000",
                        "details": e.to_string(),
                        "hint": null,
                        "message": format!("this read replica cannot reach its primary at {}", self.primary),
                    })),
                )
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_are_writes() {
        assert!(is_write(&Method::POST, "/rest/v1/items"));
        assert!(is_write(&Method::PATCH, "/rest/v1/items?id=eq.1"));
        assert!(is_write(
            &Method::POST,
            "/auth/v1/token?grant_type=password"
        ));
        assert!(is_write(&Method::POST, "/storage/v1/object/docs/a.txt"));
        assert!(!is_write(&Method::GET, "/rest/v1/items"));
        assert!(!is_write(&Method::POST, "/storage/v1/object/list/docs"));
        assert!(!is_write(&Method::POST, "/realtime/v1/api/broadcast"));
        assert!(!is_write(&Method::OPTIONS, "/rest/v1/items"));
    }
}
