"""Turn documents into indexed chunks, paying only for what changed.

A page's content hash covers everything its points are made of (pipeline version, embedding
model, and each chunk's path, anchors and embedded text). When the hash the index holds is the
same, and the points already have dense vectors (or there is no embedder to make them), the page
costs nothing: no embedding request, no write. Pages indexed BM25-only (no key at the time) get
their dense vectors on the first ingest that has an embedder.

What happens to a page that is already indexed when its new version is bad:
- the new file cannot be read as a document (binary, not UTF-8, empty, over the size limit,
  unparseable): the page is *skipped* with the reason and **keeps its indexed chunks**. A half
  uploaded or broken file must not take a good page out of the docs; the next good version
  replaces it. The S3 pipeline gets the same rule from `ingest_document`.
- the new file is no longer a page we index (`draft: true`, an article-less HTML page) or has no
  text left: the page's chunks are removed (status `deleted`), as the author asked.
- embedding fails: `ingest_document` raises `EmbeddingError` (the S3 pipeline retries the
  record); `sync_folder` counts the page as failed, keeps its old chunks, and stops calling the
  embeddings endpoint for the rest of the run.
Qdrant failures (`IndexUnavailable`) always propagate: nothing sensible can continue.

Embedding a page stops at the `deadline` passed to `ingest_document` (the ingest function makes
one per SQS record from its remaining time and hands it down through `S3Sync`): the page's requests
and retries end before it, or `EmbeddingError` is raised before anything is written, and the record
is delivered again. Without one (and in `sync_folder`) embedding is unbounded.

A page that chunks into more than `MAX_CHUNKS_PER_PAGE` chunks (a generated or pasted 5 MB page)
is indexed with its first chunks only, so one page cannot cost thousands of embeddings; the
outcome says so (`PageOutcome.truncated`, `IngestSummary.truncated`) and a warning is logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from docsrag.budget import Deadline
from docsrag.chunking import chunk_page
from docsrag.config import Settings
from docsrag.embeddings import DenseEmbedder
from docsrag.errors import (
    DocumentError,
    EmbeddingDimensionMismatch,
    EmbeddingError,
    UnsupportedDocument,
)
from docsrag.index import DocsIndex
from docsrag.models import Chunk, IngestSummary, PageState
from docsrag.parsing import SourceLayout, parse_document
from docsrag.sparse import BM25Encoder

logger = logging.getLogger(__name__)

# Bump when parsing, chunking or the BM25 encoding change what a page's points contain: every
# page's hash changes and the next ingest rewrites (and re-embeds) the whole site.
# 2: chunks record every section they cover (`anchors`). 3: pages record their kind, docs
# plugin, version and locale (`PageMeta`), so an index built by an earlier release is rewritten
# (and re-embedded) by its first ingest under this one.
# (Parser changes that alter some pages' text need no bump: the hash covers each chunk's text, so
# only the pages whose chunks changed are rewritten. The S3 pipeline re-reads every page after
# such a change through `s3site.PARSER_REVISION`.)
PIPELINE_VERSION = "3"

PageStatus = Literal["added", "updated", "unchanged", "skipped", "deleted"]


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What one `ingest_document` did. `deleted`: the key is no longer a page we index (draft,
    no article, no text) and its chunks left the index."""

    status: PageStatus
    reason: str | None = None
    chunks: int = 0
    embedding_calls: int = 0
    # Set when the page had more chunks than MAX_CHUNKS_PER_PAGE: what was left out.
    truncated: str | None = None


def max_chunks_per_page(settings: Settings) -> int:
    """MAX_CHUNKS_PER_PAGE (validated by `Settings`: at least 1)."""
    return settings.max_chunks_per_page


