"""Split a parsed page into the chunks that get embedded, BM25-encoded and cited.

How a page becomes chunks:

1. Each heading section is a candidate chunk. A section that fits in `max_tokens` stays whole,
   because a whole section is what a reader expects behind a citation link.
2. A longer section is split at block boundaries into parts near `target_tokens` (the parts are
   balanced, so a 600-token section becomes two parts of about 300, not 350 + 250). A block that
   alone exceeds `max_tokens` is split further: prose at paragraph, then line, then sentence, then
   word boundaries; code at line boundaries, each part re-fenced with the block's own opening
   fence (```` ```lang title="..." ````) so every part is still a valid code block; tables at row
   boundaries with the header row repeated in each part. A fenced code block inside a prose block
   (an admonition, say) is kept whole the same way.
3. Where a split falls between two pieces of prose of the same section, the new part starts with a
   little overlap: the last whole sentences of the previous part, at most `overlap_tokens`. Code,
   lists and tables never get overlap (their pieces stand alone), and nothing overlaps across
   sections.
   A section with nothing under its heading is skipped when subsections follow (they carry
   its heading in `heading_path`); otherwise (the last section, or one followed by a sibling or
   a higher heading) its heading text is its content, so a page of only headings is still
   indexed and no heading's words are lost.
4. A section smaller than `min_tokens` is merged into the following section when both fit in
   `max_tokens` (into the previous one first when the tiny section is the last child of its parent,
   e.g. a short h3 followed by a new h2), else into the previous one when that fits; otherwise it
   stays a chunk of its own. Later sections in a merged chunk start with their heading as a
   `## Heading` line, so the text still reads as the page does.

   A merged chunk lists every section it holds in `Chunk.anchors` (page order), so search results
   and the benchmark know that a chunk starting at "Before you start" also holds "Setup".

   The citation anchor (`Chunk.anchor`, the first of `anchors`) is the FIRST section's, also when
   that is the page's tiny lead-in (`None`: the top of the page). What the reader sees behind the
   link decides it: the link lands where the cited text begins and the rest follows in reading
   order. When the first part is a tiny section (a line or two, under `min_tokens`), the next
   heading is on the same screen; for a tiny lead-in that screen shows the page title, the intro
   and the next section's heading. Linking to the later section instead (`#requirements`) would
   scroll the first part of what was cited out of view, with the page title, and that part is
   often what answers the question ("Mathematical equations can be rendered using KaTeX."). A
   tiny last section appended to the one before it is read after it, as on the page.

Token counts are an estimate (`count_tokens`), chosen so that no tokenizer model is downloaded.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass

from docsrag.models import Block, BlockKind, Chunk, ParsedPage, Section

logger = logging.getLogger(__name__)

# Scripts written without spaces between words: BPE tokenizers spend about one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN_RE = re.compile(
    "[" + _CJK + "]"  # one CJK character
    "|[^\\W\\d_" + _CJK + "]{1,12}"  # up to 12 letters
    "|\\d{1,3}"  # up to 3 digits
    "|[^\\w\\s]|_"  # one punctuation mark or symbol
)


def count_tokens(text: str) -> int:
    """Estimate how many tokens a BPE tokenizer (OpenAI cl100k/o200k style) makes of `text`.

    Counts regex pieces: each run of up to 12 letters, each run of up to 3 digits (BPE tokenizers
    split numbers that way), each punctuation mark or symbol, each CJK character. Whitespace is
    free. On the Docusaurus docs in ../shared this gives 1.31 tokens per word (4.8 characters per
    token) for prose and 3.4 characters per token for code. The usual figures for OpenAI's BPE
    on English are about 1.33 tokens per word (~4 characters per token), so prose counts should
    be close; rare or long words come out lower (BPE splits them), code with runs of punctuation
    such as `"),` higher (BPE merges them). This has not been checked against a real tokenizer,
    since none is downloaded. The sizes only need to be about right: embedding models accept
    8,191 tokens, far above `max_tokens`.

    The count never grows when texts are joined: `count_tokens(a + " " + b) <= count_tokens(a) +
    count_tokens(b)`, so a chunk assembled from pieces is never over budget.
    """
    return len(_TOKEN_RE.findall(text))


# Block kinds whose pieces may be split at sentences and overlapped.
_PROSE_KINDS: frozenset[BlockKind] = frozenset({"text", "quote", "admonition", "details"})

_FENCE_OPEN_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
# Within a paragraph: lines, then sentences, then words. Each pattern matches the separator.
_LINE_SEP_RE = re.compile(r"[ \t]*\n[ \t]*")
_SENTENCE_SEP_RE = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))[ \t]+")
_SPACE_SEP_RE = re.compile(r"\s+")
_SEPARATORS = (_LINE_SEP_RE, _SENTENCE_SEP_RE, _SPACE_SEP_RE)


@dataclass(slots=True)
class _Unit:
    """An unbreakable piece of a section, and the separator that joins it to the piece before."""

    text: str
    tokens: int
    sep: str
    prose: bool


@dataclass(slots=True)
class _Candidate:
    """A chunk in the making: one section, part of one, or tiny sections merged together."""

    section: Section
    text: str
    tokens: int
    mergeable: bool  # whole sections only; parts of a split section stay as they are
    anchors: tuple[str | None, ...]  # the sections whose text this holds, first = section's
    heading_only: bool = False  # the text is the section's heading (nothing under it)

    @property
    def heading_line(self) -> str:
        heading = self.section.heading.strip()
        return f"{'#' * max(self.section.level, 1)} {heading}" if heading else ""


def chunk_page(
    page: ParsedPage,
    *,
    target_tokens: int,
    max_tokens: int,
    overlap_tokens: int,
    min_tokens: int,
) -> list[Chunk]:
    """Cut `page` into chunks of at most `max_tokens` (estimated), numbered 0..n-1 in page order.

    Deterministic: the same page and sizes give the same chunks. A page without text gives `[]`.
    Raises `ValueError` unless 1 <= target_tokens <= max_tokens (`Settings` checks this at start).
    """
    if max_tokens < 1 or not 1 <= target_tokens <= max_tokens:
        raise ValueError(
            f"need 1 <= target_tokens <= max_tokens, got {target_tokens} and {max_tokens}"
        )
    overlap_tokens = max(0, min(overlap_tokens, target_tokens - 1))
    min_tokens = max(0, min_tokens)

    candidates: list[_Candidate] = []
    sections = page.sections
    for position, section in enumerate(sections):
        units = _section_units(section, target_tokens=target_tokens, max_tokens=max_tokens)
        heading_only = not units
        if not units:
            following = sections[position + 1] if position + 1 < len(sections) else None
            if following is not None and following.level > section.level:
                continue  # a heading with nothing under it: its children carry it in heading_path
            # A heading with nothing under it and no subsections: the heading is its content.
            units = _heading_units(section, target_tokens=target_tokens, max_tokens=max_tokens)
            if not units:
                continue
        parts = _pack(
            units,
            target_tokens=target_tokens,
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
            min_tokens=min_tokens,
        )
        whole = len(parts) == 1
        candidates.extend(
            _Candidate(section, text, tokens, whole, (section.anchor,), heading_only)
            for text, tokens in parts
        )

    merged = _merge_tiny(candidates, max_tokens=max_tokens, min_tokens=min_tokens)
    return [
        Chunk(
            source_key=page.source_key,
            path=page.path,
            page_title=page.title,
            heading_path=candidate.section.heading_path,
            anchor=candidate.section.anchor,
            text=candidate.text,
            chunk_index=index,
            anchors=candidate.anchors,
            meta=page.meta,
            page_description=page.description,
        )
        for index, candidate in enumerate(merged)
    ]


# --- Sections into units -------------------------------------------------------------------------


def _section_units(section: Section, *, target_tokens: int, max_tokens: int) -> list[_Unit]:
    units: list[_Unit] = []
    for block in section.blocks:
        text = block.text.strip()
        if not text:
            continue
        tokens = count_tokens(text)
        prose = block.kind in _PROSE_KINDS
        if tokens <= max_tokens:
            block_units = [_Unit(text, tokens, "", prose)]
        elif block.kind == "code":
            block_units = _split_code(text, target_tokens=target_tokens, max_tokens=max_tokens)
        elif block.kind == "table":
            block_units = _split_table(text, target_tokens=target_tokens, max_tokens=max_tokens)
        else:
            block_units = _split_prose(
                text, prose=prose, target_tokens=target_tokens, max_tokens=max_tokens
            )
        block_units[0].sep = "\n\n"
        units.extend(block_units)
    if units:
        units[0].sep = ""
    return units


def _heading_units(section: Section, *, target_tokens: int, max_tokens: int) -> list[_Unit]:
    """The units of a section that is only its heading: the heading text."""
    heading = section.heading.strip()
    if not heading:
        return []
    block = Section(
        heading=section.heading,
        anchor=section.anchor,
        level=section.level,
        heading_path=section.heading_path,
        blocks=(Block(kind="text", text=heading),),
    )
    return _section_units(block, target_tokens=target_tokens, max_tokens=max_tokens)


def _split_prose(text: str, *, prose: bool, target_tokens: int, max_tokens: int) -> list[_Unit]:
    """Paragraphs (fenced code inside kept whole), then lines, sentences, words."""
    units: list[_Unit] = []
    for sep, segment, is_code in _paragraphs(text):
        tokens = count_tokens(segment)
        if is_code:
            if tokens <= max_tokens:
                pieces = [_Unit(segment, tokens, "", False)]
            else:
                pieces = _split_code(segment, target_tokens=target_tokens, max_tokens=max_tokens)
        else:
            pieces = [
                _Unit(piece, count_tokens(piece), piece_sep, prose)
                for piece_sep, piece in _split_text(segment, max_tokens, tokens=tokens)
            ]
        pieces[0].sep = sep
        units.extend(pieces)
    return units


def _paragraphs(text: str) -> list[tuple[str, str, bool]]:
    """Split at blank lines outside code fences; a fenced block is always a segment of its own.

    Returns (separator before, segment, is fenced code).
    """
    segments: list[tuple[str, str, bool]] = []
    current: list[str] = []
    fence: str | None = None
    blank_before = False

    def flush(is_code: bool) -> None:
        nonlocal blank_before
        if current:
            sep = "" if not segments else ("\n\n" if blank_before else "\n")
            segments.append((sep, "\n".join(current), is_code))
            current.clear()
            blank_before = False

    for line in text.split("\n"):
        if fence is not None:
            current.append(line)
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
                flush(is_code=True)
            continue
        match = _FENCE_OPEN_RE.match(line)
        if match:
            flush(is_code=False)
            fence = match.group(1)
            current.append(line)
        elif not line.strip():
            flush(is_code=False)
            blank_before = True
        else:
            current.append(line)
    flush(is_code=fence is not None)  # an unclosed fence still counts as code
    return segments


def _split_text(text: str, limit: int, *, tokens: int, level: int = 0) -> list[tuple[str, str]]:
    """Split `text` into (separator before, piece) of at most `limit` tokens each."""
    if tokens <= limit:
        return [("", text)]
    if level == len(_SEPARATORS):
        return _hard_split(text, limit)
    pieces = _split_keep(text, _SEPARATORS[level])
    out: list[tuple[str, str]] = []
    for sep, piece in pieces:
        sub = _split_text(piece, limit, tokens=count_tokens(piece), level=level + 1)
        out.append((sep, sub[0][1]))
        out.extend(sub[1:])
    return out


def _split_keep(text: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """Split at `pattern`, keeping each separator with the piece after it."""
    out: list[tuple[str, str]] = []
    position = 0
    sep = ""
    for match in pattern.finditer(text):
        piece = text[position : match.start()]
        if piece:
            out.append((sep, piece))
            sep = match.group()
        else:
            sep += match.group()
        position = match.end()
    if position < len(text):
        out.append((sep, text[position:]))
    return out


def _hard_split(text: str, limit: int) -> list[tuple[str, str]]:
    """Last resort for a run without spaces (a minified line, a long URL): cut between tokens."""
    starts = [match.start() for match in _TOKEN_RE.finditer(text)]
    cuts = [0, *starts[limit::limit], len(text)]
    logger.debug("cutting a %d-token run without spaces into pieces", len(starts))
    return [("", text[start:end]) for start, end in itertools.pairwise(cuts)]


def _split_code(text: str, *, target_tokens: int, max_tokens: int) -> list[_Unit]:
    """Split an oversized code block at line boundaries, re-fencing every part."""
    lines = text.split("\n")
    opening = closing = ""
    match = _FENCE_OPEN_RE.match(lines[0])
    if match and len(lines) > 1:
        fence = match.group(1)
        last = lines[-1].strip()
        if len(lines) > 2 and last.startswith(fence) and not last.strip(fence[0]):
            opening, closing, body_lines = lines[0], lines[-1], lines[1:-1]
        else:  # unclosed in the source: every part gets a closing fence
            opening, closing, body_lines = lines[0], fence, lines[1:]
        fence_tokens = count_tokens(opening) + count_tokens(closing)
        if fence_tokens * 2 <= max_tokens:  # else: fences would crowd out the code, split plainly
            lines = body_lines
        else:
            opening = closing = ""
    fence_tokens = count_tokens(opening) + count_tokens(closing)
    limit = max_tokens - fence_tokens
    goal = max(1, target_tokens - fence_tokens)

    items: list[tuple[str, str, int]] = []  # (separator before, piece, tokens)
    for line in lines:
        tokens = count_tokens(line)
        pieces = [("", line)] if tokens <= limit else _split_text(line, limit, tokens=tokens)
        for index, (sep, piece) in enumerate(pieces):
            items.append(("\n" if index == 0 else sep, piece, count_tokens(piece)))
    runs = _group([tokens for _, _, tokens in items], target=goal, limit=limit, tail_min=0)
    logger.debug("splitting a %d-line code block into %d parts", len(lines), len(runs))
    units = []
    for start, end in runs:
        body = _join(items[start:end])
        text_part = f"{opening}\n{body}\n{closing}" if opening else body
        tokens = fence_tokens + sum(tokens for _, _, tokens in items[start:end])
        units.append(_Unit(text_part, tokens, "\n\n", False))
    return units


def _split_table(text: str, *, target_tokens: int, max_tokens: int) -> list[_Unit]:
    """Split an oversized table at rows, repeating the header row at the top of each part."""
    header, _, rest = text.partition("\n")
    header_tokens = count_tokens(header)
    if not rest or header_tokens * 4 > max_tokens:
        return _split_prose(text, prose=False, target_tokens=target_tokens, max_tokens=max_tokens)
    limit = max_tokens - header_tokens
    items: list[tuple[str, str, int]] = []
    for row in rest.split("\n"):
        tokens = count_tokens(row)
        pieces = [("", row)] if tokens <= limit else _split_text(row, limit, tokens=tokens)
        for index, (sep, piece) in enumerate(pieces):
            items.append(("\n" if index == 0 else sep, piece, count_tokens(piece)))
    goal = max(1, target_tokens - header_tokens)
    runs = _group([tokens for _, _, tokens in items], target=goal, limit=limit, tail_min=0)
    return [
        _Unit(
            header + "\n" + _join(items[start:end]),
            header_tokens + sum(tokens for _, _, tokens in items[start:end]),
            "\n\n",
            False,
        )
        for start, end in runs
    ]


def _join(items: list[tuple[str, str, int]]) -> str:
    return items[0][1] + "".join(sep + piece for sep, piece, _ in items[1:])


# --- Units into parts ----------------------------------------------------------------------------


def _group(sizes: list[int], *, target: int, limit: int, tail_min: int) -> list[tuple[int, int]]:
    """Cut `sizes` into consecutive runs [start, end) of balanced size near `target`.

    No run goes over `limit` unless it is a single item. A run closes before an item whose middle
    would land past the balanced goal, so cuts fall at the boundary nearest to it. A last run
    smaller than `tail_min` joins the run before it when the two fit in `limit`.
    """
    total = sum(sizes)
    if total <= limit:
        return [(0, len(sizes))]
    goal = total / -(-total // target)
    runs: list[tuple[int, int]] = []
    start = 0
    size_so_far = 0
    for index, size in enumerate(sizes):
        if index > start and (size_so_far + size > limit or size_so_far + size / 2 > goal):
            runs.append((start, index))
            start, size_so_far = index, 0
        size_so_far += size
    runs.append((start, len(sizes)))
    if len(runs) > 1 and size_so_far < tail_min:
        before_start = runs[-2][0]
        if sum(sizes[before_start:]) <= limit:
            runs[-2:] = [(before_start, len(sizes))]
    return runs


def _pack(
    units: list[_Unit],
    *,
    target_tokens: int,
    max_tokens: int,
    overlap_tokens: int,
    min_tokens: int,
) -> list[tuple[str, int]]:
    """Group a section's units into parts: (text, tokens) each within `max_tokens`."""
    runs = _group(
        [unit.tokens for unit in units], target=target_tokens, limit=max_tokens, tail_min=min_tokens
    )
    parts: list[tuple[str, int]] = []
    for run_index, (start, end) in enumerate(runs):
        run = units[start:end]
        text = run[0].text + "".join(unit.sep + unit.text for unit in run[1:])
        tokens = sum(unit.tokens for unit in run)
        if run_index > 0 and overlap_tokens and run[0].prose and units[start - 1].prose:
            budget = min(overlap_tokens, max_tokens - tokens)
            lead, lead_tokens = _overlap(units, start, budget)
            if lead:
                text = lead + (run[0].sep or " ") + text
                tokens += lead_tokens
        parts.append((text, tokens))
    return parts


