"""Build the long-lived clients once per process (or Lambda container) and wire them together.

Everything that talks to the network is created here and handed to the domain objects, so tests can
build a `Container` on a temporary embedded store and the loopback fake model server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from openai import AsyncOpenAI
from qdrant_client import QdrantClient

from docsrag.answering import Answerer
from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder, build_embedder
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.retrieval import Retriever
from docsrag.service import ChatService
from docsrag.sparse import BM25Encoder

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
    retriever: Retriever = field(init=False)
    answerer: Answerer = field(init=False)
    chat: ChatService = field(init=False)

    def __post_init__(self) -> None:
        self.retriever = Retriever(
            index=self.index, encoder=self.encoder, embedder=self.embedder, settings=self.settings
        )
        self.answerer = Answerer(settings=self.settings, client=self.chat_client)
        self.chat = ChatService(
            retriever=self.retriever, answerer=self.answerer, settings=self.settings
        )

    @classmethod
    def build(cls, settings: Settings) -> Container:
        qdrant = build_qdrant_client(settings)
        index = DocsIndex(
            client=qdrant,
            collection=settings.collection_name,
            dense_dimensions=settings.embedding_dimensions,
        )
        index.ensure_collection()
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
        )

    def ingestor(self) -> Ingestor:
        return Ingestor(
            index=self.index, encoder=self.encoder, embedder=self.embedder, settings=self.settings
        )

    @property
    def search_mode(self) -> str:
        return "hybrid" if self.embedder is not None else "bm25"

    def close(self) -> None:
        self.qdrant.close()
