"""Command line: `python -m docsrag ingest PATH | ask [--json] QUESTION | serve |
export-llms-txt OUT_DIR`.

The embedded store (QDRANT_PATH) opens in one process at a time. While `serve` holds it, `ask`
asks that server over HTTP instead: `serve` writes its address beside the store
(`<QDRANT_PATH>.serve.json`, removed when it stops), and `ask` tries it, then
http://127.0.0.1:8000. `ask --server URL` (or DOCSRAG_SERVER) always asks that server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docsrag.budget import Deadline
from docsrag.config import Settings, load_settings
from docsrag.errors import ConfigError, DocsRagError, IndexUnavailable

if TYPE_CHECKING:
    from docsrag.api import ChatResponse

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Answer questions from a Docusaurus documentation site, with links to the exact section.",
)
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(exc: DocsRagError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


# --- `ask` through a running `docsrag serve` -----------------------------------------------------

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "DOCSRAG_SERVER"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ServerError(DocsRagError):
    """A docsrag server answered, but with an error (or not at all in time)."""


class _NoServer(Exception):
    """Nothing answers there, or what answers is not a docsrag server."""


def serve_file(settings: Settings) -> Path:
    """Where `serve` writes its address: beside the embedded store it holds."""
    store = settings.qdrant_path
    return store.with_name(f"{store.name}.serve.json")


def _client_url(host: str, port: int) -> str:
    """The URL a local client reaches `serve --host HOST --port PORT` at."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None  # a host name
    if not host or (ip is not None and ip.is_unspecified):  # listening on every interface
        host = "::1" if ip is not None and ip.version == 6 else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _write_serve_file(path: Path, url: str) -> bool:
    try:
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        err.print(f"[yellow]warning:[/yellow] cannot write {path} (`ask` will not find me): {exc}")
        return False
    return True


def _read_serve_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _remove_serve_file(path: Path) -> None:
    """Only this process's own file: a newer `serve` may have replaced it."""
    data = _read_serve_file(path)
    if data is not None and data.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _server_candidates(settings: Settings) -> list[str]:
    found = _read_serve_file(serve_file(settings)) or {}
    url = found.get("url")
    candidates = [url] if isinstance(url, str) and _is_http_url(url) else []
    return [*candidates, DEFAULT_SERVER] if DEFAULT_SERVER not in candidates else candidates


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _store_in_use(exc: IndexUnavailable) -> bool:
    """The embedded store is held by another process (Qdrant local mode's folder lock)."""
    cause: BaseException | None = exc.__cause__
    while cause is not None:
        if isinstance(cause, RuntimeError) and "already accessed" in str(cause):
            return True
        cause = cause.__cause__
    return "in use by another docsrag process" in str(exc)


def _ask_server(base: str, body: dict[str, Any], *, timeout: float) -> ChatResponse:
    """POST /chat to a docsrag server. `_NoServer` when nothing (docsrag) answers there."""
    import httpx
    from pydantic import ValidationError

    from docsrag.api import ChatResponse

    url = base.rstrip("/") + "/chat"
    # No proxy for loopback (HTTP_PROXY without a NO_PROXY would send it away).
    trust_env = (urlsplit(base).hostname or "") not in _LOOPBACK
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout, connect=3), trust_env=trust_env) as http:
            response = http.post(url, json=body)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _NoServer(f"nothing answers at {base} ({exc})") from exc
    except httpx.TimeoutException as exc:
        raise ServerError(
            f"the docsrag server at {base} did not answer within {timeout:g} s"
        ) from exc
    except httpx.HTTPError as exc:
        raise _NoServer(f"{base}: {exc}") from exc
    if response.status_code == 200:
        try:
            return ChatResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise _NoServer(f"{url} did not answer like `docsrag serve`") from exc
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _NoServer(f"{url} answered HTTP {response.status_code}, not like docsrag") from exc
    raise ServerError(
        f"the docsrag server at {base} answered HTTP {response.status_code} ({code}): {message}"
    )


