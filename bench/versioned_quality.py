"""Retrieval on a versioned, two-locale site: the asked version first, no other one in the top 5.

    .venv/bin/python bench/versioned_quality.py [--source site/build]
        [--questions bench/questions_versioned.jsonl] [--embeddings-url URL ...]

Ingests the sample site's build (`make site`: versions 1.1 (default), next and 1.0, English and
French, a blog) into a temporary embedded Qdrant, asks every question of
`bench/questions_versioned.jsonl` the way `/chat` gets them (with the visitor's `page_url` and an
explicit `version` where the question has them) in BM25-only and hybrid mode, and reports:

- first source from the asked version (and locale): share of questions;
- sources from another version in the top 5, on average, for questions that name no version;
- recall@1, recall@5 and MRR of the labelled section (path + anchor in that version);
- the same questions that expect the default version and locale against a single-version
  build of the same pages (the default version's English docs alone): versions must not cost
  recall;
- search latency of a scoped search against an unscoped one on the same index (p50, ratio).

Dense vectors come from the test suite's loopback fake server (word overlap) unless
`--embeddings-url` points at a real model, e.g. MiniLM offline (see bench/retrieval_quality.py).
`bench/retrieval_quality.py --versioned` runs this script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the test suite's fake server, as bench/retrieval_quality.py does
    sys.path.insert(0, str(ROOT))

from docsrag.config import Settings, load_settings  # noqa: E402
from docsrag.embeddings import build_embedder  # noqa: E402
from docsrag.index import DocsIndex, build_qdrant_client  # noqa: E402
from docsrag.ingest import Ingestor  # noqa: E402
from docsrag.models import Hit  # noqa: E402
from docsrag.retrieval import Retriever  # noqa: E402
from docsrag.scope import ScopeRequest  # noqa: E402
from docsrag.sparse import BM25Encoder  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
SITE_URL = "http://localhost:3000"


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    path: str
    anchor: str | None
    version: str
    locale: str
    page_url: str | None
    explicit_version: str | None

    @property
    def plain(self) -> bool:
        """Asked with no version clue: the default version and locale answer."""
        return self.page_url is None and self.explicit_version is None


def load(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            questions.append(
                Question(
                    question=row["question"],
                    path=row["path"],
                    anchor=row.get("anchor"),
                    version=row["expect_version"],
                    locale=row.get("expect_locale", "en"),
                    page_url=row.get("page_url"),
                    explicit_version=row.get("version"),
                )
            )
    return questions


def found(question: Question, hit: Hit, *, path: str | None = None) -> bool:
    wanted = (path or question.path).rstrip("/")
    if hit.path.rstrip("/") != wanted:
        return False
    return question.anchor is None or question.anchor in hit.anchors


@dataclass
class Figures:
    first_in_version: float
    other_version_top5: float
    recall1: float
    recall5: float
    mrr: float


async def measure(
    retriever: Retriever, questions: Sequence[Question], *, single_version: bool = False
) -> Figures:
    first_ok = 0
    other_counts: list[int] = []
    ranks: list[int | None] = []
    for question in questions:
        request = (
            ScopeRequest()
            if single_version
            else ScopeRequest(page_url=question.page_url, version=question.explicit_version)
        )
        result = await retriever.retrieve(question.question, request=request)
        hits = result.hits
        docs = [hit for hit in hits if hit.meta.kind == "docs"]
        if not single_version:
            if (
                docs
                and docs[0].meta.version == question.version
                and hits[0].meta.locale in (question.locale, "en")
            ):
                first_ok += 1
            if question.explicit_version is None:
                other_counts.append(
                    sum(1 for hit in docs[:5] if hit.meta.version != question.version)
                )
        rank = next((n for n, hit in enumerate(hits[:5], 1) if found(question, hit)), None)
        ranks.append(rank)
    count = len(questions) or 1
    return Figures(
        first_in_version=first_ok / count,
        other_version_top5=statistics.mean(other_counts) if other_counts else 0.0,
        recall1=sum(1 for r in ranks if r == 1) / count,
        recall5=sum(1 for r in ranks if r is not None) / count,
        mrr=sum(1 / r for r in ranks if r is not None) / count,
    )


def single_version_copy(build: Path, target: Path, default_questions: list[Question]) -> None:
    """The default version's English docs alone, as a one-version build would hold them."""
    docs = build / "docs"
    for path in docs.rglob("*.html"):
        relative = path.relative_to(docs)
        if relative.parts and relative.parts[0] in ("next", "1.0"):
            continue
        out = target / "docs" / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)


