"""Untrusted text going into the prompt, and model output going to a reader (docs/security.md).

Into the prompt (`neutralise`): documentation sections, the question and the history are
normalised (NFKC, invisible and control characters removed, every line break a `\\n`) and then
anything that could pose as the prompt's structure is defused: look-alikes of the sources
delimiter, `[n]` at a line start (a fake numbered source) and `URL:` at a line start (a fake
source URL). `recent_turns` applies the history budgets, for the answer and for the search alike.

Out of the model (`sanitise_markdown`): the answer is Markdown that the widget renders, so it is
cleaned of what a renderer would act on: raw HTML (blocks and inline tags) is dropped, images
are kept only from the site itself, links only with http(s) targets (and, with
`answer_links_site_only`, only to the site or to URLs that appear in the sources), a dropped link
keeps its text, and a bare URL that may not be a link is shown as code so that a renderer that
auto-links URLs leaves it alone. Everything else, code included, is left exactly as written.
markdown-it (CommonMark, tables, strikethrough) finds the constructs; the edits are made on the
text itself. `SafeStream` does the same for an answer that is being streamed.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urljoin, urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

# --- Untrusted text going into the prompt ----------------------------------------------------

# Invisible characters that NFKC keeps: zero-width and format characters (bidi controls, tag
# characters), Hangul fillers, and control characters other than tab and newline.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_OPEN_ANGLES = "<«‹≪〈《⟨❮"
_CLOSE_ANGLES = ">»›≫〉》⟩❯"
# Anything posing as the sources delimiter: a run of angle brackets, then "sources" (in any
# spelling: END_SOURCES, END-SOURCES, ENDSOURCES, S O U R C E S), up to closing brackets.
_DELIMITER_LIKE = re.compile(
    rf"(?:[{_OPEN_ANGLES}][^\S\n]*){{2,}}[^\n]{{0,40}}?s[\W_]*o[\W_]*u[\W_]*r[\W_]*c[\W_]*e[\W_]*s?"
    rf"[^\n]*?(?:(?:[{_CLOSE_ANGLES}][^\S\n]*){{2,}}|$)",
    re.IGNORECASE | re.MULTILINE,
)
# A line that is only an end marker without brackets: "END SOURCES", "--- end sources ---".
_END_LINE_LIKE = re.compile(
    r"^[^\S\n]*[^\w\n]*[^\S\n]*end[\W_]*sources?\b[^\n]*$", re.IGNORECASE | re.MULTILINE
)
_SOURCE_HEADER_LIKE = re.compile(
    r"^([^\S\n]*)[\[【〔〖]+[^\S\n]*(\d+)[^\S\n]*[\]】〕〗]+", re.MULTILINE
)
_URL_LINE_LIKE = re.compile(r"^([^\S\n]*)URL[^\S\n]*:", re.IGNORECASE | re.MULTILINE)
_CITATION_IN_HISTORY = re.compile(r"\s?(?<!\w)\[\d+(?:\s*[,\-–]\s*\d+)*\]")

MARKER_REMOVED = "[marker removed]"


def normalise_untrusted(text: str) -> str:
    """NFKC (full-width and other compatibility forms become plain ASCII), invisible and control
    characters removed, every line break a `\\n`."""
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_BREAK.sub("\n", text)
    return _INVISIBLE.sub("", text)


def neutralise(text: str) -> str:
    """Defuse untrusted text for the prompt: normalised, then delimiter look-alikes removed and
    line starts that pose as a numbered source (`[3]`) or its URL line (`URL:`) rewritten."""
    text = normalise_untrusted(text)
    text = _DELIMITER_LIKE.sub(MARKER_REMOVED, text)
    text = _END_LINE_LIKE.sub(MARKER_REMOVED, text)
    text = _SOURCE_HEADER_LIKE.sub(r"\1(\2)", text)
    return _URL_LINE_LIKE.sub(r"\1URL (in the text):", text)


class Turn(Protocol):
    """A conversation turn as callers hold it (answering's `ChatTurn` fits)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


Role = Literal["user", "assistant"]


def recent_turns(
    history: Sequence[Turn], *, max_messages: int, max_chars: int
) -> list[tuple[Role, str]]:
    """The most recent turns within the message and character budgets, oldest first, neutralised.

    A turn that does not fit the remaining budget ends the history (older turns are dropped
    too). Assistant turns lose their `[n]` markers: those referred to an earlier turn's sources.
    """
    recent = list(history[-max_messages:]) if max_messages else []
    kept: list[tuple[Role, str]] = []
    budget = max_chars
    for turn in reversed(recent):
        if turn.role not in ("user", "assistant"):
            continue
        role: Role = "assistant" if turn.role == "assistant" else "user"
        content = turn.content
        if len(content) > 4 * budget + 1024:
            break  # far over budget whatever neutralising does: not worth normalising
        if role == "assistant":
            content = _CITATION_IN_HISTORY.sub("", content)
        content = neutralise(content).strip()
        if not content:
            continue
        if len(content) > budget:
            break
        budget -= len(content)
        kept.append((role, content))
    kept.reverse()
    return kept


# --- Model output going to a reader ----------------------------------------------------------

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'`\[\]{}|\\^]+", re.IGNORECASE)
_BARE_URL = re.compile(r"(?<![\w@/.:+-])(?:https?://|www\.)[^\s<>\"'`\[\]{}|\\^]+", re.IGNORECASE)
_TRAILING_PUNCTUATION = ".,;:!?*_~'\")"
_MAX_PASSES = 6


def urls_in(text: str) -> list[str]:
    """The http(s) URLs written in a text (a documentation section)."""
    return [match.group(0).rstrip(_TRAILING_PUNCTUATION) for match in _URL_IN_TEXT.finditer(text)]


def _canonical(url: str) -> tuple[str, str, int | None, str, str] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    port = port or (443 if scheme == "https" else 80)
    path = posixpath.normpath(unquote(parts.path)) if parts.path else "/"
    path = path.rstrip("/") or "/"
    return scheme, parts.hostname.lower().rstrip("."), port, path, unquote(parts.query)


@dataclass(frozen=True, slots=True)
class OutputPolicy:
    """What an answer may link to and show.

    `site_url` is the documentation site (with its base path); `allowed_urls` the URLs the
    answer's sources give (their own links and the URLs in their text). With `site_links_only`
    off, any http(s) link is kept; images always have to come from the site.
    """

    site_url: str
    site_links_only: bool = True
    allowed_urls: frozenset[tuple[str, str, int | None, str, str]] = field(
        default_factory=frozenset
    )

    @classmethod
    def build(
        cls, *, site_url: str, site_links_only: bool = True, urls: Iterable[str] = ()
    ) -> OutputPolicy:
        allowed = {canonical for url in urls if (canonical := _canonical(url)) is not None}
        return cls(
            site_url=site_url.rstrip("/"),
            site_links_only=site_links_only,
            allowed_urls=frozenset(allowed),
        )

    def _resolve(self, url: str) -> tuple[str, str, int | None, str, str] | None:
        url = url.strip()
        if not urlsplit(url).scheme and not url.startswith("//"):
            url = urljoin(self.site_url + "/", url)  # a relative link: on the site
        return _canonical(url)

    def _on_site(self, target: tuple[str, str, int | None, str, str]) -> bool:
        site = _canonical(self.site_url)
        if site is None or target[:3] != site[:3]:
            return False
        base = site[3]
        return base == "/" or target[3] == base or target[3].startswith(base + "/")

    def link_allowed(self, url: str) -> bool:
        target = self._resolve(url)
        if target is None:
            return False  # javascript:, data:, mailto:, a malformed URL
        if not self.site_links_only:
            return True
        return self._on_site(target) or target in self.allowed_urls

    def image_allowed(self, url: str) -> bool:
        target = self._resolve(url)
        return target is not None and self._on_site(target)


class _Parser(MarkdownIt):
    """markdown-it that parses every link destination (`javascript:` included) as a link, so
    that the policy, not the parser's own list, decides."""

    def validateLink(self, url: str) -> bool:  # markdown-it's name
        return True


@dataclass(slots=True)
class _Span:
    kind: str  # link, image, autolink, html, code
    start: int  # offsets in the inline token's content
    end: int
    label_end: int = -1  # links and images: offset of the `]` that ends the label
    target: str = ""
    reference: bool = False  # `[text][label]` / `[label]`: the target is a definition's


@dataclass(slots=True)
class _Recorder:
    inline: list[tuple[Token, list[_Span]]] = field(default_factory=list)
    content: str | None = None

    def begin(self, token: Token) -> None:
        self.content = token.content
        self.inline.append((token, []))


_RECORDER = "docsrag_safety_recorder"
_TOKEN_TYPES = {
    "link": ("link_open",),
    "image": ("image",),
    "autolink": ("link_open",),
    "html": ("html_inline",),
    "code": ("code_inline",),
}
InlineRule = Callable[[StateInline, bool], bool]


def _recording(kind: str, rule: InlineRule) -> InlineRule:
    def wrapped(state: StateInline, silent: bool) -> bool:
        start, first = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        recorder = state.env.get(_RECORDER)
        if silent or not isinstance(recorder, _Recorder) or state.src is not recorder.content:
            return True  # an image's alt text is parsed apart: seen on the next pass
        # The first token the rule pushed (pending text before it is flushed first).
        token = next((t for t in state.tokens[first:] if t.type in _TOKEN_TYPES[kind]), None)
        if token is None:
            return True  # unmatched backticks: plain text
        span = _Span(kind=kind, start=start, end=state.pos)
        if kind in ("link", "image"):
            label_start = start + (1 if kind == "image" else 0)
            span.label_end = state.md.helpers.parseLinkLabel(state, label_start, False)
            span.target = str(token.attrGet("src" if kind == "image" else "href") or "")
            span.reference = state.src[state.pos - 1] != ")"
        elif kind == "autolink":
            span.target = str(token.attrGet("href") or "")
        recorder.inline[-1][1].append(span)
        return True

    return wrapped


def _core_inline(state: StateCore) -> None:
    """markdown-it's `inline` core rule, telling the recorder which token is being parsed."""
    recorder = state.env.get(_RECORDER)
    for token in state.tokens:
        if token.type == "inline":
            if token.children is None:
                token.children = []
            if isinstance(recorder, _Recorder):
                recorder.begin(token)
            state.md.inline.parse(token.content, state.md, state.env, token.children)


def _build_parser() -> MarkdownIt:
    md = _Parser("commonmark", {"html": True}).enable(["table", "strikethrough"])
    kinds = {
        "link": "link",
        "image": "image",
        "autolink": "autolink",
        "html_inline": "html",
        "backticks": "code",
    }
    rules: list[Any] = md.inline.ruler.__rules__
    for rule in rules:
        if rule.name in kinds:
            md.inline.ruler.at(rule.name, _recording(kinds[rule.name], rule.fn))
    md.core.ruler.at("inline", _core_inline)
    return md


_MD = _build_parser()


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str = ""


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(match.end() for match in re.finditer("\n", text))
    return starts


def _align(content: str, text: str, start: int, end: int) -> list[int] | None:
    """Offsets in `text[start:end]` of the non-space characters of `content`, which is that
    region without its block markers (`>`, list bullets, indentation); None when it is not."""
    positions = [-1] * len(content)
    j = start
    for i, char in enumerate(content):
        if char.isspace():
            continue
        while j < end and text[j] != char:
            j += 1
        if j >= end:
            return None
        positions[i] = j
        j += 1
    return positions


def _overlaps(start: int, end: int, spans: Sequence[_Span]) -> bool:
    return any(span.start < end and start < span.end for span in spans)


def _pass(text: str, policy: OutputPolicy) -> list[_Edit] | None:
    """The edits one pass finds (None: an inline token could not be placed in the text)."""
    recorder = _Recorder()
    env: dict[str, Any] = {_RECORDER: recorder}
    tokens = _MD.parse(text, env)
    lines = _line_starts(text)

    def line_offset(line: int) -> int:
        return lines[line] if line < len(lines) else len(text)

    edits: list[_Edit] = []
    for token in tokens:
        if token.type == "html_block" and token.map:
            edits.append(_Edit(line_offset(token.map[0]), line_offset(token.map[1])))

    blocked_references: set[str] = set()
    cursor = 0
    for token, spans in recorder.inline:
        if not token.map or not token.content.strip():
            continue
        region_start = max(cursor, line_offset(token.map[0]))
        positions = _align(token.content, text, region_start, line_offset(token.map[1]))
        if positions is None:
            return None
        placed = [position for position in positions if position >= 0]
        if placed:
            cursor = placed[-1] + 1

        def at(index: int, positions: list[int] = positions) -> int:
            return positions[index]

        for span in spans:
            if span.kind == "html":
                edits.append(_Edit(at(span.start), at(span.end - 1) + 1))
            elif span.kind == "autolink" and not policy.link_allowed(span.target):
                edits.append(_Edit(at(span.start), at(span.start) + 1))
                edits.append(_Edit(at(span.end - 1), at(span.end - 1) + 1))
            elif span.kind in ("link", "image"):
                allowed = (
                    policy.image_allowed(span.target)
                    if span.kind == "image"
                    else policy.link_allowed(span.target)
                )
                if allowed:
                    continue
                if span.reference:
                    blocked_references.add(span.target)  # the definition goes
                    continue
                opener = 2 if span.kind == "image" else 1
                edits.append(_Edit(at(span.start), at(span.start + opener - 1) + 1))
                edits.append(_Edit(at(span.label_end), at(span.end - 1) + 1))
        if policy.site_links_only:
            for match in _BARE_URL.finditer(token.content):
                url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
                start, end = match.start(), match.start() + len(url)
                if _overlaps(start, end, spans):
                    continue  # code, or the text or target of a link handled above
                target = url if "://" in url else "http://" + url
                if not policy.link_allowed(target):
                    edits.append(_Edit(at(start), at(start), "`"))
                    edits.append(_Edit(at(end - 1) + 1, at(end - 1) + 1, "`"))

    definitions: list[dict[str, Any]] = list(env.get("references", {}).values())
    definitions += env.get("duplicate_refs", [])
    for definition in definitions:
        target = str(definition.get("href", ""))
        line_map = definition.get("map")
        if line_map and (target in blocked_references or not policy.link_allowed(target)):
            edits.append(_Edit(line_offset(line_map[0]), line_offset(line_map[1])))
    return edits


def _apply(text: str, edits: list[_Edit]) -> str:
    out: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda edit: (edit.start, edit.end)):
        if edit.start < position:
            continue  # overlaps an edit already made: the next pass sees what is left
        out.append(text[position : edit.start])
        out.append(edit.text)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


