"""docsrag's ChatKit server: the same retrieval and agent as `POST /chat`, as a ChatKit thread.

A turn (`respond`) retrieves sections for the question, runs the answering agent once (the sections
are in its instructions) and streams its text through chatkit's `stream_agent_response`, with three
changes to what that helper emits:

- Ids. Over Chat Completions every output item has the Agents SDK's placeholder id `__fake_id__`;
  each assistant message gets its own store-generated id instead, the same on its added, updated
  and done events, so answers never overwrite each other in the widget or in the store.
- Citations. The model's `[n]` markers are checked and renumbered (first source cited is `[1]`) in
  the streamed deltas already. The final content (on `content_part.done` and on the stored `done`
  item) is exactly the streamed text, with one `URLSource` annotation per cited section whose
  `index` is the character offset right after its marker, so the widget shows footnotes and a
  Sources list.
- Failures. A turn always ends with an assistant message in the thread. The model failing (before
  or during the stream) gives the retrieval-only answer with its sources and a notice, replacing
  any partial text; the search failing gives a short apology; an unexpected error gives an
  apology (and is logged); a turn abandoned by the client (cancel, disconnect) keeps what was
  streamed, with its sources, or the retrieval-only answer when nothing was (logged at info: a
  visitor leaving is no failure).
- Time. The request's `Deadline` (`RequestContext.deadline`, `docsrag.budget`) bounds the query
  embedding and the model's stream. When it passes mid-answer, the turn ends with the text so far,
  a notice that it was cut short (`CUT_SHORT_NOTICE`) and the sources (the cited ones first, then
  the other retrieved sections, where the rest of the answer may be); before any text, with the
  retrieval-only answer. Either is stored like any answer.

History replayed to the model is the thread's recent text turns (trimmed and stripped of old
citation markers by `answering.history_input`); retrieved sections are never stored in the thread,
and earlier retrieval-only answers are replayed as their one-line notice. Thread titles are the
first question, shortened; no model call.

Requests are checked before chatkit sees them (`parse_request`): unsupported request types,
attachments and blank messages are `InvalidChatKitRequest` (400); messages over
`max_message_chars` are `InputTooLarge` (413).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, cast

import openai
from agents import AgentsException, RunResultStreaming, StreamEvent
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.types import (
    Annotation,
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ChatKitReq,
    FeedbackKind,
    ItemsFeedbackReq,
    ItemsListReq,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    ThreadsUpdateReq,
    URLSource,
    UserMessageInput,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
    WorkflowItem,
    is_streaming_req,
)
from pydantic import TypeAdapter, ValidationError

from docsrag import telemetry
from docsrag.answering import (
    CUT_SHORT_NOTICE,
    NOTICES,
    Answerer,
    ChatTurn,
    CitationRenumberer,
    failure_reason,
)
from docsrag.budget import Deadline, TimeBudgetExhausted
from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.stores import MAX_FEEDBACK_ITEMS, MAX_PAGE_SIZE, VisitorScopedStore
from docsrag.config import Settings
from docsrag.errors import DocsRagError, IndexUnavailable, LLMUnavailable
from docsrag.models import Hit
from docsrag.retrieval import Retriever
from docsrag.safety import SafeStream
from docsrag.scope import ScopeRequest
from docsrag.service import snippet, source_title

logger = logging.getLogger(__name__)

TITLE_CHARS: Final = 60
MAX_TITLE_CHARS: Final = 200
SEARCH_UNAVAILABLE_TEXT: Final = (
    "The documentation search is unavailable right now, so I can't answer. Please try again in "
    "a moment."
)
FAILED_TEXT: Final = "Something went wrong while answering. Please try asking again."
INTERRUPTED_TEXT: Final = "The answer was interrupted. Please try asking again."
# Model deltas arriving in quick succession go out as one text delta event: each event costs
# pydantic, chatkit bookkeeping, serialisation and a socket write, and a model streams tokens
# faster than anyone reads. The first delta and any after a pause go out at once.
COALESCE_SECONDS: Final = 0.04
COALESCE_CHARS: Final = 80

# Requests that produce an answer (a model call): these count against the visitor's rate limit.
ANSWERING_REQUESTS: Final = (ThreadsCreateReq, ThreadsAddUserMessageReq, ThreadsRetryAfterItemReq)
SUPPORTED_REQUESTS: Final = (
    *ANSWERING_REQUESTS,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ItemsListReq,
    ItemsFeedbackReq,
    ThreadsUpdateReq,
    ThreadsDeleteReq,
)

_REQUEST_ADAPTER: Final = TypeAdapter[ChatKitReq](ChatKitReq)
_MODEL_ERRORS: Final = (openai.OpenAIError, AgentsException, TimeoutError)
# Markdown code and `[n]` / `[n, m]` citation markers, in the form CitationRenumberer writes them.
_MARKUP: Final = re.compile(r"```|`|\[(\d+(?:, \d+)*)\]")
# Writes that must finish even when the request's task is cancelled (see `_save_unfinished`).
_BACKGROUND_WRITES: set[asyncio.Task[None]] = set()


class InvalidChatKitRequest(DocsRagError):
    """The ChatKit request is malformed or asks for something this server does not do (400)."""


class InputTooLarge(DocsRagError):
    """The message (or title) is longer than allowed (413)."""


# --- Pure helpers -------------------------------------------------------------------------------


def user_text(message: UserMessageItem | UserMessageInput) -> str:
    """The text of a user message: its text parts and tags, and the text it quotes."""
    parts: list[str] = []
    if message.quoted_text:
        parts.append(message.quoted_text)
    for content in message.content:
        if isinstance(content, UserMessageTextContent | UserMessageTagContent):
            parts.append(content.text)
    return "\n".join(part for part in parts if part.strip()).strip()


def thread_title(question: str, limit: int = TITLE_CHARS) -> str:
    """A thread title from its first question: one line, cut at a word boundary."""
    flat = " ".join(question.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0] or flat[: limit - 1]
    return cut.rstrip(" ,.;:") + "…"


def url_source(hit: Hit, *, settings: Settings) -> URLSource:
    return URLSource(
        title=source_title(hit),
        url=settings.public_url(hit.path, hit.anchor),
        description=snippet(hit.text),
    )


def citation_annotations(
    text: str, sources: Sequence[Hit], *, settings: Settings
) -> list[Annotation]:
    """Annotations for an answer whose `[n]` markers (outside code) cite `sources[n - 1]`.

    Each annotation's index is the offset right after its marker; `[1, 2]` gives two annotations
    at the same offset (one footnote). A source with no marker found is placed at the end.
    """
    annotations: list[Annotation] = []
    placed: set[int] = set()
    in_fence = in_code = False
    for match in _MARKUP.finditer(text):
        piece = match.group(0)
        if piece == "```":
            in_fence = not in_fence
            continue
        if piece == "`":
            in_code = in_code if in_fence else not in_code
            continue
        before = text[match.start() - 1] if match.start() else ""
        if in_fence or in_code or before.isalnum() or before == "_":
            continue  # code, or an index such as `items[1]`: not a citation
        for number in (int(value) for value in match.group(1).split(", ")):
            if 1 <= number <= len(sources):
                source = url_source(sources[number - 1], settings=settings)
                annotations.append(Annotation(source=source, index=match.end()))
                placed.add(number)
    for number, hit in enumerate(sources, start=1):
        if number not in placed:
            source = url_source(hit, settings=settings)
            annotations.append(Annotation(source=source, index=len(text)))
    return annotations


def listing_annotations(
    text: str, sources: Sequence[Hit], *, settings: Settings
) -> list[Annotation]:
    """Annotations for a retrieval-only answer, whose lines start with `[1]`, `[2]`, ..."""
    annotations: list[Annotation] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        match = re.match(r"\[(\d+)\]", line)
        if match and 1 <= int(match.group(1)) <= len(sources):
            source = url_source(sources[int(match.group(1)) - 1], settings=settings)
            annotations.append(Annotation(source=source, index=offset + match.end()))
        offset += len(line)
    return annotations


def replayed_assistant_text(text: str) -> str:
    """What an earlier answer contributes to the history: a retrieval-only answer (notice and
    section snippets) is replayed as its notice, so old sections do not pose as context."""
    for notice in NOTICES.values():
        if text.startswith(notice):
            return notice
    return text


def _describe_validation(exc: ValidationError) -> str:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return "The request body is not valid JSON."
    # The request is a tagged union: report the tag's branch only, not every other type's errors.
    parts = []
    for error in errors[:3]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "Invalid ChatKit request: " + "; ".join(parts)


# --- One answer being streamed ------------------------------------------------------------------


@dataclass(slots=True)
class _Turn:
    """The state of one turn's answer, shared by the streaming path and the clean-up paths."""

    thread_id: str
    hits: list[Hit] = field(default_factory=list)
    item_id: str | None = None  # our id of the assistant message on the wire
    raw_id: str | None = None  # the id the Agents SDK gave it (usually `__fake_id__`)
    created_at: datetime | None = None
    renumberer: CitationRenumberer | None = None
    parts: list[str] = field(default_factory=list)  # all renumbered text so far
    safe: SafeStream | None = None  # what of it may be shown (see `docsrag.safety`)
    unsent: int = 0  # characters renumbered since the last send attempt (coalescing)
    last_sent: float = 0.0
    content_added: bool = False
    open_workflow: WorkflowItem | None = None
    answered: bool = False  # the final assistant message was handed on (and so stored)
    mode: str = "none"
    started: float = field(default_factory=time.perf_counter)
    version_label: str | None = None  # how answers name the docs version (see docsrag.scope)

    def feed(self, delta: str) -> str:
        """The text to send now for a model delta ("" while coalescing or holding back)."""
        assert self.renumberer is not None and self.safe is not None
        shown = self.renumberer.feed(delta)
        if shown:
            self.parts.append(shown)
            self.safe.push(shown)
            self.unsent += len(shown)
        now = time.perf_counter()
        if self.unsent and (
            self.unsent >= COALESCE_CHARS or now - self.last_sent >= COALESCE_SECONDS
        ):
            self.unsent, self.last_sent = 0, now
            return self.safe.take()  # "" when the end may still become a link or a tag
        return ""

    def flush(self) -> str:
        """The text still to send: what coalescing and the safety check held, and what the
        renumberer held ("" when the stream stalled: the final content replaces it)."""
        tail = self.renumberer.finish() if self.renumberer is not None else ""
        if tail:
            self.parts.append(tail)
        self.unsent = 0
        if self.safe is None:
            return ""
        self.safe.push(tail)
        return self.safe.finish()

    @property
    def streamed_text(self) -> str:
        """Everything the model said, renumbered (not yet made safe)."""
        return "".join(self.parts)


