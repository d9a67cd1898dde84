-- A message read aloud, kept as the owner's file so the second play is instant: one per voice.
CREATE TABLE message_speech (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    voice TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, voice)
);
CREATE INDEX message_speech_file ON message_speech (file_id);
