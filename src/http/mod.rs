//! HTTP plumbing shared by every service: caller authentication, CORS and request logs.

pub mod auth;
pub mod cors;
pub mod log;
pub mod logbuf;
