-- Read-only links to a topic's branch as it was when shared. The link's secret is looked up by
-- its SHA-256 (`token_hash`), so a lookup's time says nothing about the secret.
CREATE TABLE shares (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    topic_id TEXT NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    leaf_id TEXT,
    show_name BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX shares_by_topic ON shares (topic_id, user_id);
