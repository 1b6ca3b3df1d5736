"""``source.query``: one non-empty SQL statement, told apart by a small PostgreSQL tokenizer.

A ``;`` ends a statement only outside string literals (``'...'``, ``E'...'``), quoted identifiers
(``"..."``), dollar-quoted strings (``$$...$$``, ``$tag$...$tag$``) and comments (``-- ...``,
``/* ... */``, which nest in PostgreSQL). A trailing ``;``, and comments after it, are allowed:
extraction keeps :func:`one_statement` before wrapping the query. A leaf module: it imports nothing
of ours.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

AS_OF_PARAM = "mlops_as_of"
SINCE_PARAM = "mlops_since"
"""Bind parameters extraction sets itself (the run's ``as_of``, the lookback's start): a spec may not."""
_PLACEHOLDER = re.compile(r"(?<!%)%\((\w+)\)s")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")  # a tag is an identifier: any letter or _, then digits too
_WORD = re.compile(r"[\w$]")
_LINE_END = re.compile(r"[\n\r]")


def check_query(query: str) -> str:
    """``query`` if it holds one SQL statement; ``ValueError`` (pydantic's message) if it is blank or holds several."""
    if not query.strip():
        raise ValueError(f"expected a SQL query, found {'only whitespace' if query else 'an empty string'}")
    if several_statements(query):
        raise ValueError("expected a single SQL statement, found several (a ';' outside quotes and comments)")
    if next(_tokens(one_statement(query)), None) is None:
        raise ValueError("expected a SQL query, found only comments and ';'")
    return query


def placeholders(query: str) -> set[str]:
    """The names of the ``%(name)s`` bind placeholders of ``query``'s statement (not of what follows its ``;``)."""
    return set(_PLACEHOLDER.findall(one_statement(query)))


def missing_placeholders(query: str | None, parameters: dict[str, Any]) -> list[str]:
    """The ``%(name)s`` placeholders of ``query`` that ``parameters`` has no value for, sorted."""
    return sorted(placeholders(query) - set(parameters)) if query else []


def check_parameters(query: str | None, parameters: dict[str, Any]) -> None:
    """``ValueError`` for a placeholder without a value, or a parameter named as extraction's own."""
    if reserved := sorted({AS_OF_PARAM, SINCE_PARAM} & set(parameters)):
        raise ValueError(f"parameters: {reserved} are set by the pipeline (the run's as_of and lookback), found them")
    if missing := missing_placeholders(query, parameters):
        raise ValueError(
            f"query: expected a value in 'parameters' for each %(name)s placeholder, found none for {missing}"
        )


def several_statements(query: str) -> bool:
    """Whether anything but ``;``, whitespace and comments follows the first ``;`` outside quotes and comments."""
    ends = [i for i in _tokens(query) if query[i] == ";"]
    return bool(ends) and any(query[i] != ";" for i in _tokens(query, ends[0]))


def one_statement(query: str) -> str:
    """``query`` up to its first ``;`` outside quotes and comments (what follows is ``;``s and comments), stripped."""
    end = next((i for i in _tokens(query) if query[i] == ";"), len(query))
    return query[:end].strip()


def _tokens(text: str, i: int = 0) -> Iterator[int]:
    """Where each token outside comments starts from ``i``: one per character, one per quoted string."""
    while i < len(text):
        char, pair = text[i], text[i : i + 2]
        if pair == "--":  # to the end of the line: PostgreSQL ends it at \n or \r
            newline = _LINE_END.search(text, i)
            i = len(text) if newline is None else newline.end()
        elif pair == "/*":
            i = _after_comment(text, i + 2)
        elif char in "'\"":
            yield i
            escapes = char == "'" and i > 0 and text[i - 1] in "eE" and not (i > 1 and _WORD.match(text[i - 2]))
            i = _after_quote(text, i + 1, char, escapes)
        elif char == "$" and not (i > 0 and _WORD.match(text[i - 1])) and (tag := _DOLLAR_TAG.match(text, i)):
            yield i
            end = text.find(tag.group(), tag.end())
            i = len(text) if end < 0 else end + len(tag.group())
        else:
            if not char.isspace():
                yield i
            i += 1


def _after_quote(text: str, i: int, quote: str, escapes: bool) -> int:
    """The index after the closing ``quote`` (a doubled quote is text; in ``E'...'`` a backslash escapes)."""
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] != quote:
            i += 1
        elif text[i + 1 : i + 2] == quote:
            i += 2
        else:
            return i + 1
    return len(text)


def _after_comment(text: str, i: int) -> int:
    """The index after the ``*/`` closing a ``/*`` comment whose body starts at ``i`` (comments nest)."""
    depth = 1
    while i < len(text) and depth:
        pair = text[i : i + 2]
        if pair in ("/*", "*/"):
            depth += 1 if pair == "/*" else -1
            i += 2
        else:
            i += 1
    return i
