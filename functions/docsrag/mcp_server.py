"""The docs as an MCP server (`/mcp`), for coding assistants (Claude Code, Cursor, VS Code).

Three tools, over the same index, retrieval and answering as `POST /chat`:

- `search_docs(query, version?, limit?)`: the best sections, ranked as `/chat` ranks them, each
  with its title, citation URL (with the heading anchor), docs version and text;
- `read_page(url)`: a page of this site as the index holds it, in reading order, with the URL of
  each section; a URL of another site or of a page the index does not have is a tool error;
- `ask_docs(question, version?)`: the grounded, cited answer `/chat` gives (retrieval-only when
  no model is configured), with its sources.

A version the site lacks is a tool error listing the ones it has; a question over
`MAX_MESSAGE_CHARS` is a tool error; unknown tools and arguments of the wrong type are the SDK's
own tool errors, never an HTTP 500.

Transport. Streamable HTTP in stateless mode with JSON responses: each POST carries one JSON-RPC
message and gets its answer as one JSON body, so any process (any Lambda container) can answer any
request and nothing streams (an HTTP API cannot stream). A fresh stateless
`StreamableHTTPSessionManager` runs for each request (`async with manager.run()`): nothing is
started by the app's lifespan, which Mangum runs with `lifespan="off"` on Lambda, so a cold
container's first request is served like any other. Creating and running the manager costs about
0.4 ms a request; the whole endpoint adds a few ms to a search (`bench/mcp_latency.py`). The SDK's
INFO lines about each manager's start and end are left out of the logs. Both protocol eras are
served: the initialize handshake (2025 revisions, what today's assistants speak) and the
self-contained 2026-07-28 requests. There is no server-to-client stream: `GET` and `DELETE` answer
405 with `Allow: POST`, as the transport specifies for a server without one.

Protection, before the SDK sees a request, in this order (errors in the API's shape, `{"error":
{"code", "message", "request_id"}}`):

1. `MCP_ENABLED=false`: 404, as if the route did not exist.
2. A request with an `Origin` header (a browser's) must come from one of `CORS_ORIGINS`, else 403:
   the transport asks servers to check it, against DNS rebinding (a page whose host name resolves
   to 127.0.0.1 reaching `docsrag serve`). Coding assistants send no `Origin`; a browser-based MCP
   client needs its origin in `CORS_ORIGINS` for CORS anyway. The Host header is not checked: on
   AWS it is the API's own domain, whichever it is.
3. Rate limit per client IP (`MCP_RATE_LIMIT_PER_MINUTE`): 429 with `Retry-After`. The limiter is
   the ChatKit one (in memory for `docsrag serve`, a DynamoDB counter shared by every Lambda
   container when `THREADS_TABLE` is set). The IP is API Gateway's `requestContext.http.sourceIp`
   on Lambda (not a header a client could forge), the peer address under uvicorn. Every request
   counts, also one with a wrong token, so a token cannot be guessed at speed.
4. Bearer token (`MCP_BEARER_TOKEN`, for private docs): `Authorization: Bearer <token>`,
   compared in constant time; missing or wrong is 401. The token is never logged.
5. Body size (`MCP_MAX_REQUEST_BYTES`): a declared `Content-Length` over it, or a body (chunked
   too) that grows over it while being read, is 413; only a body within the limit reaches the SDK.

`GET` and `DELETE` get their 405 after the first two checks.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from docsrag.budget import Deadline
from docsrag.chatkit.ratelimit import RateLimited, RateLimiter, client_ip
from docsrag.config import Settings
from docsrag.container import Container
from docsrag.errors import IndexUnavailable
from docsrag.models import Hit
from docsrag.retrieval import Retriever
from docsrag.scope import ScopeRequest, UnknownScope
from docsrag.service import source_title

logger = logging.getLogger(__name__)
# One session manager per request: its start/stop INFO lines would be noise on every request.
for _name in ("mcp.server.streamable_http_manager", "mcp.server.streamable_http"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

MCP_PATH: Final = "/mcp"
MCP_METHODS: Final = ("GET", "POST", "DELETE")  # GET and DELETE only to answer 405
# Request headers MCP clients send (browsers ask for them in CORS preflights).
MCP_CORS_HEADERS: Final = ("mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name")
SERVER_NAME: Final = "docsrag"
SECTION_CHARS: Final = 1500  # text of one section in search_docs
PAGE_CHARS: Final = 60_000  # text of one page in read_page
MAX_SEARCH_RESULTS: Final = 20
_REQUEST_ID_HEADER: Final = "x-request-id"


# --- Tool results (structured content; the text content is a readable rendering of it) ----------


class FoundSection(BaseModel):
    title: str = Field(description="`Page title › Heading`.")
    url: str = Field(description="Link to the section (page URL with the heading anchor).")
    version: str | None = Field(description="Docs version; null for blog posts and pages.")
    locale: str
    text: str = Field(description=f"The section's text, at most {SECTION_CHARS} characters.")
    truncated: bool


class SearchResults(BaseModel):
    query: str
    version: str | None = Field(description="The docs version searched.")
    version_label: str | None = Field(
        description="How the docs name that version (`1.1 (latest)`); null on a site with one."
    )
    covered: bool = Field(description="False when the sections may not answer the query.")
    missing_names: list[str] = Field(
        default_factory=list,
        description="Names in the query (products, tools, APIs) that none of the sections "
        "mention: the docs do not cover them.",
    )
    results: list[FoundSection]


class PageSection(BaseModel):
    heading: str | None = Field(description="Null for the text before the first heading.")
    level: int = Field(description="Heading level: 2 for `##`, 3 for `###`.")
    anchor: str | None
    url: str
    text: str


class Page(BaseModel):
    title: str
    url: str
    version: str | None
    version_label: str | None = Field(description="Null on a site with one docs version.")
    locale: str
    sections: list[PageSection] = Field(description="In reading order.")
    truncated: bool = Field(description=f"True when the page is over {PAGE_CHARS} characters.")


class Source(BaseModel):
    title: str
    url: str
    snippet: str
    version: str | None
    locale: str


class Answer(BaseModel):
    answer: str = Field(description="Cites its sources as [1], [2]… in the order of `sources`.")
    mode: Literal["llm", "retrieval_only"]
    version: str | None
    locale: str | None
    sources: list[Source]


# --- Tool arguments ---------------------------------------------------------------------------

Query = Annotated[str, Field(description="What to look for, in words (a question works too).")]
Question = Annotated[str, Field(description="The question, in plain words.")]
Version = Annotated[
    str | None,
    Field(
        description="Docs version (`1.0`, `next`, `latest`); default: the latest release. "
        "An unknown version is an error that lists the site's versions.",
    ),
]
Limit = Annotated[
    int, Field(ge=1, le=MAX_SEARCH_RESULTS, description="How many sections to return.")
]
PageUrl = Annotated[
    str,
    Field(
        description="A page URL of this site (from search_docs results or citations), any "
        "version or language; an anchor is ignored.",
    ),
]


# --- The MCP server ---------------------------------------------------------------------------


def _docs_name(settings: Settings) -> str:
    """`Acme documentation`; a title that already says so (`Acme Docs`) is kept as it is."""
    title = " ".join(settings.site_title.split())
    if title.lower().endswith(("documentation", "docs", "handbook", "manual", "guide")):
        return title
    return f"{title} documentation"


def _site(settings: Settings) -> str:
    """How tool descriptions name the docs: `the Acme documentation (https://...): what they
    cover`."""
    about = f"the {_docs_name(settings)} ({settings.site_url})"
    if settings.site_description:
        about += f": {' '.join(settings.site_description.split())}"
    return about


def build_server(settings: Settings, container: Callable[[], Container]) -> MCPServer[Any]:
    """The MCP server and its tools. `container` is called per tool call (built on first use,
    replaced after a SnapStart restore)."""
    site = _site(settings)
    # MCPServer() calls logging.basicConfig (a Rich handler at INFO on the root logger) when the
    # root logger has none; logging belongs to the entry points, so give it one for the call.
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    try:
        server: MCPServer[Any] = MCPServer(
            SERVER_NAME,
            title=_docs_name(settings),
            description=f"Search and read {site}.",
            instructions=(
                f"Answers from {site}. Use search_docs to find the sections about a topic, "
                "read_page to read a whole page from a URL, and ask_docs for a short cited "
                "answer. Cite the URLs the tools return."
            ),
            website_url=settings.site_url,
            version="0.1.0",
        )
    finally:
        if placeholder is not None:
            root.removeHandler(placeholder)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    async def search_docs(
        query: Query, version: Version = None, limit: Limit = 5
    ) -> Annotated[CallToolResult, SearchResults]:
        current = _container(container)
        # The call's one time budget (docsrag.budget): the query embedding gives up in time.
        deadline = Deadline.start(current.settings.request_time_budget_seconds)
        text = _check_text(query, current.settings, what="query")
        retriever = current.retriever
        s = current.settings
        if limit > s.retrieval_top_k:  # the same ranking, more of it
            retriever = Retriever(
                index=current.index,
                encoder=current.encoder,
                embedder=current.embedder,
                settings=s.model_copy(update={"retrieval_top_k": limit}),
            )
        try:
            retrieval = await retriever.retrieve(
                text, request=ScopeRequest(version=version), deadline=deadline
            )
        except UnknownScope as exc:
            raise _scope_error(exc) from exc
        except IndexUnavailable as exc:
            raise _unavailable(exc) from exc
        scope = retrieval.scope
        found = SearchResults(
            query=text,
            version=scope.version if scope is not None else None,
            version_label=scope.label if scope is not None else None,
            covered=retrieval.covered,
            missing_names=list(retrieval.missing_names),
            results=[_section(hit, s) for hit in retrieval.hits[:limit]],
        )
        return _result(_render_search(found), found)

    async def read_page(url: PageUrl) -> Annotated[CallToolResult, Page]:
        current = _container(container)
        s = current.settings
        path = page_path(url, s)
        if path is None:
            raise ToolError(
                f"{url.strip()[:200]!r} is not a page of this site: read_page reads pages under "
                f"{s.site_url}."
            )
        try:
            hits = await asyncio.to_thread(current.index.page_chunks, path)
            catalog = await current.retriever.catalog() if hits else None
        except IndexUnavailable as exc:
            raise _unavailable(exc) from exc
        if not hits or catalog is None:
            raise ToolError(
                f"The {_docs_name(s)} has no page at {s.public_url(path)}. Use search_docs to "
                "find the page's URL."
            )
        page = _page(hits, s, version_label=catalog.label(hits[0].meta.version))
        return _result(_render_page(page), page)

    async def ask_docs(
        question: Question, version: Version = None
    ) -> Annotated[CallToolResult, Answer]:
        current = _container(container)
        # The call's one time budget (docsrag.budget), shared by the search and the model.
        deadline = Deadline.start(current.settings.request_time_budget_seconds)
        text = _check_text(question, current.settings, what="question")
        try:
            result = await current.chat.chat(
                message=text, scope=ScopeRequest(version=version), deadline=deadline
            )
        except UnknownScope as exc:
            raise _scope_error(exc) from exc
        except IndexUnavailable as exc:
            raise _unavailable(exc) from exc
        answer = Answer(
            answer=result.answer,
            mode=result.mode,
            version=result.version,
            locale=result.locale,
            sources=[
                Source(
                    title=source.title,
                    url=source.url,
                    snippet=source.snippet,
                    version=source.version,
                    locale=source.locale,
                )
                for source in result.sources
            ],
        )
        return _result(_render_answer(answer), answer)

    server.add_tool(
        search_docs,
        title="Search the docs",
        description=(
            f"Search {site}. Returns the best-matching sections, best first, each with its "
            "title, URL (with the section's anchor), docs version and text. Use it to find how "
            "something works or which page covers it; then read_page for the whole page."
        ),
        annotations=read_only,
    )
    server.add_tool(
        read_page,
        title="Read a docs page",
        description=(
            f"Read one page of {site} from its URL: the page's text in reading order, each "
            "section with its URL. Works for any version or language of the page."
        ),
        annotations=read_only,
    )
    server.add_tool(
        ask_docs,
        title="Ask the docs",
        description=(
            f"Ask a question about {site} and get a short answer grounded in the docs, citing "
            "its sources ([1], [2]) with their URLs. Says so when the docs do not cover it."
        ),
        annotations=read_only,
    )
    return server


def _container(container: Callable[[], Container]) -> Container:
    try:
        return container()
    except IndexUnavailable as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: IndexUnavailable) -> ToolError:
    logger.error("mcp: index unavailable: %s", exc)
    return ToolError("The documentation search is unavailable right now. Try again shortly.")


def _check_text(value: str, settings: Settings, *, what: str) -> str:
    text = value.strip()
    if not text:
        raise ToolError(f"The {what} is empty.")
    limit = settings.max_message_chars
    if len(text) > limit:
        raise ToolError(f"The {what} is {len(text)} characters; the limit is {limit}.")
    return text


def _scope_error(exc: UnknownScope) -> ToolError:
    logger.info("mcp: unknown %s requested: %r", exc.what, exc.value[:64])
    if exc.what == "version" and len(exc.valid) <= 1:
        return ToolError(
            f"Unknown version {exc.value[:64]!r}: this site's docs are not versioned. Leave "
            "version out."
        )
    listed = ", ".join(exc.valid) if exc.valid else "none"
    hint = " (also `latest`; `next` or `current` for the unreleased docs)" if exc.valid else ""
    return ToolError(f"Unknown {exc.what} {exc.value[:64]!r}. This site has: {listed}{hint}.")


def _result(text: str, structured: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured.model_dump(mode="json"),
    )


def _trim(text: str, limit: int) -> tuple[str, bool]:
    text = text.strip()
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = cut.rfind(" ", limit - 200)
    return (cut[:space] if space > 0 else cut).rstrip() + " …", True


def _section(hit: Hit, settings: Settings) -> FoundSection:
    text, truncated = _trim(hit.text, SECTION_CHARS)
    return FoundSection(
        title=source_title(hit),
        url=settings.public_url(hit.path, hit.anchor),
        version=hit.meta.version,
        locale=hit.meta.locale,
        text=text,
        truncated=truncated,
    )


def page_path(url: str, settings: Settings) -> str | None:
    """The site path (`/docs/cli`, as the index stores it) of a URL of this site, or None for a
    URL of another site, outside the site's base path, or not a URL. A site path
    (`/docs/cli`) is accepted as it is."""
    try:
        parts = urlsplit(url.strip())
        site = urlsplit(settings.site_url)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        if parts.hostname != site.hostname or not _same_port(parts, site):
            return None
        path = unquote(parts.path) or "/"
        base = site.path.rstrip("/")
        if base:
            if path != base and not path.startswith(base + "/"):
                return None
            path = path[len(base) :] or "/"
    else:
        path = unquote(parts.path)
        if not path.startswith("/"):
            return None
    if "\x00" in path or len(path) > 2048:
        return None
    return path


def _same_port(url: SplitResult, site: SplitResult) -> bool:
    """Same port, a scheme's default port counting as none (http or https both accepted)."""
    try:
        given, expected = url.port, site.port
    except ValueError:
        return False
    defaults = {"http": 80, "https": 443}
    if given == defaults.get(url.scheme):
        given = None
    if expected == defaults.get(site.scheme):
        expected = None
    return given == expected


