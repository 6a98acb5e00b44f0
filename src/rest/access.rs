//! Who may see what, beyond row-level security itself.

use crate::db::schema::{PolicyCommand, Table};
use crate::keys::{Caller, Role};

/// Whether an RLS refusal should say 403 (a signed-in role) rather than 401 (anon).
pub fn is_authenticated(caller: &Caller) -> bool {
    caller.role != Role::Anon
}

/// Whether `caller` may see `table` described in the OpenAPI document: service_role sees every
/// table; other roles see tables without RLS and tables with a policy that names their role.
pub fn can_list(caller: &Caller, table: &Table) -> bool {
    if caller.role == Role::ServiceRole || !table.rls {
        return true;
    }
    table.policies.iter().any(|p| {
        p.permissive
            && matches!(p.command, PolicyCommand::All | PolicyCommand::Select)
            && p.roles
                .iter()
                .any(|r| r == "public" || r == caller.role.name())
    })
}