def _overlap(units: list[_Unit], end: int, budget: int) -> tuple[str, int]:
    """The last whole sentences of prose in `units[:end]`, at most `budget` tokens.

    Stops at a code fence: a fenced block inside an admonition is never partly repeated.
    """
    taken: list[tuple[str, str]] = []
    used = 0
    for index in range(end - 1, -1, -1):
        unit = units[index]
        if not unit.prose:
            break
        for line_sep, line in reversed(_split_keep(unit.text, _LINE_SEP_RE)):
            if _FENCE_OPEN_RE.match(line):
                return _join_taken(taken), used
            sentences = _split_keep(line, _SENTENCE_SEP_RE)
            sentences[0] = (line_sep, sentences[0][1])
            for sep, sentence in reversed(sentences):
                tokens = count_tokens(sentence)
                if used + tokens > budget:
                    return _join_taken(taken), used
                taken.append((sep, sentence))
                used += tokens
        taken[-1] = (unit.sep, taken[-1][1])
    return _join_taken(taken), used


def _join_taken(taken: list[tuple[str, str]]) -> str:
    if not taken:
        return ""
    ordered = taken[::-1]
    return ordered[0][1] + "".join(sep + piece for sep, piece in ordered[1:])


# --- Tiny sections -------------------------------------------------------------------------------


