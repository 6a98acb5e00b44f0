//! One invocation of a function in a fresh boa context, on the calling (worker) thread: the
//! prelude (Web APIs), the function's module, then its handler with the request; runtime limits
//! stop runaway loops and recursion.

use boa_engine::builtins::promise::PromiseState;
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
}

/// What the function answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
}

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

/// Run one invocation; returns its reply (or why none) and the console lines it wrote.
pub fn run(inv: Invocation) -> (Result<Reply, Failure>, Vec<Log>) {
    CALL.with(|c| {
        *c.borrow_mut() = Some(Call {
            env: inv.env.clone(),
            logs: Vec::new(),
            deadline: inv.deadline,
            fetch_allow: inv.fetch_allow.clone(),
        })
    });
    let result = run_in_context(&inv);
    let logs = CALL.with(|c| c.borrow_mut().take().map(|c| c.logs).unwrap_or_default());
    (result, logs)
}

fn run_in_context(inv: &Invocation) -> Result<Reply, Failure> {
    let mut ctx = Context::default();
    let ctx = &mut ctx;
    ctx.runtime_limits_mut()
        .set_loop_iteration_limit(inv.loop_limit);
    ctx.runtime_limits_mut().set_recursion_limit(512);
    install(ctx).map_err(|e| Failure::Boot(format!("prelude: {}", describe(&e, ctx))))?;
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
    read_reply(ctx, &out).map_err(|e| Failure::Handler(describe(&e, ctx)))
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

fn read_reply(ctx: &mut Context, out: &JsValue) -> JsResult<Reply> {
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
    let body = bytes_of(&obj.get(js_string!("body"), ctx)?, ctx)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}
