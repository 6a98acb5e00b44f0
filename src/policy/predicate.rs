//! SQL predicates combining a table's policies for one command, as Postgres combines them:
//! a row passes when at least one applicable permissive policy passes and every applicable
//! restrictive policy passes. The role test is part of the predicate (`auth_role() IN (…)`),
//! so one predicate serves every role.

use crate::db::schema::{Policy, PolicyCommand, Table};

/// The command being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    fn matches(self, p: PolicyCommand) -> bool {
        matches!(
            (self, p),
            (_, PolicyCommand::All)
                | (Command::Select, PolicyCommand::Select)
                | (Command::Insert, PolicyCommand::Insert)
                | (Command::Update, PolicyCommand::Update)
                | (Command::Delete, PolicyCommand::Delete)
        )
    }
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `auth_role() IN (…)`, or nothing for `public`.
fn role_test(p: &Policy) -> Option<String> {
    if p.roles.iter().any(|r| r == "public") {
        return None;
    }
    let list: Vec<String> = p.roles.iter().map(|r| sql_string(r)).collect();
    Some(format!("auth_role() IN ({})", list.join(", ")))
}

fn combine(table: &Table, cmd: Command, expr: impl Fn(&Policy) -> Option<String>) -> String {
    let mut permissive = Vec::new();
    let mut restrictive = Vec::new();
    for p in table.policies.iter().filter(|p| cmd.matches(p.command)) {
        // A policy with no expression for this check allows every row it applies to.
        let body = expr(p).unwrap_or_else(|| "1".into());
        match (role_test(p), p.permissive) {
            (None, true) => permissive.push(format!("({body})")),
            (Some(r), true) => permissive.push(format!("({r} AND ({body}))")),
            (None, false) => restrictive.push(format!("({body})")),
            (Some(r), false) => restrictive.push(format!("(NOT ({r}) OR ({body}))")),
        }
    }
    if permissive.is_empty() {
        // No permissive policy: nothing is allowed (closed by default).
        return "0".into();
    }
    let mut all = vec![format!("({})", permissive.join(" OR "))];
    all.extend(restrictive);
    // NULL (an expression over NULL columns) denies, as in Postgres.
    format!("coalesce({}, 0)", all.join(" AND "))
}

/// Whether any permissive policy for `cmd` applies to `role` at all; without one, every row is
/// refused and the refusal can be given before anything runs.
pub fn may(table: &Table, cmd: Command, role: &str) -> bool {
    table.policies.iter().any(|p| {
        p.permissive && cmd.matches(p.command) && p.roles.iter().any(|r| r == "public" || r == role)
    })
}

/// Rows `cmd` may see or target: the USING expressions.
pub fn using(table: &Table, cmd: Command) -> String {
    combine(table, cmd, |p| p.using.clone())
}

/// Rows `cmd` may leave behind: WITH CHECK, falling back to USING.
pub fn check(table: &Table, cmd: Command) -> String {
    combine(table, cmd, |p| p.check.clone().or_else(|| p.using.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::Policy;

    fn table(policies: Vec<Policy>) -> Table {
        Table {
            name: "t".into(),
            is_view: false,
            without_rowid: false,
            columns: vec![],
            primary_key: vec![],
            foreign_keys: vec![],
            indexes: vec![],
            rls: true,
            policies,
        }
    }

    fn policy(
        cmd: PolicyCommand,
        roles: &[&str],
        permissive: bool,
        using: Option<&str>,
        check: Option<&str>,
    ) -> Policy {
        Policy {
            name: "p".into(),
            command: cmd,
            roles: roles.iter().map(|s| s.to_string()).collect(),
            permissive,
            using: using.map(Into::into),
            check: check.map(Into::into),
        }
    }

    #[test]
    fn combines_like_postgres() {
        assert_eq!(using(&table(vec![]), Command::Select), "0");
        let t = table(vec![
            policy(
                PolicyCommand::Select,
                &["authenticated"],
                true,
                Some("a = 1"),
                None,
            ),
            policy(
                PolicyCommand::All,
                &["public"],
                true,
                Some("b = 2"),
                Some("c = 3"),
            ),
            policy(PolicyCommand::All, &["anon"], false, Some("d = 4"), None),
            policy(PolicyCommand::Delete, &["public"], true, Some("e"), None),
        ]);
        assert_eq!(
            using(&t, Command::Select),
            "coalesce(((auth_role() IN ('authenticated') AND (a = 1)) OR (b = 2)) AND (NOT (auth_role() IN ('anon')) OR (d = 4)), 0)"
        );
        assert_eq!(
            check(&t, Command::Insert),
            "coalesce(((c = 3)) AND (NOT (auth_role() IN ('anon')) OR (d = 4)), 0)"
        );
        let only_restrictive = table(vec![policy(
            PolicyCommand::All,
            &["public"],
            false,
            Some("x"),
            None,
        )]);
        assert_eq!(using(&only_restrictive, Command::Select), "0");
    }
}
