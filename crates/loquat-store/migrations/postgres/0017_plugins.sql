-- A LobeChat plugin, added like an MCP server, keeps its manifest (JSON).
ALTER TABLE mcp_servers ADD COLUMN manifest TEXT;
