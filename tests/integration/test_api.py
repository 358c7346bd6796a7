"""`POST /chat` and `GET /health` through the real FastAPI app, embedded Qdrant and the loopback
fake OpenRouter: what a script or the widget sees, including every error status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from docsrag.api import create_app, max_body_bytes
from docsrag.config import Settings
from docsrag.container import Container
from tests.fakes.openai_server import FakeOpenAI

PAGES = {
    "install.md": """---
title: Installation
---

# Installation

Install the tool with pip before anything else.

## Requirements

You need Python 3.11 or newer and a C compiler for the native extension.

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
}


def _settings(tmp_path: Path, fake: FakeOpenAI | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp_path / "qdrant",
        "site_url": "https://docs.example.org",
        "embedding_dimensions": 64,
        "llm_timeout_seconds": 2,
        "llm_max_retries": 0,
        "embedding_max_retries": 0,
        "cors_origins": ["https://docs.example.org"],
        "max_message_chars": 500,
        "chatkit_sqlite_path": tmp_path / "chatkit.sqlite3",
    }
    if fake is not None:
        values |= {"openrouter_api_key": fake.api_key, "openrouter_base_url": fake.base_url}
    values |= overrides
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _write_site(root: Path) -> Path:
    for name, text in PAGES.items():
        path = root / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "docs"


