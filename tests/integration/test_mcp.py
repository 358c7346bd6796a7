"""The MCP server (`/mcp`) with the MCP SDK's own client: in process through the FastAPI app, and
through the Lambda handler (Mangum, HTTP API v2 events, a cold container).

The client speaks both protocol eras: the initialize handshake (`ClientSession.initialize()`,
what today's coding assistants do) and the self-contained 2026-07-28 requests (`Client`, mode
"auto"). The index is a small Markdown site ingested into a temporary embedded Qdrant; the model
is the loopback fake OpenRouter where an answer needs one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest
from mangum import Mangum
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from docsrag.api import create_app
from docsrag.chatkit.stores import create_threads_table
from docsrag.config import Settings
from docsrag.container import Container
from docsrag.mcp_server import SECTION_CHARS, page_path, without_overlap
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.test_chatkit_protocol import indexed_urls
from tests.ratewindow import clear_of_window_boundary

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_URL = "https://docs.example.org/handbook"  # a Docusaurus baseUrl: /handbook/
BASE = "http://docsrag.test"
MCP_URL = f"{BASE}/mcp"
TABLE = "docsrag-threads-mcp"
TOKEN = "mcp-test-bearer-token-0123456789abcdef"

WORDS = (
    *("size", "shape", "cadence", "budget", "order", "naming", "layout", "retention"),
    *("priority", "scope", "timing", "ownership", "location", "precision", "fallback"),
    *("pacing", "limit", "format", "encoding", "lifetime", "sharding", "caching"),
    *("batching", "locking", "logging", "tracing", "sampling", "pruning"),
)
LONG_SENTENCES = [  # one section of about 1,200 tokens: indexed in overlapping parts
    f"Setting number {n} of the embedded store controls the {word} of the {thing} in memory."
    for n, (thing, word) in enumerate(
        (thing, word) for thing in ("snapshot", "inverted index", "payload cache") for word in WORDS
    )
]

PAGES = {
    "install.md": """---
title: Installation
---

# Installation

Install the tool with pip before anything else.

## Requirements

You need Python 3.11 or newer and a C compiler for the native extension of the tool.

## Upgrading

Run pip install --upgrade to move to the latest release of the tool.
""",
    "deploy/aws.md": """---
title: Deploying to AWS
---

# Deploying to AWS

## Build the stack {#build}

Run sam build and then sam deploy --guided to create the CloudFormation stack.

## Tear down

Delete the stack with sam delete when you no longer need the deployment.
""",
    "tuning.md": "---\ntitle: Tuning\n---\n\n# Tuning\n\nThis page explains how the embedded "
    "store behaves when the server starts, while it answers questions and after an ingest "
    "changes pages. Each setting below is read once at start, so a change needs a restart "
    "before it takes effect, and every setting has a default that suits a laptop.\n\n"
    "## Snapshot settings\n\n"
    + "\n\n".join(" ".join(LONG_SENTENCES[i : i + 3]) for i in range(0, len(LONG_SENTENCES), 3))
    + "\n\n## Afterwards\n\nRestart the server after changing a setting.\n",
}

VERSIONED_SITE = {
    "docusaurus.config.js": "export default {title: 'Test'};",
    "versions.json": '["2.0", "1.0"]',
    "docs/configure.md": "# Configure\n\nSet QDRANT_PATH to the folder of the embedded store.\n\n"
    "## Streaming\n\nThe next release streams answers over server-sent events.",
    "versioned_docs/version-2.0/configure.md": "# Configure\n\nSet QDRANT_PATH to the folder "
    "of the embedded store.",
    "versioned_docs/version-1.0/configure.md": "# Configure\n\nSet QDRANT_LOCAL_PATH to the "
    "folder of the embedded store.",
}


# --- Environment ------------------------------------------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def make_settings(tmp_path: Path, fake: FakeOpenAI | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp_path / "qdrant",
        "chatkit_sqlite_path": tmp_path / "chatkit.sqlite3",
        "site_url": SITE_URL,
        "site_title": "Acme Handbook",
        "site_description": "How to install, deploy and tune the Acme tool.",
        "embedding_dimensions": 64,
        "llm_timeout_seconds": 5,
        "llm_max_retries": 0,
        "embedding_max_retries": 0,
        "max_message_chars": 500,
    }
    if fake is not None:
        values |= {"openrouter_api_key": fake.api_key, "openrouter_base_url": fake.base_url}
    values |= overrides
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ingest(settings: Settings, root: Path) -> Container:
    container = Container.build(settings)
    summary = container.ingestor().sync_folder(root)
    assert summary.failed == 0 and summary.added > 0
    return container


@dataclass
class Env:
    settings: Settings
    container: Container
    http: httpx2.AsyncClient

    def client(self, mode: str = "auto", **kwargs: Any) -> Client:
        return Client(streamable_http_client(MCP_URL, http_client=self.http), mode=mode, **kwargs)

    async def post(self, body: Any, **headers: str) -> httpx2.Response:
        """One raw JSON-RPC POST, as a coding assistant sends it."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.http.post(MCP_URL, content=content, headers=rpc_headers(**headers))


