"""Ingest CPU throughput: parse + chunk + BM25-encode, in pages per second on one core.

What an ingest does to a page before any network call: `parse_document` (HTML with selectolax, or
Markdown/MDX with markdown-it-py), `chunk_page` with the default chunk sizes, and
`BM25Encoder.encode_document` on every chunk's `embed_text`. Embedding and Qdrant writes are
excluded (network). Files are read into memory before timing, the process is pinned to one CPU,
and the time measured is the process's CPU time, so other work on a busy machine does not count
(wall-clock figures are printed too). Every set is run three times: the first run is "cold"
(empty term caches, as in a fresh Lambda), the best of the three is "warm".

Sets:
  * the project's own docs (`docs/`, Markdown), when there are any;
  * the real Docusaurus 3.10 build in ../shared/corpora/docusaurus/build (HTML) and its MDX
    sources (../shared/corpora/docusaurus/docs), when present;
  * 2,000 generated Markdown pages (deterministic, in memory) with front matter, headings, prose,
    lists, tables, code blocks and admonitions, 1-20 KB each.

    .venv/bin/python bench/parse_throughput.py [--profile SET] [--rounds N]

Target: >= 300 pages/s on one core.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docsrag.chunking import chunk_page
from docsrag.config import Settings, load_settings
from docsrag.errors import DocumentError, UnsupportedDocument
from docsrag.parsing import classify_key, iter_site_files, parse_document
from docsrag.sparse import BM25Encoder, clear_caches

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "corpora" / "docusaurus"
TARGET_PAGES_PER_SECOND = 300
SHARED_SITE_URL = "https://docs.heldout-example.org"


@dataclass
class Corpus:
    name: str
    documents: list[tuple[str, bytes]]
    settings: Settings


@dataclass
class Run:
    pages: int = 0
    skipped: int = 0
    failed: int = 0
    chunks: int = 0
    parse_s: float = 0.0
    chunk_s: float = 0.0
    sparse_s: float = 0.0
    wall_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.parse_s + self.chunk_s + self.sparse_s


def pin_to_one_core() -> str:
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    if not hasattr(os, "sched_setaffinity"):
        return f"one process, one thread (CPU pinning not available here){load}"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu} of {os.cpu_count()}{load}"


def load_folder(name: str, root: Path, settings: Settings) -> Corpus | None:
    if not root.is_dir():
        print(f"-- {name}: {root} not found, skipped")
        return None
    documents = [
        (key, path.read_bytes())
        for key, path in iter_site_files(root)
        if classify_key(key).format is not None
    ]
    if not documents:
        print(f"-- {name}: no pages in {root} yet, skipped")
        return None
    return Corpus(name, documents, settings)


# --- generated pages -----------------------------------------------------------------------------

_COMMON = (
    "the a of to and in is for that with as on it be by this are you can your from or will an "
    "use when not which all if each also more one new other these should into only how file "
    "docusaurus plugin theme sidebar navbar footer config deploy build server client route page "
    "markdown mdx component react version locale translation search index cache static asset "
    "link heading anchor slug front matter category document blog post author tag archive "
    "preset option default value string number boolean object array function module export "
    "import install command yarn npm pnpm package dependency release upgrade migration guide"
)
_SYLLABLES = [
    "ba",
    "co",
    "de",
    "fi",
    "gu",
    "ka",
    "le",
    "mi",
    "no",
    "pu",
    "ra",
    "se",
    "ti",
    "vo",
    "wu",
    "xa",
    "ye",
    "zo",
    "tion",
    "ment",
    "ing",
    "er",
    "ly",
]


def _vocabulary(size: int) -> tuple[list[str], list[float]]:
    """Common words first, then made-up words; drawn with Zipf's law like real text."""
    rng = random.Random(0)
    words = _COMMON.split()
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    cumulative = list(itertools.accumulate(1.0 / rank for rank in range(1, size + 1)))
    return words, cumulative


WORDS, _CUMULATIVE = _vocabulary(8_000)


def _words(rng: random.Random, count: int) -> list[str]:
    return rng.choices(WORDS, cum_weights=_CUMULATIVE, k=count)


IDENTIFIERS = (
    "onBrokenLinks",
    "docusaurus.config.js",
    "sidebars.js",
    "@docusaurus/core",
    "baseUrl",
    "trailingSlash",
    "themeConfig.navbar",
    "useDocusaurusContext",
    "staticDirectories",
    "i18n.defaultLocale",
)


def _sentence(rng: random.Random) -> str:
    words = _words(rng, rng.randint(6, 22))
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = f"`{rng.choice(IDENTIFIERS)}`"
    if rng.random() < 0.15:
        words.append(f"[{rng.choice(WORDS)} {rng.choice(WORDS)}](/docs/{rng.choice(WORDS)})")
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 7)))


def _code(rng: random.Random) -> str:
    lang = rng.choice(["js", "bash", "yaml", "tsx"])
    lines = [
        f"{'  ' * rng.randint(0, 3)}{rng.choice(IDENTIFIERS).replace('.', '_')}"
        f"({rng.choice(WORDS)!r}, {rng.randint(0, 999)});"
        for _ in range(rng.randint(3, 40))
    ]
    title = f' title="{rng.choice(WORDS)}.config.js"' if rng.random() < 0.4 else ""
    return f"```{lang}{title}\n" + "\n".join(lines) + "\n```"


