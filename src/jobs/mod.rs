//! Durable jobs: database webhooks enqueued in the same transaction as the change that caused
//! them (an outbox in SQLite), delivered by a worker with retries, backoff, a dead-letter state
//! and a delivery log. Functions and cron build on the same queue.

pub mod api;
pub mod config;
pub mod cron;
pub mod error;
pub mod queue;
pub mod webhooks;
pub mod worker;