def rpc_headers(**extra: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
        **{name.replace("_", "-"): value for name, value in extra.items()},
    }


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


@asynccontextmanager
async def running(
    tmp_path: Path,
    fake: FakeOpenAI | None = None,
    *,
    files: dict[str, str] | None = None,
    client_ip: str = "203.0.113.7",
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[Env]:
    settings = make_settings(tmp_path, fake, **overrides)
    # A folder of Markdown docs (URLs /docs/...), or a whole Docusaurus site's sources.
    root = write_tree(tmp_path / ("site" if files else "docs"), files or PAGES)
    container = ingest(settings, root)
    app = create_app(settings=settings, container=container)
    transport = httpx2.ASGITransport(app=app, client=(client_ip, 40000))
    try:
        async with httpx2.AsyncClient(
            transport=transport, base_url=BASE, headers=headers or {}
        ) as http:
            yield Env(settings=settings, container=container, http=http)
    finally:
        app.state.provider.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with running(tmp_path) as running_env:
        yield running_env


def text_of(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


# --- Tools, over both protocol eras -------------------------------------------------------------


async def test_a_handshake_client_lists_the_three_tools_described_by_the_site(env: Env) -> None:
    async with (
        streamable_http_client(MCP_URL, http_client=env.http) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        tools = (await session.list_tools()).tools

    assert init.server_info.name == "docsrag"
    assert init.instructions and "Acme Handbook" in init.instructions
    assert [tool.name for tool in tools] == ["search_docs", "read_page", "ask_docs"]
    for tool in tools:
        assert tool.description and "Acme Handbook" in tool.description
        assert "How to install, deploy and tune the Acme tool." in tool.description
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.output_schema is not None
    search = tools[0].input_schema
    assert search["required"] == ["query"]
    assert set(search["properties"]) == {"query", "version", "limit"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_search_docs_ranks_sections_as_chat_does_with_anchored_urls(
    env: Env, mode: str
) -> None:
    query = "How do I deploy the stack with sam build?"
    async with env.client(mode) as client:
        result = await client.call_tool("search_docs", {"query": query})

    assert not result.is_error
    found = result.structured_content
    assert found is not None
    retrieval = await env.container.retriever.retrieve(query)
    expected = [env.settings.public_url(hit.path, hit.anchor) for hit in retrieval.hits]
    assert [section["url"] for section in found["results"]] == expected[:5]
    first = found["results"][0]
    assert first["url"] == f"{SITE_URL}/docs/deploy/aws#build"
    assert first["title"] == "Deploying to AWS › Build the stack"
    assert "sam deploy --guided" in first["text"]
    assert found["covered"] is True
    assert set(expected) <= indexed_urls(env.container)
    text = text_of(result)
    assert text.startswith("## 1. Deploying to AWS › Build the stack")
    assert f"URL: {SITE_URL}/docs/deploy/aws#build" in text


async def test_search_docs_says_which_names_of_the_query_the_docs_never_mention(
    env: Env,
) -> None:
    async with env.client() as client:
        result = await client.call_tool(
            "search_docs", {"query": "deploy the stack with sam build and Terraform"}
        )

    found = result.structured_content
    assert found is not None
    assert found["results"]  # the sections match its other words
    assert found["covered"] is False
    assert found["missing_names"] == ["Terraform"]
    assert "Note: the docs never mention Terraform" in text_of(result)


async def test_search_docs_limit_and_long_sections_are_trimmed(tmp_path: Path) -> None:
    async with running(tmp_path, retrieval_top_k=2) as few, few.client() as client:
        one = await client.call_tool("search_docs", {"query": "snapshot setting", "limit": 1})
        query = "the stack, the tool and the store settings"
        two = await client.call_tool("search_docs", {"query": query, "limit": 2})
        many = await client.call_tool("search_docs", {"query": query, "limit": 20})

    assert one.structured_content is not None and many.structured_content is not None
    assert len(one.structured_content["results"]) == 1
    section = one.structured_content["results"][0]
    assert section["url"].startswith(f"{SITE_URL}/docs/tuning#snapshot-settings")
    assert len(section["text"]) <= SECTION_CHARS + 2
    assert section["truncated"] is True and section["text"].endswith("…")
    # more than RETRIEVAL_TOP_K when asked for: the same ranking, each part of a section once
    assert two.structured_content is not None
    first_two = [(r["url"], r["text"]) for r in two.structured_content["results"]]
    parts = [(r["url"], r["text"]) for r in many.structured_content["results"]]
    assert len(first_two) == 2
    assert len(parts) > 2 and len(parts) == len(set(parts))
    assert parts[:2] == first_two


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_read_page_gives_the_whole_page_in_reading_order_with_section_urls(
    env: Env, mode: str
) -> None:
    async with env.client(mode) as client:
        result = await client.call_tool(
            "read_page", {"url": f"{SITE_URL}/docs/tuning/#snapshot-settings"}
        )

    assert not result.is_error
    page = result.structured_content
    assert page is not None
    assert page["title"] == "Tuning"
    assert page["url"] == f"{SITE_URL}/docs/tuning"
    assert [(s["heading"], s["url"]) for s in page["sections"]] == [
        (None, f"{SITE_URL}/docs/tuning"),
        ("Snapshot settings", f"{SITE_URL}/docs/tuning#snapshot-settings"),
        ("Afterwards", f"{SITE_URL}/docs/tuning#afterwards"),
    ]
    assert page["truncated"] is False
    # the long section was indexed in several overlapping parts: read back once, in order
    long_text = page["sections"][1]["text"]
    positions = [long_text.find(sentence) for sentence in LONG_SENTENCES]
    assert -1 not in positions and positions == sorted(positions)
    assert all(long_text.count(sentence) == 1 for sentence in LONG_SENTENCES)
    parts = [hit for hit in env.container.index.page_chunks("/docs/tuning")]
    assert sum(hit.anchor == "snapshot-settings" for hit in parts) >= 2
    text = text_of(result)
    assert text.startswith(f"# Tuning\nURL: {SITE_URL}/docs/tuning\n")
    assert f"## Afterwards\nURL: {SITE_URL}/docs/tuning#afterwards" in text


async def test_read_page_refuses_other_sites_and_unknown_pages(env: Env) -> None:
    async with env.client("legacy") as client:
        other_site = await client.call_tool(
            "read_page", {"url": "https://evil.example.com/handbook/docs/install"}
        )
        outside_base = await client.call_tool(
            "read_page", {"url": "https://docs.example.org/docs/install"}
        )
        unknown = await client.call_tool("read_page", {"url": f"{SITE_URL}/docs/nope"})
        not_a_url = await client.call_tool("read_page", {"url": "install"})
        by_path = await client.call_tool("read_page", {"url": "/docs/install"})

    for refused in (other_site, outside_base, not_a_url):
        assert refused.is_error
        assert f"is not a page of this site: read_page reads pages under {SITE_URL}" in text_of(
            refused
        )
    assert unknown.is_error
    assert f"no page at {SITE_URL}/docs/nope" in text_of(unknown)
    assert "search_docs" in text_of(unknown)
    assert not by_path.is_error
    assert by_path.structured_content is not None
    assert by_path.structured_content["title"] == "Installation"


async def test_ask_docs_gives_the_chat_answer_with_its_sources(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    question = "How do I deploy the stack with sam?"
    async with running(tmp_path, fake_openai) as llm_env:
        async with llm_env.client() as client:
            result = await client.call_tool("ask_docs", {"question": question})
        chat = await llm_env.http.post("/chat", json={"message": question})

    assert not result.is_error
    answer = result.structured_content
    assert answer is not None
    assert answer["mode"] == "llm"
    assert "[1]" in answer["answer"]
    assert answer["sources"][0]["url"] == f"{SITE_URL}/docs/deploy/aws#build"
    body = chat.json()
    assert [s["url"] for s in answer["sources"]] == [s["url"] for s in body["sources"]]
    text = text_of(result)
    assert "\nSources:\n[1] Deploying to AWS › Build the stack: " in text


async def test_ask_docs_without_a_model_is_retrieval_only(env: Env) -> None:
    async with env.client() as client:
        result = await client.call_tool(
            "ask_docs", {"question": "What are the requirements to install the tool?"}
        )
        off_topic = await client.call_tool(
            "ask_docs", {"question": "What is the capital of France?"}
        )

    assert result.structured_content is not None
    assert result.structured_content["mode"] == "retrieval_only"
    assert result.structured_content["sources"][0]["url"].startswith(f"{SITE_URL}/docs/install")
    assert off_topic.structured_content is not None
    assert off_topic.structured_content["sources"] == []
    # the docs never mention France: the answer says so rather than "rephrase"
    assert off_topic.structured_content["answer"].startswith(
        "The documentation doesn't mention “France”"
    )


# --- Versions ---------------------------------------------------------------------------------


async def test_a_version_the_site_lacks_is_a_tool_error_listing_the_versions(
    tmp_path: Path,
) -> None:
    async with (
        running(tmp_path, files=VERSIONED_SITE) as versioned,
        versioned.client("legacy") as client,
    ):
        old = await client.call_tool(
            "search_docs", {"query": "folder of the embedded store", "version": "1.0"}
        )
        unknown = await client.call_tool(
            "search_docs", {"query": "embedded store", "version": "9.9"}
        )
        unknown_ask = await client.call_tool(
            "ask_docs", {"question": "embedded store?", "version": "v7"}
        )
        page = await client.call_tool("read_page", {"url": f"{SITE_URL}/docs/1.0/configure"})
        latest = await client.call_tool("search_docs", {"query": "QDRANT_PATH folder"})

    assert old.structured_content is not None
    assert old.structured_content["version"] == "1.0"
    assert old.structured_content["results"][0]["url"] == f"{SITE_URL}/docs/1.0/configure"
    assert "QDRANT_LOCAL_PATH" in old.structured_content["results"][0]["text"]
    assert text_of(old).startswith("Docs version: 1.0\n")
    for refused in (unknown, unknown_ask):
        assert refused.is_error
        assert "This site has: 2.0, current, 1.0" in text_of(refused)
    assert "'9.9'" in text_of(unknown)
    assert page.structured_content is not None
    assert page.structured_content["version"] == "1.0"
    assert "QDRANT_LOCAL_PATH" in text_of(page)
    assert latest.structured_content is not None
    assert latest.structured_content["version_label"] == "2.0 (latest)"
    assert latest.structured_content["results"][0]["url"] == f"{SITE_URL}/docs/configure"


async def test_an_unversioned_site_says_so_for_any_version(env: Env) -> None:
    async with env.client("legacy") as client:
        result = await client.call_tool("search_docs", {"query": "install", "version": "2.0"})
    assert result.is_error
    assert "this site's docs are not versioned" in text_of(result)


# --- Errors: never a 500 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("search_docs", {"query": 12}, "query"),
        ("search_docs", {"query": "x", "limit": "many"}, "limit"),
        ("search_docs", {"query": "x", "limit": 0}, "limit"),
        ("search_docs", {}, "query"),
        ("read_page", {"url": ["a"]}, "url"),
        ("ask_docs", {"question": None}, "question"),
        ("search_docs", {"query": "   "}, "The query is empty."),
        ("search_docs", {"query": "word " * 200}, "the limit is 500"),
        ("ask_docs", {"question": "word " * 200}, "the limit is 500"),
    ],
)
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_wrong_arguments_are_tool_errors(
    env: Env, mode: str, tool: str, arguments: dict[str, Any], fragment: str
) -> None:
    async with env.client(mode) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert fragment in text_of(result)


async def test_an_unknown_tool_and_method_are_protocol_errors(env: Env) -> None:
    async with env.client("legacy") as client:
        unknown_tool = await client.call_tool("delete_docs", {})
    unknown_method = await env.post(rpc("resources/delete"))
    not_json = await env.post(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    wrong_shape = await env.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 7})

    assert unknown_tool.is_error and text_of(unknown_tool) == "Unknown tool: delete_docs"
    assert unknown_method.status_code == 200
    assert unknown_method.json()["error"]["code"] == -32601  # method not found
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == -32700  # parse error
    assert wrong_shape.status_code < 500
    assert "error" in wrong_shape.json()


async def test_a_one_megabyte_query_is_refused_before_it_is_parsed(env: Env) -> None:
    huge = rpc("tools/call", {"name": "search_docs", "arguments": {"query": "x" * 1_000_000}})
    declared = await env.post(huge)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        body = json.dumps(huge).encode()
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    chunked = await env.http.post(MCP_URL, content=chunks(), headers=rpc_headers())
    just_over = await env.post(
        rpc("tools/call", {"name": "search_docs", "arguments": {"query": "x" * 70_000}})
    )

    for response in (declared, chunked, just_over):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["request_id"] == response.headers["x-request-id"]
    assert "content-length" not in chunked.request.headers
    assert "65536 bytes" in chunked.json()["error"]["message"]


async def test_get_and_delete_answer_405_and_other_methods_are_not_routed(env: Env) -> None:
    get = await env.http.get(MCP_URL, headers={"accept": "text/event-stream"})
    delete = await env.http.delete(MCP_URL)
    put = await env.http.put(MCP_URL, content=b"{}")

    for response in (get, delete):
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert put.status_code == 405


# --- Protection -------------------------------------------------------------------------------


async def test_disabled_mcp_is_404_for_every_method(tmp_path: Path) -> None:
    async with running(tmp_path, mcp_enabled=False) as disabled:
        post = await disabled.post(rpc("tools/list"))
        get = await disabled.http.get(MCP_URL)
        health = await disabled.http.get("/health")

    for response in (post, get):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert health.status_code == 200


async def test_a_bearer_token_is_required_when_set_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path, mcp_bearer_token=TOKEN) as private:
        missing = await private.post(rpc("tools/list"))
        wrong = await private.post(rpc("tools/list"), authorization=f"Bearer {TOKEN}x")
        basic = await private.post(rpc("tools/list"), authorization=f"Basic {TOKEN}")
        right = await private.post(rpc("tools/list"), authorization=f"Bearer {TOKEN}")
        private.http.headers["authorization"] = f"bearer {TOKEN}"
        async with private.client() as client:
            result = await client.call_tool("search_docs", {"query": "install the tool"})

    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert right.json()["result"]["tools"][0]["name"] == "search_docs"
    assert not result.is_error
    assert TOKEN not in caplog.text


async def test_browsers_may_call_only_from_the_allowed_origins(tmp_path: Path) -> None:
    allowed = "https://docs.example.org"
    async with running(tmp_path, cors_origins=[allowed]) as browsers:
        rebound = await browsers.post(rpc("tools/list"), origin="http://attacker.example:8000")
        other_get = await browsers.http.get(MCP_URL, headers={"origin": "https://evil.example"})
        own_site = await browsers.post(rpc("tools/list"), origin=allowed)
        no_origin = await browsers.post(rpc("tools/list"))
        preflight = await browsers.http.options(
            MCP_URL,
            headers={
                "origin": allowed,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, mcp-protocol-version",
            },
        )

    for refused in (rebound, other_get):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_origin"
    assert own_site.status_code == no_origin.status_code == 200
    assert own_site.headers["access-control-allow-origin"] == allowed
    assert preflight.status_code == 200
    assert "mcp-protocol-version" in preflight.headers["access-control-allow-headers"]


@pytest.mark.parametrize("backend", ["memory", "dynamodb"])
async def test_each_client_address_is_rate_limited(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    overrides: dict[str, Any] = {"mcp_rate_limit_per_minute": 3}
    if backend == "dynamodb":
        dynamodb = request.getfixturevalue("moto_dynamodb")
        create_threads_table(dynamodb, TABLE)
        overrides["threads_table"] = TABLE
        await clear_of_window_boundary()  # four calls in one fixed minute
    try:
        async with running(tmp_path, **overrides) as limited:
            allowed = [await limited.post(rpc("tools/list")) for _ in range(3)]
            refused = await limited.post(rpc("tools/list"))
            chat = await limited.http.post("/chat", json={"message": "install the tool"})
            other = httpx2.ASGITransport(
                app=limited.http._transport.app,  # type: ignore[attr-defined]
                client=("198.51.100.99", 40000),
            )
            async with httpx2.AsyncClient(transport=other, base_url=BASE) as neighbour:
                elsewhere = await neighbour.post(
                    MCP_URL, content=json.dumps(rpc("tools/list")), headers=rpc_headers()
                )
    finally:
        if backend == "dynamodb":
            dynamodb.delete_table(TableName=TABLE)

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "at most 3 a minute" in refused.json()["error"]["message"]
    assert chat.status_code == 200  # /chat has its own limits
    assert elsewhere.status_code == 200


# --- Unit-sized pieces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (f"{SITE_URL}/docs/install", "/docs/install"),
        (f"{SITE_URL}/docs/install/#requirements", "/docs/install/"),
        ("HTTPS://DOCS.EXAMPLE.ORG/handbook/fr/docs/x?tab=1", "/fr/docs/x"),
        ("http://docs.example.org/handbook/docs/a%20b", "/docs/a b"),
        ("https://docs.example.org:443/handbook/docs/install", "/docs/install"),
        ("http://docs.example.org:80/handbook/docs/install", "/docs/install"),
        ("/docs/install", "/docs/install"),
        (SITE_URL, "/"),
        ("https://docs.example.org/handbooks/docs/install", None),
        ("https://docs.example.org:8443/handbook/docs/install", None),
        ("https://docs.example.org.evil.com/handbook/docs/install", None),
        ("ftp://docs.example.org/handbook/docs/install", None),
        ("docs/install", None),
        ("https://[::1/handbook", None),
    ],
)
def test_page_path_accepts_only_this_sites_urls(tmp_path: Path, url: str, path: str | None) -> None:
    assert page_path(url, make_settings(tmp_path)) == path


