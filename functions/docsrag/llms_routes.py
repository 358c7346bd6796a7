"""`GET /llms.txt` and `GET /llms-full.txt`: the docs for coding assistants (`docsrag.llms_txt`).

Plain text (`text/plain; charset=utf-8`) with `Cache-Control: public, max-age=300`. Each file is
built from the index at most once per `CACHE_SECONDS` per process (a chat Lambda container, or
`docsrag serve`); a new container (after a SnapStart restore) builds it again. An index that
cannot be reached raises `IndexUnavailable`, which the app answers as it does for `POST /chat`
(`503 index_unavailable`); an empty index gives a valid file without links.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Final

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from docsrag.container import Container
from docsrag.llms_txt import FULL_TEXT_MAX_BYTES, build_llms_full_txt, build_llms_txt

CACHE_SECONDS: Final = 300
MCP_PATH: Final = "/mcp"  # where `docsrag.api` serves the MCP server (when MCP_ENABLED)


def llms_txt_router(*, container: Callable[[], Container]) -> APIRouter:
    """The two routes; `container` gives the current container (and raises `IndexUnavailable`
    when Qdrant cannot be reached)."""
    router = APIRouter()
    cache: dict[str, tuple[Container, float, str]] = {}
    lock = threading.Lock()

    def cached(name: str, build: Callable[[Container], str]) -> str:
        current = container()
        with lock:
            entry = cache.get(name)
        now = time.monotonic()
        if entry is not None and entry[0] is current and now - entry[1] < CACHE_SECONDS:
            return entry[2]
        text = build(current)
        with lock:
            cache[name] = (current, now, text)
        return text

    def llms(current: Container) -> str:
        return build_llms_txt(current.index, current.settings, mcp_url=_mcp_url(current))

    def llms_full(current: Container) -> str:
        full = build_llms_full_txt(
            current.index,
            current.settings,
            mcp_url=_mcp_url(current),
            max_bytes=FULL_TEXT_MAX_BYTES,
        )
        return full.text

    @router.get("/llms.txt", response_class=PlainTextResponse)
    async def llms_txt() -> PlainTextResponse:
        """The docs of the default version and locale as an llms.txt link list."""
        text = await asyncio.to_thread(cached, "llms.txt", llms)
        return _text(text)

    @router.get("/llms-full.txt", response_class=PlainTextResponse)
    async def llms_full_txt() -> PlainTextResponse:
        """The same pages with their full indexed text, in the order llms.txt lists them."""
        text = await asyncio.to_thread(cached, "llms-full.txt", llms_full)
        return _text(text)

    return router


def _mcp_url(current: Container) -> str | None:
    return MCP_PATH if current.settings.mcp_enabled else None


def _text(text: str) -> PlainTextResponse:
    return PlainTextResponse(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"cache-control": f"public, max-age={CACHE_SECONDS}"},
    )
