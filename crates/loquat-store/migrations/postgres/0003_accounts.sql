-- Accounts (PostgreSQL): users gain an email, a password hash, a role, a disabled flag and their
-- last activity; sessions, SSO identities and pending SSO logins, invitations, API tokens, usage
-- records, quotas, the audit log and instance-wide settings get their tables. Secrets (session
-- tokens, invite codes, API tokens) are stored as SHA-256 hashes only.

-- Lower-cased by the store; NULL only for the local user of an instance without accounts.
ALTER TABLE users ADD COLUMN email TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN last_active_at BIGINT;

-- NULLs never collide: every local user may lack an email.
CREATE UNIQUE INDEX users_email ON users (email);
-- For the admin's user list, newest first.
CREATE INDEX users_created ON users (created_at, id);

-- The only user before accounts is the instance's single local user: it administers it.
UPDATE users SET role = 'admin';

CREATE TABLE sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE identities (
    provider TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_user ON identities (user_id);

-- A pending SSO login (opaque JSON), taken once by the callback.
CREATE TABLE login_states (
    state TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- No foreign keys: an invite outlives its creator, and it is marked used before (or while) the
-- invited user is inserted.
CREATE TABLE invites (
    code_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_by TEXT COLLATE "C",
    used_at BIGINT
);

CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- No foreign keys: usage and audit records are history and outlive what they mention.
CREATE TABLE usage_events (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    assistant_id TEXT COLLATE "C",
    provider TEXT COLLATE "C" NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX usage_events_user_created ON usage_events (user_id, created_at);
CREATE INDEX usage_events_created ON usage_events (created_at);

-- scope is 'role' (subject: the role's name) or 'user' (subject: the user's id); NULL limits
-- are unlimited.
CREATE TABLE quotas (
    scope TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    tokens_per_day BIGINT,
    tokens_per_month BIGINT,
    requests_per_minute BIGINT,
    PRIMARY KEY (scope, subject)
);

CREATE TABLE audit_log (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    actor TEXT COLLATE "C",
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX audit_log_created ON audit_log (created_at);
CREATE INDEX audit_log_action_created ON audit_log (action, created_at);

CREATE TABLE settings (
    key TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
