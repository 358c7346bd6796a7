"""Time to first token of a ChatKit answer: the streaming path (Lambda Web Adapter) vs Mangum.

Both paths serve the same app on the same index (this repository's docs/, embedded Qdrant) with
the same fake model (tests/fakes): every chat completion waits `--model-ttft` seconds before its
first byte, then streams one word every `--interval` seconds. Per question, from the moment the
request is sent:

- **streaming**: `chat/run.sh` started the way the adapter's bootstrap starts it (same command,
  `AWS_LWA_*` variables from template.yaml, readiness check on `AWS_LWA_READINESS_CHECK_PATH`),
  read over HTTP as it arrives: the first `assistant_message.content_part.text_delta` event, and
  the end of the stream. What the adapter and the Function URL add on AWS is not measured here.
- **buffered**: `chat.app.handler` (Mangum, as the HTTP API invokes it) with an HTTP API v2 event:
  the handler returns the whole event stream at once, so first token = end.

    .venv/bin/python -m bench.ttft [--questions 5] [--model-ttft 0.5] [--interval 0.03]

Target: streaming first token <= model first-token time + 150 ms (median).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
TEMPLATE = REPO / "template.yaml"
STREAM_FUNCTION = "ChatStreamFunction"
# The whole of the adapter layer's /opt/bootstrap (aws/aws-lambda-web-adapter, layer/bootstrap).
ADAPTER_BOOTSTRAP = 'exec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"'
SIGNING_KEY = "bench-visitor-token-signing-key-0123456789"
ORIGIN = "https://docs.example.org"
TEXT_DELTA = "assistant_message.content_part.text_delta"
QUESTIONS = [
    "How do I deploy the assistant to AWS with SAM?",
    "How are visitor tokens signed and rotated?",
    "Which Qdrant modes can docsrag use?",
    "How do I add the chat widget to a Docusaurus site?",
    "What happens when the model is rate limited?",
]


# --- the fake model, paced ------------------------------------------------------------------------


class PacedFakeOpenAI(FakeOpenAI):
    """The fake OpenRouter server, streaming at a set rate: `interval` seconds between content
    chunks (the first-token delay is `slow(seconds, endpoint="chat")`)."""

    def __init__(self, *, interval: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval
        self.first_words_sent: list[float] = []  # perf_counter() as each answer's first word left

    async def _stream_chat(self, payload: Any, text: str, stream_break: Any, send: Any) -> None:
        sent_content = False

        async def paced(message: dict[str, Any]) -> None:
            nonlocal sent_content
            body = message.get("body", b"")
            content = b'"content": "' in body and b'"content": ""' not in body
            if content and sent_content:
                await asyncio.sleep(self.interval)
            await send(message)
            if content and not sent_content:
                self.first_words_sent.append(time.perf_counter())
            sent_content = sent_content or content

        await super()._stream_chat(payload, text, stream_break, paced)


# --- the streaming function, started as the adapter starts it ------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as plain mappings."""


_TemplateLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: {suffix: getattr(loader, f"construct_{node.id}")(node)}
)


def stream_function_config() -> tuple[str, dict[str, str]]:
    """The streaming function's Handler and its literal environment variables in template.yaml
    (intrinsics, such as the secret ARNs, are left to the caller)."""
    template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_TemplateLoader)
    props = template["Resources"][STREAM_FUNCTION]["Properties"]
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    variables.update(props["Environment"]["Variables"])
    return props["Handler"], {k: v for k, v in variables.items() if isinstance(v, str)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(status: int) -> bool:
    """The adapter's default AWS_LWA_READINESS_CHECK_HEALTHY_STATUS: 100-499."""
    return 100 <= status < 500


@dataclass
class AdapterApp:
    """The function's web app, running as it runs on Lambda under the adapter."""

    process: subprocess.Popen[str]
    base_url: str
    env: dict[str, str]


@contextmanager
def adapter_app(app_env: dict[str, str], *, log: Path) -> Iterator[AdapterApp]:
    """Run `ADAPTER_BOOTSTRAP` with `_HANDLER` and the `AWS_LWA_*` variables from template.yaml
    (on a free port: `AWS_LWA_PORT`), `app_env` on top; wait for the adapter's readiness check.

    The code is functions/ (Lambda's /var/task); `python3` is this interpreter (Lambda's is
    /var/lang/bin/python3, with the layers in /opt/python)."""
    handler, variables = stream_function_config()
    port = free_port()
    bin_dir = Path(sys.executable).parent
    task_root = FUNCTIONS
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(log.parent),
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_NAME": "docsrag-chat-stream",
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
        **variables,
        "AWS_LWA_PORT": str(port),
        **app_env,
    }
    readiness = f"http://127.0.0.1:{port}{env.get('AWS_LWA_READINESS_CHECK_PATH', '/')}"
    with log.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            ["/bin/bash", "-c", ADAPTER_BOOTSTRAP],
            env=env,
            cwd=task_root,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if healthy(httpx.get(readiness, timeout=2).status_code):
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app never became ready:\n{log.read_text()[-3000:]}")
                time.sleep(0.01)  # the adapter polls every 10 ms
            yield AdapterApp(process=process, base_url=f"http://127.0.0.1:{port}", env=env)
        finally:
            process.send_signal(signal.SIGTERM)  # Lambda's shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- ChatKit over HTTP and through the Mangum handler --------------------------------------------


