"""Build the long-lived clients once per process (or Lambda container) and wire them together.

Everything that talks to the network is created here and handed to the domain objects, so tests can
build a `Container` on a temporary embedded store and the loopback fake model server.

The ChatKit parts (thread store, server, rate limiter) and the MCP endpoint's rate limiter are
built on first use: SQLite at `CHATKIT_SQLITE_PATH` and in-memory limits locally, DynamoDB (one
boto3 client, created once) when `THREADS_TABLE` is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openai import AsyncOpenAI
from qdrant_client import QdrantClient

from docsrag.answering import Answerer
from docsrag.chatkit.ratelimit import (
    DynamoDBRateLimiter,
    NoRateLimit,
    RateLimiter,
    SlidingWindowRateLimiter,
)
from docsrag.chatkit.server import DocsChatKitServer
from docsrag.chatkit.stores import DynamoDBStore, SQLiteStore, VisitorScopedStore
from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder, build_embedder
from docsrag.errors import IndexUnavailable
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.retrieval import Retriever
from docsrag.service import ChatService
from docsrag.sparse import BM25Encoder

if TYPE_CHECKING:  # ingest (parsers, chunking) is not loaded by the chat function
    from docsrag.ingest import Ingestor

logger = logging.getLogger(__name__)


def build_chat_client(settings: Settings) -> AsyncOpenAI | None:
    """The OpenRouter (OpenAI-compatible) client for answers, or None without a key."""
    if settings.openrouter_api_key is None:
        return None
    return AsyncOpenAI(
        api_key=settings.openrouter_api_key.get_secret_value(),
        base_url=settings.openrouter_base_url,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )


@dataclass
class Container:
    settings: Settings
    qdrant: QdrantClient
    index: DocsIndex
    encoder: BM25Encoder
    embedder: DenseEmbedder | None
    chat_client: AsyncOpenAI | None
    # boto3 DynamoDB client for THREADS_TABLE; created on first use unless handed in (tests).
    dynamodb: Any = None
    retriever: Retriever = field(init=False)
    answerer: Answerer = field(init=False)
    chat: ChatService = field(init=False)
    _chatkit_store: VisitorScopedStore | None = field(default=None, init=False, repr=False)
    _chatkit_server: DocsChatKitServer | None = field(default=None, init=False, repr=False)
    _rate_limiter: RateLimiter | None = field(default=None, init=False, repr=False)
    _mcp_rate_limiter: RateLimiter | None = field(default=None, init=False, repr=False)
    _chat_rate_limiter: RateLimiter | None = field(default=None, init=False, repr=False)
    _session_rate_limiter: RateLimiter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.retriever = Retriever(
            index=self.index, encoder=self.encoder, embedder=self.embedder, settings=self.settings
        )
        self.answerer = Answerer(settings=self.settings, client=self.chat_client)
        self.chat = ChatService(
            retriever=self.retriever, answerer=self.answerer, settings=self.settings
        )

    @classmethod
    def build(cls, settings: Settings, *, dynamodb: Any = None) -> Container:
        """Everything from settings; `dynamodb` is a boto3 client to use for THREADS_TABLE."""
        qdrant = build_qdrant_client(settings)
        index = DocsIndex(
            client=qdrant,
            collection=settings.collection_name,
            dense_dimensions=settings.embedding_dimensions,
        )
        try:
            index.ensure_collection()
        except IndexUnavailable as exc:
            # Threads, history and sessions do not need Qdrant: start anyway, and check the
            # collection again at the first search (`DocsIndex.ensure_ready`).
            logger.warning("Qdrant is unavailable at start; search will retry: %s", exc)
        embedder = build_embedder(settings)
        if embedder is None:
            logger.warning(
                "OPENROUTER_API_KEY is not set: search runs on BM25 alone and answers are "
                "retrieval-only (the most relevant sections with links)"
            )
        return cls(
            settings=settings,
            qdrant=qdrant,
            index=index,
            encoder=BM25Encoder(),
            embedder=embedder,
            chat_client=build_chat_client(settings),
            dynamodb=dynamodb,
        )

    def ingestor(self) -> Ingestor:
        from docsrag.ingest import Ingestor

        return Ingestor(
            index=self.index, encoder=self.encoder, embedder=self.embedder, settings=self.settings
        )

    # --- ChatKit (built on first use) -------------------------------------------------------------

    def dynamodb_client(self) -> Any:
        if self.dynamodb is None:
            import boto3  # only the deployment (THREADS_TABLE) needs it

            self.dynamodb = boto3.client("dynamodb")
        return self.dynamodb

    def chatkit_store(self) -> VisitorScopedStore:
        if self._chatkit_store is None:
            s = self.settings
            if s.threads_table:
                self._chatkit_store = DynamoDBStore(
                    client=self.dynamodb_client(),
                    table_name=s.threads_table,
                    ttl_days=s.chatkit_ttl_days,
                )
            else:
                self._chatkit_store = SQLiteStore(path=s.chatkit_sqlite_path)
        return self._chatkit_store

    def chatkit_server(self) -> DocsChatKitServer:
        if self._chatkit_server is None:
            self._chatkit_server = DocsChatKitServer(
                store=self.chatkit_store(),
                retriever=self.retriever,
                answerer=self.answerer,
                settings=self.settings,
            )
        return self._chatkit_server

    def rate_limiter(self) -> RateLimiter:
        """Per-visitor limit on ChatKit answers (`VISITOR_RATE_LIMIT_PER_MINUTE`)."""
        if self._rate_limiter is None:
            self._rate_limiter = self._limiter(self.settings.visitor_rate_limit_per_minute)
        return self._rate_limiter

    def chat_rate_limiter(self) -> RateLimiter:
        """Per-client-IP limit on `POST /chat` (`CHAT_RATE_LIMIT_PER_MINUTE`)."""
        if self._chat_rate_limiter is None:
            self._chat_rate_limiter = self._limiter(self.settings.chat_rate_limit_per_minute)
        return self._chat_rate_limiter

    def session_rate_limiter(self) -> RateLimiter:
        """Per-client-IP limit on `POST /session` (`SESSION_RATE_LIMIT_PER_MINUTE`)."""
        if self._session_rate_limiter is None:
            self._session_rate_limiter = self._limiter(self.settings.session_rate_limit_per_minute)
        return self._session_rate_limiter

    def mcp_rate_limiter(self) -> RateLimiter:
        """Per-client-IP limit on `/mcp` requests (`MCP_RATE_LIMIT_PER_MINUTE`)."""
        if self._mcp_rate_limiter is None:
            self._mcp_rate_limiter = self._limiter(self.settings.mcp_rate_limit_per_minute)
        return self._mcp_rate_limiter

    def _limiter(self, limit: int) -> RateLimiter:
        """Off at 0; a DynamoDB counter shared by all containers with THREADS_TABLE; else in
        this process's memory."""
        s = self.settings
        if limit == 0:
            return NoRateLimit()
        if s.threads_table:
            return DynamoDBRateLimiter(
                client=self.dynamodb_client(), table_name=s.threads_table, limit=limit
            )
        return SlidingWindowRateLimiter(limit=limit)

    @property
    def search_mode(self) -> str:
        return "hybrid" if self.embedder is not None else "bm25"

    def close(self) -> None:
        if isinstance(self._chatkit_store, SQLiteStore):
            self._chatkit_store.close()
        self._chatkit_store = self._chatkit_server = None
        self.qdrant.close()