def _print_answer(response: ChatResponse, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(response.model_dump_json() + "\n")
        return
    from rich.text import Text

    from docsrag.safety import terminal_text

    # Model output and page titles are untrusted: printed as text (no Rich markup, no terminal
    # escape sequences); the answer itself is already safe Markdown (docsrag.safety).
    # soft_wrap: lines are never folded (a folded URL cannot be clicked or copied), piped or not.
    out.print(Text(terminal_text(response.answer)), highlight=False, soft_wrap=True)
    if response.sources:
        out.print()
        out.print("[bold]Sources[/bold]")
        for number, source in enumerate(response.sources, start=1):
            line = f"  [{number}] {source.title} — {source.url}"
            out.print(Text(terminal_text(line)), highlight=False, soft_wrap=True)
    if response.mode == "retrieval_only":
        out.print("[dim](retrieval-only answer)[/dim]")


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=False,
            help="A Docusaurus site (the folder of docusaurus.config.js: docs, versions, "
            "translations, blog), its build/ folder, or a folder of Markdown/MDX docs.",
        ),
    ],
    docs_dir: Annotated[
        Path | None,
        typer.Option(
            "--docs-dir",
            file_okay=False,
            help="The site's docs folder when it is not PATH/docs (the docs plugin's `path`), "
            "from the current directory or from PATH.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Index a site: new and changed pages are embedded, unchanged ones cost nothing, pages no
    longer in the folder leave the index."""
    settings = _settings()
    _configure_logging("WARNING")
    from docsrag.container import Container
    from docsrag.parsing import SourceLayout

    try:
        # Only to count the files for the progress bar; sync_folder reads the layout itself.
        layout = SourceLayout.detect(path, docs_dir=docs_dir, settings=settings)
        files = sum(1 for _ in layout.iter_files())
        container = Container.build(settings)
    except DocsRagError as exc:
        raise _fail(exc) from exc
    try:
        with Progress(
            TextColumn("[bold]indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err,
            disable=as_json or not err.is_terminal,
        ) as progress:
            task = progress.add_task("", total=files)

            def advance(key: str) -> None:
                progress.update(task, advance=1, description=key[-60:])

            summary = container.ingestor().sync_folder(path, docs_dir=docs_dir, progress=advance)
    except DocsRagError as exc:
        raise _fail(exc) from exc
    finally:
        container.close()

    if as_json:
        out.print_json(json.dumps(asdict(summary)))
    else:
        table = Table(title=f"Ingested {path}", show_header=True)
        for column in ("added", "updated", "unchanged", "deleted", "skipped", "failed"):
            table.add_column(column, justify="right")
        table.add_row(
            *(
                str(getattr(summary, column))
                for column in ("added", "updated", "unchanged", "deleted", "skipped", "failed")
            )
        )
        out.print(table)
        out.print(
            f"{summary.chunks_written} chunks written, {summary.embedding_calls} embedding "
            f"requests; search mode: {container.search_mode}"
        )
        for key, reason in list(summary.failures.items())[:20]:
            out.print(f"[red]failed[/red] {key}: {reason}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer from the docs.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly the POST /chat response.")
    ] = False,
    version: Annotated[
        str | None, typer.Option(help="Docs version to answer from (1.0, next, latest).")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="Locale to answer in (fr).")] = None,
    page_url: Annotated[
        str | None, typer.Option(help="The page the reader is on; its version and locale apply.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar=SERVER_ENV,
            show_envvar=True,
            help="Ask this running `docsrag serve` (base URL, e.g. http://127.0.0.1:8000) "
            "instead of opening the index. Without it, `ask` opens the index, and asks the "
            "running server when `serve` holds the embedded store.",
        ),
    ] = None,
) -> None:
    """Ask one question and print the answer with its sources."""
    settings = _settings()
    _configure_logging("WARNING")
    from docsrag.api import ChatResponse, SourcePublic
    from docsrag.scope import ScopeRequest

    message = question.strip()
    if not message:
        err.print("[red]error:[/red] the question is empty")
        raise typer.Exit(2)
    if len(message) > settings.max_message_chars:
        err.print(
            f"[red]error:[/red] the question is {len(message)} characters; the limit is "
            f"{settings.max_message_chars} (MAX_MESSAGE_CHARS)"
        )
        raise typer.Exit(2)
    body: dict[str, Any] = {"message": message}
    body.update(
        (key, value)
        for key, value in (("page_url", page_url), ("version", version), ("locale", locale))
        if value is not None
    )
    # The server's own model and embedding timeouts apply; this only bounds a hung server.
    timeout = 2 * settings.llm_timeout_seconds + 2 * settings.embedding_timeout_seconds + 30

    if server is not None:
        if not _is_http_url(server):
            err.print(f"[red]error:[/red] --server must be an http(s) URL, got {server!r}")
            raise typer.Exit(2)
        try:
            _print_answer(_ask_server(server, body, timeout=timeout), as_json=as_json)
        except _NoServer as exc:
            err.print(f"[red]error:[/red] no docsrag server at {server}: {exc}")
            raise typer.Exit(1) from exc
        except DocsRagError as exc:
            raise _fail(exc) from exc
        return

    from docsrag.container import Container

    try:
        container = Container.build(settings)
        try:
            scope = ScopeRequest(page_url=page_url, version=version, locale=locale)
            # REQUEST_TIME_BUDGET_SECONDS for the question, from once the index is open.
            deadline = Deadline.start(settings.request_time_budget_seconds)
            result = asyncio.run(
                container.chat.chat(message=message, scope=scope, deadline=deadline)
            )
        finally:
            container.close()
    except IndexUnavailable as exc:
        if settings.qdrant_url is not None or not _store_in_use(exc):
            raise _fail(exc) from exc
        # `docsrag serve` (probably) holds the store: ask it instead.
        tried: list[str] = []
        for candidate in _server_candidates(settings):
            try:
                _print_answer(_ask_server(candidate, body, timeout=timeout), as_json=as_json)
            except _NoServer:
                tried.append(candidate)
                continue
            except DocsRagError as server_exc:
                raise _fail(server_exc) from server_exc
            return
        err.print(f"[red]error:[/red] {exc}")
        err.print(
            f"No docsrag server answered at {', '.join(tried)}; if `docsrag serve` runs "
            f"elsewhere, pass --server URL (or set {SERVER_ENV})."
        )
        raise typer.Exit(1) from exc
    except DocsRagError as exc:
        raise _fail(exc) from exc

    response = ChatResponse(
        answer=result.answer,
        sources=[SourcePublic(**asdict(source)) for source in result.sources],
        mode=result.mode,
        version=result.version,
        locale=result.locale,
    )
    _print_answer(response, as_json=as_json)


@app.command("export-llms-txt")
def export_llms_txt(
    out_dir: Annotated[
        Path,
        typer.Argument(
            file_okay=False,
            help="Folder to write llms.txt and llms-full.txt to (created if missing), e.g. the "
            "site's build/ folder before it is uploaded.",
        ),
    ],
    mcp_url: Annotated[
        str | None,
        typer.Option(
            "--mcp-url",
            help="The docsrag API's MCP endpoint (https://API/mcp), named in the files' header.",
        ),
    ] = None,
) -> None:
    """Write llms.txt and llms-full.txt (llmstxt.org) for the default docs version and locale,
    from the index, to serve beside the site."""
    settings = _settings()
    _configure_logging("WARNING")
    from urllib.parse import urlsplit

    from docsrag.container import Container
    from docsrag.llms_txt import LLMS_FULL_TXT, LLMS_TXT, build_llms_full_txt, build_llms_txt

    if mcp_url is not None:
        parts = urlsplit(mcp_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            err.print(f"[red]error:[/red] --mcp-url must be an http(s) URL, got {mcp_url!r}")
            raise typer.Exit(2)
    try:
        container = Container.build(settings)
        try:
            llms = build_llms_txt(container.index, settings, mcp_url=mcp_url)
            full = build_llms_full_txt(container.index, settings, mcp_url=mcp_url)
        finally:
            container.close()
    except DocsRagError as exc:
        raise _fail(exc) from exc

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((LLMS_TXT, llms), (LLMS_FULL_TXT, full.text)):
            partial = out_dir / f".{name}.partial"
            partial.write_text(text, encoding="utf-8", newline="\n")
            partial.replace(out_dir / name)  # never a half-written file to upload
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot write to {out_dir}: {exc}")
        raise typer.Exit(1) from exc

    if full.pages == 0:
        err.print(
            "[yellow]warning:[/yellow] the index holds no pages: the files list nothing "
            "(run `docsrag ingest` first)"
        )
    out.print(
        f"wrote {out_dir / LLMS_TXT} ({full.pages} pages) and {out_dir / LLMS_FULL_TXT} "
        f"({len(full.text.encode()) // 1024} KiB)",
        highlight=False,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the API (POST /chat, POST /chatkit, POST /session, GET /health) on localhost."""
    settings = _settings()
    _configure_logging(settings.log_level)
    import gc

    import uvicorn

    from docsrag.api import create_app
    from docsrag.container import Container

    try:
        # Built before listening: a locked or unreachable store fails here, with its message.
        container = Container.build(settings)
        container.index.prepare_search()  # the embedded store's search snapshot, built once
    except DocsRagError as exc:
        raise _fail(exc) from exc
    app_ = create_app(container=container)
    gc.freeze()  # long-lived start-up objects leave the garbage collector's scans
    err.print(
        f"docsrag serving on http://{host}:{port} (POST /chat, POST /chatkit, GET /health); "
        f"search: {container.search_mode}"
        + ("" if settings.llm_enabled else " (no OPENROUTER_API_KEY: retrieval-only answers)")
    )
    # `ask` finds this server through the file while the embedded store is held here.
    address = None if settings.qdrant_url else serve_file(settings)
    if address is not None and not _write_serve_file(address, _client_url(host, port)):
        address = None
    if address is not None:
        import signal

        # uvicorn shuts down gracefully on SIGTERM, then raises it again with the handler it
        # found: exit through Python (as for Ctrl-C) so the `finally` below removes the file.
        def _exit_on_sigterm(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        if address is not None:
            _remove_serve_file(address)


def main() -> None:
    app()
