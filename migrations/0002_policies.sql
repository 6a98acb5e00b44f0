-- Row-level security settings, policies and SQL functions (RPC), written by intercepted
-- `ALTER TABLE … ROW LEVEL SECURITY`, `CREATE POLICY` and `CREATE FUNCTION` statements.
CREATE TABLE IF NOT EXISTS _outpost_rls (
    table_name TEXT PRIMARY KEY,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1))
);

CREATE TABLE IF NOT EXISTS _outpost_policies (
    table_name  TEXT NOT NULL,
    name        TEXT NOT NULL,
    command     TEXT NOT NULL CHECK (command IN ('ALL', 'SELECT', 'INSERT', 'UPDATE', 'DELETE')),
    roles       TEXT NOT NULL,           -- JSON array of role names; ["public"] means every role
    permissive  INTEGER NOT NULL CHECK (permissive IN (0, 1)),
    using_expr  TEXT,
    check_expr  TEXT,
    created_at  TEXT NOT NULL DEFAULT (now()),
    PRIMARY KEY (table_name, name)
);

CREATE TABLE IF NOT EXISTS _outpost_functions (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,           -- JSON: params, returns, body, volatility, security
    created_at  TEXT NOT NULL DEFAULT (now())
);
