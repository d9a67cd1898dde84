-- Search across a person's messages: each message's search terms (the owner's token first,
-- then its words: stemmed English, CJK character pairs), written by the store with every
-- content write; a deleted message takes its row along.
CREATE TABLE message_search (
    message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    terms TSVECTOR NOT NULL
);
CREATE INDEX message_search_terms ON message_search USING GIN (terms);
