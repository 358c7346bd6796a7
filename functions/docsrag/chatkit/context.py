"""The per-request context that ChatKit passes to the server and to every store call."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from docsrag.budget import Deadline

_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking. Every store query is scoped to `visitor_id`.

    The visitor id comes from a verified visitor token (`docsrag.chatkit.visitor`), never from the
    request body. It is restricted to `[A-Za-z0-9_-]` so it can be embedded in storage keys
    without any escaping.
    """

    visitor_id: str
    # The page the visitor is on (the widget's `x-docs-page-url` header): untrusted, used only
    # to pick the docs version and locale a question is answered from (`docsrag.scope`).
    page_url: str | None = None
    # The request's time budget (`docsrag.budget`), started when the request arrived: a turn
    # ends, its answer stored, before it passes.
    deadline: Deadline = field(default_factory=Deadline.unbounded)

    def __post_init__(self) -> None:
        if not _VISITOR_ID.fullmatch(self.visitor_id):
            raise ValueError("visitor_id must be 1-128 characters of [A-Za-z0-9_-]")
