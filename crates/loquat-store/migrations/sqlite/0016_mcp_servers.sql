-- MCP servers added in the product: a member's own (HTTP or SSE, for themselves) or an
-- administrator's for everyone (`shared`; a local command only there). Headers or environment
-- values are one JSON object, encrypted by the key vault before they reach the store.
CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    transport TEXT NOT NULL,
    target TEXT NOT NULL,
    args TEXT NOT NULL,
    secrets_encrypted TEXT,
    shared BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX mcp_servers_user ON mcp_servers (user_id);