def test_without_overlap_drops_the_repeated_lead_only() -> None:
    previous = "First sentence here. Second sentence is the repeated one."
    following = "Second sentence is the repeated one. Third sentence is new."
    assert without_overlap(previous, following) == "Third sentence is new."
    assert without_overlap("Nothing shared at all.", following) == following
    assert without_overlap("ends with one.", "one. And more") == "one. And more"  # too short


# --- Through the Lambda handler (Mangum, HTTP API v2 events) ------------------------------------


def http_api_event(
    method: str, path: str, body: bytes | None, headers: dict[str, str], source_ip: str
) -> dict[str, Any]:
    """A real-shaped API Gateway HTTP API (v2) event, from the sample event beside the code."""
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / "chat_http_api_v2.json").read_text())
    route = f"{method} {path}"
    event["routeKey"] = event["requestContext"]["routeKey"] = route
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["sourceIp"] = source_ip
    event["headers"] = {
        name: value
        for name, value in event["headers"].items()
        if name not in ("content-length", "origin", "referer", "accept")
    } | {name.lower(): value for name, value in headers.items()}
    event["headers"]["x-forwarded-for"] = source_ip
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
    else:
        event["body"] = body.decode()
        event["headers"]["content-length"] = str(len(body))
    return event


class LambdaContainer:
    """One Lambda execution environment: its own thread and event loop, the chat handler
    (`Mangum(create_app(...), lifespan="off")`, as functions/chat/app.py builds it) created at
    init, and every invocation on that thread, one at a time."""

    def __init__(self, settings: Settings) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda")
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = self._run(
            lambda: Mangum(create_app(settings=settings), lifespan="off")
        )
        self.invocations = 0

    def _run(self, work: Callable[[], Any]) -> Any:
        def on_thread() -> Any:
            try:
                asyncio.get_event_loop()
            except RuntimeError:
                asyncio.set_event_loop(asyncio.new_event_loop())
            return work()

        return self._thread.submit(on_thread).result()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        context = SimpleNamespace(aws_request_id=f"lambda-{self.invocations}")
        return dict(self._run(lambda: self.handler(event, context)))

    def close(self) -> None:
        def close_all() -> None:
            app = self.handler.app  # type: ignore[attr-defined]
            app.state.provider.close()
            asyncio.get_event_loop().close()

        self._run(close_all)
        self._thread.shutdown()


