//! Functions (`/functions/v1/{name}`): JavaScript modules written the Supabase/Deno way,
//! loaded from `--functions-dir` (one folder per function with `index.js`, re-read when it
//! changes) or deployed through the admin API (kept in the database), and run in the embedded
//! boa engine, each invocation in a fresh context on a bounded pool of worker threads.

pub mod api;
pub mod crypto;
pub mod fetch;
pub mod local;
pub mod logs;
pub mod multipart;
pub mod pool;
pub mod runtime;
pub mod service;
pub mod store;

pub use service::{router, FunctionsService};
