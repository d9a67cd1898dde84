"""A real MCP server for Loquat's tests, written with the `mcp` package (2.x).

Run as `mcp_server.py stdio`, `mcp_server.py streamable-http PORT` or `mcp_server.py sse PORT`
(the legacy transport: an event stream at /sse, messages posted to /messages/).
Tools: add, shout, huge (2 MB of text), crash (the process dies), garbage (stdout noise, stdio),
slow (sleeps), and after `grow` a new tool `late` appears (tools/list_changed).
"""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("loquat-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Says the text back in capitals."""
    return text.upper()


@server.tool()
def huge() -> str:
    """Returns two megabytes of text."""
    return "x" * 2_000_000


@server.tool()
def crash() -> str:
    """Kills the server process."""
    os._exit(3)


@server.tool()
def garbage() -> str:
    """Prints something that is not JSON-RPC on standard output."""
    sys.stdout.write("this is not json\n")
    sys.stdout.flush()
    return "printed"


@server.tool()
def slow(seconds: float) -> str:
    """Sleeps."""
    time.sleep(seconds)
    return "woke up"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    elif sys.argv[1] == "sse":
        server.run("sse", port=int(sys.argv[2]))
    else:
        server.run("streamable-http", port=int(sys.argv[2]))