@pytest.fixture
def llm_client(tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[TestClient]:
    settings = _settings(tmp_path, fake_openai)
    container = Container.build(settings)
    container.ingestor().sync_folder(_write_site(tmp_path))
    with TestClient(create_app(container=container)) as client:
        yield client


@pytest.fixture
def keyless_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = _settings(tmp_path, None)
    container = Container.build(settings)
    container.ingestor().sync_folder(_write_site(tmp_path))
    with TestClient(create_app(container=container)) as client:
        yield client


def test_chat_answers_with_cited_sections(llm_client: TestClient) -> None:
    response = llm_client.post("/chat", json={"message": "How do I deploy the stack with sam?"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"answer", "sources", "mode", "version", "locale"}
    assert body["mode"] == "llm"
    assert "[1]" in body["answer"]
    first = body["sources"][0]
    assert first["url"] == "https://docs.example.org/docs/deploy/aws#build"
    assert first["anchor"] == "build"
    assert "sam build" in first["snippet"]
    assert response.headers["x-request-id"]


def test_history_follow_up_is_accepted(llm_client: TestClient) -> None:
    response = llm_client.post(
        "/chat",
        json={
            "message": "and how do I delete it?",
            "history": [
                {"role": "user", "content": "How do I deploy to AWS?"},
                {"role": "assistant", "content": "Run sam deploy [1]."},
            ],
        },
    )
    assert response.status_code == 200
    urls = [source["url"] for source in response.json()["sources"]]
    assert any("/docs/deploy/aws" in url for url in urls)


def test_without_a_key_answers_are_retrieval_only_with_links(keyless_client: TestClient) -> None:
    response = keyless_client.post(
        "/chat", json={"message": "What are the requirements to install it?"}
    )

    body = response.json()
    assert response.status_code == 200
    assert body["mode"] == "retrieval_only"
    assert body["sources"][0]["url"].startswith("https://docs.example.org/docs/install")
    assert "not set up" in body["answer"]


def test_off_topic_question_says_the_docs_do_not_cover_it(llm_client: TestClient) -> None:
    response = llm_client.post("/chat", json={"message": "how long do I bake sourdough bread?"})
    body = response.json()
    assert response.status_code == 200
    assert body["sources"] == []
    assert "couldn't find" in body["answer"].lower()


def test_a_question_about_a_tool_the_docs_never_mention_names_it(
    llm_client: TestClient, fake_openai: FakeOpenAI
) -> None:
    # Every other word is on the AWS page; the docs never mention Terraform.
    question = "How do I deploy the stack to AWS with Terraform?"

    response = llm_client.post("/chat", json={"message": question})

    body = response.json()
    assert response.status_code == 200
    assert body["sources"] == []
    assert body["answer"].startswith("The documentation doesn't mention “Terraform”")
    assert fake_openai.chat_calls == 0


def test_rate_limited_model_still_returns_sources(
    llm_client: TestClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(429, retry_after=0, count=5, endpoint="chat")
    response = llm_client.post("/chat", json={"message": "How do I upgrade the tool?"})
    body = response.json()
    assert response.status_code == 200
    assert body["mode"] == "retrieval_only"
    assert body["sources"][0]["url"].startswith("https://docs.example.org/docs/install")
    assert "try again in a minute" in body["answer"]


def test_health_reports_search_mode_and_index(llm_client: TestClient) -> None:
    body = llm_client.get("/health").json()
    assert body["status"] == "ok"
    assert body["llm"] == "configured"
    assert body["search"] == "hybrid"
    assert body["index"]["chunks"] > 0


def test_health_says_when_search_is_bm25_only(keyless_client: TestClient) -> None:
    body = keyless_client.get("/health").json()
    assert body["search"] == "bm25"
    assert "OPENROUTER_API_KEY" in body["notice"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ('{"message": ', 400, "invalid_json"),
        ("{}", 422, "invalid_request"),
        ('{"message": ""}', 422, "invalid_request"),
        ('{"message": "   "}', 422, "invalid_request"),
        ('{"message": 42}', 422, "invalid_request"),
        ('{"message": "hi", "extra": 1}', 422, "invalid_request"),
        (
            '{"message": "hi", "history": [{"role": "system", "content": "x"}]}',
            422,
            "invalid_request",
        ),
        (json.dumps({"message": "x" * 501}), 413, "message_too_long"),
    ],
)
def test_bad_requests_get_clear_errors(
    keyless_client: TestClient, payload: str, status: int, code: str
) -> None:
    response = keyless_client.post(
        "/chat", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_oversized_body_is_refused_before_parsing(
    keyless_client: TestClient, tmp_path: Path
) -> None:
    limit = max_body_bytes(_settings(tmp_path, None))
    response = keyless_client.post(
        "/chat",
        content=b'{"message": "' + b"a" * limit + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_cors_allows_only_listed_origins(keyless_client: TestClient) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    allowed = keyless_client.options(
        "/chat", headers={"origin": "https://docs.example.org", **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://docs.example.org"

    refused = keyless_client.options(
        "/chat", headers={"origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


def test_unreachable_qdrant_answers_503_and_recovers_nothing_half_done(tmp_path: Path) -> None:
    # A closed port on loopback: nothing listens there.
    settings = _settings(tmp_path, None, qdrant_url="http://127.0.0.1:9", qdrant_timeout_seconds=1)
    with TestClient(create_app(settings=settings)) as client:
        chat = client.post("/chat", json={"message": "How do I install it?"})
        health = client.get("/health")

    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "index_unavailable"
    assert "try again" in chat.json()["error"]["message"].lower()
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    # anonymous callers get a stable code, never the internal error text (host, port, cause)
    assert health.json()["index"] == {"collection": "docs", "code": "index_unavailable"}
    assert "127.0.0.1" not in health.text and "9" not in health.json()["index"].values()


def test_unknown_version_or_locale_is_a_422_listing_the_valid_ones(
    keyless_client: TestClient,
) -> None:
    response = keyless_client.post("/chat", json={"message": "How do I install?", "version": "9.9"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_version"
    assert error["valid"] == ["current"]
    assert "current" in error["message"] and error["request_id"]
    response = keyless_client.post("/chat", json={"message": "How do I install?", "locale": "xx"})
    assert response.status_code == 422
    assert response.json()["error"]["valid"] == ["en"]


@pytest.mark.parametrize(
    "page_url", ["https://evil.example/docs/x", "not a url", "http://[::1", "javascript:alert(1)"]
)
def test_a_page_url_from_elsewhere_is_ignored_not_an_error(
    keyless_client: TestClient, page_url: str
) -> None:
    response = keyless_client.post(
        "/chat", json={"message": "How do I install the tool with pip?", "page_url": page_url}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["locale"]) == ("current", "en")
    assert body["sources"][0]["url"].startswith("https://docs.example.org/docs/install")
    assert body["sources"][0]["version"] == "current"


def test_an_oversized_page_url_is_rejected_clearly(keyless_client: TestClient) -> None:
    response = keyless_client.post(
        "/chat", json={"message": "How do I install?", "page_url": "https://x/" + "a" * 5000}
    )
    assert response.status_code == 422
    assert "page_url" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/chat", 405, "method_not_allowed"),
        ("DELETE", "/health", 405, "method_not_allowed"),
    ],
)
def test_every_error_has_the_one_shape(
    keyless_client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    response = keyless_client.request(method, path)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "detail" not in response.json()


def test_a_body_that_is_not_utf8_json_gets_the_error_shape(keyless_client: TestClient) -> None:
    response = keyless_client.post(
        "/chat", content=b'{"message": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_json", "invalid_request"}
    assert response.json()["error"]["request_id"]


def test_a_wrong_content_type_says_so(keyless_client: TestClient) -> None:
    response = keyless_client.post(
        "/chat", content=b'{"message": "hi"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"] and "text/plain" in error["message"]


def test_a_chunked_body_over_the_limit_is_refused(keyless_client: TestClient) -> None:
    """No Content-Length (chunked transfer): the limit is enforced on the bytes read."""
    limit = max_body_bytes(keyless_client.app.state.provider.settings)  # type: ignore[attr-defined]

    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = keyless_client.post(
        "/chat", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["request_id"]


def test_chat_is_rate_limited_per_client_and_only_valid_requests_count(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None, chat_rate_limit_per_minute=2)
    container = Container.build(settings)
    container.ingestor().sync_folder(_write_site(tmp_path))
    with TestClient(create_app(container=container)) as client:
        invalid = [
            client.post("/chat", json={"message": "   "}),
            client.post("/chat", json={"message": "x" * 600}),
            client.post("/chat", json={}),
        ]
        answered = [client.post("/chat", json={"message": "How do I install?"}) for _ in range(2)]
        limited = client.post("/chat", json={"message": "How do I install?"})

    assert [response.status_code for response in invalid] == [422, 413, 422]
    assert [response.status_code for response in answered] == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
