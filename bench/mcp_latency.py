"""What the MCP endpoint adds to a search: `search_docs` via `POST /mcp` vs the retrieval itself.

This repository's docs/ are ingested into a temporary embedded Qdrant (BM25, no key), and each
labelled question of bench/questions.jsonl is asked, in turn, both ways:

- retrieval: `Retriever.retrieve(question)` on the container the app uses, the work `/chat` and
  `search_docs` both start with;
- MCP: one `tools/call` of `search_docs` as a coding assistant sends it (a JSON-RPC POST with the
  2025-11-25 headers, after the initialize handshake), through the whole FastAPI app in process
  (httpx2's ASGI transport): request id and body limit middleware, the `/mcp` protection (rate
  limit, body cap), a fresh stateless session manager, the SDK's JSON-RPC dispatch and argument
  validation, the tool's result models and the JSON response. With `--loopback` also over real
  HTTP to the app under uvicorn on 127.0.0.1.

The two are interleaved question by question, so both see the same machine load. Reported: p50
and p95 of each, the difference of the p95s, and the p50/p95 of the per-question difference.
The first MCP request of the app (the MCP server itself is built with the app) is timed
separately.

    .venv/bin/python bench/mcp_latency.py [--rounds 5] [--loopback]

Target: the endpoint adds <= 20 ms at p95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import uvicorn

from docsrag.api import create_app
from docsrag.config import Settings
from docsrag.container import Container

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "bench" / "questions.jsonl"
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def call(question: str, request_id: int) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": "search_docs", "arguments": {"query": question}},
        }
    ).encode()


async def handshake(http: httpx2.AsyncClient, url: str) -> float:
    """initialize + notifications/initialized, as an assistant connects; ms of the first POST."""
    started = time.perf_counter()
    init = await http.post(
        url,
        headers=HEADERS,
        content=json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            }
        ),
    )
    first_ms = (time.perf_counter() - started) * 1000
    init.raise_for_status()
    done = await http.post(
        url,
        headers=HEADERS,
        content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    assert done.status_code == 202, done.text
    return first_ms


async def measure(
    container: Container, http: httpx2.AsyncClient, url: str, questions: list[str], rounds: int
) -> tuple[list[float], list[float]]:
    retrieval_ms: list[float] = []
    mcp_ms: list[float] = []
    request_id = 1
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            found = await container.retriever.retrieve(question)
            retrieval_ms.append((time.perf_counter() - started) * 1000)

            request_id += 1
            started = time.perf_counter()
            response = await http.post(url, headers=HEADERS, content=call(question, request_id))
            body = response.json()
            mcp_ms.append((time.perf_counter() - started) * 1000)
            result = body["result"]
            assert response.status_code == 200 and not result["isError"], body
            urls = [section["url"] for section in result["structuredContent"]["results"]]
            expected = [container.settings.public_url(h.path, h.anchor) for h in found.hits]
            assert urls == expected[:5], (question, urls, expected)
    return retrieval_ms, mcp_ms


def report(label: str, retrieval_ms: list[float], mcp_ms: list[float]) -> None:
    differences = [m - r for r, m in zip(retrieval_ms, mcp_ms, strict=True)]
    print(f"\n{label}: {len(mcp_ms)} searches")
    print(f"  {'':<26}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for name, values in (
        ("retrieval itself", retrieval_ms),
        ("search_docs via /mcp", mcp_ms),
        ("per-search difference", differences),
    ):
        print(
            f"  {name:<26}{percentile(values, 0.5):>9.2f}{percentile(values, 0.95):>9.2f}"
            f"{statistics.fmean(values):>9.2f}"
        )
    added = percentile(mcp_ms, 0.95) - percentile(retrieval_ms, 0.95)
    verdict = "within" if added <= 20 else "OVER"
    print(f"  the endpoint adds {added:.2f} ms at p95 ({verdict} the 20 ms target)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(args: argparse.Namespace) -> None:
    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            qdrant_path=Path(tmp) / "qdrant",
            chatkit_sqlite_path=Path(tmp) / "chatkit.sqlite3",
            site_url="https://docsrag.example.org",
            site_title="docsrag",
            mcp_rate_limit_per_minute=0,  # the benchmark is one client asking fast
        )
        container = Container.build(settings)
        summary = container.ingestor().sync_folder(REPO / "docs")
        container.index.prepare_search()
        chunks = container.index.count_chunks()
        print(f"index: {summary.added} pages, {chunks} chunks (BM25, embedded store)")
        print(f"questions: {len(questions)} x {args.rounds} rounds")
        app = create_app(settings=settings, container=container)

        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as http:
            first_ms = await handshake(http, "http://bench/mcp")
            print(f"first MCP request of the app (initialize): {first_ms:.1f} ms")
            await measure(container, http, "http://bench/mcp", questions[:10], 1)  # warm-up
            retrieval_ms, mcp_ms = await measure(
                container, http, "http://bench/mcp", questions, args.rounds
            )
        report("in process (ASGI)", retrieval_ms, mcp_ms)

        if args.loopback:
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/mcp"
            try:
                async with httpx2.AsyncClient(timeout=30) as http:
                    await handshake(http, url)
                    await measure(container, http, url, questions[:10], 1)
                    retrieval_ms, mcp_ms = await measure(
                        container, http, url, questions, args.rounds
                    )
            finally:
                server.should_exit = True
                thread.join(timeout=10)
            report("loopback HTTP (uvicorn, same process)", retrieval_ms, mcp_ms)
        container.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loopback", action="store_true", help="also over HTTP on 127.0.0.1")
    asyncio.run(main(parser.parse_args()))
