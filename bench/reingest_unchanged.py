"""Ingest a site twice; the second run must cost nothing: 0 embedding calls, 0 points written.

Uses the real pipeline (parsing, chunking, BM25, DenseEmbedder through the openai client) against
the loopback fake OpenAI server from tests/fakes, and an embedded Qdrant store in a temp folder.

    .venv/bin/python bench/reingest_unchanged.py [SITE]

SITE defaults to the shared Docusaurus build (../shared/corpora/docusaurus/build) when present,
else this repository's docs/ folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from docsrag.config import Settings
from docsrag.embeddings import build_embedder
from docsrag.index import DocsIndex, build_qdrant_client
from docsrag.ingest import Ingestor
from docsrag.sparse import BM25Encoder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a script run from anywhere finds tests.fakes

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

DEFAULT_SITES = [REPO.parent / "shared" / "corpora" / "docusaurus" / "build", REPO / "docs"]


def main() -> int:
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else next(p for p in DEFAULT_SITES if p.is_dir())
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            openrouter_api_key=fake.api_key,
            openrouter_base_url=fake.base_url,
            qdrant_path=Path(tmp) / "qdrant",
            embedding_max_retries=0,
        )
        client = build_qdrant_client(settings)
        index = DocsIndex(
            client=client,
            collection=settings.collection_name,
            dense_dimensions=settings.embedding_dimensions,
        )
        index.ensure_collection()
        ingestor = Ingestor(
            index=index, encoder=BM25Encoder(), embedder=build_embedder(settings), settings=settings
        )
        print(f"site: {site}")
        results = []
        for run in ("first", "second"):
            fake.reset()
            written_before = index.points_written
            start = time.perf_counter()
            summary = ingestor.sync_folder(site)
            seconds = time.perf_counter() - start
            written = index.points_written - written_before
            results.append((fake.embedding_calls, written))
            print(
                f"{run:>6} run: {seconds:6.1f} s  added {summary.added}  updated {summary.updated}"
                f"  unchanged {summary.unchanged}  skipped {summary.skipped}  failed "
                f"{summary.failed}  embedding calls {fake.embedding_calls}  points written "
                f"{written}"
            )
        client.close()
    calls, written = results[1]
    ok = calls == 0 and written == 0
    print(
        f"second run: {calls} embedding calls, {written} points written -> {'OK' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
