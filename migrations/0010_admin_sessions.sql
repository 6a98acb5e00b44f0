-- Sessions of the admin web UI: the cookie holds a random token, the table its SHA-256.

CREATE TABLE _outpost_admin_sessions (
    token_hash TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL REFERENCES _outpost_admins (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,              -- ms since the epoch
    expires_at INTEGER NOT NULL,
    user_agent TEXT
);
CREATE INDEX _outpost_admin_sessions_admin ON _outpost_admin_sessions (admin_id);
