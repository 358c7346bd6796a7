"""Dense embeddings through any OpenAI-compatible endpoint (OpenRouter by default).

Retries follow the openai SDK's rules (`max_retries` attempts more; 408/409/429/5xx and connection
errors and timeouts are retried, after `Retry-After` when the server gives one of at most 60 s,
else after an exponential delay with jitter), but are made here rather than by the SDK, so that a
`Deadline` (`docsrag.budget`) bounds them: each attempt's timeout fits in what is left of it, and
a wait that would end after it is not made (a chat question then searches with BM25 alone). What
still fails becomes an `EmbeddingError`, raised from the SDK's exception.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Final

import openai
from openai.types import Embedding

from docsrag.budget import Deadline, TimeBudgetExhausted
from docsrag.config import Settings
from docsrag.errors import EmbeddingDimensionMismatch, EmbeddingError

logger = logging.getLogger(__name__)

# The openai SDK's retry rules (openai._base_client), applied here so a deadline can bound them.
INITIAL_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 60.0


def supports_dimensions(model: str) -> bool:
    """Only the text-embedding-3 family accepts a `dimensions` request parameter."""
    return "text-embedding-3" in model


class DenseEmbedder:
    """Embeds chunk texts (sync, batched, for ingest) and questions (async, for chat)."""

    def __init__(
        self,
        *,
        client: openai.OpenAI,
        async_client: openai.AsyncOpenAI,
        model: str,
        dimensions: int,
        batch_size: int,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        # The clients' retry count and timeout, applied per attempt here (see the module doc).
        self.max_retries = client.max_retries
        self.timeout = client.timeout if isinstance(client.timeout, int | float) else None
        self._client = client.with_options(max_retries=0)
        self._async_client = async_client.with_options(max_retries=0)
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.calls = 0
        """Embedding requests made (one per batch; the SDK's retries are not counted)."""

    def embed_documents(
        self, texts: Sequence[str], *, deadline: Deadline | None = None
    ) -> list[list[float]]:
        """One vector per text, in order, `batch_size` texts per request. With a `deadline`, no
        request starts, or waits to retry, past it (`EmbeddingError`: nothing is returned)."""
        deadline = deadline or Deadline.unbounded()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            self.calls += 1
            retries = 0
            while True:
                timeout = self._attempt_timeout(deadline)
                try:
                    response = self._client.embeddings.create(
                        input=batch,
                        model=self.model,
                        dimensions=self._dimensions_param,
                        encoding_format="float",
                        timeout=timeout,
                    )
                    break
                except openai.OpenAIError as exc:
                    delay = self._before_retry(exc, retries, deadline)
                time.sleep(delay)
                retries += 1
            vectors.extend(self._vectors(response.data or [], expected=len(batch)))
        return vectors

    async def embed_query(self, text: str, *, deadline: Deadline | None = None) -> list[float]:
        """The question's vector. With a `deadline`, the request and its retries end before it:
        a `Retry-After` past it gives up at once (`EmbeddingError`)."""
        deadline = deadline or Deadline.unbounded()
        self.calls += 1
        retries = 0
        while True:
            timeout = self._attempt_timeout(deadline)
            try:
                # The raw body, parsed with `json`: the SDK's model construction walks every
                # float of the vector in Python (1.3 ms for 256 dimensions, 3 ms for 1536).
                raw = await deadline.run(
                    self._async_client.embeddings.with_raw_response.create(
                        input=[text],
                        model=self.model,
                        dimensions=self._dimensions_param,
                        encoding_format="float",
                        timeout=timeout,
                    )
                )
                break
            except TimeBudgetExhausted as exc:
                raise self._out_of_time(str(exc)) from exc
            except openai.OpenAIError as exc:
                delay = self._before_retry(exc, retries, deadline)
            await asyncio.sleep(delay)
            retries += 1
        try:
            body = json.loads(raw.content)
            data = body.get("data") or []  # a proxy's 200 error body has no data
            items = [
                Embedding(index=item["index"], embedding=item["embedding"], object="embedding")
                for item in data
            ]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EmbeddingError(
                f"the embeddings endpoint returned a malformed body for model {self.model!r}"
            ) from exc
        return self._vectors(items, expected=1)[0]

    def _attempt_timeout(self, deadline: Deadline) -> float | openai.NotGiven:
        """One attempt's timeout: the configured one, or what is left of the deadline."""
        if not deadline.bounded:
            return self.timeout if self.timeout is not None else openai.NOT_GIVEN
        if deadline.expired:
            raise self._out_of_time("the time budget is spent")
        return deadline.cap(self.timeout if self.timeout is not None else math.inf)

    def _before_retry(self, exc: openai.OpenAIError, retries: int, deadline: Deadline) -> float:
        """The wait before retrying after `exc`, or the `EmbeddingError` to raise instead."""
        delay = retry_delay(exc, retries=retries, max_retries=self.max_retries)
        if delay is None:
            raise self._api_error(exc) from exc
        if deadline.bounded and not deadline.allows(delay):
            error = self._out_of_time(
                f"a retry in {delay:g} s would end after the time budget "
                f"({deadline.remaining():.1f} s left)",
                after=exc,
            )
            raise error from exc
        logger.info("embedding request failed (%s); retrying in %.2f s", _reason(exc), delay)
        return delay

    def _out_of_time(
        self, detail: str, *, after: openai.OpenAIError | None = None
    ) -> EmbeddingError:
        reason = f" after it {_reason(after)}" if after is not None else ""
        logger.warning("embedding request for model %s gave up%s: %s", self.model, reason, detail)
        return EmbeddingError(
            f"the embeddings endpoint gave up{reason} for model {self.model!r}: {detail}"
        )

    @property
    def _dimensions_param(self) -> int | openai.Omit:
        return self.dimensions if supports_dimensions(self.model) else openai.omit

    def _api_error(self, exc: openai.OpenAIError) -> EmbeddingError:
        reason = _reason(exc)
        logger.warning("embedding request for model %s %s", self.model, reason)
        return EmbeddingError(f"the embeddings endpoint {reason} for model {self.model!r}: {exc}")

    def _vectors(self, data: Sequence[Embedding], *, expected: int) -> list[list[float]]:
        # An OpenAI-compatible proxy can answer 200 with an error body and no data.
        if len(data) != expected:
            raise EmbeddingError(
                f"the embeddings endpoint returned {len(data)} vectors for {expected} inputs "
                f"(model {self.model!r})"
            )
        vectors = [item.embedding for item in sorted(data, key=lambda item: item.index)]
        for vector in vectors:
            if len(vector) != self.dimensions:
                raise EmbeddingDimensionMismatch(
                    f"embedding model {self.model!r} returned vectors of size {len(vector)}, "
                    f"but {self.dimensions} is expected: set EMBEDDING_DIMENSIONS={len(vector)} "
                    "and recreate the collection (re-ingest), or use a model that returns "
                    f"{self.dimensions}-dimensional vectors"
                )
        return vectors


def _reason(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "could not be reached"
    if isinstance(exc, openai.APIStatusError):
        return f"answered HTTP {exc.status_code}"
    return f"failed ({type(exc).__name__})"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's `Retry-After-Ms` or `Retry-After` (seconds or an HTTP date), in seconds."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return float(email.utils.mktime_tz(parsed) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def retry_delay(exc: openai.OpenAIError, *, retries: int, max_retries: int) -> float | None:
    """Seconds to wait before retrying after `exc` (the openai SDK's rules), or None: do not
    retry (not retryable, retries used up, or a `Retry-After` over 60 s)."""
    if retries >= max_retries:
        return None
    retry_after: float | None = None
    if isinstance(exc, openai.APIStatusError):
        headers = exc.response.headers
        retry_after = retry_after_seconds(headers)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > MAX_RETRY_AFTER:
            return None
        should = headers.get("x-should-retry")
        if should == "false":
            return None
        status = exc.status_code
        if should != "true" and status not in (408, 409, 429) and status < 500:
            return None
    elif not isinstance(exc, openai.APIConnectionError):  # timeouts are connection errors
        return None
    if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER:
        return retry_after
    backoff = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries, 1000), MAX_RETRY_DELAY)
    return backoff * (1 - 0.25 * random.random())


def build_embedder(settings: Settings) -> DenseEmbedder | None:
    """The embedder for the configured endpoint, or None without an API key (sparse-only)."""
    if settings.openrouter_api_key is None:
        return None
    api_key = settings.openrouter_api_key.get_secret_value()
    return DenseEmbedder(
        client=openai.OpenAI(
            base_url=settings.openrouter_base_url,
            api_key=api_key,
            timeout=settings.embedding_timeout_seconds,
            max_retries=settings.embedding_max_retries,
        ),
        async_client=openai.AsyncOpenAI(
            base_url=settings.openrouter_base_url,
            api_key=api_key,
            timeout=settings.embedding_timeout_seconds,
            max_retries=settings.embedding_max_retries,
        ),
        model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        batch_size=settings.embedding_batch_size,
    )
