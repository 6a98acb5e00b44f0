//! The request a SQL statement runs for, read by `auth.uid()`, `auth.role()`, `auth.jwt()` and
//! `auth.email()` inside SQLite.
//!
//! SQLite calls Outpost's functions on the thread that steps the statement, and a connection is
//! used by one thread at a time, so the request is kept in a thread-local slot for exactly as long
//! as the statements of that request run ([`with`]).

use crate::keys::{Caller, Role};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;

/// Who a statement runs for.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub role: String,
    pub claims: String,
    pub uid: Option<String>,
    pub email: Option<String>,
    /// `service_role` and SECURITY DEFINER functions see every row.
    pub bypass_rls: bool,
}

impl RequestContext {
    /// The context of a verified caller.
    pub fn for_caller(caller: &Caller) -> Arc<RequestContext> {
        let text = |k: &str| {
            caller
                .claims
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Arc::new(RequestContext {
            role: caller.role.name().to_string(),
            claims: Value::Object(caller.claims.clone()).to_string(),
            uid: text("sub"),
            email: text("email"),
            bypass_rls: caller.role == Role::ServiceRole,
        })
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RequestContext>>> = const { RefCell::new(None) };
}

/// Run `f` with `ctx` as the current request; the previous one is restored afterwards, even if
/// `f` panics.
pub fn with<T>(ctx: Option<Arc<RequestContext>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<RequestContext>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.replace(ctx));
    let _restore = Restore(prev);
    f()
}

fn current<T>(f: impl FnOnce(Option<&RequestContext>) -> T) -> T {
    CURRENT.with(|c| f(c.borrow().as_deref()))
}

/// Register the `auth_*` functions. Not deterministic: their value changes between requests
/// that reuse one prepared statement.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("auth_uid", 0, flags, |_| {
        Ok(current(|c| c.and_then(|c| c.uid.clone())))
    })?;
    conn.create_scalar_function("auth_role", 0, flags, |_| {
        Ok(current(|c| c.map(|c| c.role.clone())))
    })?;
    conn.create_scalar_function("auth_email", 0, flags, |_| {
        Ok(current(|c| c.and_then(|c| c.email.clone())))
    })?;
    conn.create_scalar_function("auth_jwt", 0, flags, |_| {
        Ok(current(|c| c.map(|c| c.claims.clone())))
    })?;
    // Outside any request (migrations, Outpost's own work) nothing is hidden.
    conn.create_scalar_function("_outpost_bypass_rls", 0, flags, |_| {
        Ok(current(|c| c.is_none_or(|c| c.bypass_rls)))
    })?;
    Ok(())
}