class Ingestor:
    def __init__(
        self,
        *,
        index: DocsIndex,
        encoder: BM25Encoder,
        embedder: DenseEmbedder | None,
        settings: Settings,
    ) -> None:
        self._index = index
        self._encoder = encoder
        self._embedder = embedder
        self._settings = settings

    # --- one document -----------------------------------------------------------------------

    def ingest_document(
        self,
        source_key: str,
        data: bytes,
        *,
        version: str | None = None,
        deadline: Deadline | None = None,
    ) -> PageOutcome:
        """Index one document's bytes under `source_key` (its path relative to the site root).

        `version` (an S3 sequencer or ETag) is stored with the points. `deadline` bounds the
        page's embedding requests and retries (None: unbounded). Raises `EmbeddingError` (the
        page keeps its old chunks; also when the deadline cuts the embedding) and
        `IndexUnavailable`.
        """
        return self._ingest(
            source_key,
            data,
            version=version,
            state=self._index.page_state(source_key),
            embedder_down=False,
            deadline=deadline,
        )

    def _ingest(
        self,
        source_key: str,
        data: bytes,
        *,
        version: str | None,
        state: PageState | None,
        embedder_down: bool,
        layout: SourceLayout | None = None,
        deadline: Deadline | None = None,
    ) -> PageOutcome:
        """`ingest_document` with the page's indexed state already known. `embedder_down`: the
        embedder failed earlier in this run; a page that needs it fails without a call.
        `layout` places Markdown keys (see `parse_document`). `deadline` bounds the embedding
        (None: unbounded)."""
        kept = "; the indexed version is kept" if state is not None else ""
        try:
            chunks = self._chunks(source_key, data, layout=layout)
        except UnsupportedDocument as exc:
            return self._not_a_page(source_key, state, str(exc))
        except DocumentError as exc:
            logger.warning("skipping %s: %s%s", source_key, exc, kept)
            return PageOutcome(status="skipped", reason=f"{exc}{kept}")
        except Exception as exc:  # a parser bug on odd input must not stop a sync
            logger.exception("cannot parse %s", source_key)
            return PageOutcome(
                status="skipped", reason=f"cannot parse: {type(exc).__name__}: {exc}{kept}"
            )
        if not chunks:
            return self._not_a_page(source_key, state, "the page has no text")
        truncated: str | None = None
        limit = max_chunks_per_page(self._settings)
        if len(chunks) > limit:
            truncated = (
                f"{len(chunks)} chunks, over MAX_CHUNKS_PER_PAGE ({limit}): only the first "
                f"{limit} are indexed"
            )
            logger.warning("truncating %s: %s", source_key, truncated)
            chunks = chunks[:limit]

        content_hash = self.content_hash(chunks)
        embedder = self._embedder
        # Same content: nothing to do. A BM25-only page still wants its dense vectors, unless the
        # embedder is missing or already failed in this run: then it stays as it is.
        if (
            state is not None
            and state.content_hash == content_hash
            and (state.has_dense or embedder is None or embedder_down)
        ):
            if version is not None and version != state.version:
                self._index.set_version(source_key, version)
            return PageOutcome(status="unchanged", chunks=state.chunk_count, truncated=truncated)
        if embedder is not None and embedder_down:
            raise EmbeddingError(
                "not attempted: the embeddings endpoint failed earlier in this run"
            )

        dense: list[list[float]] | None = None
        calls = 0
        if embedder is not None:
            before = embedder.calls
            try:
                dense = embedder.embed_documents(
                    [chunk.embed_text for chunk in chunks],
                    deadline=deadline or Deadline.unbounded(),
                )
            finally:
                calls = embedder.calls - before
        sparse = [self._encoder.encode_document(chunk.embed_text) for chunk in chunks]
        written = self._index.write_page(
            chunks=chunks,
            content_hash=content_hash,
            sparse=sparse,
            dense=dense,
            version=version,
            new_page=state is None,
        )
        if state is None:
            status: PageStatus = "added"
            reason = None
        else:
            status = "updated"
            reason = None if state.content_hash != content_hash else "dense vectors added"
        logger.info("%s %s: %d chunks, %d embedding calls", status, source_key, written, calls)
        return PageOutcome(
            status=status,
            reason=reason,
            chunks=written,
            embedding_calls=calls,
            truncated=truncated,
        )

    def _chunks(
        self, source_key: str, data: bytes, *, layout: SourceLayout | None = None
    ) -> list[Chunk]:
        page = parse_document(source_key, data, settings=self._settings, layout=layout)
        s = self._settings
        return chunk_page(
            page,
            target_tokens=s.chunk_target_tokens,
            max_tokens=s.chunk_max_tokens,
            overlap_tokens=s.chunk_overlap_tokens,
            min_tokens=s.chunk_min_tokens,
        )

    def delete_document(self, source_key: str) -> bool:
        """Remove a page from the index; False when it held nothing for the key."""
        removed = self._index.delete_page(source_key)
        if removed:
            logger.info("deleted %s (%d chunks)", source_key, removed)
        return removed > 0

    def is_current(self, source_key: str, version: str) -> bool:
        """True when the page is indexed from `version` and has everything this ingestor would
        give it (dense vectors, when there is an embedder): ingesting that version again would
        change nothing, so the caller need not even read the document."""
        state = self._index.page_state(source_key)
        return (
            state is not None
            and state.version == version
            and (state.has_dense or self._embedder is None)
        )

    def indexed_versions(self) -> dict[str, str | None]:
        """Every indexed page's stored `version`, by key (one scroll)."""
        return {key: state.version for key, state in self._index.page_states().items()}

    def content_hash(self, chunks: Sequence[Chunk]) -> str:
        """Identity of what a page's points hold; equal hashes need no new write."""
        digest = hashlib.sha256()
        header = (
            f"pipeline={PIPELINE_VERSION}\0model={self._settings.embedding_model}"
            f"\0dims={self._settings.embedding_dimensions}\0"
        )
        digest.update(header.encode())
        if chunks:
            digest.update((chunks[0].page_description or "").encode("utf-8") + b"\0")
        for chunk in chunks:
            anchors = "\x1f".join(anchor or "" for anchor in chunk.anchors)
            meta = chunk.meta
            place = f"{meta.kind}\x1f{meta.plugin}\x1f{meta.version}\x1f{meta.default_version}"
            place += f"\x1f{meta.locale}\x1f{meta.doc_id}"
            for part in (chunk.path, anchors, place, chunk.embed_text):
                digest.update(part.encode("utf-8"))
                digest.update(b"\0")
            digest.update(b"\1")
        return digest.hexdigest()

    def _not_a_page(self, source_key: str, state: PageState | None, reason: str) -> PageOutcome:
        if state is None:
            return PageOutcome(status="skipped", reason=reason)
        removed = self._index.delete_page(source_key)
        logger.info("removed %s (%d chunks): %s", source_key, removed, reason)
        return PageOutcome(status="deleted", reason=reason)

    # --- a whole folder -----------------------------------------------------------------------

    def sync_folder(
        self,
        root: Path,
        *,
        docs_dir: Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> IngestSummary:
        """Make the index hold exactly the pages of `root`: a Docusaurus build, a docs folder,
        or a site's source tree (`SourceLayout.detect`; `docs_dir` is the site's docs folder
        when it is not `root/docs`). A site's files are keyed from its root (`docs/intro.md`,
        `versioned_docs/version-1.0/intro.md`, `i18n/fr/...`, `blog/...`).

        New and changed pages are written, unchanged ones cost nothing, pages whose file is gone
        are deleted. A bad file never stops the run: it is counted with its reason. A file that
        Docusaurus builds no page from (a translation of a missing file, a file shadowed by its
        default-locale translation) is skipped, or leaves the index. `progress` is called once
        per file with its key.
        """
        layout = SourceLayout.detect(root, docs_dir=docs_dir, settings=self._settings)
        for note in layout.notes:
            logger.warning("%s: %s", root, note)
        files = list(layout.iter_files())
        unbuilt = layout.unbuilt_files(key for key, _ in files) if layout.site else {}
        summary = IngestSummary()
        calls_before = self._embedder.calls if self._embedder is not None else 0
        states = self._index.page_states()
        seen: set[str] = set()
        documents = 0
        embedder_down = False
        max_bytes = self._settings.max_document_bytes
        for source_key, path in files:
            seen.add(source_key)
            try:
                info = layout.classify(source_key)
                if info.format is None:
                    summary.skipped += 1
                    summary.skipped_reasons[source_key] = info.reason or "not a page"
                    continue
                if source_key in unbuilt:
                    reason = unbuilt[source_key]
                    outcome = self._not_a_page(source_key, states.get(source_key), reason)
                    if outcome.status == "deleted":
                        summary.deleted += 1
                    else:
                        summary.skipped += 1
                        summary.skipped_reasons[source_key] = reason
                    continue
                documents += 1
                try:
                    size = path.stat().st_size
                    data = b"" if size > max_bytes else path.read_bytes()
                except OSError as exc:
                    summary.failed += 1
                    summary.failures[source_key] = f"cannot read the file: {exc}"
                    continue
                if size > max_bytes:
                    kept = "; the indexed version is kept" if source_key in states else ""
                    summary.skipped += 1
                    summary.skipped_reasons[source_key] = (
                        f"file is {size} bytes, over MAX_DOCUMENT_BYTES ({max_bytes}){kept}"
                    )
                    continue
                try:
                    outcome = self._ingest(
                        source_key,
                        data,
                        version=None,
                        state=states.get(source_key),
                        embedder_down=embedder_down,
                        layout=layout,
                    )
                except EmbeddingDimensionMismatch:
                    raise  # configuration: every page would fail the same way
                except EmbeddingError as exc:
                    kept = "; the indexed version is kept" if source_key in states else ""
                    summary.failed += 1
                    summary.failures[source_key] = f"embedding failed: {exc}{kept}"
                    if not embedder_down:
                        embedder_down = True
                        logger.error(
                            "embedding %s failed; the rest of this run will not call the "
                            "embeddings endpoint: %s",
                            source_key,
                            exc,
                        )
                    continue
                if outcome.truncated is not None:
                    summary.truncated[source_key] = outcome.truncated
                if outcome.status == "unchanged":
                    summary.unchanged += 1
                    continue
                if outcome.status == "skipped":
                    summary.skipped += 1
                    summary.skipped_reasons[source_key] = outcome.reason or "skipped"
                    continue
                if outcome.status == "deleted":
                    summary.deleted += 1
                    continue
                summary.chunks_written += outcome.chunks
                if outcome.status == "added":
                    summary.added += 1
                else:
                    summary.updated += 1
            finally:
                if progress is not None:
                    progress(source_key)

        if self._embedder is not None:
            summary.embedding_calls = self._embedder.calls - calls_before
        gone = sorted(set(states) - seen)
        if gone and documents == 0:
            # An empty or wrong folder must not wipe a whole index (and its embedding cost).
            logger.warning(
                "%s holds no pages; not deleting the %d indexed pages missing from it",
                root,
                len(gone),
            )
            return summary
        for source_key in gone:
            if self.delete_document(source_key):
                summary.deleted += 1
        return summary
