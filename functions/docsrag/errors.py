"""The domain's own exceptions. Adapters wrap library errors in these with `raise ... from exc`."""

from __future__ import annotations


class DocsRagError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(DocsRagError):
    """A setting is missing or invalid; the message names the environment variable."""


class DocumentError(DocsRagError):
    """A document cannot be ingested (binary, not UTF-8, too large, unparseable)."""


class UnsupportedDocument(DocumentError):
    """The key is not a page we index (asset, feed, 404, listing page). Skipped, not a failure."""


class EmbeddingError(DocsRagError):
    """The embeddings endpoint failed after retries."""


class EmbeddingDimensionMismatch(EmbeddingError):
    """The embedding model returns vectors of another size than the collection holds."""


class IndexUnavailable(DocsRagError):
    """Qdrant cannot be reached or refused the request."""


class LLMUnavailable(DocsRagError):
    """The chat model failed (no key, rate limit, payment, 5xx, timeout, broken stream)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
