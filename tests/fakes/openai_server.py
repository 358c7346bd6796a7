"""A real HTTP server on loopback that speaks enough of the OpenAI wire format to stand in for
OpenRouter: chat completions (plain and SSE streaming), embeddings and a model list.

Tests drive it from their own thread: `fail_next`, `slow`, `break_stream_after`, `set_reply`,
`trickle`.
Everything it receives is kept in `requests`, so a test can check what reached the wire.

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

Endpoint = Literal["chat", "embeddings"]
ReplyFunction = Callable[[dict[str, Any]], str]

DEFAULT_DIMENSIONS = 1536
_WORD = re.compile(r"\w+", re.UNICODE)
_SOURCE_HEADER = re.compile(r"^\s*\[(\d+)\]\s+(.+?)\s*$", re.MULTILINE)
_METADATA_LINE = re.compile(r"^\s*[\w -]{1,20}:\s*\S+\s*$")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_credits",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (headers lower-cased)."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: float | None
    body: Any
    endpoint: Endpoint | None


@dataclass
class _StreamBreak:
    after_chunks: int
    mode: Literal["error", "drop"]
    remaining: int


@dataclass
class _Trickle:
    interval: float
    chunks: int
    remaining: int | None


@dataclass
class _State:
    failures: list[_Failure] = field(default_factory=list)
    slow_seconds: float = 0.0
    slow_remaining: int | None = None
    slow_endpoint: Endpoint | None = None
    stream_breaks: list[_StreamBreak] = field(default_factory=list)
    reply: ReplyFunction | None = None
    trickle: _Trickle | None = None


def fake_embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """Deterministic unit vector whose cosine similarity with another follows word overlap.

    Each lower-cased word is hashed to a few signed positions; the word vectors are summed and
    L2-normalised. Texts sharing many words point in similar directions.
    """
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=16).digest()
        for offset in range(0, 16, 4):
            (value,) = struct.unpack_from("<I", digest, offset)
            sign = 1.0 if value & 1 else -1.0
            vector[(value >> 1) % dimensions] += sign
    norm = math.sqrt(sum(component * component for component in vector))
    if norm == 0:
        vector[0] = 1.0
        return vector
    return [component / norm for component in vector]


def grounded_reply(request_json: Mapping[str, Any]) -> str:
    """The default chat reply: quote the first numbered source of the system prompt, cite [1].

    Sources are found generically as lines like `[1] Title > Heading`; the first line of prose
    after the header (not a `Key: value` metadata line) is quoted.
    """
    system_text = "\n".join(
        _message_text(message)
        for message in request_json.get("messages", [])
        if isinstance(message, Mapping) and message.get("role") in {"system", "developer"}
    )
    headers = list(_SOURCE_HEADER.finditer(system_text))
    if not headers:
        return "I could not find this in the documentation."
    first = headers[0]
    end = headers[1].start() if len(headers) > 1 else len(system_text)
    body_lines = system_text[first.end() : end].splitlines()
    snippet = next(
        (
            line.strip()
            for line in body_lines
            if len(_WORD.findall(line)) >= 3 and not _METADATA_LINE.match(line)
        ),
        "",
    )
    words = snippet.split()
    if len(words) > 30:
        snippet = " ".join(words[:30]) + " …"
    title = first.group(2)
    if snippet:
        return f'According to "{title}": {snippet} [{first.group(1)}]'
    return f'See "{title}" [{first.group(1)}].'


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def _count_words(text: str) -> int:
    return len(_WORD.findall(text))


class FakeOpenAI:
    """OpenAI-compatible server on 127.0.0.1 with a random port, run by uvicorn in a thread."""

    def __init__(self, *, api_key: str = "sk-fake-test-key") -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._state = _State()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._thread is not None:
            return self
        self._stopping.clear()
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose `proto` says
        # TCP, and without it every streamed response stalls ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None
        self._socket = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- controls (thread-safe, called from the test thread) -----------------------------------

    def reset(self) -> None:
        """Forget requests, pending failures, slowness and the reply function."""
        with self._lock:
            self.requests.clear()
            self._state = _State()

    def set_reply(self, reply: ReplyFunction | str | None) -> None:
        """Answer chat requests with `reply(request_json)` (or a fixed text); None restores the
        default grounded reply."""
        function: ReplyFunction | None
        if isinstance(reply, str):
            text = reply

            def function(_request: dict[str, Any]) -> str:
                return text

        else:
            function = reply
        with self._lock:
            self._state.reply = function

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        body: Any = None,
        endpoint: Endpoint | None = None,
    ) -> None:
        """Answer the next `count` requests (to `endpoint`, or any) with an error `status`.

        `retry_after` (seconds, may be fractional) is sent as the `Retry-After` header.
        `body` replaces the default OpenRouter-style `{"error": {...}}` JSON body.
        """
        with self._lock:
            self._state.failures.append(_Failure(status, count, retry_after, body, endpoint))

    def slow(
        self, seconds: float, *, count: int | None = None, endpoint: Endpoint | None = None
    ) -> None:
        """Delay responses by `seconds` before any byte is sent (`count` requests, or all until
        `slow(0)`); only requests to `endpoint` when given (e.g. a fixed model latency with
        instant embeddings: `slow(1.0, endpoint="chat")`)."""
        with self._lock:
            self._state.slow_seconds = seconds
            self._state.slow_remaining = count
            self._state.slow_endpoint = endpoint

    def break_stream_after(
        self, n_chunks: int, *, mode: Literal["error", "drop"] = "error", count: int = 1
    ) -> None:
        """Break the next `count` streamed chat responses after `n_chunks` content chunks: either
        an OpenRouter-style error chunk (`mode="error"`) or a dropped connection (`"drop"`)."""
        with self._lock:
            self._state.stream_breaks.append(_StreamBreak(n_chunks, mode, count))

    def trickle(self, interval: float, *, chunks: int, count: int | None = None) -> None:
        """Answer the next `count` chat requests (or all until `trickle(0, chunks=0)`) slowly, so
        that no read timeout ever fires: a stream sends the reply in `chunks` content chunks,
        one every `interval` seconds; a plain response sends one space (JSON whitespace) every
        `interval` seconds, `chunks` times, then the body. `interval * chunks` seconds in all."""
        with self._lock:
            self._state.trickle = _Trickle(interval, chunks, count) if interval > 0 else None

    # --- request log -------------------------------------------------------------------------

    def requests_to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        path = _ENDPOINT_PATHS[endpoint]
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def wait_for_request(
        self, endpoint: Endpoint, *, count: int = 1, timeout: float = 10.0
    ) -> bool:
        """Block until `count` requests reached `endpoint` (they may still be delayed by `slow`);
        False on timeout. From async code: `await asyncio.to_thread(fake.wait_for_request, ...)`."""
        path = _ENDPOINT_PATHS[endpoint]
        with self._arrived:
            return self._arrived.wait_for(
                lambda: sum(request.path == path for request in self.requests) >= count,
                timeout=timeout,
            )

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to("chat")

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return self.requests_to("embeddings")

    @property
    def chat_calls(self) -> int:
        return len(self.chat_requests)

    @property
    def embedding_calls(self) -> int:
        return len(self.embedding_requests)

    # --- the ASGI application ----------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body_bytes = await request.body()
        try:
            payload: Any = json.loads(body_bytes) if body_bytes else None
        except ValueError:
            payload = None
        path = request.url.path
        recorded = RecordedRequest(
            method=request.method,
            path=path,
            json=payload,
            headers={key.lower(): value for key, value in request.headers.items()},
        )
        endpoint = _PATH_ENDPOINTS.get(path)
        with self._lock:
            self.requests.append(recorded)
            self._arrived.notify_all()
            failure = self._take_failure(endpoint) if endpoint else None
            delay = self._take_delay(endpoint)
            reply = self._state.reply

        if delay and await self._wait(delay, request):
            return  # the client gave up (its timeout) or the server is stopping

        if request.method == "GET" and path == "/v1/models":
            await self._models()(scope, receive, send)
            return
        if endpoint is None or request.method != "POST":
            await _error_response(404, f"no route for {request.method} {path}")(
                scope, receive, send
            )
            return
        if failure is not None:
            await self._failure_response(failure)(scope, receive, send)
            return
        if not isinstance(payload, dict):
            await _error_response(400, "the body must be a JSON object")(scope, receive, send)
            return
        if endpoint == "embeddings":
            await self._embeddings(payload)(scope, receive, send)
            return
        text = (reply or grounded_reply)(payload)
        with self._lock:
            trickle = self._take_trickle()
        if trickle is not None:
            await self._trickle_chat(payload, text, trickle, request, send)
            return
        if payload.get("stream"):
            with self._lock:
                stream_break = self._take_stream_break()
            await self._stream_chat(payload, text, stream_break, send)
            return
        await self._chat(payload, text)(scope, receive, send)

    def _take_failure(self, endpoint: Endpoint) -> _Failure | None:
        for failure in self._state.failures:
            if failure.endpoint in (None, endpoint):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._state.failures.remove(failure)
                return failure
        return None

    def _take_delay(self, endpoint: Endpoint | None) -> float:
        state = self._state
        if state.slow_seconds <= 0:
            return 0.0
        if state.slow_endpoint is not None and endpoint != state.slow_endpoint:
            return 0.0
        delay = state.slow_seconds
        if state.slow_remaining is not None:
            state.slow_remaining -= 1
            if state.slow_remaining <= 0:
                state.slow_seconds, state.slow_remaining = 0.0, None
        return delay

    def _take_trickle(self) -> _Trickle | None:
        trickle = self._state.trickle
        if trickle is None:
            return None
        if trickle.remaining is not None:
            trickle.remaining -= 1
            if trickle.remaining <= 0:
                self._state.trickle = None
        return trickle

    def _take_stream_break(self) -> _StreamBreak | None:
        if not self._state.stream_breaks:
            return None
        stream_break = self._state.stream_breaks[0]
        stream_break.remaining -= 1
        if stream_break.remaining <= 0:
            self._state.stream_breaks.pop(0)
        return stream_break

    async def _wait(self, seconds: float, request: Request) -> bool:
        """Sleep `seconds`; True when the client disconnected or the server stops meanwhile."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stopping.is_set() or await request.is_disconnected():
                return True
            await asyncio.sleep(min(0.02, remaining))
        return False

    def _failure_response(self, failure: _Failure) -> Response:
        headers = {}
        if failure.retry_after is not None:
            headers["retry-after"] = f"{failure.retry_after:g}"
        body = failure.body
        if body is None:
            body = _error_body(failure.status, f"fake upstream error {failure.status}")
        return JSONResponse(body, status_code=failure.status, headers=headers)

    def _models(self) -> Response:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
            for model in ("openai/gpt-oss-20b:free", "openai/text-embedding-3-small")
        ]
        return JSONResponse({"object": "list", "data": data})

    def _embeddings(self, payload: dict[str, Any]) -> Response:
        raw_input = payload.get("input")
        texts = [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error_response(400, "input must be a non-empty string or list of strings")
        dimensions = payload.get("dimensions") or DEFAULT_DIMENSIONS
        if not isinstance(dimensions, int) or dimensions < 1:
            return _error_response(400, "dimensions must be a positive integer")
        base64_format = payload.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dimensions)
            embedding: list[float] | str = vector
            if base64_format:
                embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_count_words(text) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": payload.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def _chat_usage(self, payload: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(
            _count_words(_message_text(message))
            for message in payload.get("messages", [])
            if isinstance(message, Mapping)
        )
        completion = _count_words(text)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chat(self, payload: dict[str, Any], text: str) -> Response:
        return JSONResponse(
            {
                "id": f"chatcmpl-fake-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": payload.get("model", "fake-model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": self._chat_usage(payload, text),
            }
        )

    async def _stream_chat(
        self,
        payload: dict[str, Any],
        text: str,
        stream_break: _StreamBreak | None,
        send: Send,
    ) -> None:
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        created = int(time.time())
        model = payload.get("model", "fake-model")

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        def delta(content: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": content, "finish_reason": finish_reason}])

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await body(b": fake-openai processing\n\n")
        await body(delta({"role": "assistant", "content": ""}))
        pieces = re.findall(r"\s*\S+\s*", text) if text else []
        for number, piece in enumerate(pieces):
            if stream_break is not None and number >= stream_break.after_chunks:
                if stream_break.mode == "drop":
                    return  # returning mid-body makes uvicorn close the connection
                choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
                error = {"code": 502, "message": "fake upstream stream error"}
                await body(chunk([choice], error=error))
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await body(delta({"content": piece}))
            await asyncio.sleep(0)
        await body(delta({}, "stop"))
        stream_options = payload.get("stream_options") or {}
        if isinstance(stream_options, Mapping) and stream_options.get("include_usage"):
            await body(chunk([], usage=self._chat_usage(payload, text)))
        await body(b"data: [DONE]\n\n")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _trickle_chat(
        self,
        payload: dict[str, Any],
        text: str,
        trickle: _Trickle,
        request: Request,
        send: Send,
    ) -> None:
        """A chat response that arrives a piece every `trickle.interval` seconds (see
        `trickle`). Stops when the client goes away or the server stops."""
        streaming = bool(payload.get("stream"))
        content_type = b"text/event-stream" if streaming else b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )

        async def body(data: bytes, *, more: bool = True) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        words = re.findall(r"\s*\S+\s*", text)
        per_chunk = max(1, math.ceil(len(words) / max(1, trickle.chunks)))
        completion_id = f"chatcmpl-fake-{next(self._ids)}"
        model = payload.get("model", "fake-model")

        def sse(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        if streaming:
            await body(sse({"role": "assistant", "content": ""}))
        for number in range(trickle.chunks):
            if await self._wait(trickle.interval, request):
                return
            if streaming:
                piece = "".join(words[number * per_chunk : (number + 1) * per_chunk])
                await body(sse({"content": piece}))
            else:
                await body(b" ")
        if streaming:
            await body(sse({}, "stop"))
            await body(b"data: [DONE]\n\n", more=False)
            return
        response = self._chat(payload, text)
        await body(response.body, more=False)


_ENDPOINT_PATHS: dict[Endpoint, str] = {
    "chat": "/v1/chat/completions",
    "embeddings": "/v1/embeddings",
}
_PATH_ENDPOINTS: dict[str, Endpoint] = {path: name for name, path in _ENDPOINT_PATHS.items()}


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "api_error"),
            "code": status,
        }
    }


def _error_response(status: int, message: str) -> Response:
    return JSONResponse(_error_body(status, message), status_code=status)
