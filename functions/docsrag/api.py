"""The FastAPI app shared by `docsrag serve` and the chat Lambda (through Mangum).

Routes translate HTTP to the chat service and back; every error leaves as JSON
`{"error": {"code", "message", "request_id"}}` with the right status and an `x-request-id` header.
The ChatKit widget's routes (`POST /session`, `POST /chatkit`) live in `docsrag.chatkit.routes`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal

from chatkit.store import NotFoundError
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docsrag.answering import ChatTurn
from docsrag.budget import Deadline
from docsrag.chatkit.ratelimit import RateLimited, client_ip
from docsrag.chatkit.routes import PAGE_URL_HEADER, chatkit_router
from docsrag.chatkit.server import InputTooLarge, InvalidChatKitRequest
from docsrag.chatkit.stores import StoreUnavailable
from docsrag.chatkit.visitor import InvalidVisitorToken
from docsrag.config import Settings, load_settings
from docsrag.container import Container
from docsrag.errors import DocsRagError, IndexUnavailable
from docsrag.llms_routes import llms_txt_router
from docsrag.mcp_server import MCP_CORS_HEADERS, mcp_route
from docsrag.scope import ScopeRequest, UnknownScope

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"


# --- Edge models ------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    message: str = Field(min_length=1, description="The visitor's question.")
    history: list[ChatTurn] = Field(
        default_factory=list, description="Earlier turns, oldest first (optional)."
    )
    page_url: str | None = Field(
        default=None,
        max_length=2048,
        description="The page the visitor is on: answers come from its docs version and locale. "
        "A URL of another site is ignored.",
    )
    version: str | None = Field(
        default=None,
        max_length=64,
        description="Docs version to answer from (`1.0`, `next`, `latest`); wins over page_url.",
    )
    locale: str | None = Field(
        default=None, max_length=35, description="Locale to answer in (`fr`); wins over page_url."
    )


class SourcePublic(BaseModel):
    title: str
    url: str
    anchor: str | None
    snippet: str
    version: str | None = Field(description="Docs version of the section; null for blog posts.")
    locale: str


class ChatResponse(BaseModel):
    answer: str
    sources: list[SourcePublic]
    mode: Literal["llm", "retrieval_only"]
    version: str | None = Field(default=None, description="The docs version the answer is about.")
    locale: str | None = None


class ApiError(Exception):
    """An error the API reports as-is to the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --- Container provider: built once, retried while Qdrant is unreachable -------------------------


class ContainerProvider:
    """Builds the `Container` on first use and keeps it for the life of the process.

    When Qdrant is unreachable at start, requests get a 503 and the next request tries again, so
    a Lambda container or a local server recovers without a restart.
    """

    def __init__(self, settings: Settings, container: Container | None = None) -> None:
        self.settings = settings
        self._container = container
        self._lock = threading.Lock()

    def get(self) -> Container:
        if self._container is None:
            with self._lock:
                if self._container is None:
                    self._container = Container.build(self.settings)
        return self._container

    def reset(self, settings: Settings) -> None:
        """Use `settings` from now on and build a new container on the next request (after a
        SnapStart restore: fresh clients and secrets). The ChatKit routes follow too."""
        with self._lock:
            old, self._container = self._container, None
            self.settings = settings
        if old is not None:
            old.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _provider(request: Request) -> ContainerProvider:
    provider: ContainerProvider = request.app.state.provider
    return provider


def _container(provider: Annotated[ContainerProvider, Depends(_provider)]) -> Container:
    return provider.get()


ContainerDep = Annotated[Container, Depends(_container)]


# --- Helpers ----------------------------------------------------------------------------------


