-- Search across a person's messages: each message's search terms (the owner's token first,
-- then its words: stemmed English, CJK character pairs), written by the store with every
-- content write; a deleted message takes its row along. Results come newest first: with the
-- time beside the terms, a common word is answered by walking the newest rows, a rare one by
-- the GIN index (the planner picks by the terms' statistics).
CREATE TABLE message_search (
    message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    terms TSVECTOR NOT NULL
);
CREATE INDEX message_search_terms ON message_search USING GIN (terms);
CREATE INDEX message_search_recent ON message_search (user_id, created_at DESC);
