-- Files attached to a message (images for vision models, documents to read), in the order the
-- user attached them. Deleting the message (its subtree) or the file removes the link.

CREATE TABLE message_files (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (message_id, file_id)
);

-- Where a file is used (the Files page), and the cascade when it is deleted.
CREATE INDEX message_files_file ON message_files (file_id);