async def search_latency(
    index: DocsIndex, retriever: Retriever, questions: Sequence[Question]
) -> str:
    encoder = BM25Encoder()
    scoped: list[float] = []
    unscoped: list[float] = []
    for _ in range(5):
        for question in questions:
            scope = await retriever.scope(question.question, ScopeRequest())
            sparse = encoder.encode_query(question.question)
            started = time.perf_counter()
            index.search(sparse=sparse, dense=None, limit=18, prefetch_limit=50, scope=scope)
            scoped.append(time.perf_counter() - started)
            started = time.perf_counter()
            index.search(sparse=sparse, dense=None, limit=18, prefetch_limit=50)
            unscoped.append(time.perf_counter() - started)
    a, b = statistics.median(scoped) * 1000, statistics.median(unscoped) * 1000
    return f"search p50: scoped {a:.2f} ms, unscoped {b:.2f} ms, ratio {a / b:.2f}"


def build_index(
    settings: Settings, source: Path, *, dense: bool
) -> tuple[DocsIndex, Retriever, Retriever]:
    client = build_qdrant_client(settings)
    index = DocsIndex(
        client=client,
        collection=settings.collection_name,
        dense_dimensions=settings.embedding_dimensions,
    )
    index.ensure_collection()
    encoder = BM25Encoder()
    embedder = build_embedder(settings) if dense else None
    summary = Ingestor(
        index=index, encoder=encoder, embedder=embedder, settings=settings
    ).sync_folder(source)
    print(f"  ingested {source}: {summary.added} pages, {summary.skipped} skipped, ", end="")
    print(f"{summary.failed} failed")
    bm25 = Retriever(index=index, encoder=encoder, embedder=None, settings=settings)
    hybrid = Retriever(index=index, encoder=encoder, embedder=embedder, settings=settings)
    return index, bm25, hybrid


def row(name: str, figures: Figures) -> str:
    return (
        f"| {name} | {figures.first_in_version:.3f} | {figures.other_version_top5:.2f} | "
        f"{figures.recall1:.3f} | {figures.recall5:.3f} | {figures.mrr:.3f} |"
    )


async def report(
    questions: list[Question],
    plain: list[Question],
    index: DocsIndex,
    versioned: tuple[Retriever, Retriever],
    single: tuple[Retriever, Retriever],
    dense_name: str,
) -> None:
    """Every figure, in one event loop (the embedder's async client belongs to it)."""
    print()
    print(
        "| mode | first source from the asked version | other-version sources in top 5 "
        "| recall@1 | recall@5 | MRR |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    names = ("BM25", dense_name)
    for name, retriever in zip(names, versioned, strict=True):
        print(row(f"{name}, versioned site", await measure(retriever, questions)))
    print()
    print("Plain questions (default version), versioned site vs a single-version build:")
    print("| mode | recall@5 versioned | recall@5 single | MRR versioned | MRR single |")
    print("| --- | --- | --- | --- | --- |")
    for name, many, one in zip(names, versioned, single, strict=True):
        a = await measure(many, plain)
        b = await measure(one, plain, single_version=True)
        print(f"| {name} | {a.recall5:.3f} | {b.recall5:.3f} | {a.mrr:.3f} | {b.mrr:.3f} |")
    print()
    print(await search_latency(index, versioned[0], questions))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=ROOT / "site" / "build")
    parser.add_argument("--questions", type=Path, default=BENCH_DIR / "questions_versioned.jsonl")
    parser.add_argument("--embeddings-url")
    parser.add_argument("--embedding-model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--embedding-dimensions", type=int, default=384)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if not (args.source / "docs" / "next").is_dir():
        print(f"{args.source} is not the versioned sample build: run `make site` first")
        return 1
    questions = load(args.questions)
    plain = [q for q in questions if q.plain and q.version == "1.1" and q.locale == "en"]
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory(prefix="docsrag-vbench-") as tmp:
        if args.embeddings_url:
            endpoint: dict[str, object] = {
                "openrouter_api_key": "local-no-key",
                "openrouter_base_url": args.embeddings_url,
                "embedding_model": args.embedding_model,
                "embedding_dimensions": args.embedding_dimensions,
            }
            dense_name = f"hybrid ({args.embedding_model.rsplit('/', 1)[-1]})"
        else:
            endpoint = {"openrouter_api_key": fake.api_key, "openrouter_base_url": fake.base_url}
            dense_name = "hybrid (fake dense)"

        def settings_for(name: str) -> Settings:
            return load_settings(
                **endpoint,
                qdrant_url=None,
                qdrant_api_key=None,
                qdrant_path=Path(tmp) / name,
                collection_name="bench",
                site_url=SITE_URL,
            )

        print(f"{len(questions)} questions ({len(plain)} plain ones asked of both builds)")
        index, bm25, hybrid = build_index(settings_for("versioned"), args.source, dense=True)
        single_root = Path(tmp) / "single"
        single_version_copy(args.source, single_root, plain)
        _, bm25_single, hybrid_single = build_index(settings_for("single"), single_root, dense=True)

        asyncio.run(
            report(
                questions, plain, index, (bm25, hybrid), (bm25_single, hybrid_single), dense_name
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