def chatkit_create(question: str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": question}]
    params = {"input": {"content": content, "attachments": [], "inference_options": {}}}
    return {"type": "threads.create", "params": params}


def sse_events(body: str) -> Iterator[dict[str, Any]]:
    for block in body.split("\n\n"):
        if block.startswith("data: "):
            yield json.loads(block[6:])


def is_text_delta(event: dict[str, Any]) -> bool:
    return bool(
        event.get("type") == "thread.item.updated" and event["update"]["type"] == TEXT_DELTA
    )


@dataclass
class Timing:
    first_token: float
    end: float
    answer: str
    model_first_word: float | None = None  # when the model sent its first word (same clock)


async def stream_turn(
    client: httpx.AsyncClient, token: str, question: str, fake: PacedFakeOpenAI | None = None
) -> Timing:
    """POST /chatkit, read as it arrives; times from the request to the first text delta and to
    the end of the stream (and to the model's first word, when `fake` is the model)."""
    started = time.perf_counter()
    first = None
    answer = ""
    buffer = ""
    headers = {"x-visitor-token": token, "origin": ORIGIN}
    async with client.stream(
        "POST", "/chatkit", json=chatkit_create(question), headers=headers
    ) as response:
        response.raise_for_status()
        async for chunk in response.aiter_text():
            buffer += chunk
            *blocks, buffer = buffer.split("\n\n")
            for event in sse_events("\n\n".join(blocks)):
                if is_text_delta(event):
                    first = first or time.perf_counter() - started
                    answer += event["update"]["delta"]
    end = time.perf_counter() - started
    if first is None:
        raise RuntimeError("the stream had no text delta")
    model_first = fake.first_words_sent[-1] - started if fake and fake.first_words_sent else None
    return Timing(first_token=first, end=end, answer=answer, model_first_word=model_first)


def http_api_event(path: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event, as events/chat_http_api_v2.json."""
    event: dict[str, Any] = json.loads(
        (REPO / "events" / "chat_http_api_v2.json").read_text(encoding="utf-8")
    )
    event["routeKey"] = f"POST {path}"
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["requestId"] = f"bench-{time.perf_counter_ns()}"
    event["headers"] = {**event["headers"], **headers, "content-length": str(len(body))}
    event["body"] = body
    event["isBase64Encoded"] = False
    return event


class _Context:
    function_name = "docsrag-chat"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:docsrag-chat"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def buffered_turn(handler: Any, token: str, question: str) -> Timing:
    started = time.perf_counter()
    event = http_api_event(
        "/chatkit",
        json.dumps(chatkit_create(question)),
        {"x-visitor-token": token, "content-type": "application/json", "origin": ORIGIN},
    )
    response = handler(event, _Context())
    end = time.perf_counter() - started
    if response["statusCode"] != 200:
        raise RuntimeError(f"HTTP {response['statusCode']}: {response['body'][:300]}")
    answer = "".join(e["update"]["delta"] for e in sse_events(response["body"]) if is_text_delta(e))
    return Timing(first_token=end, end=end, answer=answer)  # nothing reaches the client before


# --- main -----------------------------------------------------------------------------------------


def app_environment(fake: FakeOpenAI, workdir: Path) -> dict[str, str]:
    return {
        "OPENROUTER_BASE_URL": fake.base_url,
        "OPENROUTER_API_KEY": fake.api_key,
        "QDRANT_PATH": str(workdir / "qdrant"),
        "CHATKIT_SQLITE_PATH": str(workdir / "chatkit.sqlite3"),
        "VISITOR_TOKEN_KEYS": SIGNING_KEY,
        "CORS_ORIGINS": ORIGIN,
        "SITE_URL": ORIGIN,
        "EMBEDDING_DIMENSIONS": "256",
        "METRICS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }


def ingest(env: dict[str, str], workdir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "docsrag", "ingest", str(REPO / "docs")],
        env={**os.environ, **env},
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=600,
    )


def summary(name: str, timings: list[Timing], model_ttft: float) -> str:
    first = statistics.median(t.first_token for t in timings) * 1000
    end = statistics.median(t.end for t in timings) * 1000
    over = first - model_ttft * 1000
    return f"{name:<24} {first:8.0f} {over:+9.0f} {end:8.0f}"


def main() -> None:
    # Powertools warns on every flush without metrics (METRICS_ENABLED=false here).
    warnings.filterwarnings("ignore", "No application metrics to publish")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--model-ttft", type=float, default=0.5, help="model first-token time (s)")
    parser.add_argument("--interval", type=float, default=0.03, help="seconds between words")
    args = parser.parse_args()
    questions = (QUESTIONS * args.questions)[: args.questions]

    with (
        tempfile.TemporaryDirectory(prefix="docsrag-ttft-") as tmp,
        PacedFakeOpenAI(interval=args.interval) as fake,
    ):
        workdir = Path(tmp)
        env = app_environment(fake, workdir)
        ingest(env, workdir)
        fake.slow(args.model_ttft, endpoint="chat")

        async def streaming() -> list[Timing]:
            with adapter_app(env, log=workdir / "stream.log") as served:
                async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as client:
                    token = (await client.post("/session")).json()["token"]
                    await stream_turn(client, token, "warm-up: what is docsrag?")
                    return [await stream_turn(client, token, q, fake) for q in questions]

        streamed = asyncio.run(streaming())

        # The Mangum handler in this process, on the same index (the stream process has ended
        # and released the embedded store).
        os.environ.update(env)
        os.environ.update({"CORS_VIA_GATEWAY": "true", "AWS_LAMBDA_FUNCTION_NAME": "docsrag-chat"})
        sys.path.insert(0, str(FUNCTIONS))
        from chat.app import handler  # settings come from the environment above

        session = http_api_event("/session", "", {"origin": ORIGIN})
        token = json.loads(handler(session, _Context())["body"])["token"]
        buffered_turn(handler, token, "warm-up: what is docsrag?")
        buffered = [buffered_turn(handler, token, q) for q in questions]

    words = statistics.median(len(t.answer.split()) for t in streamed)
    first = statistics.median(t.first_token for t in streamed)
    verdict = "met" if first <= args.model_ttft + 0.15 else "MISSED"
    model_first = statistics.median(t.model_first_word or 0.0 for t in streamed)
    before = (model_first - args.model_ttft) * 1000
    after = statistics.median(t.first_token - (t.model_first_word or 0.0) for t in streamed) * 1000
    print(
        f"ttft: {len(questions)} questions; fake model: first token "
        f"{args.model_ttft * 1000:.0f} ms, then a word every {args.interval * 1000:.0f} ms "
        f"(answers ~{words:.0f} words)\n"
        f"{'path':<24} {'first ms':>8} {'vs model':>9} {'end ms':>8}   (medians)\n"
        + summary("streaming (uvicorn/LWA)", streamed, args.model_ttft)
        + "\n"
        + summary("buffered (Mangum)", buffered, args.model_ttft)
        + f"\nstreaming, split: request -> model called {before:.0f} ms (query embedding,"
        f" search, agent); model's first word -> client {after:.0f} ms"
        + f"\ntarget: streaming first token <= model + 150 ms: {verdict}"
    )


if __name__ == "__main__":
    main()
