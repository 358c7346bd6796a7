"""Issue 11, part 3: how long `/chat` and a ChatKit turn take against a model or an embeddings
endpoint that would keep a request running past API Gateway's 30 s.

In one process: the fake OpenRouter server (tests/fakes) on loopback, the app (embedded Qdrant
with this repository's docs/ ingested, SQLite thread store) called through httpx's ASGI transport.
Two cases, each for `POST /chat` and a ChatKit turn (`threads.create`, read to the end):

- trickle: the model sends one chunk (unstreamed: one byte) every 3 s for 42 s, so its 30 s read
  timeout never fires;
- retry-after: the embeddings endpoint answers 429 with `Retry-After: 25` (the SDK's retries
  honour it) and the model takes 20 s before its first byte.

Printed per case: wall time, the answer's mode, sources, and for ChatKit whether the turn is
stored. Target: <= 29 s with sources, with the default `REQUEST_TIME_BUDGET_SECONDS` (25).
`--baseline` also runs each case with the budget set out of the way (900 s), as before it existed.

    .venv/bin/python -m bench.time_budget [--baseline] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from docsrag.api import create_app
from docsrag.config import Settings
from docsrag.container import Container
from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
SIGNING_KEY = "bench-visitor-token-signing-key-0123456789"
QUESTION = "How do I configure the time budget of a chat request?"


def trickle(fake: FakeOpenAI) -> None:
    fake.trickle(3.0, chunks=14)  # 42 s


def retry_after(fake: FakeOpenAI) -> None:
    fake.fail_next(429, retry_after=25, endpoint="embeddings")
    fake.slow(20, endpoint="chat")


CASES: dict[str, Callable[[FakeOpenAI], None]] = {
    "trickle 3 s x 14": trickle,
    "429 Retry-After 25 + 20 s model": retry_after,
}


async def ask_chat(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post("/chat", json={"message": QUESTION})
    body = response.json()
    return {
        "status": response.status_code,
        "mode": body.get("mode"),
        "sources": len(body.get("sources", [])),
    }


async def ask_chatkit(http: httpx.AsyncClient) -> dict[str, Any]:
    token = (await http.post("/session")).json()["token"]
    headers = {"x-visitor-token": token, "content-type": "application/json"}
    request = {
        "type": "threads.create",
        "params": {
            "input": {
                "content": [{"type": "input_text", "text": QUESTION}],
                "attachments": [],
                "inference_options": {},
            }
        },
    }
    response = await http.post("/chatkit", content=json.dumps(request), headers=headers)
    events = [
        json.loads(block.removeprefix("data: "))
        for block in response.text.split("\n\n")
        if block.startswith("data: ")
    ]
    thread_id = events[0]["thread"]["id"]
    done = [
        event["item"]
        for event in events
        if event["type"] == "thread.item.done" and event["item"]["type"] == "assistant_message"
    ]
    listing = await http.post(
        "/chatkit",
        content=json.dumps({"type": "items.list", "params": {"thread_id": thread_id}}),
        headers=headers,
    )
    stored = [item for item in listing.json()["data"] if item["type"] == "assistant_message"]
    text = done[0]["content"][0]["text"] if done else ""
    return {
        "status": response.status_code,
        "answer": text[:70].replace("\n", " "),
        "sources": len(done[0]["content"][0]["annotations"]) if done else 0,
        "stored": bool(stored) and stored[0]["id"] == done[0]["id"],
    }


async def run_case(
    fake: FakeOpenAI, http: httpx.AsyncClient, setup: Callable[[FakeOpenAI], None], channel: str
) -> tuple[float, dict[str, Any]]:
    fake.reset()
    setup(fake)
    started = time.monotonic()
    result = await (ask_chat(http) if channel == "/chat" else ask_chatkit(http))
    return time.monotonic() - started, result


async def measure(fake: FakeOpenAI, root: Path, budget: float) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openrouter_api_key=fake.api_key,
        openrouter_base_url=fake.base_url,
        embedding_dimensions=256,
        qdrant_path=root / f"qdrant-{budget:g}",
        chatkit_sqlite_path=root / f"chatkit-{budget:g}.sqlite3",
        visitor_token_keys=SIGNING_KEY,
        request_time_budget_seconds=budget,
        chat_rate_limit_per_minute=0,
        visitor_rate_limit_per_minute=0,
    )
    container = Container.build(settings)
    container.ingestor().sync_folder(REPO / "docs")
    app = create_app(settings=settings, container=container)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench.test", timeout=120
        ) as http:
            for name, setup in CASES.items():
                for channel in ("/chat", "chatkit"):
                    seconds, result = await run_case(fake, http, setup, channel)
                    print(
                        f"budget {budget:>5g} s | {name:<32} | {channel:<7} | "
                        f"{seconds:5.1f} s | {result}"
                    )
    finally:
        app.state.provider.close()
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget", type=float, default=Settings.model_fields["request_time_budget_seconds"].default
    )
    parser.add_argument("--baseline", action="store_true", help="also run without a budget")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    budgets = [args.budget, 900.0] if args.baseline else [args.budget]
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory(prefix="docsrag-budget-") as tmp:
        for budget in budgets:
            asyncio.run(measure(fake, Path(tmp), budget))


if __name__ == "__main__":
    main()
