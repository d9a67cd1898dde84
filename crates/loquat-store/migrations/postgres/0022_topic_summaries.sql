-- A topic's older messages summarised: sent instead of them when the assistant compresses its
-- history. `upto_message_id` is the last message the summary covers.
CREATE TABLE topic_summaries (
    topic_id TEXT PRIMARY KEY REFERENCES topics (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    upto_message_id TEXT NOT NULL,
    model TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
