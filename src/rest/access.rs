//! Which roles may use which tables.
//!
//! Until row-level security lands, only `service_role` reaches user tables; `anon` is told to
//! authenticate (401) and every other role is refused (403).

use super::error::{RestError, RestResult};
use crate::keys::{Caller, Role};

/// May `caller` read or write `table` at all?
pub fn check_table(caller: &Caller, table: &str) -> RestResult<()> {
    match caller.role {
        Role::ServiceRole => Ok(()),
        Role::Anon => Err(RestError::permission_denied(table, false)),
        _ => Err(RestError::permission_denied(table, true)),
    }
}

/// Whether `caller` may see `table` listed in the OpenAPI document.
pub fn can_list(caller: &Caller, _table: &str) -> bool {
    caller.role == Role::ServiceRole
}
