//! Database webhooks through the real server: deliveries to a real HTTP receiver started by the
//! test, signed, queued in the transaction of the change (rolled-back changes send nothing),
//! retried with backoff, dead-lettered, retried by hand, and delivered after a restart.

mod common;
use common::{Server, TempDir};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ORDERS: &str = "CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    total REAL,
    paid BOOLEAN NOT NULL DEFAULT false,
    meta JSONB
);";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: reqwest::header::HeaderMap,
    body: Value,
    raw: String,
}

/// A real HTTP receiver on a loopback port: answers `status` and records every request.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start_on(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let status = Arc::new(AtomicU16::new(200));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (s, g) = (status.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (s, g) = (s.clone(), g.clone());
                async move {
                    let mut h = reqwest::header::HeaderMap::new();
                    for (k, v) in &headers {
                        if let (Ok(k), Ok(v)) = (
                            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
                            reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
                        ) {
                            h.insert(k, v);
                        }
                    }
                    g.lock().unwrap().push(Received {
                        headers: h,
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                        raw: body,
                    });
                    axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst))
                        .unwrap_or(axum::http::StatusCode::OK)
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            status,
            got,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} deliveries arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn create_hook(s: &Server, body: Value) -> Value {
    common::expect_json(s.send(Method::POST, "/_/api/webhooks", body, "").await, 201).await
}

