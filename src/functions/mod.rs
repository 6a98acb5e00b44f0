//! Functions (`/functions/v1/{name}`): JavaScript modules written the Supabase/Deno way,
//! loaded from `--functions-dir` (one folder per function with `index.js`, re-read when it
//! changes) and run in the embedded boa engine, each invocation in a fresh context on a bounded
//! pool of worker threads.

pub mod fetch;
pub mod pool;
pub mod runtime;
pub mod service;

pub use service::{router, FunctionsService};