def _table(rng: random.Random) -> str:
    rows = ["| Name | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for _ in range(rng.randint(2, 15)):
        rows.append(
            f"| `{rng.choice(WORDS)}` | `string` | `{rng.choice(WORDS)}` | {_sentence(rng)} |"
        )
    return "\n".join(rows)


def _list(rng: random.Random) -> str:
    marker = rng.choice(["-", "1."])
    return "\n".join(f"{marker} {_sentence(rng)}" for _ in range(rng.randint(2, 8)))


def _admonition(rng: random.Random) -> str:
    kind = rng.choice(["tip", "note", "warning", "info"])
    return f":::{kind}\n\n{_paragraph(rng)}\n\n:::"


def generated_page(index: int) -> tuple[str, bytes]:
    rng = random.Random(index)
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).title()
    parts = [
        f"---\ntitle: {title}\ndescription: {json.dumps(_sentence(rng))}\n"
        f"sidebar_position: {index % 20}\n---",
        f"# {title}",
        _paragraph(rng),
    ]
    size = rng.choice([1_000, 3_000, 5_000, 5_000, 8_000, 12_000, 20_000])
    while sum(len(part) for part in parts) < size:
        level = rng.choice(["##", "##", "###"])
        parts.append(f"{level} {' '.join(rng.choice(WORDS) for _ in range(3)).title()}")
        for _ in range(rng.randint(1, 4)):
            make: Callable[[random.Random], str] = rng.choice(
                [_paragraph, _paragraph, _paragraph, _code, _table, _list, _admonition]
            )
            parts.append(make(rng))
    key = f"generated/section-{index // 100}/page-{index}.md"
    return key, "\n\n".join(parts).encode("utf-8")


# --- the measured pipeline -------------------------------------------------------------------


def run_once(corpus: Corpus, encoder: BM25Encoder) -> Run:
    settings = corpus.settings
    run = Run()
    # CPU time of this process: other work on the machine does not count against the pipeline.
    clock = time.process_time
    wall_started = time.perf_counter()
    for key, data in corpus.documents:
        started = clock()
        try:
            page = parse_document(key, data, settings=settings)
        except UnsupportedDocument:
            run.skipped += 1
            run.parse_s += clock() - started
            continue
        except DocumentError:
            run.failed += 1
            run.parse_s += clock() - started
            continue
        parsed = clock()
        chunks = chunk_page(
            page,
            target_tokens=settings.chunk_target_tokens,
            max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            min_tokens=settings.chunk_min_tokens,
        )
        chunked = clock()
        for chunk in chunks:
            encoder.encode_document(chunk.embed_text)
        encoded = clock()
        run.pages += 1
        run.chunks += len(chunks)
        run.parse_s += parsed - started
        run.chunk_s += chunked - parsed
        run.sparse_s += encoded - chunked
    run.wall_s = time.perf_counter() - wall_started
    return run


def measure(corpus: Corpus, rounds: int) -> None:
    encoder = BM25Encoder()
    clear_caches()
    runs = [run_once(corpus, encoder) for _ in range(rounds)]
    cold, best = runs[0], min(runs, key=lambda run: run.total_s)
    documents = len(corpus.documents)
    megabytes = sum(len(data) for _, data in corpus.documents) / 1e6
    rate_cold = documents / cold.total_s
    rate_best = documents / best.total_s
    rate_wall = documents / best.wall_s
    verdict = "meets" if rate_cold >= TARGET_PAGES_PER_SECOND else "BELOW"
    print(
        f"{corpus.name:<34} {documents:>5} {best.pages:>5} {best.skipped + best.failed:>5} "
        f"{best.chunks:>6} {megabytes:>6.1f} "
        f"{best.parse_s * 1000:>7.0f} {best.chunk_s * 1000:>6.0f} {best.sparse_s * 1000:>6.0f}   "
        f"{rate_cold:>6.0f} {rate_best:>6.0f} {rate_wall:>6.0f}  {verdict} target"
    )


def profile(corpus: Corpus) -> None:
    encoder = BM25Encoder()
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(corpus, encoder)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=2000, help="generated pages")
    parser.add_argument("--profile", metavar="SET", help="profile one set (prefix of its name)")
    args = parser.parse_args()

    where = pin_to_one_core()
    defaults = load_settings()
    shared_settings = load_settings(site_url=SHARED_SITE_URL)
    corpora = [
        load_folder("project docs/ (Markdown)", REPO / "docs", defaults),
        load_folder("shared build/ (HTML)", SHARED / "build", shared_settings),
        load_folder("shared docs/ (MDX sources)", SHARED / "docs", shared_settings),
        Corpus(
            f"generated ({args.pages} Markdown pages)",
            [generated_page(i) for i in range(args.pages)],
            defaults,
        ),
    ]
    available = [corpus for corpus in corpora if corpus is not None]

    if args.profile:
        for corpus in available:
            if corpus.name.startswith(args.profile):
                profile(corpus)
                return
        raise SystemExit(f"no set named {args.profile!r}: {[c.name for c in available]}")

    print(
        f"parse + chunk + BM25 encode, {where}, no network; chunk sizes "
        f"{defaults.chunk_target_tokens}/{defaults.chunk_max_tokens} tokens; "
        f"target >= {TARGET_PAGES_PER_SECOND} pages/s"
    )
    print(
        f"{'':<34} {'':>5} {'':>5} {'':>5} {'':>6} {'':>6} {'CPU ms, warm run':^22} {'pages/s':^20}"
    )
    print(
        f"{'set':<34} {'files':>5} {'pages':>5} {'skip':>5} {'chunks':>6} {'MB':>6} "
        f"{'parse':>7} {'chunk':>6} {'bm25':>6}   {'cold':>6} {'warm':>6} {'wall':>6}"
    )
    for corpus in available:
        measure(corpus, args.rounds)
    print(
        "pages/s = files classified as pages / CPU seconds (the files the parser then skips, such\n"
        "as 404 or generated-index link lists, count too); cold = first run with empty term\n"
        "caches, warm = best of the runs, wall = the warm run by the wall clock."
    )


if __name__ == "__main__":
    main()
