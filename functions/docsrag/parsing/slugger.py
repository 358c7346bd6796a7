"""Heading anchors exactly as Docusaurus makes them: a port of `github-slugger` 2.x.

github-slugger lower-cases the heading, deletes every character it counts as punctuation or
symbol (Unicode general categories Other_Number, all Punctuation but Connector_Punctuation and
`-`, Symbol, Control, Private_Use, Format, Unassigned and Separator but the plain space, minus
anything Alphabetic), turns each plain space into `-`, and makes repeats unique with `-1`, `-2`.
So `## 📦 plugin-pwa` becomes `-plugin-pwa` and `## What's new?` becomes `whats-new`.
"""

from __future__ import annotations

import unicodedata

# General categories github-slugger keeps: letters, marks, decimal and letter numbers, and
# connector punctuation (`_`). Everything else except ` ` and `-` is removed.
_KEPT_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "Pc"})

# Characters outside those categories that Unicode still calls Alphabetic (Other_Alphabetic in
# a symbol category): circled and squared Latin letters. github-slugger keeps them.
_ALPHABETIC_SYMBOL_RANGES = (
    (0x24B6, 0x24E9),  # Ⓐ..ⓩ
    (0x1F130, 0x1F149),  # 🄰..🅉
    (0x1F150, 0x1F169),  # 🅐..🅩
    (0x1F170, 0x1F189),  # 🅰..🆉
)

_cache: dict[str, str] = {
    **{c: c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"},
    " ": "-",
}


def _replacement(char: str) -> str:
    """What one character becomes in a slug: itself, `-` (for a space) or nothing."""
    cached = _cache.get(char)
    if cached is not None:
        return cached
    code = ord(char)
    keep = unicodedata.category(char) in _KEPT_CATEGORIES or any(
        low <= code <= high for low, high in _ALPHABETIC_SYMBOL_RANGES
    )
    result = char if keep else ""
    if len(_cache) < 65_536:  # bounded: headings do not use many distinct characters
        _cache[char] = result
    return result


def slug(value: str, *, maintain_case: bool = False) -> str:
    """github-slugger's stateless `slug()`: no de-duplication."""
    if not maintain_case:
        value = value.lower()
    return "".join([_replacement(char) for char in value])


class GithubSlugger:
    """github-slugger's `BananaSlug`: slugs that stay unique within one document.

    >>> s = GithubSlugger()
    >>> s.slug("Usage"), s.slug("Usage"), s.slug("Usage 1")
    ('usage', 'usage-1', 'usage-1-1')
    """

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, value: str, *, maintain_case: bool = False) -> str:
        result = slug(value, maintain_case=maintain_case)
        original = result
        while result in self._occurrences:
            self._occurrences[original] += 1
            result = f"{original}-{self._occurrences[original]}"
        self._occurrences[result] = 0
        return result

    def reset(self) -> None:
        self._occurrences.clear()