def _merge_tiny(
    candidates: list[_Candidate], *, max_tokens: int, min_tokens: int
) -> list[_Candidate]:
    out: list[_Candidate] = []
    carry: _Candidate | None = None  # a tiny section (or run of them) looking for a neighbour
    for candidate in candidates:
        if carry is not None:
            leaves_parent = candidate.section.level < carry.section.level
            if leaves_parent and _try_append(out, carry, max_tokens=max_tokens):
                pass
            elif (joined := _joined(carry, candidate, max_tokens=max_tokens)) is not None:
                candidate = joined
            elif not _try_append(out, carry, max_tokens=max_tokens):
                out.append(carry)
            carry = None
        if candidate.mergeable and candidate.tokens < min_tokens:
            carry = candidate
        else:
            out.append(candidate)
    if carry is not None and not _try_append(out, carry, max_tokens=max_tokens):
        out.append(carry)
    return out


def _try_append(out: list[_Candidate], tiny: _Candidate, *, max_tokens: int) -> bool:
    """Merge `tiny` into the last candidate of `out` when the two fit together."""
    if not out:
        return False
    joined = _joined(out[-1], tiny, max_tokens=max_tokens)
    if joined is None:
        return False
    out[-1] = joined
    return True


def _joined(first: _Candidate, second: _Candidate, *, max_tokens: int) -> _Candidate | None:
    heading = second.heading_line
    heading_tokens = count_tokens(heading)
    if second.heading_only and heading:  # the heading line is all of its text
        tokens = first.tokens + heading_tokens
        second_text = ""
    else:
        tokens = first.tokens + heading_tokens + second.tokens
        second_text = second.text
    if tokens > max_tokens:
        return None
    text = "\n\n".join(part for part in (first.text, heading, second_text) if part)
    anchors = first.anchors + tuple(a for a in second.anchors if a not in first.anchors)
    return _Candidate(
        first.section,
        text,
        tokens,
        first.mergeable and second.mergeable,
        anchors,
        first.heading_only and not second_text,
    )
