//! The jobs service answers with the admin API's error shape.

pub use crate::admin::error::{AdminError as JobsError, AdminResult as JobsResult};
