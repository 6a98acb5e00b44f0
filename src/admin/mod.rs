//! Admin: the web UI's own accounts (apart from the app's users) and the admin API's error.

pub mod accounts;
pub mod error;