def _page(hits: Sequence[Hit], settings: Settings, *, version_label: str | None) -> Page:
    """The page's sections in reading order: merged tiny sections split apart again, the parts
    of a long section joined without the sentences the chunker repeats, at most `PAGE_CHARS`."""
    first = hits[0]
    sections: list[PageSection] = []
    used = 0
    truncated = False
    last_text = ""
    for hit in hits:
        if hit.source_key != first.source_key:
            continue  # another copy served at the same path: one page is enough
        for heading, level, anchor, text in _sections_of(hit):
            continues = bool(sections) and sections[-1].anchor == anchor
            piece = without_overlap(last_text, text) if continues else text
            last_text = text
            room = PAGE_CHARS - used
            if len(piece) > room:
                piece, truncated = _trim(piece, max(room, 0))[0], True
            used += len(piece)
            if continues:
                sections[-1].text = f"{sections[-1].text}\n\n{piece}".strip()
            else:
                sections.append(
                    PageSection(
                        heading=heading,
                        level=level,
                        anchor=anchor,
                        url=settings.public_url(hit.path, anchor),
                        text=piece,
                    )
                )
            if truncated:
                break
        if truncated:
            break
    return Page(
        title=first.page_title,
        url=settings.public_url(first.path),
        version=first.meta.version,
        version_label=version_label,
        locale=first.meta.locale,
        sections=sections,
        truncated=truncated,
    )


