"""HTTP routes of the ChatKit widget: `POST /session` (visitor tokens) and `POST /chatkit`.

`POST /session` issues a signed visitor token (`docsrag.chatkit.visitor`). Sent with a valid token
in `x-visitor-token`, it renews that token for the same visitor; with none, or an invalid or expired
one, it starts a new visitor. Tokens live in the browser; the signing keys are a secret
(`VISITOR_TOKEN_KEYS`).

`POST /chatkit` is ChatKit's single endpoint. Every request needs a valid token (else 401); the
visitor id taken from it scopes every store query. Before chatkit runs the request is checked
(400 malformed or unsupported, 413 too long) and, when it asks for an answer, counted against the
visitor's rate limit (429 with `Retry-After`). Streaming results go out as `text/event-stream`,
the rest as JSON. chatkit does nothing for a streaming request until its body is read, so the first
event is pulled before the response starts: a missing thread is still a real 404, not a broken
stream.

Errors leave as typed exceptions; the app maps them to statuses (`docsrag.api`).

No `from __future__ import annotations` here: FastAPI must see the routes' dependency annotations,
which name closures of `chatkit_router`, as objects.
"""

import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Final

from chatkit.server import StreamingResult
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from docsrag.budget import Deadline
from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.ratelimit import RateLimiter, client_ip
from docsrag.chatkit.server import ANSWERING_REQUESTS, DocsChatKitServer, InputTooLarge
from docsrag.chatkit.visitor import InvalidVisitorToken, issue_token, verify_token
from docsrag.config import Settings

logger = logging.getLogger(__name__)

VISITOR_HEADER: Final = "x-visitor-token"
PAGE_URL_HEADER: Final = "x-docs-page-url"  # the page the visitor is on (see docsrag.scope)
MAX_PAGE_URL_CHARS: Final = 2048
_SECONDS_PER_DAY: Final = 86_400
_STREAM_HEADERS: Final = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class SessionPublic(BaseModel):
    token: str
    """Send it as the `x-visitor-token` header of every ChatKit request."""
    expires_at: int
    """Epoch seconds. Renew before then by calling `/session` with the token."""
    renewed: bool
    """True when the token sent was valid: the same visitor (and threads) continues."""


class SigningKeys:
    """The keys that sign and verify visitor tokens: `VISITOR_TOKEN_KEYS` (the first signs, all
    verify), or when unset one random key for the life of the process, with a warning."""

    def __init__(self) -> None:
        self._random: bytes | None = None

    def __call__(self, settings: Settings) -> tuple[bytes, ...]:
        if settings.visitor_token_keys:
            return tuple(key.get_secret_value().encode() for key in settings.visitor_token_keys)
        if self._random is None:
            logger.warning(
                "VISITOR_TOKEN_KEYS is not set: visitor tokens are signed with a random key that "
                "lives as long as this process, so visitors lose their threads on restart (and "
                "tokens from one Lambda container fail in another). Set it outside local "
                "development."
            )
            self._random = secrets.token_bytes(32)
        return (self._random,)


def chatkit_router(
    *,
    settings: Callable[[], Settings],
    server: Callable[[], DocsChatKitServer],
    limiter: Callable[[], RateLimiter],
    max_body_bytes: int,
    session_limiter: Callable[[], RateLimiter] | None = None,
) -> APIRouter:
    """The `/session` and `/chatkit` routes. `settings`, `server` and `limiter` are called per
    request (the caller builds them on first use, caches them, and may swap them)."""
    router = APIRouter(tags=["chatkit"])
    signing_keys = SigningKeys()

    async def visitor(
        request: Request,
        token: Annotated[str | None, Header(alias=VISITOR_HEADER)] = None,
        page_url: Annotated[str | None, Header(alias=PAGE_URL_HEADER)] = None,
    ) -> RequestContext:
        # The request's one time budget, from now (on Lambda: within the invocation's time).
        deadline = Deadline.start(
            settings().request_time_budget_seconds,
            lambda_context=request.scope.get("aws.context"),
        )
        if not token:
            raise InvalidVisitorToken(
                f"a visitor token is required in the {VISITOR_HEADER} header (POST /session)",
                reason="malformed",
            )
        visitor_id = verify_token(token, key=signing_keys(settings()))
        if page_url is not None and len(page_url) > MAX_PAGE_URL_CHARS:
            page_url = None  # ignored like any URL this cannot read, never an error
        return RequestContext(visitor_id=visitor_id, page_url=page_url, deadline=deadline)

    @router.post("/session", response_model=SessionPublic)
    async def session(
        request: Request,
        response: Response,
        token: Annotated[str | None, Header(alias=VISITOR_HEADER)] = None,
    ) -> SessionPublic:
        """A visitor token: the same visitor renewed when a valid token is sent, else a new one."""
        if session_limiter is not None:  # per client IP: tokens are not minted at speed
            await session_limiter().acquire(f"session#{client_ip(request.scope)}")
        current = settings()
        keys = signing_keys(current)
        visitor_id = None
        if token:
            try:
                visitor_id = verify_token(token, key=keys)
            except InvalidVisitorToken as exc:
                logger.info("session: %s token replaced by a new visitor", exc.reason)
        ttl_seconds = current.visitor_token_ttl_days * _SECONDS_PER_DAY
        issued = issue_token(key=keys, ttl_seconds=ttl_seconds, visitor_id=visitor_id)
        response.headers["cache-control"] = "no-store"
        return SessionPublic(
            token=issued.token, expires_at=issued.expires_at, renewed=visitor_id is not None
        )

    @router.post("/chatkit")
    async def chatkit(
        request: Request, context: Annotated[RequestContext, Depends(visitor)]
    ) -> Response:
        """ChatKit's protocol endpoint (threads, items, streamed answers)."""
        body = await request.body()
        if len(body) > max_body_bytes:
            raise InputTooLarge(
                f"The request body is {len(body)} bytes; the limit is {max_body_bytes} bytes."
            )
        chat_server = server()
        parsed = chat_server.parse_request(body)
        await chat_server.preflight(parsed, context)
        # Charged only once the request is valid and its thread the visitor's own: a request
        # that ends in 400/404 costs no quota.
        if isinstance(parsed, ANSWERING_REQUESTS):
            await limiter().acquire(context.visitor_id)
        result = await chat_server.process_request(parsed, context)
        if isinstance(result, StreamingResult):
            stream = await started_stream(result.json_events)
            return StreamingResponse(
                stream, media_type="text/event-stream", headers=_STREAM_HEADERS
            )
        return Response(content=result.json, media_type="application/json")

    return router


async def started_stream(events: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """`events` with its first item already produced, so errors before it raise here."""
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise

    async def chained() -> AsyncIterator[bytes]:
        try:
            if first is None:
                return
            yield first
            async for chunk in events:
                yield chunk
        finally:
            await events.aclose()

    return chained()