class ThroughLambda(httpx2.AsyncBaseTransport):
    """An httpx2 transport that turns each request into an HTTP API event for the handler."""

    def __init__(self, lam: LambdaContainer, source_ip: str = "198.51.100.23") -> None:
        self.lam = lam
        self.source_ip = source_ip

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        headers = {name.lower(): value for name, value in request.headers.items()}
        headers.pop("host", None)
        event = http_api_event(
            request.method, request.url.path, body or None, headers, self.source_ip
        )
        result = await asyncio.to_thread(self.lam.invoke, event)
        content = result.get("body") or ""
        raw = base64.b64decode(content) if result.get("isBase64Encoded") else content.encode()
        return httpx2.Response(
            result["statusCode"], headers=result.get("headers") or {}, content=raw
        )


@pytest.fixture
def lambda_settings(tmp_path: Path, moto_dynamodb: Any) -> Iterator[Settings]:
    """The deployed configuration: CORS at the gateway, THREADS_TABLE for the rate limits."""
    create_threads_table(moto_dynamodb, TABLE)
    settings = make_settings(
        tmp_path, cors_via_gateway=True, threads_table=TABLE, mcp_rate_limit_per_minute=8
    )
    ingest(settings, write_tree(tmp_path / "docs", PAGES)).close()
    try:
        yield settings
    finally:
        moto_dynamodb.delete_table(TableName=TABLE)