# A later section of a chunk that holds several (docsrag.chunking): `\n\n## Heading\n\n`.
_MERGED_HEADING = re.compile(r"\n\n(#{1,6}) ([^\n]+)\n\n")


def _sections_of(hit: Hit) -> list[tuple[str | None, int, str | None, str]]:
    """(heading, level, anchor, text) of each section a chunk holds, in order."""
    heading = hit.heading_path[-1] if hit.anchor and hit.heading_path else None
    level = len(hit.heading_path) + 1
    text = hit.text.strip()
    later = hit.anchors[1:]
    if not later:
        return [(heading, level, hit.anchor, text)]
    marks = [m for m in _MERGED_HEADING.finditer(text) if text.count("```", 0, m.start()) % 2 == 0]
    if len(marks) != len(later):  # not the shape the chunker writes: keep the chunk whole
        return [(heading, level, hit.anchor, text)]
    pieces = [(heading, level, hit.anchor, text[: marks[0].start()].strip())]
    for index, (mark, anchor) in enumerate(zip(marks, later, strict=True)):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        pieces.append((mark.group(2).strip(), len(mark.group(1)), anchor, text[mark.end() : end]))
    return [(h, lv, a, t.strip()) for h, lv, a, t in pieces]


def without_overlap(previous: str, text: str, *, min_chars: int = 16) -> str:
    """`text` without its opening sentences that end `previous` (the chunker repeats the last
    sentences of a long section's part at the start of the next one)."""
    longest = min(len(previous), len(text) - 1)
    for size in range(longest, min_chars - 1, -1):
        if text[size].isspace() and previous.endswith(text[:size]):
            return text[size:].lstrip()
    return text


