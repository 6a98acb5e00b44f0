//! One invocation of a function in a fresh boa context, on the calling (worker) thread: the
//! prelude (Web APIs), the function's module, then its handler with the request; runtime limits
//! stop runaway loops and recursion.

use boa_engine::builtins::promise::PromiseState;
use boa_engine::context::HostHooks;
use boa_engine::module::{ModuleLoader, ModuleRequest, Referrer};
use boa_engine::object::builtins::{JsArray, JsPromise, JsUint8Array};
use boa_engine::object::ObjectInitializer;
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsError, JsResult, JsValue, Module, NativeFunction, Source};
use std::cell::RefCell;
use std::collections::HashMap;

const PRELUDE: &str = include_str!("prelude.js");

/// What a function is asked to handle.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub source: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub env: HashMap<String, String>,
    /// Loop iterations allowed (boa's runtime limit).
    pub loop_limit: u64,
    /// When the caller stops waiting: timers and fetches do not run past it.
    pub deadline: std::time::Instant,
    /// Hosts `fetch` may reach (`*`: any).
    pub fetch_allow: std::sync::Arc<Vec<String>>,
    /// Outpost's own router, for the `outpost` module's in-process requests.
    pub local: Option<super::local::Local>,
    /// Largest body an in-process answer may carry.
    pub max_body: usize,
    /// Reuse this worker's warm context (a frozen realm) instead of building a fresh one.
    pub warm: bool,
}

/// What the function answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// A reply's body: whole, or chunks sent while the function still runs (a `ReadableStream`).
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    Stream(tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>),
}

/// An invocation's outcome and the console lines written until it was known.
pub type Outcome = (Result<Reply, Failure>, Vec<Log>);

/// Where an invocation's outcome goes, and what frees its pool slot: before the answer when
/// the function is done, after the last chunk when it streams.
pub struct Answer {
    tx: Option<tokio::sync::oneshot::Sender<Outcome>>,
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl Answer {
    /// An answer for `tx`; `release` frees the pool slot.
    pub fn new(
        tx: tokio::sync::oneshot::Sender<Outcome>,
        release: Box<dyn FnOnce() + Send>,
    ) -> Answer {
        Answer {
            tx: Some(tx),
            release: Some(release),
        }
    }

    /// Free the pool slot (once).
    pub fn release(&mut self) {
        if let Some(r) = self.release.take() {
            r();
        }
    }

    /// Send the outcome (once), with the console lines written so far.
    pub fn send(&mut self, result: Result<Reply, Failure>) {
        let logs = CALL.with(|c| {
            c.borrow_mut()
                .as_mut()
                .map(|c| std::mem::take(&mut c.logs))
                .unwrap_or_default()
        });
        if let Some(tx) = self.tx.take() {
            // The caller may have stopped waiting (timeout); nobody is left to tell.
            let _ = tx.send((result, logs));
        }
    }

    /// Whether the outcome is still to be sent.
    pub fn pending(&self) -> bool {
        self.tx.is_some()
    }
}

/// Why an invocation produced no reply.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The module did not parse or its top level threw.
    Boot(String),
    /// The handler threw or returned something that is not a Response.
    Handler(String),
    /// A runtime limit (loop iterations, recursion) stopped it.
    Limit(String),
}

/// One console line: level and text.
pub type Log = (String, String);

struct Call {
    env: HashMap<String, String>,
    logs: Vec<Log>,
    deadline: std::time::Instant,
    fetch_allow: std::sync::Arc<Vec<String>>,
    local: Option<super::local::Local>,
    max_body: usize,
}

/// The router for the current invocation's in-process requests, and their size limit.
pub fn local_router() -> Option<(super::local::Local, usize)> {
    CALL.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|c| Some((c.local.clone()?, c.max_body)))
    })
}

/// The current invocation's deadline and fetch allow-list.
pub fn call_limits() -> Option<(std::time::Instant, std::sync::Arc<Vec<String>>)> {
    CALL.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| (c.deadline, c.fetch_allow.clone()))
    })
}

