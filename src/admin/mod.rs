//! The admin web UI's own accounts (apart from the app's users).

pub mod accounts;
pub mod error;