# --- Text renderings (what the model reads) ---------------------------------------------------


def _render_search(found: SearchResults) -> str:
    if not found.results:
        return f"No sections of the docs match {found.query!r}."
    lines = [f"Docs version: {found.version_label}\n"] if found.version_label else []
    if found.missing_names:
        names = ", ".join(found.missing_names)
        lines.append(f"Note: the docs never mention {names}; these sections may not answer it.\n")
    elif not found.covered:
        lines.append(
            "Note: these sections may not answer the query (few of its words appear in them).\n"
        )
    for number, section in enumerate(found.results, start=1):
        version = f"Version: {section.version}\n" if found.version_label and section.version else ""
        lines.append(
            f"## {number}. {section.title}\nURL: {section.url}\n{version}\n{section.text}\n"
        )
    return "\n".join(lines).rstrip()


def _render_page(page: Page) -> str:
    lines = [f"# {page.title}", f"URL: {page.url}"]
    if page.version_label:
        lines.append(f"Version: {page.version_label}")
    lines.append("")
    for section in page.sections:
        if section.heading:
            lines.append(f"{'#' * section.level} {section.heading}\nURL: {section.url}\n")
        lines.append(section.text + "\n")
    if page.truncated:
        lines.append(f"(The page is longer than {PAGE_CHARS} characters; the rest is left out.)")
    return "\n".join(lines).rstrip()


