"""Dense embeddings through the real openai client against the loopback fake OpenRouter."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest

from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder, build_embedder
from docsrag.errors import EmbeddingDimensionMismatch, EmbeddingError
from tests.fakes.openai_server import FakeOpenAI


def make_settings(fake: FakeOpenAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openrouter_api_key": fake.api_key,
        "openrouter_base_url": fake.base_url,
        "embedding_model": "openai/text-embedding-3-small",
        "embedding_dimensions": 256,
        "embedding_batch_size": 2,
        "embedding_timeout_seconds": 2,
        "embedding_max_retries": 1,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def embedder_for(fake: FakeOpenAI, **overrides: Any) -> DenseEmbedder:
    embedder = build_embedder(make_settings(fake, **overrides))
    assert embedder is not None
    return embedder


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_no_api_key_means_no_embedder() -> None:
    settings = Settings(_env_file=None, openrouter_api_key=None)

    assert build_embedder(settings) is None


def test_documents_are_embedded_in_batches_and_in_order(fake_openai: FakeOpenAI) -> None:
    embedder = embedder_for(fake_openai)
    texts = [f"section {n} about topic {n}" for n in range(5)]

    vectors = embedder.embed_documents(texts)

    assert len(vectors) == 5 and all(len(vector) == 256 for vector in vectors)
    assert embedder.calls == 3 == fake_openai.embedding_calls
    assert [len(request.json["input"]) for request in fake_openai.embedding_requests] == [2, 2, 1]
    # Each vector belongs to its own text: it matches a one-text request for the same text.
    alone = embedder.embed_documents([texts[3]])[0]
    assert cosine(vectors[3], alone) == pytest.approx(1.0)
    assert cosine(vectors[2], alone) < 0.9


def test_nothing_to_embed_makes_no_request(fake_openai: FakeOpenAI) -> None:
    embedder = embedder_for(fake_openai)

    assert embedder.embed_documents([]) == []
    assert embedder.calls == 0 == fake_openai.embedding_calls


async def test_query_vector_is_closest_to_the_matching_section(fake_openai: FakeOpenAI) -> None:
    embedder = embedder_for(fake_openai)
    sections = [
        "Deploy the site to GitHub Pages with the deploy command",
        "Install the CLI with npm install and check the version",
    ]

    query = await embedder.embed_query("how do I install the CLI with npm")
    vectors = embedder.embed_documents(sections)

    assert cosine(query, vectors[1]) > cosine(query, vectors[0])


def test_dimensions_are_sent_only_to_text_embedding_3_models(fake_openai: FakeOpenAI) -> None:
    embedder_for(fake_openai).embed_documents(["a"])
    embedder_for(
        fake_openai, embedding_model="qwen/qwen3-embedding-8b", embedding_dimensions=1536
    ).embed_documents(["a"])

    first, second = (request.json for request in fake_openai.embedding_requests)
    assert first["dimensions"] == 256
    assert "dimensions" not in second


def test_a_model_returning_another_size_is_reported_clearly(fake_openai: FakeOpenAI) -> None:
    embedder = embedder_for(
        fake_openai, embedding_model="qwen/qwen3-embedding-8b", embedding_dimensions=768
    )

    with pytest.raises(EmbeddingDimensionMismatch) as caught:
        embedder.embed_documents(["some text"])

    message = str(caught.value)
    assert "qwen/qwen3-embedding-8b" in message
    assert "768" in message and "1536" in message
    assert "EMBEDDING_DIMENSIONS" in message and "recreate the collection" in message


def test_a_rate_limit_is_retried_after_the_servers_delay(fake_openai: FakeOpenAI) -> None:
    # GIVEN the endpoint rate-limits the first request and asks to retry shortly
    fake_openai.fail_next(429, retry_after=0.05)
    embedder = embedder_for(fake_openai)

    # WHEN a batch is embedded
    vectors = embedder.embed_documents(["a", "b"])

    # THEN the SDK retried once and the caller got its vectors from one logical call
    assert len(vectors) == 2
    assert embedder.calls == 1
    assert fake_openai.embedding_calls == 2


def test_a_persistent_server_error_raises_embedding_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, count=10, retry_after=0.01)
    embedder = embedder_for(fake_openai, embedding_max_retries=2)

    with pytest.raises(EmbeddingError) as caught:
        embedder.embed_documents(["a"])

    assert isinstance(caught.value.__cause__, openai.InternalServerError)
    assert "500" in str(caught.value)
    assert fake_openai.embedding_calls == 3  # the first attempt and two retries


async def test_a_query_failure_raises_embedding_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(402)
    embedder = embedder_for(fake_openai)

    with pytest.raises(EmbeddingError, match="402"):
        await embedder.embed_query("anything")


def test_a_timeout_raises_embedding_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.slow(5)
    embedder = embedder_for(fake_openai, embedding_timeout_seconds=0.3, embedding_max_retries=0)

    with pytest.raises(EmbeddingError, match="timed out") as caught:
        embedder.embed_documents(["a"])

    assert isinstance(caught.value.__cause__, openai.APITimeoutError)


def test_an_error_body_with_status_200_raises_embedding_error(fake_openai: FakeOpenAI) -> None:
    # Some OpenAI-compatible proxies answer 200 with an error object instead of data.
    fake_openai.fail_next(200, body={"error": {"message": "No successful provider responses"}})
    embedder = embedder_for(fake_openai)

    with pytest.raises(EmbeddingError, match="0 vectors for 1 inputs"):
        embedder.embed_documents(["a"])


def test_the_api_key_is_not_in_error_messages(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(401)
    embedder = embedder_for(fake_openai)

    with pytest.raises(EmbeddingError) as caught:
        embedder.embed_documents(["a"])

    assert fake_openai.api_key not in str(caught.value)
