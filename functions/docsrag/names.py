"""The names a question uses (products, tools, APIs) and whether the retrieved sections use them.

A question that names something the docs never mention ("How do I add Tailwind to a Vue app?",
"getServerSideProps in Next.js") is about that thing, not about the docs, however well its other
words match: near-domain questions score like real ones on the dense and BM25 signals, and what
gives them away is the name. So `Retriever` judges a question covered only when every name in it
occurs in a retrieved section that matches the question (see `Retriever.coverage`).

A name is a word written the way names are written:
- a capitalised word that does not start a sentence ("Gatsby", "Heroku", "Japanese"), except in
  languages that capitalise every noun (German, Luxembourgish) and in a question written in Title
  Case or in capitals (then only camelCase identifiers count);
- an acronym ("MX", "EACCES", "CSS");
- a camelCase identifier ("getServerSideProps", "useReducer", "SplitChunksPlugin");
- a capitalised dotted name ("Next.js", "Node.js").

Not names: words inside `code` or quotes (an error message or the user's own identifiers), paths
and lower-case file names ("src/pages", "vite.config.ts": the user's files more often than
another tool's), numbers, abbreviations such as "e.g.". The match is whole-word and
case-insensitive, and an acronym's plural ("URLs") also matches its singular.
"""

from __future__ import annotations

import functools
import re

# Languages whose nouns are capitalised wherever they stand.
_NOUNS_CAPITALISED = frozenset({"de", "lb"})
_CODE_OR_QUOTED = re.compile(r"`[^`]*`|\"[^\"]*\"|“[^”]*”|«[^»]*»|(?<!\w)'[^']*'(?!\w)")
_WORD = re.compile(r"[\w@][\w.@/+#'-]*[\w+#]|\w")
_CAMEL = re.compile(r"[a-z][A-Z]")
_SENTENCE_END = re.compile(r"(^|[.!?:;])\s*$")
_NOT_NAMES = frozenset({"e.g", "i.e", "etc", "vs", "ok", "faq"})
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")
_ALPHA_WORD = re.compile(r"[^\W\d_]+")
# A question of at least this many words whose words are at least this share capitalised (or in
# capitals) is in Title Case (or shouted): its casing says nothing about names.
_CASING_MIN_WORDS = 4
_CASING_SHARE = 0.6


def question_names(question: str, *, locale: str = "en") -> list[str]:
    """The names in `question`, each once, in order (see the module docstring). `locale` is the
    language the question is asked in (a BCP 47 tag, "fr", "pt-BR")."""
    text = _CODE_OR_QUOTED.sub(lambda match: " " * len(match.group()), question)
    # Casing tells names only where ordinary words are lower case: not in German nouns, not in
    # a Question Typed In Title Case, and not in one TYPED IN CAPITALS.
    words = [word for word in _ALPHA_WORD.findall(text) if len(word) > 1]
    many = len(words) >= _CASING_MIN_WORDS
    shouted = many and sum(w.isupper() for w in words) >= _CASING_SHARE * len(words)
    titled = many and sum(w[0].isupper() for w in words) >= _CASING_SHARE * len(words)
    capitalised = not (locale.split("-")[0].lower() in _NOUNS_CAPITALISED or titled or shouted)
    names: list[str] = []
    seen: set[str] = set()
    for match in _WORD.finditer(text):
        word = match.group().strip(".'-")
        if "/" in word or "'" in word or word.lower() in _NOT_NAMES:
            continue
        if len(word) < 2 or not any(c.isalpha() for c in word):
            continue
        before = text[: match.start()].rstrip()
        starts_sentence = bool(_SENTENCE_END.search(before)) and not before.lower().endswith(
            _ABBREVIATIONS
        )
        is_name = _is_name(
            word, starts_sentence=starts_sentence, capitalised=capitalised, acronyms=not shouted
        )
        if is_name and word.lower() not in seen:
            seen.add(word.lower())
            names.append(word)
    return names


def _is_name(word: str, *, starts_sentence: bool, capitalised: bool, acronyms: bool) -> bool:
    """Whether `word` is written as a name; `capitalised`: a capitalised word may be one (the
    question's language and casing leave ordinary words lower case); `acronyms` likewise."""
    if _CAMEL.search(word):
        return True
    if word.isupper():  # "MX", "GA4", "NEXT.JS" (the caller makes sure there is a letter)
        return acronyms
    if "." in word:
        return word[0].isupper() and acronyms  # "Next.js", not "vite.config.ts"
    return capitalised and word[0].isupper() and not starts_sentence


def mentions(text: str, name: str) -> bool:
    """Whether `text` contains `name` as a whole word, in any case ("toc" also in
    "toc_max_heading_level"); an acronym's plural ("URLs", "IDs") also as its singular."""
    return _pattern(name).search(text.lower()) is not None


@functools.lru_cache(maxsize=1024)
def _pattern(name: str) -> re.Pattern[str]:
    base = name[:-1] if len(name) > 2 and name.endswith("s") and name[:-1].isupper() else name
    plural = "s?" if base != name else ""
    return re.compile(rf"(?<![0-9a-z]){re.escape(base.lower())}{plural}(?![0-9a-z])")
