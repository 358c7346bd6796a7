"""The chat use case: retrieve sections, answer from them, shape the public result.

Shared by `POST /chat`, the CLI's `ask` and (through the same retriever and answerer) ChatKit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from docsrag import telemetry
from docsrag.answering import Answer, Answerer, ChatTurn
from docsrag.answering import snippet as answering_snippet
from docsrag.budget import Deadline
from docsrag.config import Settings
from docsrag.models import Hit
from docsrag.retrieval import Retriever
from docsrag.scope import ScopeRequest

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 280


@dataclass(frozen=True, slots=True)
class SourceLink:
    title: str
    url: str
    anchor: str | None
    snippet: str
    version: str | None  # docs version name; None for blog posts and pages
    locale: str


@dataclass(frozen=True, slots=True)
class ChatResult:
    answer: str
    sources: list[SourceLink]
    mode: Literal["llm", "retrieval_only"]
    covered: bool
    notice: str | None
    usage: dict[str, int] | None
    latency_ms: float
    version: str | None = None  # the docs version the question was answered from
    locale: str | None = None


def snippet(text: str) -> str:
    """The first words of a section for a source link (longer than the ones in the prompt)."""
    return answering_snippet(text, limit=SNIPPET_CHARS)


def source_title(hit: Hit) -> str:
    """`Page title › Heading` for a section, or the page title for a page's lead-in."""
    if hit.heading_path:
        return f"{hit.page_title} › {hit.heading_path[-1]}"
    return hit.page_title


def to_source_link(hit: Hit, *, settings: Settings) -> SourceLink:
    return SourceLink(
        title=source_title(hit),
        url=settings.public_url(hit.path, hit.anchor),
        anchor=hit.anchor,
        snippet=snippet(hit.text),
        version=hit.meta.version,
        locale=hit.meta.locale,
    )


class ChatService:
    def __init__(self, *, retriever: Retriever, answerer: Answerer, settings: Settings) -> None:
        self._retriever = retriever
        self._answerer = answerer
        self._settings = settings

    async def chat(
        self,
        *,
        message: str,
        history: Sequence[ChatTurn] = (),
        scope: ScopeRequest | None = None,
        deadline: Deadline | None = None,
    ) -> ChatResult:
        """Answer `message` from the docs version and locale `scope` points at (see
        `docsrag.scope`); raises `UnknownScope` for a version or locale the site lacks.

        The query embedding and the model share `deadline` (made by the caller when the request
        arrived; else `REQUEST_TIME_BUDGET_SECONDS` from now): when it passes, the answer is the
        retrieval-only one, with its sources and a notice."""
        started = time.perf_counter()
        if deadline is None:
            deadline = Deadline.start(self._settings.request_time_budget_seconds)
        retrieval = await self._retriever.retrieve(message, history, scope, deadline=deadline)
        resolved = retrieval.scope
        answer: Answer
        if retrieval.covered and retrieval.hits:
            answer = await self._answerer.answer(
                question=message,
                history=history,
                hits=retrieval.hits,
                version_label=resolved.label if resolved is not None else None,
                deadline=deadline,
            )
        else:
            answer = self._answerer.not_covered(retrieval.missing_names)
        latency_ms = (time.perf_counter() - started) * 1000
        telemetry.record_answer(mode=answer.mode, latency_ms=answer.latency_ms, usage=answer.usage)
        logger.info(
            "answered",
            extra={
                "mode": answer.mode,
                "covered": retrieval.covered,
                "dense_used": retrieval.dense_used,
                "hits": len(retrieval.hits),
                "sources": len(answer.sources),
                "latency_ms": round(latency_ms, 1),
            },
        )
        return ChatResult(
            answer=answer.text,
            sources=[to_source_link(hit, settings=self._settings) for hit in answer.sources],
            mode=answer.mode,
            covered=retrieval.covered,
            notice=answer.notice,
            usage=answer.usage,
            latency_ms=latency_ms,
            version=resolved.version if resolved is not None else None,
            locale=resolved.locale if resolved is not None else None,
        )