thread_local! {
    static CALL: RefCell<Option<Call>> = const { RefCell::new(None) };
    /// This worker's warm context and how many invocations it has served. Never dropped by the
    /// thread-local destructor: boa's own thread-local heap may already be gone by then, so a
    /// context still here when the thread ends is left to the process's exit.
    static WARM: RefCell<Option<std::mem::ManuallyDrop<(Context, u32)>>> =
        const { RefCell::new(None) };
}

/// Invocations a warm context serves before it is rebuilt. boa 0.22 leaves a few values on its
/// VM stack behind every module evaluation (about five), so a context is rebuilt well before
/// they add up: at most ~5 000 stale values, kept clear of user code by `STACK_VALUES`.
const WARM_USES: u32 = 1_000;

/// The VM stack a context may use: boa's default (10 240 values) for the function, plus room
/// for what module evaluations leave behind over `WARM_USES` invocations.
const STACK_VALUES: usize = 10_240 + 6_000;

pub(super) fn arg_str(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    Ok(args
        .get(i)
        .cloned()
        .unwrap_or_default()
        .to_string(ctx)?
        .to_std_string_escaped())
}

pub(super) fn bytes_of(v: &JsValue, ctx: &mut Context) -> JsResult<Vec<u8>> {
    match v.as_object() {
        Some(o) => JsUint8Array::from_object(o.clone())?
            .iter(ctx)
            .map(Ok)
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// A header map's text values as pairs (values that are not text are left out).
pub(super) fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// `[[name, value]…]` from JS into pairs.
pub(super) fn headers_of(v: &JsValue, ctx: &mut Context) -> JsResult<Vec<(String, String)>> {
    let mut headers = Vec::new();
    if let Some(list) = v.as_object() {
        let list = JsArray::from_object(list.clone())?;
        for i in 0..list.length(ctx)? {
            if let Some(pair) = list.get(i, ctx)?.as_object() {
                let pair = JsArray::from_object(pair.clone())?;
                headers.push((
                    pair.get(0, ctx)?.to_string(ctx)?.to_std_string_escaped(),
                    pair.get(1, ctx)?.to_string(ctx)?.to_std_string_escaped(),
                ));
            }
        }
    }
    Ok(headers)
}

/// `{status, headers: [[name, value]…], body: Uint8Array}` for JS.
pub(super) fn reply_object(
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    ctx: &mut Context,
) -> JsResult<JsValue> {
    let mut pairs: Vec<JsValue> = Vec::with_capacity(headers.len());
    for (k, v) in headers {
        pairs.push(
            JsArray::from_iter(
                [JsValue::from(js_string!(k)), JsValue::from(js_string!(v))],
                ctx,
            )
            .into(),
        );
    }
    let headers = JsArray::from_iter(pairs, ctx);
    let body = JsUint8Array::from_iter(body, ctx)?;
    let out = ObjectInitializer::new(ctx)
        .property(js_string!("status"), status, Attribute::all())
        .property(js_string!("headers"), headers, Attribute::all())
        .property(js_string!("body"), body, Attribute::all())
        .build();
    Ok(out.into())
}

fn native_log(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let level = arg_str(args, 0, ctx)?;
    let text = arg_str(args, 1, ctx)?;
    CALL.with(|c| {
        if let Some(call) = c.borrow_mut().as_mut() {
            // A function that logs without end is cut off, not the server's memory.
            if call.logs.len() < 1000 {
                call.logs.push((level, text.chars().take(8192).collect()));
            }
        }
    });
    Ok(JsValue::undefined())
}

fn native_env(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let key = arg_str(args, 0, ctx)?;
    let v = CALL.with(|c| c.borrow().as_ref().and_then(|c| c.env.get(&key).cloned()));
    Ok(v.map_or(JsValue::undefined(), |v| JsValue::from(js_string!(v))))
}

fn native_env_all(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let env = CALL.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| c.env.clone())
            .unwrap_or_default()
    });
    let json = serde_json::to_string(&env).unwrap_or_else(|_| "{}".into());
    let parse = ctx.global_object().get(js_string!("JSON"), ctx)?;
    let parse = parse
        .as_object()
        .map(|o| o.get(js_string!("parse"), ctx))
        .transpose()?
        .unwrap_or_default();
    match parse.as_callable() {
        Some(f) => f.call(
            &JsValue::undefined(),
            &[JsValue::from(js_string!(json))],
            ctx,
        ),
        None => Ok(JsValue::undefined()),
    }
}

