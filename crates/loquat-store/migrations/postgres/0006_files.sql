-- Uploaded files: the record of each (its bytes are in file storage under storage_key). An
-- owner has one file per content hash: the same file uploaded twice is kept once.

CREATE TABLE files (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX files_user_content ON files (user_id, sha256);
-- A user's files, newest first.
CREATE INDEX files_user_created ON files (user_id, created_at, id);