def _render_answer(answer: Answer) -> str:
    lines = [answer.answer.strip()]
    if answer.sources:
        lines.append("\nSources:")
        lines += [
            f"[{number}] {source.title}: {source.url}"
            for number, source in enumerate(answer.sources, start=1)
        ]
    return "\n".join(lines)


# --- The /mcp endpoint ------------------------------------------------------------------------


class MCPEndpoint:
    """The ASGI app behind `/mcp`: protection (see the module docstring), then the SDK's
    stateless Streamable HTTP transport. `settings`, `container` and `limiter` are called per
    request (built on first use, replaced after a SnapStart restore)."""

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        container: Callable[[], Container],
        limiter: Callable[[], RateLimiter],
    ) -> None:
        self._settings = settings
        self._container = container
        self._limiter = limiter
        self._server: MCPServer[Any] | None = None
        self._server_key: tuple[object, ...] = ()

    def server(self, settings: Settings) -> MCPServer[Any]:
        """The MCP server (tool schemas take ~70 ms to build): built once, again only when the
        settings its descriptions quote change (after a SnapStart restore they usually do not)."""
        key = (settings.site_title, settings.site_description, settings.site_url)
        if self._server is None or self._server_key != key:
            self._server = build_server(settings, self._container)
            self._server_key = key
        return self._server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self._settings()
        if not settings.mcp_enabled:
            await _error(scope, receive, send, 404, "not_found", "Not Found")
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in settings.cors_origins:
            logger.info("mcp: refused a browser request from %r", origin[:200])
            await _error(
                scope,
                receive,
                send,
                403,
                "forbidden_origin",
                "Browsers may call this MCP server only from the origins in CORS_ORIGINS.",
            )
            return
        if scope["method"] != "POST":
            await _error(
                scope,
                receive,
                send,
                405,
                "method_not_allowed",
                "This MCP server is stateless: send every message with POST (no server stream, "
                "no sessions to delete).",
                headers={"allow": "POST"},
            )
            return
        client = client_ip(scope)
        try:
            await self._limiter().acquire(f"mcp#{client}")
        except RateLimited as exc:
            logger.info("mcp: rate limited %s", client)
            limit = settings.mcp_rate_limit_per_minute
            await _error(
                scope,
                receive,
                send,
                429,
                "rate_limited",
                f"Too many requests: at most {limit} a minute from one address. "
                f"Try again in {exc.retry_after} seconds.",
                headers={"retry-after": str(exc.retry_after)},
            )
            return
        except IndexUnavailable as exc:  # building the container (and limiter) failed
            logger.error("mcp: index unavailable: %s", exc)
            await _error(
                scope,
                receive,
                send,
                503,
                "index_unavailable",
                "The documentation search is unavailable right now. Please try again shortly.",
            )
            return
        if settings.mcp_bearer_token is not None and not bearer_matches(
            headers.get("authorization"), settings.mcp_bearer_token.get_secret_value()
        ):
            logger.info("mcp: refused a request without a valid bearer token from %s", client)
            await _error(
                scope,
                receive,
                send,
                401,
                "unauthorized",
                "This MCP server needs `Authorization: Bearer <token>` with a valid token.",
                headers={"www-authenticate": 'Bearer realm="mcp"'},
            )
            return
        limit = settings.mcp_max_request_bytes
        body = await read_body(scope, receive, limit)
        if body is None:
            await _error(
                scope,
                receive,
                send,
                413,
                "payload_too_large",
                f"The request body is over the limit of {limit} bytes.",
            )
            return
        manager = StreamableHTTPSessionManager(
            app=self.server(settings)._lowlevel_server,  # the SDK's own Client does the same
            json_response=True,
            stateless=True,
            max_request_body_size=limit,
        )
        async with manager.run():
            await manager.handle_request(scope, _replay(body, receive), send)


