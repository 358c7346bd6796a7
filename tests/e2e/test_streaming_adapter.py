"""The streaming chat function, started the way the Lambda Web Adapter starts it.

The adapter's wrapper (`/opt/bootstrap`) runs `exec "${LAMBDA_TASK_ROOT}/${_HANDLER}"`, the adapter
polls `AWS_LWA_READINESS_CHECK_PATH` on `AWS_LWA_PORT`, then forwards each request to that port
and streams the response (`AWS_LWA_INVOKE_MODE=response_stream`). Here the same command runs with
the template's `Handler` and `AWS_LWA_*` variables (bench/ttft.py `adapter_app`), and this test
plays the adapter and the browser over loopback. The model is the fake OpenRouter server, streaming
one word every `INTERVAL` seconds. Not run here: the adapter binary itself, Lambda and the
Function URL (no AWS, no Docker); infra/DEPLOY.md says what that leaves to a deployed stack.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.ttft import (
    ORIGIN,
    TEXT_DELTA,
    AdapterApp,
    PacedFakeOpenAI,
    adapter_app,
    app_environment,
    chatkit_create,
    ingest,
    is_text_delta,
    sse_events,
    stream_function_config,
)
from tests.conftest import SAMPLE_DOCS

pytestmark = pytest.mark.skipif(not SAMPLE_DOCS.is_dir(), reason="sample docs missing")

MODEL_FIRST_TOKEN = 0.3  # seconds before the model's first byte
INTERVAL = 0.05  # seconds between the model's words
REPLY = " ".join(f"word{n}" for n in range(40))  # 40 words: ~2 s of writing after the first
QUESTION = "How do I deploy the assistant to AWS with SAM?"


@pytest.fixture(scope="module")
def fake() -> Iterator[PacedFakeOpenAI]:
    with PacedFakeOpenAI(interval=INTERVAL) as server:
        yield server


@pytest.fixture(scope="module")
def served(fake: PacedFakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdapterApp]:
    workdir = tmp_path_factory.mktemp("stream")
    env = app_environment(fake, workdir) | {"LOG_LEVEL": "INFO"}
    ingest(env, workdir)
    with adapter_app(env, log=workdir / "function.log") as app:
        # One answer first, as a SnapStart snapshot or an earlier visitor would have done: the
        # first answer of a process also imports the Agents SDK and builds the clients (seconds).
        with httpx.Client(base_url=app.base_url, timeout=60) as client:
            token = session_token(client)
            warm = client.post(
                "/chatkit",
                json=chatkit_create("What is docsrag?"),
                headers={"x-visitor-token": token},
            )
            assert warm.status_code == 200, warm.text
        yield app


@pytest.fixture
def model(fake: PacedFakeOpenAI) -> PacedFakeOpenAI:
    fake.reset()
    fake.set_reply(REPLY)
    fake.slow(MODEL_FIRST_TOKEN, endpoint="chat")
    return fake


def function_log(served: AdapterApp) -> str:
    return Path(served.env["HOME"], "function.log").read_text(encoding="utf-8", errors="replace")


def session_token(client: httpx.Client) -> str:
    response = client.post("/session", headers={"origin": ORIGIN})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def test_the_template_starts_the_app_the_way_this_test_does() -> None:
    handler, variables = stream_function_config()
    assert handler == "chat/run.sh"
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/_lwa/ready"
    assert variables["AWS_LWA_PORT"].isdigit()


def test_answer_events_reach_the_client_while_the_model_is_still_writing(
    served: AdapterApp, model: PacedFakeOpenAI
) -> None:
    # GIVEN a visitor with a token, and a model that writes one word every 50 ms
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        token = session_token(client)
        headers = {"x-visitor-token": token, "origin": ORIGIN}
        # WHEN the visitor asks, reading the answer as it arrives
        arrivals: list[float] = []
        text = ""
        started = time.perf_counter()
        with client.stream(
            "POST", "/chatkit", json=chatkit_create(QUESTION), headers=headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            buffer = ""
            for chunk in response.iter_text():
                buffer += chunk
                *blocks, buffer = buffer.split("\n\n")
                for event in sse_events("\n\n".join(blocks)):
                    if is_text_delta(event):
                        arrivals.append(time.perf_counter() - started)
                        text += event["update"]["delta"]
    # THEN the whole answer came, word by word
    assert text.split() == REPLY.split()
    assert len(arrivals) >= 20
    # AND the first words arrived as soon as the model wrote them, long before the last: the
    # model needed ~2 s after its first word to write the rest
    writing = (len(REPLY.split()) - 1) * INTERVAL
    assert arrivals[0] < MODEL_FIRST_TOKEN + 1.0
    assert arrivals[-1] - arrivals[0] > 0.75 * writing
    assert sum(1 for t in arrivals if t < arrivals[-1] - writing / 2) >= 10


def test_a_visitor_who_leaves_mid_answer_is_not_logged_as_a_failure(
    served: AdapterApp, model: PacedFakeOpenAI
) -> None:
    # GIVEN a visitor reading an answer that takes ~2 s to write
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        token = session_token(client)
        headers = {"x-visitor-token": token, "origin": ORIGIN}
        log_before = len(function_log(served))
        # WHEN the visitor closes the tab after the first words
        with client.stream(
            "POST", "/chatkit", json=chatkit_create(QUESTION), headers=headers
        ) as response:
            received = ""
            for chunk in response.iter_text():
                received += chunk
                if TEXT_DELTA in received:
                    break
        thread_id = next(
            e["thread"]["id"] for e in sse_events(received) if e["type"] == "thread.created"
        )
        # THEN the thread keeps the part of the answer written before they left
        deadline = time.monotonic() + 30
        while True:
            items = client.post(
                "/chatkit",
                json={"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}},
                headers=headers,
            )
            assert items.status_code == 200, items.text
            answers = [i for i in items.json()["data"] if i["type"] == "assistant_message"]
            if answers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        (kept,) = [a["content"][0]["text"].split() for a in answers]
        assert kept and kept == REPLY.split()[: len(kept)]
        # AND the function goes on serving the next visitor
        assert client.get("/health").status_code == 200
    # AND nothing was logged as an error: the visitor left, nothing failed
    log = function_log(served)[log_before:]
    assert "Traceback" not in log, log[-3000:]
    assert "Exception in ASGI application" not in log
    levels = [json.loads(line).get("level") for line in log.splitlines() if line.startswith("{")]
    assert levels and not {"ERROR", "CRITICAL"} & set(levels), log[-3000:]


def test_only_the_widget_routes_are_served_and_cors_is_left_to_the_function_url(
    served: AdapterApp,
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        # The widget's routes, from an allowed origin: no CORS header from the app (the Function
        # URL adds the one Access-Control-Allow-Origin a browser accepts)
        health = client.get("/health", headers={"origin": ORIGIN})
        session = client.post("/session", headers={"origin": ORIGIN})
        for response in (health, session):
            assert response.status_code == 200, response.text
            assert not [h for h in response.headers if h.startswith("access-control-")]
        # Everything else stays behind the HTTP API and its throttling
        for method, path in (("POST", "/chat"), ("POST", "/mcp"), ("GET", "/llms.txt")):
            refused = client.request(method, path, json={"message": "hi"})
            assert refused.status_code == 404, path
            error = refused.json()["error"]
            assert error["code"] == "not_found" and "ApiUrl" in error["message"]


def test_the_lambda_request_id_is_the_request_id(served: AdapterApp) -> None:
    # GIVEN the request context the adapter forwards with each Function URL request
    context = json.dumps({"requestId": "0f5c7a3e-lambda-request", "http": {"method": "GET"}})
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        response = client.get(
            "/health", headers={"x-amzn-request-context": context, "x-request-id": "spoofed"}
        )
    assert response.headers["x-request-id"] == "0f5c7a3e-lambda-request"


def test_the_after_restore_hook_rebuilds_the_clients_and_is_not_reachable_through_the_url(
    served: AdapterApp, model: PacedFakeOpenAI
) -> None:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        # Through the Function URL (a request context is present): not served
        context = json.dumps({"requestId": "outside"})
        outside = client.post("/_lwa/after-restore", headers={"x-amzn-request-context": context})
        assert outside.status_code == 404
        # From the adapter after a SnapStart restore: the clients are rebuilt...
        assert client.post("/_lwa/after-restore").status_code == 204
        # ...and the next visitor is answered with fresh ones
        token = session_token(client)
        answer = client.post(
            "/chatkit",
            json=chatkit_create(QUESTION),
            headers={"x-visitor-token": token, "origin": ORIGIN},
        )
        assert answer.status_code == 200
        assert (
            "".join(
                e["update"]["delta"] for e in sse_events(answer.text) if is_text_delta(e)
            ).split()
            == REPLY.split()
        )


def test_the_readiness_path_answers_without_qdrant_or_the_model(served: AdapterApp) -> None:
    port = int(served.env["AWS_LWA_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # uvicorn listens on the adapter's port, on loopback only
    ready = httpx.get(f"{served.base_url}{served.env['AWS_LWA_READINESS_CHECK_PATH']}")
    assert ready.status_code == 200
