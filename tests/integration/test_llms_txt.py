"""`GET /llms.txt` and `GET /llms-full.txt` through the real app over an embedded Qdrant holding a
versioned, translated site with a blog: only the default version (1.1) in the default locale is
published, every link is an absolute URL of the site, and the files follow llmstxt.org."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from docsrag.api import create_app
from docsrag.chunking import chunk_page
from docsrag.config import Settings
from docsrag.container import Container
from docsrag.models import Block, PageKind, PageMeta, ParsedPage, Section
from tests.llmstxt import parse_llms_full_txt, parse_llms_txt

SITE = "https://docs.example.org/site"  # with a baseUrl


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": tmp_path / "qdrant",
        "site_url": SITE,
        "site_title": "Example Docs",
        "site_description": "Docs of the example tool.\nSecond line.",
        "cors_origins": ["https://docs.example.org"],
        "chatkit_sqlite_path": tmp_path / "chatkit.sqlite3",
    } | overrides
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _page(
    path: str,
    title: str,
    text: str,
    meta: PageMeta,
    *,
    kind: PageKind = "docs",
    description: str | None = None,
) -> ParsedPage:
    return ParsedPage(
        source_key=path.strip("/") + "/index.html",
        path=path,
        title=title,
        description=description,
        kind=kind,
        sections=(
            Section("", None, 1, (), (Block("text", f"{title}: {text}"),)),
            Section("Usage", "usage", 2, ("Usage",), (Block("text", f"Use it. {text}"),)),
        ),
        meta=meta,
    )


def _docs(version: str, locale: str = "en", doc_id: str = "") -> PageMeta:
    return PageMeta(version=version, default_version=version == "1.1", locale=locale, doc_id=doc_id)


SITE_PAGES = [
    _page("/docs/intro", "Intro", "Start with version 1.1.", _docs("1.1", doc_id="intro")),
    _page(
        "/docs/guides/install",
        "Install [beta] (new)",
        "Set QDRANT_PATH.",
        _docs("1.1", doc_id="guides/install"),
        description="How to install.\n\n## not a heading",
    ),
    _page("/docs/1.0/intro", "Intro", "Old 1.0 intro.", _docs("1.0", doc_id="intro")),
    _page(
        "/docs/1.0/guides/install",
        "Install",
        "Set QDRANT_LOCAL_PATH.",
        _docs("1.0", doc_id="guides/install"),
    ),
    _page("/docs/next/intro", "Intro", "Unreleased intro.", _docs("current", doc_id="intro")),
    _page("/fr/docs/intro", "Introduction", "Version française.", _docs("1.1", "fr", "intro")),
    _page(
        "/blog/2025/09/15/release",
        "1.1 released",
        "The 1.1 release.",
        PageMeta(kind="blog", version=None, doc_id="blog/release"),
        kind="blog",
    ),
    _page(
        "/about",
        "About",
        "Who we are.",
        PageMeta(kind="page", version=None, doc_id="about"),
        kind="page",
    ),
]


def _write(container: Container, pages: list[ParsedPage]) -> None:
    for parsed in pages:
        chunks = chunk_page(
            parsed, target_tokens=300, max_tokens=500, overlap_tokens=0, min_tokens=0
        )
        container.index.write_page(
            chunks=chunks,
            content_hash="h",
            sparse=[container.encoder.encode_document(chunk.embed_text) for chunk in chunks],
            dense=None,
            new_page=True,
        )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    container = Container.build(_settings(tmp_path))
    _write(container, SITE_PAGES)
    with TestClient(create_app(container=container)) as test_client:
        yield test_client


EXPECTED = {
    "Docs": [("Intro", f"{SITE}/docs/intro")],
    "Guides": [("Install [beta] (new)", f"{SITE}/docs/guides/install")],
    "Blog": [("1.1 released", f"{SITE}/blog/2025/09/15/release")],
    "Optional": [("About", f"{SITE}/about")],
}


def test_llms_txt_lists_the_default_version_and_locale_per_the_spec(client: TestClient) -> None:
    response = client.get("/llms.txt")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    parsed = parse_llms_txt(response.text)
    assert parsed.title == "Example Docs"
    assert parsed.summary == "Docs of the example tool. Second line."
    assert "version 1.1 (latest)" in parsed.details[0]
    assert "`/mcp`" in parsed.details[0]
    assert {
        name: [(link.title, link.url) for link in links] for name, links in parsed.sections.items()
    } == EXPECTED
    for link in parsed.links:
        assert link.url.startswith(f"{SITE}/"), link.url
        assert "/docs/1.0/" not in link.url and "/docs/next/" not in link.url
        assert "/fr/" not in link.url
    (install,) = parsed.sections["Guides"]
    assert install.notes == "How to install. ## not a heading"


def test_llms_full_txt_holds_the_same_pages_with_their_text(client: TestClient) -> None:
    listed = parse_llms_txt(client.get("/llms.txt").text).links
    response = client.get("/llms-full.txt")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.text.startswith("# Example Docs\n\n> Docs of the example tool. Second line.")
    _, pages = parse_llms_full_txt(response.text)
    assert [(page.title, page.source) for page in pages] == [
        (link.title, link.url) for link in listed
    ]
    install = pages[1]
    assert install.body.strip() == (
        "Install [beta] (new): Set QDRANT_PATH.\n\n## Usage\n\nUse it. Set QDRANT_PATH."
    )
    assert "QDRANT_LOCAL_PATH" not in response.text
    assert "Unreleased" not in response.text and "française" not in response.text


def test_mcp_is_not_mentioned_when_it_is_off(tmp_path: Path) -> None:
    container = Container.build(_settings(tmp_path, mcp_enabled=False))
    _write(container, SITE_PAGES[:1])
    with TestClient(create_app(container=container)) as test_client:
        parsed = parse_llms_txt(test_client.get("/llms.txt").text)
    assert "MCP" not in " ".join(parsed.details)
    assert "version" not in parsed.details[0]  # one version: nothing to tell apart


def test_an_empty_index_gives_valid_files_without_links(tmp_path: Path) -> None:
    with TestClient(create_app(container=Container.build(_settings(tmp_path)))) as test_client:
        listing = test_client.get("/llms.txt")
        full = test_client.get("/llms-full.txt")

    assert listing.status_code == full.status_code == 200
    parsed = parse_llms_txt(listing.text)
    assert parsed.sections == {}
    assert "holds no pages" in parsed.details[0]
    header, pages = parse_llms_full_txt(full.text)
    assert pages == [] and "holds no pages" in "\n".join(header)


def test_an_unreachable_index_is_the_same_503_as_chat(tmp_path: Path) -> None:
    settings = _settings(tmp_path, qdrant_url="http://127.0.0.1:9", qdrant_timeout_seconds=1)
    with TestClient(create_app(settings=settings)) as test_client:
        chat = test_client.post("/chat", json={"message": "How do I install it?"})
        responses = [test_client.get("/llms.txt"), test_client.get("/llms-full.txt")]

    for response in [chat, *responses]:
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "index_unavailable"
        assert error["request_id"] == response.headers["x-request-id"]
        assert "cache-control" not in response.headers
