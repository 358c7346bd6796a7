"""Load on `POST /chatkit`: concurrent visitors each holding a multi-turn conversation.

Three processes on loopback: the app under uvicorn (SQLite thread store, embedded Qdrant with this
repository's docs/ ingested, like `docsrag serve`); the fake OpenRouter server (tests/fakes) with a
fixed model latency, where every chat completion waits `--llm-latency` seconds before its first
byte and embeddings answer at once; and this process, the visitors. Each visitor is a browser tab:
its own `httpx.AsyncClient`, a token from `/session`, then its questions one after the other
(`threads.create`, then `threads.add_user_message`), each streamed answer read to the end.

Reported per turn: end-to-end latency (request sent -> last byte of the stream) and the overhead
above the model latency (end-to-end minus `--llm-latency`): retrieval, the thread store, the agent,
ChatKit's event stream and HTTP; the CPU each process used. Errors are non-200 answers, error
events and turns whose answer is not the model's (a retrieval-only fallback).

    .venv/bin/python -m bench.chatkit_load [--visitors 100] [--turns 3] [--llm-latency 1.0]
        [--ramp SECONDS] [--profile PATH]

Target: p95 overhead <= 150 ms with zero errors at 100 visitors x 3 turns. All three processes
share this machine's CPUs. The visitors start together and the model latency is fixed, so their
turns arrive in waves: the app (one process, one event loop) works through a wave's turns one
after another, about 20-25 ms of CPU each, most of it in the openai SDK parsing streamed chunks,
the Agents SDK and the HTTP stack. `--ramp` spreads the visitors' starts; `--profile PATH` runs the
app under cProfile and writes the stats to PATH on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from docsrag.answering import NOTICES

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "bench" / "questions.jsonl"
SIGNING_KEY = "bench-visitor-token-signing-key-0123456789"
SERVE_COMMAND = [sys.executable, "-m", "bench.chatkit_load"]
FALLBACK_NOTICES = tuple(NOTICES.values())


# --- the app process ------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """Build the app on a fresh index and SQLite store and serve it (runs in the subprocess)."""
    import logging

    import uvicorn

    from docsrag.api import create_app
    from docsrag.config import Settings
    from docsrag.container import Container

    logging.basicConfig(level=logging.WARNING)
    work = Path(args.workdir)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        openrouter_api_key="sk-fake-test-key",
        openrouter_base_url=args.base_url,
        llm_max_retries=0,
        llm_timeout_seconds=30,
        embedding_dimensions=256,
        qdrant_path=work / "qdrant",
        chatkit_sqlite_path=work / "chatkit.sqlite3",
        visitor_token_keys=SIGNING_KEY,
        visitor_rate_limit_per_minute=args.rate_limit,
        session_rate_limit_per_minute=0,  # every simulated visitor comes from 127.0.0.1
        log_level="WARNING",
    )
    container = Container.build(settings)
    container.ingestor().sync_folder(REPO / "docs")
    app = create_app(settings=settings, container=container)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    # After the warm-up turn (the parent sends SIGUSR1) everything alive is long-lived: the
    # container, imported modules, pydantic schemas built on first use. Freezing it keeps full
    # collections, which would otherwise walk all of it, from stalling the event loop under load.
    signal.signal(signal.SIGUSR1, lambda *_: (gc.collect(), gc.freeze()))
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the SIGINT that stopped it
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)


# --- the load -------------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    by_turn: dict[int, list[float]] = field(default_factory=dict)
    first_byte: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the app did not become ready")


def user_input(text: str) -> dict[str, object]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


async def turn(
    client: httpx.AsyncClient,
    token: str,
    payload: dict[str, object],
    results: Results,
    number: int,
) -> str | None:
    """One question; returns the thread id. Records latency, or the error."""
    started = time.perf_counter()
    thread_id = None
    answered = False
    async with client.stream(
        "POST", "/chatkit", json=payload, headers={"x-visitor-token": token}
    ) as response:
        results.first_byte.append(time.perf_counter() - started)
        body = await response.aread()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        results.errors.append(f"HTTP {response.status_code}: {body[:200]!r}")
        return None
    for block in body.decode().split("\n\n"):
        if not block.startswith("data: "):
            continue
        event = json.loads(block[6:])
        if event["type"] == "thread.created":
            thread_id = event["thread"]["id"]
        elif event["type"] == "error":
            results.errors.append(f"error event: {event}")
            return thread_id
        elif event["type"] == "thread.item.done" and event["item"]["type"] == "assistant_message":
            text = event["item"]["content"][0]["text"]
            if text.startswith(FALLBACK_NOTICES):
                results.errors.append(f"fallback answer: {text[:80]!r}")
                return thread_id
            answered = True
    if not answered:
        results.errors.append("no assistant message in the stream")
        return thread_id
    results.latencies.append(elapsed)
    results.by_turn.setdefault(number, []).append(elapsed)
    return thread_id


async def visitor(
    base_url: str,
    questions: list[str],
    results: Results,
    start_delay: float,
) -> None:
    """One visitor: its own client and connection, as a browser tab has."""
    await asyncio.sleep(start_delay)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            session = await client.post("/session")
            token = session.json()["token"]
            thread_id = await turn(
                client,
                token,
                {"type": "threads.create", "params": {"input": user_input(questions[0])}},
                results,
                1,
            )
            for number, question in enumerate(questions[1:], start=2):
                if thread_id is None:
                    return
                payload = {
                    "type": "threads.add_user_message",
                    "params": {"thread_id": thread_id, "input": user_input(question)},
                }
                await turn(client, token, payload, results, number)
    except httpx.HTTPError as exc:
        results.errors.append(f"{type(exc).__name__}: {exc}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def run_load(args: argparse.Namespace, base_url: str, questions: list[str]) -> Results:
    rng = random.Random(7)
    results = Results()
    tasks = [
        visitor(
            base_url,
            rng.sample(questions, args.turns),
            results,
            rng.uniform(0, args.ramp) if args.ramp else 0.0,
        )
        for _ in range(args.visitors)
    ]
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    results_wall = time.perf_counter() - started
    print(f"wall time: {results_wall:.1f} s for {args.visitors} visitors x {args.turns} turns")
    return results


def fake_model(args: argparse.Namespace) -> None:
    """Run the fake OpenRouter server until stdin closes (runs in its own subprocess)."""
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as fake:
        fake.slow(args.llm_latency, endpoint="chat")
        print(fake.base_url, flush=True)
        sys.stdin.read()
        print(fake.chat_calls, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--llm-latency", type=float, default=1.0)
    parser.add_argument("--ramp", type=float, default=0.0, help="spread visitor starts over N s")
    parser.add_argument("--rate-limit", type=int, default=10)
    parser.add_argument("--profile", help="write the app's cProfile stats here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    if args.fake:
        fake_model(args)
        return

    questions = [
        json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    fake = subprocess.Popen(
        [*SERVE_COMMAND, "--fake", "--llm-latency", str(args.llm_latency)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdin is not None and fake.stdout is not None
    fake_url = fake.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        command = [
            *SERVE_COMMAND,
            "--serve",
            "--port",
            str(port),
            "--base-url",
            fake_url,
            "--workdir",
            workdir,
            "--rate-limit",
            str(args.rate_limit),
        ]
        if args.profile:
            command += ["--profile", str(Path(args.profile).resolve())]
        app = subprocess.Popen(command, cwd=REPO, env=env)
        base_url = f"http://127.0.0.1:{port}"
        try:

            async def go() -> tuple[Results, list[float | None], float]:
                async with httpx.AsyncClient(base_url=base_url) as probe:
                    await wait_ready(probe, app)
                    # One warm-up turn: first-use costs (store, agent, connections) are not load.
                    warm = Results()
                    await visitor(base_url, questions[:1], warm, 0.0)
                    if warm.errors:
                        raise SystemExit(f"warm-up failed: {warm.errors}")
                app.send_signal(signal.SIGUSR1)  # freeze the warmed-up heap (see `serve`)
                await asyncio.sleep(0.5)
                cpu = [cpu_seconds(app.pid), cpu_seconds(fake.pid)]
                client_cpu = time.process_time()
                return await run_load(args, base_url, questions), cpu, client_cpu

            results, cpu_before, client_cpu_before = asyncio.run(go())
            cpu_after = [cpu_seconds(app.pid), cpu_seconds(fake.pid)]
            client_cpu = time.process_time() - client_cpu_before
        finally:
            app.send_signal(signal.SIGINT)
            app.wait(timeout=30)
            fake.stdin.close()
            chat_calls = fake.stdout.readline().strip()
            fake.wait(timeout=30)

    turns = len(results.latencies)
    print(f"turns answered: {turns} of {args.visitors * args.turns}; model calls: {chat_calls}")
    if results.latencies:
        overhead = [(latency - args.llm_latency) * 1000 for latency in results.latencies]
        print(
            f"end-to-end  p50 {percentile(results.latencies, 50) * 1000:7.0f} ms   "
            f"p95 {percentile(results.latencies, 95) * 1000:7.0f} ms   "
            f"max {max(results.latencies) * 1000:7.0f} ms"
        )
        print(
            f"overhead    p50 {percentile(overhead, 50):7.0f} ms   "
            f"p95 {percentile(overhead, 95):7.0f} ms   "
            f"max {max(overhead):7.0f} ms   mean {statistics.fmean(overhead):.0f} ms"
        )
        for number, latencies in sorted(results.by_turn.items()):
            print(
                f"  turn {number}: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
                f"p95 {percentile(latencies, 95) * 1000:.0f} ms"
            )
        print(
            f"  response headers after: p50 {percentile(results.first_byte, 50) * 1000:.0f} ms,"
            f" p95 {percentile(results.first_byte, 95) * 1000:.0f} ms"
        )
    app_before, fake_before = cpu_before
    app_after, fake_after = cpu_after
    if turns and None not in (app_before, fake_before, app_after, fake_after):
        assert app_before is not None and app_after is not None
        assert fake_before is not None and fake_after is not None
        app_cpu, fake_cpu = app_after - app_before, fake_after - fake_before
        print(
            f"CPU: app {app_cpu:.1f} s ({app_cpu / turns * 1000:.1f} ms per turn), fake model "
            f"{fake_cpu:.1f} s, client {client_cpu:.1f} s; {os.cpu_count()} CPUs"
        )
    print(f"errors: {len(results.errors)}")
    for error in results.errors[:10]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
