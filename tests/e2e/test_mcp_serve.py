"""`docsrag serve` as a coding assistant reaches it: the MCP SDK's own client over real HTTP on
loopback (Streamable HTTP, stateless, JSON responses), on the sample docs, with no model key and
a bearer token set."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from tests.conftest import SAMPLE_DOCS
from tests.e2e.test_cli import _docsrag, _env, _free_port

TOKEN = "e2e-mcp-token-0123456789abcdefghij"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The sample docs ingested, then `docsrag serve` on a free loopback port: its base URL."""
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    port = _free_port()
    env = _env(tmp_path) | {"MCP_BEARER_TOKEN": TOKEN, "SITE_TITLE": "docsrag"}
    server = subprocess.Popen(
        [sys.executable, "-m", "docsrag", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
        assert TOKEN not in stderr  # never logged


def _text(result: object) -> str:
    content = getattr(result, "content", [])
    assert content and isinstance(content[0], TextContent)
    return content[0].text


@pytest.mark.skipif(not SAMPLE_DOCS.is_dir(), reason="sample docs missing")
def test_a_coding_assistant_searches_reads_and_asks_the_docs_over_loopback(served: str) -> None:
    url = f"{served}/mcp"

    async def assistant() -> None:
        auth = {"authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=auth, timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            assert [tool.name for tool in tools] == ["search_docs", "read_page", "ask_docs"]
            assert all("docsrag documentation" in (tool.description or "") for tool in tools)

            found = await session.call_tool(
                "search_docs", {"query": "How do I deploy to AWS with SAM?", "limit": 3}
            )
            assert not found.is_error, _text(found)
            assert found.structured_content is not None
            results = found.structured_content["results"]
            assert 1 <= len(results) <= 3
            assert any("/docs/deployment/aws-sam" in result["url"] for result in results)

            page = await session.call_tool("read_page", {"url": results[0]["url"]})
            assert not page.is_error, _text(page)
            assert page.structured_content is not None
            assert page.structured_content["sections"]
            assert _text(page).startswith(f"# {page.structured_content['title']}\n")

            answer = await session.call_tool(
                "ask_docs", {"question": "Which pages are skipped when ingesting?"}
            )
            assert answer.structured_content is not None
            assert answer.structured_content["mode"] == "retrieval_only"
            assert answer.structured_content["sources"]

            elsewhere = await session.call_tool("read_page", {"url": "https://example.com/x"})
            assert elsewhere.is_error

        # the 2026-07-28 era: self-contained requests, no handshake
        async with (
            httpx2.AsyncClient(headers=auth, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            found = await client.call_tool("search_docs", {"query": "rate limit per visitor"})
            assert not found.is_error, _text(found)

    asyncio.run(assistant())

    refused = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"accept": "application/json, text/event-stream"},
        timeout=10,
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
