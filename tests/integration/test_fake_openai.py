"""The fake OpenRouter behaves like the real wire format, as seen through the real openai client."""

from __future__ import annotations

import math

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI

SYSTEM_WITH_SOURCES = (
    "Answer from the sources.\n<sources>\n"
    "[1] Installation > Linux\nURL: https://docs.example.org/docs/install#linux\n"
    "Run the installer script with sudo to install the CLI.\n\n"
    "[2] Configuration\nURL: https://docs.example.org/docs/config\n"
    "Settings live in a YAML file.\n</sources>"
)


def client_for(fake: FakeOpenAI, *, max_retries: int = 0, timeout: float = 2.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fake.base_url, api_key=fake.api_key, max_retries=max_retries, timeout=timeout
    )


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_chat_answers_from_the_first_source_and_cites_it(fake_openai: FakeOpenAI) -> None:
    client = client_for(fake_openai)

    completion = client.chat.completions.create(
        model="openai/gpt-oss-20b:free",
        messages=[
            {"role": "system", "content": SYSTEM_WITH_SOURCES},
            {"role": "user", "content": "How do I install it?"},
        ],
    )

    text = completion.choices[0].message.content or ""
    assert "Installation > Linux" in text
    assert "Run the installer script with sudo" in text
    assert text.endswith("[1]")
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert fake_openai.chat_calls == 1
    recorded = fake_openai.chat_requests[0]
    assert recorded.json["model"] == "openai/gpt-oss-20b:free"
    assert recorded.headers["authorization"] == f"Bearer {fake_openai.api_key}"


def test_a_test_can_choose_the_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_reply(lambda request: f"echo: {request['messages'][-1]['content']}")

    completion = client_for(fake_openai).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "ping"}]
    )

    assert completion.choices[0].message.content == "echo: ping"


def test_streaming_sends_deltas_then_usage_when_asked(fake_openai: FakeOpenAI) -> None:
    client = client_for(fake_openai)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM_WITH_SOURCES},
        {"role": "user", "content": "How do I install it?"},
    ]

    chunks = list(
        client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )

    deltas = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert len([delta for delta in deltas if delta]) > 3
    assert "".join(deltas).endswith("[1]")
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0

    without_usage = list(client.chat.completions.create(model="m", messages=messages, stream=True))
    assert all(chunk.usage is None for chunk in without_usage)


def test_tools_in_the_request_are_accepted(fake_openai: FakeOpenAI) -> None:
    tool: openai.types.chat.ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }

    completion = client_for(fake_openai).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], tools=[tool]
    )

    assert completion.choices[0].message.content


def test_rate_limit_carries_retry_after_to_the_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(429, retry_after=0.1)

    with pytest.raises(openai.RateLimitError) as caught:
        client_for(fake_openai).embeddings.create(model="e", input="hello")

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "0.1"


def test_client_retries_after_a_rate_limit_and_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(429, retry_after=0.1)

    completion = client_for(fake_openai, max_retries=1).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content
    assert fake_openai.chat_calls == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (402, openai.APIStatusError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_failures_reach_the_client_as_status_errors(
    fake_openai: FakeOpenAI, status: int, error_type: type[openai.APIStatusError]
) -> None:
    fake_openai.fail_next(status, endpoint="chat")

    with pytest.raises(error_type) as caught:
        client_for(fake_openai).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == status
    # The failure was used up: the next call works.
    assert client_for(fake_openai).embeddings.create(model="e", input="x").data


def test_a_failure_for_one_endpoint_leaves_the_other_alone(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_next(500, endpoint="embeddings")
    client = client_for(fake_openai)

    assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="e", input="x")


def test_slow_response_runs_past_the_client_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.slow(5)

    with pytest.raises(openai.APITimeoutError):
        client_for(fake_openai, timeout=0.3).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )


def test_slow_can_delay_one_endpoint_only(fake_openai: FakeOpenAI) -> None:
    fake_openai.slow(5, endpoint="chat")
    client = client_for(fake_openai, timeout=0.3)

    embedded = client.embeddings.create(model="e", input="still fast")
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    assert len(embedded.data) == 1


@pytest.mark.parametrize(
    ("mode", "error_type"),
    [("error", openai.APIError), ("drop", openai.APIConnectionError)],
)
def test_stream_breaks_midway(
    fake_openai: FakeOpenAI, mode: str, error_type: type[openai.APIError]
) -> None:
    fake_openai.break_stream_after(2, mode=mode)  # type: ignore[arg-type]
    received: list[str] = []

    with pytest.raises(error_type):
        for chunk in client_for(fake_openai).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")

    assert "".join(received).strip(), "some text arrived before the break"


def test_embeddings_follow_word_overlap(fake_openai: FakeOpenAI) -> None:
    query = "install the command line tool on linux"
    documents = [
        "configure logging levels in the yaml file",
        "install the command line tool on linux with the script",
        "the command line tool has many options",
    ]

    response = client_for(fake_openai).embeddings.create(
        model="openai/text-embedding-3-small", input=[query, *documents]
    )

    vectors = [item.embedding for item in response.data]
    assert all(len(vector) == 1536 for vector in vectors)
    scores = [cosine(vectors[0], vector) for vector in vectors[1:]]
    assert scores[1] > scores[2] > scores[0]
    assert response.usage.prompt_tokens > 0


def test_embeddings_honour_dimensions_and_single_string_input(fake_openai: FakeOpenAI) -> None:
    client = client_for(fake_openai)

    small = client.embeddings.create(model="e", input="hello world", dimensions=64)
    as_floats = client.embeddings.create(model="e", input="hello world", encoding_format="float")

    assert len(small.data) == 1 and len(small.data[0].embedding) == 64
    assert len(as_floats.data[0].embedding) == 1536
    assert fake_openai.embedding_requests[0].json["dimensions"] == 64
    assert fake_openai.embedding_calls == 2


def test_model_list(fake_openai: FakeOpenAI) -> None:
    models = client_for(fake_openai).models.list()

    assert "openai/gpt-oss-20b:free" in [model.id for model in models]


def test_reset_forgets_requests_and_pending_failures(fake_openai: FakeOpenAI) -> None:
    client = client_for(fake_openai)
    client.embeddings.create(model="e", input="x")
    fake_openai.fail_next(500, count=5)

    fake_openai.reset()

    assert fake_openai.requests == []
    assert client.embeddings.create(model="e", input="x").data
