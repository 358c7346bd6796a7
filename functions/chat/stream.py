"""Streaming chat Lambda: the FastAPI app under uvicorn, behind the AWS Lambda Web Adapter.

The adapter (a Lambda extension from its layer) runs `chat/run.sh`, waits until
`GET /_lwa/ready` answers, then forwards each Function URL request to uvicorn over loopback and
streams the response back as it is written (`AWS_LWA_INVOKE_MODE=response_stream`), so the
widget shows an answer while the model writes it. `chat.app` (Mangum behind the HTTP API) serves
the same app buffered.

`app` below is the ASGI application uvicorn serves: the docsrag app behind `FunctionUrlApp`,
which only lets the widget's routes through (the Function URL has no per-route throttling), takes
the Lambda request id as the request id, answers the adapter's readiness check and its SnapStart
after-restore hook, and flushes metrics after each request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aws_lambda_powertools import Logger
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docsrag.api import ContainerProvider, create_app
from docsrag.aws.runtime import lambda_settings, share_logging
from docsrag.aws.secrets import clear_secret_cache
from docsrag.telemetry import metrics

# What the Function URL serves: the widget's routes and the health check. Everything else (the
# JSON API, MCP, llms.txt) stays behind the HTTP API and its route throttling.
STREAMED_PATHS = frozenset({"/chatkit", "/session", "/health"})
# The adapter's readiness check (AWS_LWA_READINESS_CHECK_PATH): the app is imported and uvicorn
# listens; Qdrant and the model are not touched, so an outage of either cannot stop a cold start.
READY_PATH = "/_lwa/ready"
# The adapter's SnapStart hook (AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH), POSTed after a restore.
AFTER_RESTORE_PATH = "/_lwa/after-restore"
# Set by the adapter on every invocation it forwards (and overwritten if a caller sends it).
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"

logger = Logger()
share_logging(logger)
log = logging.getLogger("docsrag.stream")


class FunctionUrlApp:
    """The docsrag app as the Function URL serves it (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        after_restore: Callable[[], None],
        paths: frozenset[str] = STREAMED_PATHS,
    ) -> None:
        self.app = app
        self.after_restore = after_restore
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        lambda_request = headers.get(REQUEST_CONTEXT_HEADER)
        if path == READY_PATH:
            await JSONResponse({"status": "ready"})(scope, receive, send)
        elif path == AFTER_RESTORE_PATH and lambda_request is None:
            # Only the adapter itself calls without a request context (it refuses the hook path
            # from outside too).
            self.after_restore()
            await Response(status_code=204)(scope, receive, send)
        elif path not in self.paths:
            await _not_served(scope, receive, send, path=path)
        else:
            await self._serve(_with_lambda_request_id(scope, lambda_request), receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        logger.set_correlation_id(Headers(scope=scope).get("x-request-id"))
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except (ClientDisconnect, OSError) as exc:
            # The visitor closed the tab or lost the connection mid-answer: nothing failed on
            # our side, and nobody is left to read an error.
            if not started and not isinstance(exc, ClientDisconnect):
                raise
            log.info("client disconnected from %s before the response ended", scope["path"])
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            logger.set_correlation_id(None)


def _with_lambda_request_id(scope: Scope, lambda_request: str | None) -> Scope:
    """The request with the Function URL's request id as `x-request-id` (echoed to the caller and
    used in logs), as `chat.app` takes API Gateway's."""
    if lambda_request is None:
        return scope
    try:
        request_id = json.loads(lambda_request).get("requestId")
    except (ValueError, AttributeError):
        return scope
    if not isinstance(request_id, str) or not request_id.isprintable() or len(request_id) > 128:
        return scope
    raw = [(k, v) for k, v in scope["headers"] if k.lower() != b"x-request-id"]
    raw.append((b"x-request-id", request_id.encode()))
    return {**scope, "headers": raw}


async def _not_served(scope: Scope, receive: Receive, send: Send, *, path: str) -> None:
    message = f"{path[:200]} is not served on the streaming URL; use the API URL (ApiUrl) for it."
    request_id = Headers(scope=scope).get("x-request-id") or "-"
    error = {"code": "not_found", "message": message, "request_id": request_id}
    await JSONResponse({"error": error}, status_code=404)(scope, receive, send)


docs_app = create_app(settings=lambda_settings())


def _rebuild_after_restore() -> None:
    """After a SnapStart restore: forget the secrets cached in the snapshot and rebuild the
    clients on the next request (a snapshot must not keep sockets or stale credentials)."""
    clear_secret_cache()
    provider: ContainerProvider = docs_app.state.provider
    provider.reset(lambda_settings())


app = FunctionUrlApp(docs_app, after_restore=_rebuild_after_restore)