def _request_id(request: Request) -> str:
    existing = getattr(request.state, "request_id", None)
    if isinstance(existing, str):
        return existing
    event = request.scope.get("aws.event")
    if isinstance(event, dict):
        context = event.get("requestContext") or {}
        if isinstance(context, dict) and isinstance(context.get("requestId"), str):
            return str(context["requestId"])
    header = request.headers.get(REQUEST_ID_HEADER)
    if header and len(header) <= 128 and header.isprintable():
        return header
    return uuid.uuid4().hex


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **details: object,
) -> JSONResponse:
    """The one error shape; `details` add fields to it (`valid`: the accepted values)."""
    request_id = _request_id(request)
    error = {"code": code, "message": message, "request_id": request_id, **details}
    return JSONResponse(
        status_code=status,
        content={"error": error},
        headers={REQUEST_ID_HEADER: request_id, **(headers or {})},
    )


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return 400, "invalid_json", "The request body is not valid JSON."
    parts = []
    for error in errors[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return 422, "invalid_request", "Invalid request: " + "; ".join(parts)


def max_body_bytes(settings: Settings) -> int:
    """Largest request body accepted: message and history budgets in UTF-8, plus JSON framing."""
    return 4 * (settings.max_message_chars + settings.max_history_chars) + 64 * 1024


class RequestContextMiddleware:
    """Gives every request an id (echoed in `x-request-id`) and refuses bodies over the limit.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware` relays
    every chunk of a streamed response through an extra memory stream, a real cost for the
    ChatKit event streams.
    """

    def __init__(self, app: ASGIApp, *, body_limit: int) -> None:
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request_id = _request_id(request)
        request.state.request_id = request_id
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.body_limit:
            response = _error(
                request,
                413,
                "payload_too_large",
                f"The request body is {int(length)} bytes; the limit is {self.body_limit} bytes.",
            )
            await response(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        # The limit holds for the bytes actually read too: a chunked body has no Content-Length.
        received = 0
        limit = self.body_limit

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(
                        413, detail=f"The request body is over the limit of {limit} bytes."
                    )
            return message

        await self.app(scope, receive_counted, send_with_id)


# --- App factory ------------------------------------------------------------------------------


def create_app(*, settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or (container.settings if container else load_settings())
    provider = ContainerProvider(settings, container)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        provider.close()

    app = FastAPI(
        lifespan=lifespan,
        title="docsrag",
        summary="Answers questions from a Docusaurus documentation site, with cited sections.",
        version="0.1.0",
    )
    app.state.provider = provider
    body_limit = max_body_bytes(settings)

    app.add_middleware(RequestContextMiddleware, body_limit=body_limit)

    if not settings.cors_via_gateway:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "content-type",
                "authorization",
                "x-visitor-token",
                REQUEST_ID_HEADER,
                PAGE_URL_HEADER,
                *MCP_CORS_HEADERS,
            ],
            expose_headers=[REQUEST_ID_HEADER, "retry-after"],
            max_age=600,
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and not content_type.lower().startswith("application/json"):
            return _error(
                request,
                415,
                "unsupported_media_type",
                f"Send the body as JSON with Content-Type: application/json "
                f"(got {content_type[:80] or 'no Content-Type'}).",
            )
        status, code, message = _describe_validation(exc)
        return _error(request, status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own errors (unknown path, wrong method, unreadable body) in the one
        error shape, with the request id."""
        codes = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }
        messages = {
            404: f"No such endpoint: {request.method} {request.url.path[:200]}.",
            405: f"{request.method} is not allowed on {request.url.path[:200]}.",
        }
        message = messages.get(exc.status_code) or str(exc.detail)[:300]
        headers = dict(exc.headers or {})
        return _error(
            request,
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            message,
            headers=headers or None,
        )

    @app.exception_handler(InvalidVisitorToken)
    async def _invalid_visitor(request: Request, exc: InvalidVisitorToken) -> JSONResponse:
        return _error(
            request,
            401,
            "invalid_visitor_token",
            "The visitor token is missing, invalid or expired. Get a new one from POST /session.",
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(request, 404, "not_found", "No such thread or item.")

    @app.exception_handler(InvalidChatKitRequest)
    async def _invalid_chatkit(request: Request, exc: InvalidChatKitRequest) -> JSONResponse:
        return _error(request, 400, "invalid_request", str(exc))

    @app.exception_handler(InputTooLarge)
    async def _too_large(request: Request, exc: InputTooLarge) -> JSONResponse:
        return _error(request, 413, "payload_too_large", str(exc))

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        headers = {"retry-after": str(exc.retry_after)}
        return _error(request, 429, "rate_limited", str(exc), headers)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        logger.error("thread store unavailable: %s", exc, exc_info=exc)
        return _error(
            request,
            503,
            "store_unavailable",
            "Conversations are unavailable right now. Please try again shortly.",
        )

    @app.exception_handler(IndexUnavailable)
    async def _index_unavailable(request: Request, exc: IndexUnavailable) -> JSONResponse:
        logger.error("index unavailable: %s", exc, exc_info=exc)
        return _error(
            request,
            503,
            "index_unavailable",
            "The documentation search is unavailable right now. Please try again shortly.",
        )

    @app.exception_handler(UnknownScope)
    async def _unknown_scope(request: Request, exc: UnknownScope) -> JSONResponse:
        logger.info("unknown %s requested: %r", exc.what, exc.value[:64])
        return _error(request, 422, f"unknown_{exc.what}", str(exc), valid=list(exc.valid))

    @app.exception_handler(DocsRagError)
    async def _domain_error(request: Request, exc: DocsRagError) -> JSONResponse:
        logger.error("request failed: %s", exc, exc_info=exc)
        return _error(request, 500, "internal_error", "Something went wrong on our side.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error", exc_info=exc)
        return _error(request, 500, "internal_error", "Something went wrong on our side.")

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        """Liveness plus what the service can do right now (search mode, LLM, index size)."""
        provider: ContainerProvider = request.app.state.provider
        llm = "configured" if settings.llm_enabled else "not_configured"
        body: dict[str, Any] = {
            "status": "ok",
            "llm": llm,
            "search": "hybrid" if settings.llm_enabled else "bm25",
        }
        if not settings.llm_enabled:
            body["notice"] = (
                "OPENROUTER_API_KEY is not set: search uses BM25 only and answers are "
                "retrieval-only."
            )
        try:
            container = provider.get()
            body["index"] = {
                "collection": settings.collection_name,
                "chunks": container.index.count_chunks(),
            }
        except IndexUnavailable as exc:
            logger.error("health: index unavailable: %s", exc)
            body["status"] = "unavailable"
            # The cause stays in the log: anonymous callers get a stable code only.
            body["index"] = {"collection": settings.collection_name, "code": "index_unavailable"}
            return JSONResponse(status_code=503, content=body)
        return JSONResponse(content=body)

    @app.post("/chat", response_model=ChatResponse)
    async def chat(payload: ChatRequest, container: ContainerDep, request: Request) -> ChatResponse:
        """Answer one question from the docs, with the sections it used."""
        # The request's one time budget, from now (on Lambda: within the invocation's time).
        deadline = Deadline.start(
            container.settings.request_time_budget_seconds,
            lambda_context=request.scope.get("aws.context"),
        )
        limit = container.settings.max_message_chars  # the current settings, after a reset too
        message = payload.message.strip()
        if not message:
            raise ApiError(422, "invalid_request", "message must not be blank.")
        if len(message) > limit:
            raise ApiError(
                413,
                "message_too_long",
                f"The message is {len(message)} characters; the limit is {limit}.",
            )
        # The answerer trims the history to the configured budgets (`history_input`).
        # Charged once the request is valid (errors above cost no quota), per client IP.
        await container.chat_rate_limiter().acquire(f"chat#{client_ip(request.scope)}")
        scope = ScopeRequest(
            page_url=payload.page_url, version=payload.version, locale=payload.locale
        )
        result = await container.chat.chat(
            message=message, history=payload.history, scope=scope, deadline=deadline
        )
        return ChatResponse(
            answer=result.answer,
            sources=[SourcePublic(**asdict(source)) for source in result.sources],
            mode=result.mode,
            version=result.version,
            locale=result.locale,
        )

    app.include_router(
        chatkit_router(
            settings=lambda: provider.settings,
            server=lambda: provider.get().chatkit_server(),
            limiter=lambda: provider.get().rate_limiter(),
            max_body_bytes=body_limit,
            session_limiter=lambda: provider.get().session_rate_limiter(),
        )
    )
    # GET /llms.txt and /llms-full.txt for coding assistants (docsrag.llms_routes).
    app.include_router(llms_txt_router(container=provider.get))
    # The docs as an MCP server for coding assistants (docsrag.mcp_server).
    app.router.routes.append(
        mcp_route(
            settings=lambda: provider.settings,
            container=provider.get,
            limiter=lambda: provider.get().mcp_rate_limiter(),
        )
    )
    return app
