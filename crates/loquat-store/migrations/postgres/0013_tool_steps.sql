-- The tool calls of an answer, in order: what the model called, with which arguments, what it
-- got back and how long it took. `text_offset` places the call in the answer's text.
CREATE TABLE tool_steps (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    text_offset BIGINT NOT NULL,
    call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT,
    PRIMARY KEY (message_id, seq)
);