class _GuardedRun:
    """Hands `stream_agent_response` the run's events and keeps a model failure for us; ends the
    events when the deadline passes (`error` is then `TimeBudgetExhausted`).

    The SDK helper then ends normally (cancelling its own helper task) and the turn continues with
    the retrieval-only answer instead of an error event.
    """

    def __init__(self, run: RunResultStreaming, deadline: Deadline) -> None:
        self.run = run
        self.deadline = deadline
        self.error: BaseException | None = None
        self._waiting: asyncio.Task[object] | None = None

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        events = self.run.stream_events()
        while True:
            # chatkit's helper waits for each event in a task of its own.
            self._waiting = asyncio.current_task()
            try:
                # Only the wait for the next event is bounded, never our `yield`.
                event = await self.deadline.run(anext(events))
            except StopAsyncIteration:
                return
            except (*_MODEL_ERRORS, TimeBudgetExhausted) as exc:
                self.error = exc
                return
            finally:
                self._waiting = None
            yield event

    def abandon(self) -> None:
        """The turn ended early (the client left): cancel the wait for the next event, so the
        helper's task ends cancelled rather than with an end of stream nobody reads (which
        asyncio logs as an error)."""
        waiting = self._waiting
        if waiting is not None and not waiting.done() and waiting is not asyncio.current_task():
            waiting.cancel()