fn native_uuid(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(JsValue::from(js_string!(uuid::Uuid::new_v4().to_string())))
}

fn native_random(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let n = args
        .first()
        .cloned()
        .unwrap_or_default()
        .to_length(ctx)?
        .min(65536) as usize;
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    Ok(JsUint8Array::from_iter(bytes, ctx)?.into())
}

fn native_utf8_encode(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let s = args
        .first()
        .cloned()
        .unwrap_or_default()
        .to_string(ctx)?
        .to_std_string_lossy();
    Ok(JsUint8Array::from_iter(s.into_bytes(), ctx)?.into())
}

fn native_utf8_decode(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let bytes = bytes_of(&args.first().cloned().unwrap_or_default(), ctx)?;
    Ok(JsValue::from(js_string!(
        String::from_utf8_lossy(&bytes).into_owned()
    )))
}

fn install(ctx: &mut Context) -> JsResult<()> {
    let native = ObjectInitializer::new(ctx)
        .function(
            NativeFunction::from_fn_ptr(native_log),
            js_string!("log"),
            2,
        )
        .function(
            NativeFunction::from_fn_ptr(native_env),
            js_string!("env"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(native_env_all),
            js_string!("envAll"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(native_uuid),
            js_string!("uuid"),
            0,
        )
        .function(
            NativeFunction::from_fn_ptr(native_random),
            js_string!("random"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(native_utf8_encode),
            js_string!("utf8Encode"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(super::fetch::native_fetch),
            js_string!("fetch"),
            4,
        )
        .function(
            NativeFunction::from_fn_ptr(native_utf8_decode),
            js_string!("utf8Decode"),
            1,
        )
        .function(
            NativeFunction::from_fn_ptr(super::local::native_local),
            js_string!("local"),
            4,
        )
        .function(
            NativeFunction::from_fn_ptr(super::crypto::native_digest),
            js_string!("digest"),
            2,
        )
        .function(
            NativeFunction::from_fn_ptr(super::crypto::native_hmac),
            js_string!("hmac"),
            3,
        )
        .function(
            NativeFunction::from_fn_ptr(super::crypto::native_equal),
            js_string!("timingSafeEqual"),
            2,
        )
        .function(
            NativeFunction::from_fn_ptr(super::multipart::native_parse),
            js_string!("multipart"),
            2,
        )
        .build();
    ctx.register_global_property(js_string!("__outpost"), native, Attribute::all())?;
    ctx.eval(Source::from_bytes(PRELUDE))?;
    Ok(())
}

fn describe(e: &JsError, ctx: &mut Context) -> String {
    match e.try_native(ctx) {
        Ok(n) => n.to_string(),
        Err(_) => e.to_string(),
    }
}

fn classify(e: &JsError, ctx: &mut Context, handler: bool) -> Failure {
    let text = describe(e, ctx);
    if text.contains("RuntimeLimit") || text.to_ascii_lowercase().contains("limit exceeded") {
        Failure::Limit(text)
    } else if handler {
        Failure::Handler(text)
    } else {
        Failure::Boot(text)
    }
}

/// Settle `p`: run queued jobs, then due timers, until it is no longer pending (or nothing is
/// left to run, or the next timer falls past the deadline).
fn settle(p: &JsPromise, ctx: &mut Context) -> JsResult<PromiseState> {
    let deadline = call_limits().map(|(d, _)| d);
    loop {
        ctx.run_jobs()?;
        let state = p.state();
        if !matches!(state, PromiseState::Pending) {
            return Ok(state);
        }
        let next = ctx
            .global_object()
            .get(js_string!("__outpost_next_timer"), ctx)?;
        let wait = match next.as_callable() {
            Some(f) => f.call(&JsValue::undefined(), &[], ctx)?.to_number(ctx)?,
            None => -1.0,
        };
        if wait < 0.0 {
            return Ok(state);
        }
        let wake = std::time::Instant::now() + std::time::Duration::from_millis(wait as u64);
        if deadline.is_some_and(|d| wake > d) {
            return Ok(state);
        }
        std::thread::sleep(wake.saturating_duration_since(std::time::Instant::now()));
        let fire = ctx
            .global_object()
            .get(js_string!("__outpost_fire_timer"), ctx)?;
        if let Some(f) = fire.as_callable() {
            f.call(&JsValue::undefined(), &[], ctx)?;
        }
    }
}

/// Run one invocation, sending its outcome to `answer`; a streaming reply is sent when its head
/// is known and its chunks follow while the function runs.
pub fn run(inv: Invocation, answer: &mut Answer) {
    CALL.with(|c| {
        *c.borrow_mut() = Some(Call {
            env: inv.env.clone(),
            logs: Vec::new(),
            deadline: inv.deadline,
            fetch_allow: inv.fetch_allow.clone(),
            local: inv.local.clone(),
            max_body: inv.max_body,
        })
    });
    if let Err(failure) = run_in_context(&inv, answer) {
        answer.release();
        answer.send(Err(failure));
    }
    // Lines written while a reply streamed: its head (and log entry) went out before them.
    let rest = CALL.with(|c| c.borrow_mut().take().map(|c| c.logs).unwrap_or_default());
    for (level, line) in rest {
        tracing::info!(url = %inv.url, level = %level, "{line}");
    }
}

/// A context with the prelude installed; its realm frozen when it is to serve call after call.
fn fresh_context(max_body: usize, warm: bool) -> Result<Context, Failure> {
    let mut ctx = Context::builder()
        .module_loader(std::rc::Rc::new(Builtins::default()))
        .host_hooks(std::rc::Rc::new(Hooks {
            max_buffer: (max_body as u64).saturating_mul(4),
        }))
        .build()
        .map_err(|e| Failure::Boot(e.to_string()))?;
    ctx.runtime_limits_mut().set_recursion_limit(512);
    ctx.runtime_limits_mut().set_stack_size_limit(STACK_VALUES);
    install(&mut ctx).map_err(|e| Failure::Boot(format!("prelude: {}", describe(&e, &mut ctx))))?;
    if warm {
        let harden = ctx
            .global_object()
            .get(js_string!("__outpost_harden"), &mut ctx)
            .map_err(|e| Failure::Boot(format!("prelude: {e}")))?;
        if let Some(f) = harden.as_callable() {
            f.call(&JsValue::undefined(), &[], &mut ctx)
                .map_err(|e| Failure::Boot(format!("prelude: {}", describe(&e, &mut ctx))))?;
        }
    }
    Ok(ctx)
}

/// Build this worker's warm context now if it has none, so no caller waits for it.
pub fn prewarm(max_body: usize) {
    let missing = WARM.with(|w| w.borrow().is_none());
    if !missing {
        return;
    }
    match fresh_context(max_body, true) {
        Ok(ctx) => WARM.with(|w| *w.borrow_mut() = Some(std::mem::ManuallyDrop::new((ctx, 0)))),
        Err(e) => tracing::error!(error = ?e, "cannot build a function context"),
    }
}

/// Forget the last invocation's handler, caller, timers and stream; whether it left nothing
/// pending behind.
fn reset(ctx: &mut Context) -> bool {
    // Jobs still queued belong to the invocation that just ended: run them now, under its
    // limits, rather than in the next caller's.
    if ctx.run_jobs().is_err() {
        return false;
    }
    let reset = ctx.global_object().get(js_string!("__outpost_reset"), ctx);
    match reset.ok().as_ref().and_then(JsValue::as_callable) {
        Some(f) => f
            .call(&JsValue::undefined(), &[], ctx)
            .is_ok_and(|idle| idle.to_boolean()),
        None => false,
    }
}

fn run_in_context(inv: &Invocation, answer: &mut Answer) -> Result<(), Failure> {
    let warm = if inv.warm {
        WARM.with(|w| {
            w.borrow_mut()
                .take()
                .map(std::mem::ManuallyDrop::into_inner)
        })
    } else {
        None
    };
    let (mut ctx, uses) = match warm {
        Some(w) => w,
        None => (fresh_context(inv.max_body, inv.warm)?, 0),
    };
    ctx.runtime_limits_mut()
        .set_loop_iteration_limit(inv.loop_limit);
    let clean = invoke(&mut ctx, inv, answer)?;
    // Only a context whose invocation finished cleanly serves the next one.
    if inv.warm && clean && uses + 1 < WARM_USES && reset(&mut ctx) {
        WARM.with(|w| *w.borrow_mut() = Some(std::mem::ManuallyDrop::new((ctx, uses + 1))));
    }
    Ok(())
}

/// The function's module, evaluated afresh, and its handler with the request; whether it ended
/// cleanly (a reply, nothing thrown).
fn invoke(ctx: &mut Context, inv: &Invocation, answer: &mut Answer) -> Result<bool, Failure> {
    let module = Module::parse(Source::from_bytes(inv.source.as_bytes()), None, ctx)
        .map_err(|e| Failure::Boot(describe(&e, ctx)))?;
    let loaded = module.load_link_evaluate(ctx);
    match settle(&loaded, ctx).map_err(|e| classify(&e, ctx, false))? {
        PromiseState::Fulfilled(_) => {}
        PromiseState::Rejected(e) => {
            return Err(classify(&JsError::from_opaque(e), ctx, false));
        }
        PromiseState::Pending => {
            return Err(Failure::Boot(
                "the module's top level never finished".into(),
            ));
        }
    }
    let exported = module
        .namespace(ctx)
        .get(js_string!("default"), ctx)
        .unwrap_or_default();
    let promise = call_handler(ctx, inv, &exported).map_err(|e| classify(&e, ctx, true))?;
    let promise = promise
        .as_object()
        .and_then(|o| JsPromise::from_object(o.clone()).ok())
        .ok_or_else(|| Failure::Handler("the invocation did not return a promise".into()))?;
    let out = match settle(&promise, ctx).map_err(|e| classify(&e, ctx, true))? {
        PromiseState::Fulfilled(v) => v,
        PromiseState::Rejected(e) => return Err(classify(&JsError::from_opaque(e), ctx, true)),
        PromiseState::Pending => {
            return Err(Failure::Handler(
                "the handler's promise never settled (nothing left to wait for)".into(),
            ))
        }
    };
    let (reply, streams) =
        read_reply(ctx, &out).map_err(|e| Failure::Handler(describe(&e, ctx)))?;
    if !streams {
        answer.release();
        answer.send(Ok(reply));
        return Ok(true);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    answer.send(Ok(Reply {
        body: Body::Stream(rx),
        ..reply
    }));
    let finished = pump(ctx, &tx, inv);
    answer.release();
    Ok(finished)
}

/// Send a streaming reply's chunks as the function produces them, within the deadline and the
/// body limit; a failure ends the response early (the client sees it cut short). Whether the
/// stream reached its end.
fn pump(
    ctx: &mut Context,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
    inv: &Invocation,
) -> bool {
    let mut sent = 0usize;
    loop {
        if std::time::Instant::now() > inv.deadline {
            let _ = tx.blocking_send(Err("the function ran out of time mid-stream".into()));
            return false;
        }
        let chunk = next_chunk(ctx).map_err(|e| describe(&e, ctx));
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(url = %inv.url, error = %e, "a streaming function failed");
                let _ = tx.blocking_send(Err(e));
                return false;
            }
        };
        sent += chunk.len();
        if sent > inv.max_body {
            let _ = tx.blocking_send(Err(format!(
                "responses are limited to {} bytes",
                inv.max_body
            )));
            return false;
        }
        // The client went away: stop pulling.
        if tx.blocking_send(Ok(chunk)).is_err() {
            return false;
        }
    }
}

/// The streaming reply's next chunk, or `None` at its end.
fn next_chunk(ctx: &mut Context) -> JsResult<Option<Vec<u8>>> {
    let read = ctx
        .global_object()
        .get(js_string!("__outpost_stream_read"), ctx)?;
    let f = read
        .as_callable()
        .ok_or_else(|| boa_engine::JsNativeError::typ().with_message("no stream"))?;
    let p = f.call(&JsValue::undefined(), &[], ctx)?;
    let p = p
        .as_object()
        .and_then(|o| JsPromise::from_object(o.clone()).ok())
        .ok_or_else(|| boa_engine::JsNativeError::typ().with_message("no stream promise"))?;
    match settle(&p, ctx)? {
        PromiseState::Fulfilled(v) => {
            let Some(o) = v.as_object() else {
                return Ok(None);
            };
            if o.get(js_string!("done"), ctx)?.to_boolean() {
                return Ok(None);
            }
            Ok(Some(bytes_of(&o.get(js_string!("value"), ctx)?, ctx)?))
        }
        PromiseState::Rejected(e) => Err(JsError::from_opaque(e)),
        PromiseState::Pending => Err(boa_engine::JsNativeError::typ()
            .with_message("the stream waits for something that never comes")
            .into()),
    }
}

fn call_handler(ctx: &mut Context, inv: &Invocation, exported: &JsValue) -> JsResult<JsValue> {
    let invoke = ctx
        .global_object()
        .get(js_string!("__outpost_invoke"), ctx)?;
    let mut headers: Vec<JsValue> = Vec::with_capacity(inv.headers.len());
    for (k, v) in &inv.headers {
        let pair = JsArray::from_iter(
            [
                JsValue::from(js_string!(k.as_str())),
                JsValue::from(js_string!(v.as_str())),
            ],
            ctx,
        );
        headers.push(pair.into());
    }
    let headers = JsArray::from_iter(headers, ctx);
    let body = JsUint8Array::from_iter(inv.body.iter().copied(), ctx)?;
    let f = invoke
        .as_callable()
        .ok_or_else(|| boa_engine::JsNativeError::typ().with_message("no invoke"))?;
    f.call(
        &JsValue::undefined(),
        &[
            exported.clone(),
            JsValue::from(js_string!(inv.method.as_str())),
            JsValue::from(js_string!(inv.url.as_str())),
            headers.into(),
            body.into(),
        ],
        ctx,
    )
}

/// The reply the prelude flattened, and whether its body streams.
fn read_reply(ctx: &mut Context, out: &JsValue) -> JsResult<(Reply, bool)> {
    let obj = out
        .as_object()
        .ok_or_else(|| boa_engine::JsNativeError::typ().with_message("no response"))?;
    let status = obj.get(js_string!("status"), ctx)?.to_u32(ctx)? as u16;
    let list = obj.get(js_string!("headers"), ctx)?;
    let mut headers = Vec::new();
    if let Some(list) = list.as_object() {
        let list = JsArray::from_object(list.clone())?;
        for i in 0..list.length(ctx)? {
            let pair = list.get(i, ctx)?;
            if let Some(pair) = pair.as_object() {
                let pair = JsArray::from_object(pair.clone())?;
                let k = pair.get(0, ctx)?.to_string(ctx)?.to_std_string_escaped();
                let v = pair.get(1, ctx)?.to_string(ctx)?.to_std_string_escaped();
                headers.push((k, v));
            }
        }
    }
    let streams = obj.get(js_string!("stream"), ctx)?.to_boolean();
    let body = bytes_of(&obj.get(js_string!("body"), ctx)?, ctx)?;
    Ok((
        Reply {
            status,
            headers,
            body: Body::Bytes(body),
        },
        streams,
    ))
}

/// The module a function may import: `import { db } from "outpost"`. Anything else is refused
/// with a reason (functions are single files; there is no package loader).
#[derive(Default)]
struct Builtins {
    outpost: RefCell<Option<Module>>,
}

const OUTPOST_MODULE: &str = "export const db = globalThis.Outpost.db;
export const broadcast = globalThis.Outpost.broadcast;
export const webhooks = globalThis.Outpost.webhooks;
export default globalThis.Outpost;
";

impl ModuleLoader for Builtins {
    fn load_imported_module(
        self: std::rc::Rc<Self>,
        _referrer: Referrer,
        request: ModuleRequest,
        context: &RefCell<&mut Context>,
    ) -> impl std::future::Future<Output = JsResult<Module>> {
        let specifier = request.specifier().to_std_string_escaped();
        let result = if specifier == "outpost" {
            let cached = self.outpost.borrow().clone();
            match cached {
                Some(m) => Ok(m),
                None => Module::parse(
                    Source::from_bytes(OUTPOST_MODULE),
                    None,
                    &mut context.borrow_mut(),
                )
                .inspect(|m| *self.outpost.borrow_mut() = Some(m.clone())),
            }
        } else {
            Err(boa_engine::JsNativeError::typ()
                .with_message(format!(
                    "cannot import {specifier}: a function is one file, and only the built-in \"outpost\" module can be imported"
                ))
                .into())
        };
        async { result }
    }
}

/// Engine hooks: ArrayBuffers no larger than a bound, so one allocation cannot take the
/// machine's memory.
struct Hooks {
    max_buffer: u64,
}

impl HostHooks for Hooks {
    fn max_buffer_size(&self, _: &mut Context) -> u64 {
        self.max_buffer
    }
}

/// Whether `source` parses as a module, on a thread of its own with a worker's stack (the
/// parser recurses on deep nesting).
pub async fn check(source: &str) -> Result<(), String> {
    let source = source.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("outpost-fn-check".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            let mut ctx = Context::default();
            let parsed = Module::parse(Source::from_bytes(source.as_bytes()), None, &mut ctx)
                .map(|_| ())
                .map_err(|e| describe(&e, &mut ctx));
            let _ = tx.send(parsed);
        })
        .map_err(|e| format!("cannot check the code: {e}"))?;
    rx.await
        .map_err(|_| "the code could not be checked".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(inv: &Invocation) -> Reply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut answer = Answer::new(tx, Box::new(|| {}));
        run(inv.clone(), &mut answer);
        match rx.blocking_recv() {
            Ok((Ok(reply), _)) => reply,
            other => panic!("no reply: {other:?}"),
        }
    }

    fn invocation(source: &str, warm: bool) -> Invocation {
        Invocation {
            source: source.into(),
            method: "GET".into(),
            url: "http://localhost/functions/v1/f".into(),
            headers: vec![("accept".into(), "text/plain".into())],
            body: Vec::new(),
            env: HashMap::new(),
            loop_limit: 1_000_000,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(600),
            fetch_allow: std::sync::Arc::new(Vec::new()),
            local: None,
            max_body: 1 << 20,
            warm,
        }
    }

    #[test]
    fn a_fresh_context_per_call_is_not_frozen_and_forgets_everything() {
        let inv = invocation(
            "Deno.serve(() => { const seen = String(globalThis.mark); globalThis.mark = 1; return new Response(seen); });",
            false,
        );
        for _ in 0..2 {
            let reply = call(&inv);
            assert!(matches!(reply.body, Body::Bytes(ref b) if b == b"undefined"));
        }
    }

    #[test]
    fn a_warm_context_serves_call_after_call() {
        // More calls than boa's VM stack would allow if the context were never rebuilt.
        let inv = invocation(
            "let n = 0; Deno.serve(() => { n += 1; return new Response(String(n)); });",
            true,
        );
        for i in 0..2500 {
            // Module scope is new every call: the counter never passes 1.
            let reply = call(&inv);
            assert_eq!(reply.status, 200, "call {i}");
            assert!(
                matches!(reply.body, Body::Bytes(ref b) if b == b"1"),
                "call {i}"
            );
        }
    }
}