fn verify(secret: &str, r: &Received) {
    let header = r.headers["x-outpost-signature"].to_str().expect("ascii");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .expect("t=…,v1=…");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", r.raw).as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want, "the signature verifies with the webhook's secret");
    let age = common::now() - t.parse::<i64>().expect("timestamp");
    assert!((0..60).contains(&age), "the signature is fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_delivered_signed_and_typed_and_rollbacks_send_nothing() {
    let rx = Receiver::start_on(0).await;
    let s = Server::start(&[("0001_orders.sql", ORDERS)]);
    let all = create_hook(
        &s,
        json!({"name": "all-orders", "table": "orders", "url": rx.url}),
    )
    .await;
    let secret = all["secret"]
        .as_str()
        .expect("secret shown at creation")
        .to_string();
    assert_eq!(all["events"], json!(["INSERT", "UPDATE", "DELETE"]));
    let paid = create_hook(
        &s,
        json!({"name": "paid", "table": "orders", "events": ["UPDATE"], "filter": "status=eq.paid",
               "url": rx.url, "headers": {"x-app": "shop"}, "secret": "a-long-enough-secret"}),
    )
    .await;
    assert_eq!(paid["filter"], "status=eq.paid");

    let res = s
        .send(
            Method::POST,
            "/rest/v1/orders",
            json!({"id": 1, "status": "new", "total": 9.5, "meta": {"a": [1]}}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/orders?id=eq.1",
            json!({"status": "paid", "paid": true}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let res = s
        .send(
            Method::PATCH,
            "/rest/v1/orders?id=eq.1",
            json!({"status": "shipped"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let res = s
        .send(Method::DELETE, "/rest/v1/orders?id=eq.1", json!(null), "")
        .await;
    assert_eq!(res.status().as_u16(), 204);
    // 4 for "all-orders", 1 for "paid" (the update that made it paid).
    let got = rx.wait_for(5).await;

    let to_all: Vec<&Received> = got
        .iter()
        .filter(|r| !r.headers.contains_key("x-app"))
        .collect();
    let to_paid: Vec<&Received> = got
        .iter()
        .filter(|r| r.headers.contains_key("x-app"))
        .collect();
    assert_eq!(to_all.len(), 4);
    assert_eq!(to_paid.len(), 1);
    let mut types: Vec<&str> = to_all
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or(""))
        .collect();
    types.sort();
    assert_eq!(types, ["DELETE", "INSERT", "UPDATE", "UPDATE"]);
    let insert = to_all
        .iter()
        .find(|r| r.body["type"] == "INSERT")
        .expect("insert");
    assert_eq!(
        insert.body,
        json!({"type": "INSERT", "table": "orders", "schema": "public",
               "record": {"id": 1, "status": "new", "total": 9.5, "paid": false, "meta": {"a": [1]}},
               "old_record": null})
    );
    let delete = to_all
        .iter()
        .find(|r| r.body["type"] == "DELETE")
        .expect("delete");
    assert_eq!(delete.body["record"], Value::Null);
    assert_eq!(delete.body["old_record"]["status"], "shipped");
    let made_paid = &to_paid[0].body;
    assert_eq!(made_paid["record"]["paid"], true);
    assert_eq!(made_paid["old_record"]["status"], "new");
    for r in &to_all {
        verify(&secret, r);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-outpost-attempt"], "1");
    }
    verify("a-long-enough-secret", to_paid[0]);
    let mut keys: Vec<&str> = got
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5, "each delivery has its own idempotency key");

    // Rolled back or failed writes send nothing.
    let res = s
        .send(
            Method::POST,
            "/rest/v1/orders",
            json!({"id": 2, "status": "x"}),
            "tx=rollback",
        )
        .await;
    assert!(res.status().is_success());
    let res = s
        .send(Method::POST, "/rest/v1/orders", json!({"id": 3}), "")
        .await;
    assert_eq!(res.status().as_u16(), 400, "status is NOT NULL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rx.received().len(),
        5,
        "no delivery for a change that did not commit"
    );
    let done = s.get_json("/_/api/jobs?state=done", 200).await;
    assert_eq!(done.as_array().map(Vec::len), Some(5));

    // Deleting a webhook stops its deliveries.
    let res = s
        .send(
            Method::DELETE,
            "/_/api/webhooks/all-orders",
            json!(null),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 204);
    let res = s
        .send(
            Method::POST,
            "/rest/v1/orders",
            json!({"id": 4, "status": "new"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(rx.received().len(), 5);
    let hooks = s.get_json("/_/api/webhooks", 200).await;
    assert_eq!(hooks.as_array().map(Vec::len), Some(1));
    assert!(hooks[0].get("secret").is_none(), "secrets are never listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_backoff_then_dead_lettered_and_retried_by_hand() {
    let rx = Receiver::start_on(0).await;
    rx.status.store(500, Ordering::SeqCst);
    let s = Server::start_env(
        &[("0001_orders.sql", ORDERS)],
        &[("OUTPOST_JOBS_BACKOFF_BASE", "200ms")],
    );
    create_hook(&s, json!({"name": "flaky", "table": "orders", "events": ["INSERT"], "url": rx.url, "max_attempts": 3})).await;
    let res = s
        .send(
            Method::POST,
            "/rest/v1/orders",
            json!({"id": 1, "status": "new"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let got = rx.wait_for(3).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = s.get_json("/_/api/jobs?state=dead", 200).await;
        if dead.as_array().map(Vec::len) == Some(1) {
            break dead;
        }
        assert!(Instant::now() < deadline, "the job was never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(
        dead[0]["last_error"],
        "the receiver answered 500 Internal Server Error"
    );
    let attempts: Vec<&str> = got
        .iter()
        .map(|r| r.headers["x-outpost-attempt"].to_str().unwrap())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let key = got[0].headers["idempotency-key"].clone();
    assert!(
        got.iter().all(|r| r.headers["idempotency-key"] == key),
        "retries keep the key"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.received().len(), 3, "no attempt after the last");
    let id = dead[0]["id"].as_i64().expect("id");
    let job = s.get_json(&format!("/_/api/jobs/{id}"), 200).await;
    let log = job["attempt_log"].as_array().expect("log");
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|a| a["status_code"] == 500 && a["error"].is_string()));
    assert_eq!(job["payload"]["record"]["id"], 1);

    // By hand, once the receiver is fixed.
    rx.status.store(200, Ordering::SeqCst);
    let res = s
        .send(
            Method::POST,
            &format!("/_/api/jobs/{id}/retry"),
            json!(null),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    rx.wait_for(4).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = s.get_json(&format!("/_/api/jobs/{id}"), 200).await;
        if job["state"] == "done" {
            assert_eq!(job["attempt_log"].as_array().map(Vec::len), Some(4));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retried job never finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An unknown job cannot be retried.
    let res = s
        .send(Method::POST, "/_/api/jobs/999999/retry", json!(null), "")
        .await;
    assert_eq!(res.status().as_u16(), 404);

    // A receiver that recovers on its own: delivered on a later attempt.
    rx.status.store(503, Ordering::SeqCst);
    let res = s
        .send(
            Method::POST,
            "/rest/v1/orders",
            json!({"id": 2, "status": "new"}),
            "",
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    rx.wait_for(6).await;
    rx.status.store(200, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = s.get_json("/_/api/jobs?state=done&target=flaky", 200).await;
        if done.as_array().map(Vec::len) == Some(2) {
            let recovered = done
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["id"] != id)
                .cloned()
                .unwrap();
            assert!(recovered["attempts"].as_u64().unwrap_or(0) >= 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recovered receiver never got its delivery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_wait_for_a_restart() {
    // A port with nothing listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let s = Server::start_env(
        &[("0001_orders.sql", ORDERS)],
        &[
            ("OUTPOST_JOBS_BACKOFF_BASE", "100ms"),
            ("OUTPOST_JOBS_BACKOFF_MAX", "300ms"),
        ],
    );
    create_hook(
        &s,
        json!({"name": "later", "table": "orders", "url": url, "max_attempts": 50}),
    )
    .await;
    for i in 0..3 {
        let res = s
            .send(
                Method::POST,
                "/rest/v1/orders",
                json!({"id": i, "status": "new"}),
                "",
            )
            .await;
        assert_eq!(res.status().as_u16(), 201);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pending = s.get_json("/_/api/jobs?state=pending", 200).await;
    assert_eq!(pending.as_array().map(Vec::len), Some(3));
    assert!(
        pending[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach"),
        "{pending}"
    );
    // Stopped hard while the receiver is away; the queue is on disk.
    let dir: TempDir = s.kill();
    let rx = Receiver::start_on(port).await;
    let s = Server::start_in_env(
        dir,
        &[
            ("OUTPOST_JOBS_BACKOFF_BASE", "100ms"),
            ("OUTPOST_JOBS_BACKOFF_MAX", "300ms"),
        ],
    );
    let got = rx.wait_for(3).await;
    let mut ids: Vec<i64> = got
        .iter()
        .filter_map(|r| r.body["record"]["id"].as_i64())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, [0, 1, 2]);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_bad_definitions_and_strangers() {
    let s = Server::start(&[("0001_orders.sql", ORDERS)]);
    let url = "http://127.0.0.1:9/hook";
    for (body, says) in [
        (
            json!({"name": "a b", "table": "orders", "url": url}),
            "name",
        ),
        (
            json!({"name": "x", "table": "nope", "url": url}),
            "no table nope",
        ),
        (
            json!({"name": "x", "table": "_outpost_jobs", "url": url}),
            "no table",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "events": ["TRUNCATE"]}),
            "events",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "events": []}),
            "events",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "filter": "nope=eq.1"}),
            "no column nope",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "filter": "status=like.x"}),
            "filter",
        ),
        (
            json!({"name": "x", "table": "orders", "url": "ftp://x"}),
            "url",
        ),
        (
            json!({"name": "x", "table": "orders", "url": "not a url"}),
            "url",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "timeout_ms": 5}),
            "timeout_ms",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "max_attempts": 0}),
            "max_attempts",
        ),
        (
            json!({"name": "x", "table": "orders", "url": url, "colour": "red"}),
            "colour",
        ),
    ] {
        let res = s
            .send(Method::POST, "/_/api/webhooks", body.clone(), "")
            .await;
        let err = common::expect_json(res, 400).await;
        assert_eq!(err["code"], "invalid_request", "{body}");
        assert!(
            err["message"].as_str().unwrap_or("").contains(says),
            "{body}: {err}"
        );
    }
    assert_eq!(
        s.get_json("/_/api/webhooks", 200).await,
        json!([]),
        "nothing half-made"
    );
    create_hook(&s, json!({"name": "x", "table": "orders", "url": url})).await;
    let res = s
        .send(
            Method::POST,
            "/_/api/webhooks",
            json!({"name": "x", "table": "orders", "url": url}),
            "",
        )
        .await;
    assert_eq!(
        common::expect_json(res, 409).await["code"],
        "already_exists"
    );
    for path in ["/_/api/webhooks/missing", "/_/api/jobs/42"] {
        let res = s.get(path).await;
        assert_eq!(common::expect_json(res, 404).await["code"], "not_found");
    }
    let res = s.get("/_/api/jobs?state=weird").await;
    assert_eq!(res.status().as_u16(), 400);
    // Only the service_role key may manage webhooks.
    let res = s
        .bare(Method::GET, "/_/api/webhooks")
        .header("apikey", &s.anon_key)
        .header("authorization", format!("Bearer {}", s.anon_key))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 403);
    let res = s
        .bare(Method::POST, "/_/api/webhooks")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 401);
}
