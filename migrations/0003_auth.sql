-- Auth: app users and everything that authenticates them. Emails are stored lower-cased.
CREATE TABLE IF NOT EXISTS _outpost_auth_users (
    id                   TEXT PRIMARY KEY,
    aud                  TEXT NOT NULL DEFAULT 'authenticated',
    role                 TEXT NOT NULL DEFAULT 'authenticated',
    email                TEXT,
    phone                TEXT,
    encrypted_password   TEXT,
    email_confirmed_at   TEXT,
    phone_confirmed_at   TEXT,
    invited_at           TEXT,
    confirmation_sent_at TEXT,
    recovery_sent_at     TEXT,
    email_change         TEXT,
    email_change_sent_at TEXT,
    -- Bit 1: the current address confirmed the change; bit 2: the new one did.
    email_change_confirm INTEGER NOT NULL DEFAULT 0,
    last_sign_in_at      TEXT,
    raw_app_meta_data    TEXT NOT NULL DEFAULT '{}',
    raw_user_meta_data   TEXT NOT NULL DEFAULT '{}',
    is_anonymous         INTEGER NOT NULL DEFAULT 0,
    banned_until         TEXT,
    created_at           TEXT NOT NULL DEFAULT (now()),
    updated_at           TEXT NOT NULL DEFAULT (now()),
    deleted_at           TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS _outpost_auth_users_email ON _outpost_auth_users (email)
    WHERE email IS NOT NULL;

CREATE TABLE IF NOT EXISTS _outpost_auth_identities (
    id              TEXT PRIMARY KEY,
    provider_id     TEXT NOT NULL,
    provider        TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES _outpost_auth_users (id) ON DELETE CASCADE,
    identity_data   TEXT NOT NULL DEFAULT '{}',
    email           TEXT,
    last_sign_in_at TEXT,
    created_at      TEXT NOT NULL DEFAULT (now()),
    updated_at      TEXT NOT NULL DEFAULT (now()),
    UNIQUE (provider, provider_id)
);
CREATE INDEX IF NOT EXISTS _outpost_auth_identities_user ON _outpost_auth_identities (user_id);

CREATE TABLE IF NOT EXISTS _outpost_auth_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES _outpost_auth_users (id) ON DELETE CASCADE,
    aal        TEXT NOT NULL DEFAULT 'aal1',
    -- JSON array of {method, timestamp}, as the access token's `amr` claim.
    amr        TEXT NOT NULL DEFAULT '[]',
    factor_id  TEXT,
    user_agent TEXT,
    ip         TEXT,
    created_at TEXT NOT NULL DEFAULT (now()),
    updated_at TEXT NOT NULL DEFAULT (now())
);
CREATE INDEX IF NOT EXISTS _outpost_auth_sessions_user ON _outpost_auth_sessions (user_id);

-- Only the SHA-256 of a refresh token is kept. A used token stays, revoked, so that its reuse
-- can be told from a token that never existed.
CREATE TABLE IF NOT EXISTS _outpost_auth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES _outpost_auth_sessions (id) ON DELETE CASCADE,
    parent     TEXT,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS _outpost_auth_refresh_tokens_session
    ON _outpost_auth_refresh_tokens (session_id);

-- Email links and codes. `token_hash` = hex(sha256(email || code)); the link carries the hash,
-- the mail also shows the code.
CREATE TABLE IF NOT EXISTS _outpost_auth_one_time_tokens (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES _outpost_auth_users (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    email         TEXT NOT NULL,
    redirect_to   TEXT,
    flow_state_id TEXT,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS _outpost_auth_one_time_tokens_user
    ON _outpost_auth_one_time_tokens (user_id, kind);

-- PKCE: what the app's code_challenge promised, and the code it may exchange once.
CREATE TABLE IF NOT EXISTS _outpost_auth_flow_states (
    id                     TEXT PRIMARY KEY,
    auth_code              TEXT UNIQUE,
    user_id                TEXT REFERENCES _outpost_auth_users (id) ON DELETE CASCADE,
    code_challenge         TEXT NOT NULL,
    code_challenge_method  TEXT NOT NULL,
    authentication_method  TEXT NOT NULL,
    provider_token         TEXT,
    provider_refresh_token TEXT,
    created_at             INTEGER NOT NULL
);

-- OAuth sign-ins between /authorize and /callback.
CREATE TABLE IF NOT EXISTS _outpost_auth_oauth_states (
    id                    TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    redirect_to           TEXT NOT NULL,
    nonce                 TEXT NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    created_at            INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS _outpost_auth_factors (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES _outpost_auth_users (id) ON DELETE CASCADE,
    friendly_name TEXT,
    factor_type   TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'unverified',
    secret        TEXT NOT NULL,
    -- The last TOTP time step accepted, so a code cannot be replayed.
    last_step     INTEGER,
    created_at    TEXT NOT NULL DEFAULT (now()),
    updated_at    TEXT NOT NULL DEFAULT (now())
);
CREATE INDEX IF NOT EXISTS _outpost_auth_factors_user ON _outpost_auth_factors (user_id);

CREATE TABLE IF NOT EXISTS _outpost_auth_challenges (
    id          TEXT PRIMARY KEY,
    factor_id   TEXT NOT NULL REFERENCES _outpost_auth_factors (id) ON DELETE CASCADE,
    ip          TEXT,
    created_at  INTEGER NOT NULL,
    verified_at INTEGER
);

-- Accounts of the admin web UI, apart from the app's users.
CREATE TABLE IF NOT EXISTS _outpost_admins (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (now())
);
