"""The sample site as a docs team would deploy it: three docs versions, two locales and a blog,
built by Docusaurus itself (`make site`), ingested and asked through the Lambda handler, HTTP
API event JSON included, and through ChatKit with the widget's page-URL header.

Needs `site/build` from `make site` (CI builds it before the tests). The same behaviours are
tested without it in tests/integration/test_versioned_retrieval.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from docsrag.api import create_app
from docsrag.config import Settings
from docsrag.container import Container
from docsrag.models import IngestSummary

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "site" / "build"
SITE = "https://docs.example.org"
# In the French page's own words: BM25's stemming and stop words are English (see the docs page).
FRENCH_QUESTION = "make setup crée un environnement virtuel ?"

pytestmark = pytest.mark.skipif(
    not (BUILD / "docs" / "next").is_dir() or not (BUILD / "fr" / "docs").is_dir(),
    reason="needs the versioned sample site build: run `make site` (CI does)",
)


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp / "qdrant",
        "site_url": SITE,
        "cors_origins": [SITE],
        "chatkit_sqlite_path": tmp / "chatkit.sqlite3",
        "cors_via_gateway": True,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Container, IngestSummary]]:
    """The build ingested once (BM25, no key: answers are retrieval-only and say so)."""
    # The build's canonical URLs name http://localhost:3000; the site is served elsewhere here,
    # as a team's staging copy would be, so the canonical check compares hosts and lets it be.
    container = Container.build(settings_for(tmp_path_factory.mktemp("versioned")))
    summary = container.ingestor().sync_folder(BUILD)
    yield container, summary
    container.close()


def chat_event(body: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (REPO / "events" / "chat_versioned_http_api_v2.json").read_text()
    )
    event["body"] = json.dumps(body)
    event["headers"]["content-length"] = str(len(event["body"].encode()))
    return event


def invoke(container: Container, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    handler = Mangum(create_app(container=container), lifespan="off")
    response = handler(event, SimpleNamespace(aws_request_id="req-1"))
    return response["statusCode"], json.loads(response["body"])


def test_the_build_ingests_every_version_locale_and_the_blog(
    deployed: tuple[Container, IngestSummary],
) -> None:
    container, summary = deployed
    assert summary.failed == 0
    catalog = container.index.site_catalog(default_locale="en")
    assert catalog.versions == ("1.1", "current", "1.0")
    assert catalog.default_version == "1.1"
    assert catalog.locales == ("en", "fr")
    assert catalog.has_blog
    # listing pages, feeds and assets are skipped, each with its reason
    assert all(summary.skipped_reasons.values())


def test_the_sample_event_answers_from_the_version_of_the_visitors_page(
    deployed: tuple[Container, IngestSummary], lambda_loop: asyncio.AbstractEventLoop
) -> None:
    """events/chat_versioned_http_api_v2.json: a visitor on /docs/1.0/ asks about a setting
    that 1.0 names QDRANT_LOCAL_PATH and 1.1 renamed to QDRANT_PATH."""
    container, _ = deployed
    event = json.loads((REPO / "events" / "chat_versioned_http_api_v2.json").read_text())
    status, body = invoke(container, event)
    assert status == 200
    assert body["version"] == "1.0"
    assert body["answer"].splitlines()[1] == "From the docs for version 1.0."
    urls = [source["url"] for source in body["sources"]]
    assert urls and all(url.startswith(f"{SITE}/docs/1.0/") for url in urls), urls
    assert any("QDRANT_LOCAL_PATH" in source["snippet"] for source in body["sources"])
    assert all("QDRANT_PATH " not in source["snippet"] for source in body["sources"])


@pytest.mark.parametrize(
    ("body", "prefix", "version"),
    [
        ({}, "/docs/", "1.1"),
        ({"version": "next"}, "/docs/next/", "current"),
        ({"page_url": f"{SITE}/docs/next/configuration"}, "/docs/next/", "current"),
        ({"page_url": f"{SITE}/docs/1.0/configuration", "version": "1.1"}, "/docs/", "1.1"),
    ],
)
def test_one_version_per_answer_and_each_section_once(
    deployed: tuple[Container, IngestSummary],
    lambda_loop: asyncio.AbstractEventLoop,
    body: dict[str, Any],
    prefix: str,
    version: str,
) -> None:
    container, _ = deployed
    status, answer = invoke(
        container, chat_event({"message": "How do I configure the Qdrant store?", **body})
    )
    assert status == 200
    assert answer["version"] == version
    sources = answer["sources"]
    assert sources
    for source in sources:
        path = source["url"].removeprefix(SITE)
        assert path.startswith(prefix), path
        if prefix == "/docs/":
            assert not path.startswith(("/docs/next/", "/docs/1.0/")), path
        assert source["version"] == version
    titles = [source["title"] for source in sources]
    assert len(titles) == len(set(titles)), "a section was cited twice"


def test_the_question_can_name_the_version(
    deployed: tuple[Container, IngestSummary], lambda_loop: asyncio.AbstractEventLoop
) -> None:
    container, _ = deployed
    status, answer = invoke(
        container, chat_event({"message": "In docsrag 1.0, which setting names the Qdrant folder?"})
    )
    assert status == 200
    assert answer["version"] == "1.0"
    assert all("/docs/1.0/" in source["url"] for source in answer["sources"])


def test_unknown_version_is_a_422_with_the_valid_list(
    deployed: tuple[Container, IngestSummary], lambda_loop: asyncio.AbstractEventLoop
) -> None:
    container, _ = deployed
    status, body = invoke(container, chat_event({"message": "How?", "version": "3.0"}))
    assert status == 422
    assert body["error"]["code"] == "unknown_version"
    assert body["error"]["valid"] == ["1.1", "current", "1.0"]
    status, body = invoke(container, chat_event({"message": "How?", "locale": "de"}))
    assert status == 422
    assert body["error"]["valid"] == ["en", "fr"]


def test_chatkit_answers_a_french_visitor_from_the_french_pages(
    deployed: tuple[Container, IngestSummary],
) -> None:
    container, _ = deployed
    with TestClient(create_app(container=container)) as client:
        token = client.post("/session").json()["token"]
        request = {
            "type": "threads.create",
            "params": {
                "input": {
                    "content": [{"type": "input_text", "text": FRENCH_QUESTION}],
                    "attachments": [],
                    "inference_options": {},
                }
            },
        }
        response = client.post(
            "/chatkit",
            content=json.dumps(request),
            headers={
                "x-visitor-token": token,
                "content-type": "application/json",
                "x-docs-page-url": f"{SITE}/fr/docs/getting-started",
            },
        )
    assert response.status_code == 200
    events = [
        json.loads(block.removeprefix("data: "))
        for block in response.text.split("\n\n")
        if block.strip()
    ]
    done = [
        event["item"]
        for event in events
        if event["type"] == "thread.item.done" and event["item"]["type"] == "assistant_message"
    ]
    content = done[-1]["content"][0]
    urls = [annotation["source"]["url"] for annotation in content["annotations"]]
    assert urls, content["text"]
    assert urls[0].startswith(f"{SITE}/fr/docs/getting-started"), urls
    assert "From the docs for version 1.1 (latest)." in content["text"]


def test_the_sources_ingest_to_the_same_urls_as_the_build(tmp_path: Path) -> None:
    """`docsrag ingest site --docs-dir docs` gives pages the build serves, in every version."""
    container = Container.build(settings_for(tmp_path))
    try:
        summary = container.ingestor().sync_folder(REPO / "site", docs_dir=REPO / "docs")
        assert summary.failed == 0 and summary.added > 0
        built = {
            "/" + str(path.relative_to(BUILD).parent).strip(".")
            for path in BUILD.rglob("index.html")
        }
        catalog = container.index.site_catalog(default_locale="en")
        assert catalog.versions == ("1.1", "current", "1.0")
        assert catalog.locales == ("en", "fr")
        hits = container.index._client.scroll(
            container.index.collection, limit=10_000, with_payload=["path"]
        )[0]
        indexed = {str((hit.payload or {})["path"]).rstrip("/") or "/" for hit in hits}
        missing = {
            path for path in indexed if path.rstrip("/") not in {b.rstrip("/") for b in built}
        }
        assert not missing, f"source pages with no built page: {sorted(missing)[:10]}"
    finally:
        container.close()