def test_raw_tools_list_and_search_docs_through_the_handler_of_a_cold_container(
    lambda_settings: Settings,
) -> None:
    lam = LambdaContainer(lambda_settings)  # nothing built yet: the first request builds it
    try:
        listed = lam.invoke(
            http_api_event(
                "POST",
                "/mcp",
                json.dumps(rpc("tools/list")).encode(),
                rpc_headers(),
                "198.51.100.23",
            )
        )
        searched = lam.invoke(
            http_api_event(
                "POST",
                "/mcp",
                json.dumps(
                    rpc("tools/call", {"name": "search_docs", "arguments": {"query": "sam build"}})
                ).encode(),
                rpc_headers(),
                "198.51.100.23",
            )
        )
    finally:
        lam.close()

    assert listed["statusCode"] == 200, listed
    assert listed["headers"]["content-type"] == "application/json"
    assert listed["headers"]["x-request-id"] == "d7cOrjH4FiAEMbQ="  # API Gateway's request id
    tools = json.loads(listed["body"])["result"]["tools"]
    assert [tool["name"] for tool in tools] == ["search_docs", "read_page", "ask_docs"]
    assert searched["statusCode"] == 200, searched
    result = json.loads(searched["body"])["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["results"][0]["url"] == f"{SITE_URL}/docs/deploy/aws#build"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_client_works_through_the_handler_and_its_limits_apply(
    lambda_settings: Settings, mode: str
) -> None:
    await clear_of_window_boundary()  # the 8-a-minute limit is reached inside one fixed minute
    lam = await asyncio.to_thread(LambdaContainer, lambda_settings)
    try:
        async with httpx2.AsyncClient(transport=ThroughLambda(lam), base_url=BASE) as http:
            client = Client(streamable_http_client(MCP_URL, http_client=http), mode=mode)
            async with client:
                tools = await client.list_tools()
                found = await client.call_tool("search_docs", {"query": "sam deploy stack"})
                page = await client.call_tool("read_page", {"url": f"{SITE_URL}/docs/install"})
                unknown = await client.call_tool("read_page", {"url": "https://other.org/x"})
            limited = [
                await http.post(MCP_URL, content=json.dumps(rpc("ping")), headers=rpc_headers())
                for _ in range(8)
            ]
            get = await http.get(MCP_URL)
        async with httpx2.AsyncClient(
            transport=ThroughLambda(lam, source_ip="192.0.2.50"), base_url=BASE
        ) as neighbour:
            elsewhere = await neighbour.post(
                MCP_URL, content=json.dumps(rpc("ping")), headers=rpc_headers()
            )
    finally:
        await asyncio.to_thread(lam.close)

    assert {tool.name for tool in tools.tools} == {"search_docs", "read_page", "ask_docs"}
    assert found.structured_content is not None
    assert found.structured_content["results"][0]["url"].startswith(f"{SITE_URL}/docs/deploy")
    assert page.structured_content is not None
    assert page.structured_content["title"] == "Installation"
    assert unknown.is_error
    statuses = [response.status_code for response in limited]
    assert 429 in statuses  # 8 a minute per sourceIp, DynamoDB counter
    refused = limited[statuses.index(429)]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert get.status_code == 405
    assert elsewhere.status_code == 200


def test_chat_still_answers_beside_mcp_through_the_handler(lambda_settings: Settings) -> None:
    lam = LambdaContainer(lambda_settings)
    try:
        chat = lam.invoke(
            http_api_event(
                "POST",
                "/chat",
                json.dumps({"message": "How do I deploy the stack with sam?"}).encode(),
                {"content-type": "application/json"},
                "198.51.100.23",
            )
        )
    finally:
        lam.close()
    assert chat["statusCode"] == 200
    assert json.loads(chat["body"])["sources"]
