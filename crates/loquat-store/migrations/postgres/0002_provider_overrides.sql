-- A user's own key (and base URL) for a provider configured by the server, and Azure's
-- api-version for providers users add themselves.
CREATE TABLE provider_overrides (
    user_id TEXT COLLATE "C" NOT NULL,
    provider_id TEXT COLLATE "C" NOT NULL,
    api_key_encrypted TEXT,
    base_url TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider_id)
);

ALTER TABLE provider_settings ADD COLUMN api_version TEXT NOT NULL DEFAULT '';
