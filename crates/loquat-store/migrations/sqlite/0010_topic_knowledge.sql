-- Topics where the assistant's knowledge bases are turned off (the default is on).
CREATE TABLE topic_knowledge_off (
    topic_id TEXT PRIMARY KEY NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL
);
