-- Reading documents and knowledge bases.

-- Each document's reading: a background job's state (queued, reading, indexing, ready,
-- failed), claimed by one node at a time (node, heartbeat_at), with what it produced.
CREATE TABLE file_ingest (
    file_id TEXT PRIMARY KEY NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    progress INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    chunks INTEGER NOT NULL DEFAULT 0,
    embedding_model TEXT,
    node TEXT,
    heartbeat_at INTEGER,
    updated_at INTEGER NOT NULL
);
-- The queue: waiting jobs, oldest first, and claims whose node stopped beating.
CREATE INDEX file_ingest_state ON file_ingest (state, updated_at);

-- A document's text in chunks, in order, each with where it is; with a vector when an
-- embedding model was configured (little-endian f32s).
CREATE TABLE chunks (
    id TEXT PRIMARY KEY NOT NULL,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    headings TEXT NOT NULL,
    page_start INTEGER,
    page_end INTEGER,
    tokens INTEGER NOT NULL,
    embedding BLOB
);
CREATE INDEX chunks_file ON chunks (file_id, seq);

-- A user's knowledge bases; revision counts changes, so each node knows when its search
-- index of one is out of date.
CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX knowledge_bases_user ON knowledge_bases (user_id, created_at);

CREATE TABLE knowledge_base_files (
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (knowledge_base_id, file_id)
);
CREATE INDEX knowledge_base_files_file ON knowledge_base_files (file_id);

-- The knowledge bases an assistant answers from.
CREATE TABLE assistant_knowledge (
    assistant_id TEXT NOT NULL REFERENCES assistants (id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (assistant_id, knowledge_base_id)
);
CREATE INDEX assistant_knowledge_base ON assistant_knowledge (knowledge_base_id);

-- The numbered sources an answer was given (copies: a citation still opens after its file
-- is deleted).
CREATE TABLE message_sources (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    file_id TEXT,
    file_name TEXT NOT NULL,
    page INTEGER,
    headings TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (message_id, number)
);