def _escape_everything(text: str) -> str:
    """Last resort: no character left that could start a link, an image or a tag."""
    text = re.sub(r"([\\<>\[\]!`])", r"\\\1", text)
    text = re.sub(r"(?i)(https?:)//", r"\1\\/\\/", text)
    return re.sub(r"(?i)\bwww\.", lambda match: match.group(0)[:-1] + "\\.", text)


def sanitise_markdown(text: str, policy: OutputPolicy) -> str:
    """`text` with raw HTML, off-site images and disallowed links removed (see the module)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    for _ in range(_MAX_PASSES):
        edits = _pass(text, policy)
        if edits is None:
            break
        if not edits:
            return text
        text = _apply(text, edits)
    return _escape_everything(text)


def terminal_text(text: str) -> str:
    """Text safe to print on a terminal: no escape sequences or other control characters."""
    return _INVISIBLE.sub("", _LINE_BREAK.sub("\n", text)).replace("\x1b", "")


# --- Streaming -------------------------------------------------------------------------------

_FENCE_LINE = re.compile(r"^ {0,3}(?:```|~~~)", re.MULTILINE)
_CLOSERS = {")": "(", "]": "[", ">": "<"}


def stable_length(text: str) -> int:
    """How much of a growing answer can no longer turn into a link, an image or a tag: up to
    the last whitespace, and before any bracket still open in the last paragraph."""
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    if len(_FENCE_LINE.findall(text, 0, cut)) % 2:
        return cut  # inside a code block: literal text
    start = text.rfind("\n\n", 0, cut) + 1
    stack: list[int] = []
    in_code = False
    for index in range(start, cut):
        char = text[index]
        if char == "`":
            in_code = not in_code
        elif in_code:
            continue
        elif char in "[<" or (char == "(" and index and text[index - 1] == "]"):
            stack.append(index)
        elif char in _CLOSERS:
            for depth in range(len(stack) - 1, -1, -1):
                if text[stack[depth]] == _CLOSERS[char]:
                    del stack[depth:]
                    break
    if stack:
        cut = stack[0] - (1 if stack[0] and text[stack[0] - 1] == "!" else 0)
    return cut


class SafeStream:
    """A streamed answer made safe as it grows.

    `push` the model's text; `take` returns what may be shown now: a continuation of what was
    shown, such that the whole shown text is sanitised Markdown. When later text changes what
    came before (a link definition at the end, an HTML tag closed late) nothing more is shown
    (`stalled`), and the caller replaces the streamed text with `text()` at the end.
    """

    def __init__(self, policy: OutputPolicy) -> None:
        self._policy = policy
        self._raw = ""
        self._shown = ""
        self.stalled = False

    @property
    def raw(self) -> str:
        return self._raw

    @property
    def shown(self) -> str:
        return self._shown

    def push(self, text: str) -> None:
        self._raw += text

    def take(self) -> str:
        if self.stalled:
            return ""
        cut = stable_length(self._raw)
        if cut <= len(self._shown):
            return ""
        return self._advance(sanitise_markdown(self._raw[:cut], self._policy))

    def finish(self) -> str:
        """The rest of the answer ("" when stalled: replace the streamed text with `text()`)."""
        if self.stalled:
            return ""
        return self._advance(self.text())

    def text(self, policy: OutputPolicy | None = None) -> str:
        return sanitise_markdown(self._raw, policy or self._policy)

    def _advance(self, safe: str) -> str:
        if not safe.startswith(self._shown):
            self.stalled = True
            return ""
        delta, self._shown = safe[len(self._shown) :], safe
        return delta
