"""The local entry points as a newcomer runs them: `python -m docsrag ingest | ask | serve` in a
subprocess, on the embedded store, with no key (the README's main job)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_DOCS
from tests.llmstxt import parse_llms_full_txt, parse_llms_txt


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENROUTER_", "QDRANT_", "SITE_URL"))
    }
    env["QDRANT_PATH"] = str(tmp_path / "qdrant")
    env["CHATKIT_SQLITE_PATH"] = str(tmp_path / "chatkit.sqlite3")
    env["COLUMNS"] = "400"  # keep error panels on one line
    return env


def _docsrag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docsrag", *args],
        cwd=tmp_path,  # no stray .env from the checkout
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_ingest_then_ask_json_on_the_sample_docs(tmp_path: Path) -> None:
    first = _docsrag(tmp_path, "ingest", "--json", str(SAMPLE_DOCS))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["added"] >= 10
    assert summary["failed"] == 0

    again = json.loads(_docsrag(tmp_path, "ingest", "--json", str(SAMPLE_DOCS)).stdout)
    assert again["unchanged"] == summary["added"]
    assert again["added"] == again["updated"] == again["chunks_written"] == 0

    asked = _docsrag(tmp_path, "ask", "--json", "How do I deploy the assistant to AWS with SAM?")
    assert asked.returncode == 0, asked.stderr
    response = json.loads(asked.stdout)
    assert set(response) == {"answer", "sources", "mode", "version", "locale"}
    assert response["mode"] == "retrieval_only"
    assert any("/docs/deployment/aws-sam" in source["url"] for source in response["sources"])


def test_ingest_of_a_missing_folder_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = _docsrag(tmp_path, "ingest", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_invalid_setting_stops_with_the_variable_named(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"QDRANT_URL": "not a url"}
    result = subprocess.run(
        [sys.executable, "-m", "docsrag", "ask", "hello"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "QDRANT_URL" in result.stderr


def test_export_llms_txt_writes_both_files_from_the_index(tmp_path: Path) -> None:
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    out = tmp_path / "build" / "nested"
    result = _docsrag(
        tmp_path, "export-llms-txt", str(out), "--mcp-url", "https://api.example.org/mcp"
    )
    assert result.returncode == 0, result.stderr

    listing = parse_llms_txt((out / "llms.txt").read_text(encoding="utf-8"))
    assert "https://api.example.org/mcp" in listing.details[0]
    urls = [link.url for link in listing.links]
    assert len(urls) >= 10 and all(url.startswith("http://localhost:3000/docs") for url in urls)
    assert "http://localhost:3000/docs/deployment/aws-sam" in urls
    _, pages = parse_llms_full_txt((out / "llms-full.txt").read_text(encoding="utf-8"))
    assert [page.source for page in pages] == urls
    assert f"({len(urls)} pages)" in result.stdout
    assert sorted(path.name for path in out.iterdir()) == ["llms-full.txt", "llms.txt"]


def test_export_llms_txt_errors_exit_like_the_other_commands(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    not_a_folder = _docsrag(tmp_path, "export-llms-txt", str(tmp_path / "a-file"))
    assert not_a_folder.returncode == 2 and "is a file" in not_a_folder.stderr
    bad_url = _docsrag(tmp_path, "export-llms-txt", "out", "--mcp-url", "nope")
    assert bad_url.returncode == 2 and "--mcp-url" in bad_url.stderr
    empty = _docsrag(tmp_path, "export-llms-txt", "out")
    assert empty.returncode == 0 and "no pages" in empty.stderr
    assert parse_llms_txt((tmp_path / "out" / "llms.txt").read_text()).sections == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not SAMPLE_DOCS.is_dir(), reason="sample docs missing")
def test_serve_answers_on_localhost(tmp_path: Path) -> None:
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "docsrag", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health.json()["search"] == "bm25"
        answer = httpx.post(
            f"{base}/chat", json={"message": "Which files are skipped during ingest?"}, timeout=30
        )
        assert answer.status_code == 200
        assert answer.json()["sources"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ask_never_wraps_source_links_when_piped(tmp_path: Path) -> None:
    """`docsrag ask ... | less` at the default 80 columns: every link stays on one line."""
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    env = _env(tmp_path)
    env.pop("COLUMNS")
    asked = subprocess.run(
        [sys.executable, "-m", "docsrag", "ask", "Which pages are skipped when ingesting?"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert asked.returncode == 0, asked.stderr
    source_lines = [line for line in asked.stdout.splitlines() if "http://localhost:3000/" in line]
    assert source_lines
    for line in source_lines:
        url = line.rsplit(" ", 1)[-1]
        assert url.startswith("http://localhost:3000/docs/"), line
    assert max(len(line) for line in source_lines) > 80  # would have been folded before
    # The README's example question finds the section that answers it (the fourth matching
    # section of its page, which a hard cap of two sections per page left out), each source once
    urls = [line.rsplit(" ", 1)[-1] for line in source_lines]
    assert "http://localhost:3000/docs/guides/ingesting-docs#what-is-skipped" in urls
    assert len(urls) == len(set(urls))
