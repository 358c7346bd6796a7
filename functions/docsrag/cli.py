"""Command line: `python -m docsrag ingest PATH | ask [--json] QUESTION | serve |
export-llms-txt OUT_DIR`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docsrag.config import Settings, load_settings
from docsrag.errors import ConfigError, DocsRagError

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
) -> None:
    """Ask one question and print the answer with its sources."""
    settings = _settings()
    _configure_logging("WARNING")
    from docsrag.api import ChatResponse, SourcePublic
    from docsrag.container import Container
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
    try:
        container = Container.build(settings)
        try:
            scope = ScopeRequest(page_url=page_url, version=version, locale=locale)
            result = asyncio.run(container.chat.chat(message=message, scope=scope))
        finally:
            container.close()
    except DocsRagError as exc:
        raise _fail(exc) from exc

    response = ChatResponse(
        answer=result.answer,
        sources=[SourcePublic(**asdict(source)) for source in result.sources],
        mode=result.mode,
        version=result.version,
        locale=result.locale,
    )
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
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def main() -> None:
    app()