def mcp_route(
    *,
    settings: Callable[[], Settings],
    container: Callable[[], Container],
    limiter: Callable[[], RateLimiter],
) -> Route:
    """The `/mcp` route for the app (`GET` and `DELETE` only to answer 405). The MCP server is
    built now, with the app: on Lambda in the init phase (in the SnapStart snapshot), not in the
    first request."""
    endpoint = MCPEndpoint(settings=settings, container=container, limiter=limiter)
    current = settings()
    if current.mcp_enabled:
        endpoint.server(current)
    return Route(MCP_PATH, endpoint=endpoint, methods=list(MCP_METHODS), include_in_schema=False)


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether `Authorization: Bearer <token>` carries `token` (compared in constant time)."""
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is over `limit` bytes (declared in
    `Content-Length`, or counted while reading: chunked bodies too)."""
    declared = Headers(scope=scope).get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the SDK sees an empty body
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            break
    return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then whatever the server sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    """The API's error shape (see `docsrag.api`); the request id middleware set the id."""
    state = scope.get("state") or {}
    request_id = state.get("request_id") if isinstance(state, dict) else None
    if not isinstance(request_id, str):
        request_id = uuid.uuid4().hex
    response = JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "request_id": request_id}},
        headers={_REQUEST_ID_HEADER: request_id, **(headers or {})},
    )
    await response(scope, receive, send)
