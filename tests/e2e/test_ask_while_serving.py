"""The README's two commands at once: `docsrag serve` holds the embedded store, and `docsrag ask`
in another process answers all the same, through the running server (`serve` leaves its address
beside the store), with the output it prints on its own."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_DOCS
from tests.e2e.test_cli import _docsrag, _env, _free_port

pytestmark = pytest.mark.skipif(not SAMPLE_DOCS.is_dir(), reason="sample docs missing")

QUESTION = "How do I deploy the assistant to AWS with SAM?"


@dataclass
class Served:
    base: str
    process: subprocess.Popen[str]


def _wait_for_health(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/health", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The sample docs ingested, then `docsrag serve` on a free port, holding the store."""
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "docsrag", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(base=f"http://127.0.0.1:{port}", process=process)
    try:
        _wait_for_health(served.base, process)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=30)


def _sources(stdout: str) -> list[str]:
    return [line.rsplit(" ", 1)[-1] for line in stdout.splitlines() if line.startswith("  [")]


def test_ask_answers_through_the_server_that_holds_the_store(
    tmp_path: Path, served: Served
) -> None:
    address = json.loads((tmp_path / "qdrant.serve.json").read_text(encoding="utf-8"))
    assert address == {"url": served.base, "pid": served.process.pid}

    # The store is locked: ask goes to the running server on its (non-default) port.
    asked_json = _docsrag(tmp_path, "ask", "--json", QUESTION)
    assert asked_json.returncode == 0, asked_json.stderr
    response = json.loads(asked_json.stdout)
    assert set(response) == {"answer", "sources", "mode", "version", "locale"}
    assert response["mode"] == "retrieval_only"
    assert any("/docs/deployment/aws-sam" in source["url"] for source in response["sources"])
    direct = httpx.post(f"{served.base}/chat", json={"message": QUESTION}, timeout=60)
    assert direct.status_code == 200
    assert response == direct.json()  # exactly the POST /chat response

    asked = _docsrag(tmp_path, "ask", QUESTION)
    assert asked.returncode == 0, asked.stderr
    assert "Sources" in asked.stdout
    assert _sources(asked.stdout) == [source["url"] for source in response["sources"]]
    assert "(retrieval-only answer)" in asked.stdout

    # Once the server stops, its address goes and ask opens the store itself: same output.
    served.process.terminate()
    served.process.communicate(timeout=30)
    assert not (tmp_path / "qdrant.serve.json").exists()
    alone_json = _docsrag(tmp_path, "ask", "--json", QUESTION)
    assert alone_json.returncode == 0, alone_json.stderr
    assert alone_json.stdout == asked_json.stdout
    alone = _docsrag(tmp_path, "ask", QUESTION)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout == asked.stdout


def test_ask_server_option_and_environment_variable_name_the_server(
    tmp_path: Path, served: Served
) -> None:
    (tmp_path / "qdrant.serve.json").unlink()  # no address file: only the option finds it
    by_option = _docsrag(tmp_path, "ask", "--json", "--server", served.base, QUESTION)
    assert by_option.returncode == 0, by_option.stderr
    assert json.loads(by_option.stdout)["sources"]

    env = _env(tmp_path) | {"DOCSRAG_SERVER": served.base + "/"}
    by_env = subprocess.run(
        [sys.executable, "-m", "docsrag", "ask", "--json", QUESTION],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert by_env.returncode == 0, by_env.stderr
    assert by_env.stdout == by_option.stdout

    # The server's own errors come through with its message.
    unknown = _docsrag(tmp_path, "ask", "--server", served.base, "--version", "9.9", QUESTION)
    assert unknown.returncode == 1
    assert "HTTP 422 (unknown_version)" in unknown.stderr

    nobody = _docsrag(tmp_path, "ask", "--server", f"http://127.0.0.1:{_free_port()}", QUESTION)
    assert nobody.returncode == 1
    assert "no docsrag server at" in nobody.stderr
    bad = _docsrag(tmp_path, "ask", "--server", "localhost:8000", QUESTION)
    assert bad.returncode == 2 and "--server must be an http(s) URL" in bad.stderr


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_locked_store_with_no_server_keeps_the_clear_error(tmp_path: Path) -> None:
    if _port_open(8000):
        pytest.skip("something listens on 127.0.0.1:8000 (the default server)")
    assert _docsrag(tmp_path, "ingest", str(SAMPLE_DOCS)).returncode == 0
    # A stale address from a server that died without cleaning up.
    stale = f"http://127.0.0.1:{_free_port()}"
    (tmp_path / "qdrant.serve.json").write_text(json.dumps({"url": stale, "pid": 1}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from qdrant_client import QdrantClient; "
            f"c = QdrantClient(path={str(tmp_path / 'qdrant')!r}); "
            "print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        asked = _docsrag(tmp_path, "ask", QUESTION)
    finally:
        holder.communicate(input="", timeout=30)
    assert asked.returncode == 1
    assert "in use by another docsrag process" in asked.stderr
    assert f"No docsrag server answered at {stale}, http://127.0.0.1:8000" in asked.stderr
    assert "--server URL" in asked.stderr