# --- The server -----------------------------------------------------------------------------------


class DocsChatKitServer(ChatKitServer[RequestContext]):
    """Answers ChatKit threads from the docs. Attachments, widgets and client tools are not used."""

    def __init__(
        self,
        *,
        store: VisitorScopedStore,
        retriever: Retriever,
        answerer: Answerer,
        settings: Settings,
    ) -> None:
        super().__init__(store)
        self._store = store
        self._retriever = retriever
        self._answerer = answerer
        self._settings = settings

    # --- request checks (before chatkit runs anything) -----------------------------------------

    def parse_request(self, body: bytes | str) -> ChatKitReq:
        """The request, checked: `InvalidChatKitRequest` (400) or `InputTooLarge` (413)."""
        try:
            request = _REQUEST_ADAPTER.validate_json(body)
        except ValidationError as exc:
            raise InvalidChatKitRequest(_describe_validation(exc)) from exc
        if not isinstance(request, SUPPORTED_REQUESTS):
            raise InvalidChatKitRequest(f"{request.type} is not supported by this server.")
        if isinstance(request, ThreadsCreateReq | ThreadsAddUserMessageReq):
            self._check_input(request.params.input)
        elif isinstance(request, ThreadsUpdateReq):
            title = request.params.title
            if len(title) > MAX_TITLE_CHARS:
                raise InputTooLarge(
                    f"The title is {len(title)} characters; the limit is {MAX_TITLE_CHARS}."
                )
        elif isinstance(request, ItemsFeedbackReq):
            count = len(request.params.item_ids)
            if not 1 <= count <= MAX_FEEDBACK_ITEMS:
                raise InvalidChatKitRequest(
                    f"Feedback must name 1 to {MAX_FEEDBACK_ITEMS} items, not {count}."
                )
        return request

    def _check_input(self, message: UserMessageInput) -> None:
        if message.attachments:
            raise InvalidChatKitRequest("Attachments are not supported.")
        text = user_text(message)
        if not text:
            raise InvalidChatKitRequest("The message is empty.")
        limit = self._settings.max_message_chars
        if len(text) > limit:
            raise InputTooLarge(f"The message is {len(text)} characters; the limit is {limit}.")

    async def process(
        self, request: str | bytes | bytearray, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        return await self.process_request(_REQUEST_ADAPTER.validate_json(request), context)

    async def process_request(
        self, request: ChatKitReq, context: RequestContext
    ) -> StreamingResult | NonStreamingResult:
        """`process` for a request already parsed (by `parse_request`).

        chatkit 1.6.5's `process` builds a new `TypeAdapter(ChatKitReq)` on every call, about
        10 ms of schema generation per request; this reuses one. It dispatches exactly as
        `ChatKitServer.process` does, to the same (private) handlers.
        """
        if is_streaming_req(request):
            return StreamingResult(self._process_streaming(request, context))
        return NonStreamingResult(await self._process_non_streaming(request, context))

    async def preflight(self, request: ChatKitReq, context: RequestContext) -> None:
        """Checks chatkit would only make while streaming (after the 200 went out), so a bad
        request is refused before it is charged to the visitor's rate limit."""
        thread_id = getattr(getattr(request, "params", None), "thread_id", None)
        if isinstance(request, ANSWERING_REQUESTS) and isinstance(thread_id, str):
            await self._store.load_thread(thread_id, context)  # NotFoundError: 404
        if isinstance(request, ThreadsRetryAfterItemReq):
            params = request.params
            item = await self._store.load_item(params.thread_id, params.item_id, context)
            if not isinstance(item, UserMessageItem):
                raise InvalidChatKitRequest("Only a user message can be retried.")

    # --- feedback and cancellation ------------------------------------------------------------

    async def add_feedback(
        self,
        thread_id: str,
        item_ids: list[str],
        feedback: FeedbackKind,
        context: RequestContext,
    ) -> None:
        await self._store.save_feedback(thread_id, item_ids, feedback, context)
        metric = "FeedbackPositive" if feedback == "positive" else "FeedbackNegative"
        telemetry.count(metric, len(set(item_ids)))
        logger.info("feedback", extra={"kind": feedback, "items": len(item_ids)})

    async def handle_stream_cancelled(
        self,
        thread: ThreadMetadata,
        pending_items: list[ThreadItem],
        context: RequestContext,
    ) -> None:
        # `respond` already stored the interrupted answer with its sources (see `_save_unfinished`);
        # chatkit's default would store it again without them.
        logger.info("answer stream cancelled by the client in thread %s", thread.id)

    # --- a turn ---------------------------------------------------------------------------------

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: RequestContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input_user_message is None:
            return  # client tool output / structured input: never requested by this server
        turn = _Turn(thread_id=thread.id)
        try:
            async for event in self._answer(thread, input_user_message, context, turn):
                yield event
        except Exception:
            logger.exception("answering failed in thread %s", thread.id)
            if not turn.answered:
                async for event in self._finish(
                    thread, context, turn, text=FAILED_TEXT, annotations=[], mode="error"
                ):
                    yield event
        finally:
            if not turn.answered:
                await self._save_unfinished(thread, context, turn)

    async def _answer(
        self,
        thread: ThreadMetadata,
        message: UserMessageItem,
        context: RequestContext,
        turn: _Turn,
    ) -> AsyncIterator[ThreadStreamEvent]:
        question = user_text(message)
        if not thread.title:
            thread.title = thread_title(question)  # chatkit saves it and sends thread.updated
        history = await self._history(thread, message.id, context)
        try:
            retrieval = await self._retriever.retrieve(
                question,
                history,
                ScopeRequest(page_url=context.page_url),
                deadline=context.deadline,
            )
        except IndexUnavailable as exc:
            logger.error("search unavailable: %s", exc)
            async for event in self._finish(
                thread, context, turn, text=SEARCH_UNAVAILABLE_TEXT, annotations=[], mode="error"
            ):
                yield event
            return
        turn.hits = retrieval.hits if retrieval.covered else []
        turn.version_label = retrieval.scope.label if retrieval.scope is not None else None
        if not turn.hits:
            answer = self._answerer.not_covered(retrieval.missing_names)
            async for event in self._finish(
                thread, context, turn, text=answer.text, annotations=[], mode=answer.mode
            ):
                yield event
            self._log(turn, retrieval.covered, retrieval.dense_used, sources=0)
            return
        try:
            prepared = self._answerer.prepare(
                question=question,
                history=history,
                hits=turn.hits,
                version_label=turn.version_label,
            )
        except LLMUnavailable as exc:
            async for event in self._fallback(thread, context, turn, exc.reason):
                yield event
            self._log(turn, retrieval.covered, retrieval.dense_used, sources=len(turn.hits))
            return
        if context.deadline.expired:  # the search took it all: no model call to cut at once
            logger.warning("time budget spent before the model call")
            async for event in self._fallback(thread, context, turn, "timeout"):
                yield event
            self._log(turn, retrieval.covered, retrieval.dense_used, sources=len(turn.hits))
            return

        run = prepared.run_streamed()
        guarded = _GuardedRun(run, context.deadline)
        agent_context: AgentContext[RequestContext] = AgentContext(
            thread=thread, store=self.store, request_context=context
        )
        sources = 0
        try:
            # `stream_agent_response` only calls `stream_events()` on the run it is given.
            events = stream_agent_response(agent_context, cast(RunResultStreaming, guarded))
            async for event in events:
                if isinstance(event, ThreadItemDoneEvent) and isinstance(
                    event.item, AssistantMessageItem
                ):
                    async for final in self._finish_model_answer(thread, context, turn, event):
                        yield final
                    sources = len(turn.renumberer.cited) if turn.renumberer else 0
                else:
                    for translated in self._translate(thread, context, turn, event):
                        yield translated
        finally:
            guarded.abandon()
            if not run.is_complete:
                run.cancel()
        if guarded.error is not None or not turn.answered:
            if turn.open_workflow is not None:
                # The SDK helper stored the unfinished reasoning item; close it in the widget too.
                yield ThreadItemDoneEvent(item=turn.open_workflow)
                turn.open_workflow = None
            partial = None
            if isinstance(guarded.error, TimeBudgetExhausted):
                partial = self._partial_answer(turn, cut_short=True)
            if partial is not None:
                logger.warning(
                    "time budget spent mid-answer: the text so far is kept, with its sources"
                )
                (text, annotations), sources = partial, len(turn.hits)
                async for event in self._finish(
                    thread, context, turn, text=text, annotations=annotations, mode="llm"
                ):
                    yield event
            else:
                reason = self._failure(guarded.error, turn)
                async for event in self._fallback(thread, context, turn, reason):
                    yield event
                sources = len(turn.hits)
        self._log(turn, retrieval.covered, retrieval.dense_used, sources=sources)

    def _translate(
        self,
        thread: ThreadMetadata,
        context: RequestContext,
        turn: _Turn,
        event: ThreadStreamEvent,
    ) -> list[ThreadStreamEvent]:
        """One `stream_agent_response` event as the events the client should see (maybe none)."""
        if isinstance(event, ThreadItemAddedEvent) and isinstance(event.item, AssistantMessageItem):
            turn.raw_id = event.item.id
            turn.item_id = self._store.generate_item_id("message", thread, context)
            turn.created_at = event.item.created_at
            turn.renumberer = CitationRenumberer(len(turn.hits))
            turn.safe = SafeStream(self._answerer.output_policy(turn.hits))
            turn.parts, turn.unsent, turn.last_sent = [], 0, 0.0
            turn.content_added = False
            item = event.item.model_copy(update={"id": turn.item_id, "content": []})
            return [ThreadItemAddedEvent(item=item)]
        if isinstance(event, ThreadItemUpdatedEvent | ThreadItemRemovedEvent) and (
            turn.raw_id is not None and event.item_id == turn.raw_id
        ):
            assert turn.item_id is not None
            if isinstance(event, ThreadItemRemovedEvent):
                return [ThreadItemRemovedEvent(item_id=turn.item_id)]
            update = event.update
            if isinstance(update, AssistantMessageContentPartTextDelta):
                events = self._content_added(turn)
                shown = turn.feed(update.delta)
                if shown:
                    delta = AssistantMessageContentPartTextDelta(content_index=0, delta=shown)
                    events.append(ThreadItemUpdatedEvent(item_id=turn.item_id, update=delta))
                return events
            if isinstance(update, AssistantMessageContentPartAdded):
                return self._content_added(turn)
            return []  # the SDK's own part.done / annotations: replaced by ours at the end
        if isinstance(event, ThreadItemAddedEvent) and isinstance(event.item, WorkflowItem):
            turn.open_workflow = event.item
        elif isinstance(event, ThreadItemDoneEvent) and isinstance(event.item, WorkflowItem):
            turn.open_workflow = None
        return [event]

    def _content_added(self, turn: _Turn) -> list[ThreadStreamEvent]:
        if turn.content_added or turn.item_id is None:
            return []
        turn.content_added = True
        part = AssistantMessageContentPartAdded(
            content_index=0, content=AssistantMessageContent(text="")
        )
        return [ThreadItemUpdatedEvent(item_id=turn.item_id, update=part)]

    async def _finish_model_answer(
        self,
        thread: ThreadMetadata,
        context: RequestContext,
        turn: _Turn,
        done: ThreadItemDoneEvent,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The model's message is complete: flush held-back text, attach the citations."""
        if turn.renumberer is None:  # a done item without an added one first
            turn.renumberer = CitationRenumberer(len(turn.hits))
            turn.created_at = done.item.created_at
        tail_events: list[ThreadStreamEvent] = []
        tail = turn.flush()
        if tail and turn.item_id is not None:
            tail_events = self._content_added(turn)
            delta = AssistantMessageContentPartTextDelta(content_index=0, delta=tail)
            tail_events.append(ThreadItemUpdatedEvent(item_id=turn.item_id, update=delta))
        text = turn.streamed_text
        if not text.strip():
            # Nothing streamed (a refusal, or a model that sent the text only at the end).
            item = cast(AssistantMessageItem, done.item)
            whole = "".join(part.text for part in item.content)
            renumberer = CitationRenumberer(len(turn.hits))
            text = renumberer.feed(whole) + renumberer.finish()
            turn.renumberer = renumberer
            if text.strip() and turn.item_id is not None:
                tail_events = []  # the replacement below carries the whole text
        if not text.strip():
            logger.warning("model %s returned an empty answer", self._settings.chat_model)
            return  # `_answer` falls back (empty output) with the same message id
        for event in tail_events:
            yield event
        cited = turn.renumberer.cited if turn.renumberer else []
        sources = [turn.hits[number - 1] for number in cited] or turn.hits
        # The final content replaces the streamed text in the widget: it is the whole answer,
        # made safe for the sources it cites.
        text = self._answerer.safe_text(text, sources)
        if not text.strip():
            logger.warning("model %s returned nothing safe to show", self._settings.chat_model)
            return  # `_answer` falls back (empty output) with the same message id
        annotations = citation_annotations(text, sources, settings=self._settings)
        async for event in self._finish(
            thread, context, turn, text=text, annotations=annotations, mode="llm"
        ):
            yield event

    async def _fallback(
        self, thread: ThreadMetadata, context: RequestContext, turn: _Turn, reason: str
    ) -> AsyncIterator[ThreadStreamEvent]:
        answer = self._answerer.fallback(
            hits=turn.hits, reason=reason, version_label=turn.version_label
        )
        annotations = listing_annotations(answer.text, answer.sources, settings=self._settings)
        async for event in self._finish(
            thread, context, turn, text=answer.text, annotations=annotations, mode=answer.mode
        ):
            yield event

    async def _finish(
        self,
        thread: ThreadMetadata,
        context: RequestContext,
        turn: _Turn,
        *,
        text: str,
        annotations: list[Annotation],
        mode: str,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The final assistant message (stored by chatkit from its `done` event)."""
        content = AssistantMessageContent(text=text, annotations=annotations)
        if turn.item_id is not None and turn.content_added:
            done = AssistantMessageContentPartDone(content_index=0, content=content)
            yield ThreadItemUpdatedEvent(item_id=turn.item_id, update=done)
        item = AssistantMessageItem(
            id=turn.item_id or self._store.generate_item_id("message", thread, context),
            thread_id=thread.id,
            created_at=turn.created_at or datetime.now(),
            content=[content],
        )
        turn.item_id, turn.mode = item.id, mode
        telemetry.record_answer(mode=mode)
        yield ThreadItemDoneEvent(item=item)
        turn.answered = True  # resumed: chatkit stored the item before asking for more

    def _failure(self, error: BaseException | None, turn: _Turn) -> str:
        if error is None:
            return "empty_output"
        if isinstance(error, TimeBudgetExhausted):
            logger.warning("time budget spent before the model answered: %s", error)
            return "timeout"
        reason = failure_reason(error)
        if turn.parts and reason in {"unreachable", "timeout", "upstream_error"}:
            reason = "interrupted"  # the answer had started: the stream broke, not the service
        status = getattr(error, "status_code", None)
        logger.warning(
            "model %s unavailable (%s): %s%s",
            self._settings.chat_model,
            reason,
            type(error).__name__,
            f" HTTP {status}" if status else "",
        )
        return reason

    async def _save_unfinished(
        self, thread: ThreadMetadata, context: RequestContext, turn: _Turn
    ) -> None:
        """The turn stopped before its answer was stored (client gone, task cancelled): store
        what the visitor saw, with its sources, or the retrieval-only answer, so the question
        never stays unanswered in the thread."""
        partial = self._partial_answer(turn, cut_short=False)
        if partial is not None:
            text, annotations = partial
        elif turn.hits:
            answer = self._answerer.fallback(hits=turn.hits, reason="interrupted")
            text = answer.text
            annotations = listing_annotations(text, answer.sources, settings=self._settings)
        else:
            text, annotations = INTERRUPTED_TEXT, []
        item = AssistantMessageItem(
            id=turn.item_id or self._store.generate_item_id("message", thread, context),
            thread_id=thread.id,
            created_at=turn.created_at or datetime.now(),
            content=[AssistantMessageContent(text=text, annotations=annotations)],
        )
        # A task of its own, shielded: the write finishes even while this task is cancelled.
        write = asyncio.ensure_future(self._store.add_thread_item(thread.id, item, context))
        _BACKGROUND_WRITES.add(write)
        write.add_done_callback(_write_done)
        with contextlib.suppress(Exception):  # a failure is logged by `_write_done`
            await asyncio.shield(write)

    # --- helpers --------------------------------------------------------------------------------

    def _partial_answer(
        self, turn: _Turn, *, cut_short: bool
    ) -> tuple[str, list[Annotation]] | None:
        """What the model wrote so far, made safe, with annotations for its sources: the cited
        ones, or every section when none is cited yet. `cut_short`: the time budget ended it, so
        a notice follows the text and every retrieved section is a source (the cited first).
        None when nothing shows."""
        turn.flush()
        text = turn.streamed_text
        cited = turn.renumberer.cited if turn.renumberer else []
        sources = [turn.hits[number - 1] for number in cited] or list(turn.hits)
        if cut_short:
            sources += [hit for hit in turn.hits if hit not in sources]
        if text.strip():
            text = self._answerer.safe_text(text, sources)
        if not text.strip():
            return None
        if cut_short:
            text = text.rstrip()
            if text.count("```") % 2:
                text += "\n```"  # close a code block the cut left open
            text += f"\n\n*{CUT_SHORT_NOTICE}*"
        return text, citation_annotations(text, sources, settings=self._settings)

    async def _history(
        self, thread: ThreadMetadata, current_id: str, context: RequestContext
    ) -> list[ChatTurn]:
        """Recent text turns, oldest first, without the message being answered."""
        wanted = self._settings.max_history_messages
        if wanted == 0:
            return []
        limit = min(MAX_PAGE_SIZE, 2 * wanted + 1)  # room for non-message items (reasoning)
        page = await self._store.load_thread_items(thread.id, None, limit, "desc", context)
        turns: list[ChatTurn] = []
        for item in reversed(page.data):
            if item.id == current_id:
                continue
            if isinstance(item, UserMessageItem):
                turns.append(ChatTurn(role="user", content=user_text(item)))
            elif isinstance(item, AssistantMessageItem):
                text = "\n".join(part.text for part in item.content).strip()
                turns.append(ChatTurn(role="assistant", content=replayed_assistant_text(text)))
        return [turn for turn in turns if turn.content][-wanted:]

    def _log(self, turn: _Turn, covered: bool, dense_used: bool, *, sources: int) -> None:
        logger.info(
            "answered",
            extra={
                "channel": "chatkit",
                "mode": turn.mode,
                "covered": covered,
                "dense_used": dense_used,
                "hits": len(turn.hits),
                "sources": sources,
                "latency_ms": round((time.perf_counter() - turn.started) * 1000, 1),
            },
        )


def _write_done(task: asyncio.Task[None]) -> None:
    _BACKGROUND_WRITES.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("could not store an interrupted answer: %s", error, exc_info=error)
    else:
        logger.info("stored an interrupted answer")
