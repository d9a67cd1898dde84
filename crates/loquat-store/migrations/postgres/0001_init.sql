-- Loquat's first schema (PostgreSQL). Ids are hyphenated UUID text (byte-ordered), times are
-- unix milliseconds, the assistant config is a JSON document stored as text.

CREATE TABLE users (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    locale TEXT,
    theme TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE assistants (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_default BOOLEAN NOT NULL,
    config TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX assistants_user ON assistants (user_id);

CREATE TABLE topics (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    assistant_id TEXT COLLATE "C" NOT NULL REFERENCES assistants (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    -- No foreign key: the leaf may be deleted before the topic is updated.
    active_leaf_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX topics_user_assistant_updated ON topics (user_id, assistant_id, updated_at, id);
-- Lets deleting an assistant find its topics without a scan.
CREATE INDEX topics_assistant ON topics (assistant_id);

CREATE TABLE messages (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    topic_id TEXT COLLATE "C" NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    -- No cascade: a subtree is deleted explicitly, in one statement.
    parent_id TEXT COLLATE "C" REFERENCES messages (id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    reasoning TEXT NOT NULL,
    status TEXT NOT NULL,
    error_kind TEXT,
    error_message TEXT,
    provider TEXT,
    model TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    reasoning_tokens BIGINT,
    ttft_ms BIGINT,
    duration_ms BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX messages_topic_created ON messages (topic_id, created_at, id);
CREATE INDEX messages_parent ON messages (parent_id);
CREATE INDEX messages_generating ON messages (status) WHERE status = 'generating';

CREATE TABLE provider_settings (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL,
    base_url TEXT NOT NULL,
    api_key_encrypted TEXT,
    model_list TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX provider_settings_user ON provider_settings (user_id);
