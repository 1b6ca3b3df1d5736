"""A spec file's YAML: UTF-8 text, one document, YAML 1.2 core scalars, plain tags, no key given twice, no alias bomb.

A leaf module (it imports nothing of ours): :meth:`airflow_mlops.spec.PipelineSpec.from_yaml` turns
:class:`SpecFileError` into a :class:`~airflow_mlops.exceptions.PipelineSpecError` naming the file.
"""

from __future__ import annotations

import re
import stat
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

if TYPE_CHECKING:
    from pathlib import Path

MAX_VALUES = 100_000
"""Values (keys, scalars, lists, mappings) a spec may hold once YAML aliases are expanded.

An alias (``*name``) repeats its anchor without copying it, so nine aliases of nine aliases of ...
make a file of a few hundred bytes hold millions of values, which validation would then walk and
print. A real spec holds hundreds.
"""

MAX_FILE_BYTES = 1 << 20
"""A spec file's size limit (1 MiB): a real spec is a few KiB; a larger one only costs every DAG parse."""

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML was built with it
_MERGE = "tag:yaml.org,2002:merge"


class SpecFileError(ValueError):
    """A spec file that is not one YAML document of plain values; the message leaves the path out."""


def read_spec_yaml(path: Path) -> Any:
    """The YAML document of ``path``, read with a safe loader that refuses duplicate keys and alias bombs."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read, and the DAG parse with it
            raise SpecFileError(f"expected a regular file, found {_file_kind(info.st_mode)}")
        if info.st_size > MAX_FILE_BYTES:
            raise SpecFileError(
                f"expected a spec file of at most {MAX_FILE_BYTES >> 20} MiB ({MAX_FILE_BYTES} bytes), "
                f"found {info.st_size} bytes"
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecFileError(f"expected a UTF-8 text YAML file, found binary data ({err.reason})") from None
    except OSError as err:
        raise SpecFileError(f"cannot read the spec file: {err.strerror or err}") from None
    try:
        return yaml.load(text, Loader=_SpecLoader)  # noqa: S506  # a safe loader
    except yaml.YAMLError as err:  # the marks name '<unicode string>': the caller names the file
        message = " ".join(str(err).replace('in "<unicode string>", ', "").split())
        mark = getattr(err, "problem_mark", None)
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
            message += f" (line {mark.line + 1} holds a tab: YAML indents with spaces only)"
        raise SpecFileError(f"not valid YAML: {message}") from None


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device file")


class _SpecLoader(_BASE):
    """The safe loader, checking the node graph before any Python object is built from it."""

    def get_single_node(self) -> Node | None:
        node: Node | None = super().get_single_node()
        if node is not None:
            check_expansion(node)
            check_tags(node)
            check_duplicate_keys(node)
        return node


# A spec's plain scalars follow YAML 1.2's core schema, as JSON does, not PyYAML's YAML 1.1: only
# true/false are booleans ("no", "off" and "yes" stay text, so `method: off` is the word off), a
# number is decimal ("010" is 10, not octal 8; "1:30" is text, not sexagesimal 90; 1_000 is 1000
# as in Python; 0x10 and 0o10 stay text), 1e9 and 5e-3 are floats, and a date stays text. Strict
# models then refuse any text where a number or bool belongs.
_YAML = "tag:yaml.org,2002:"
_CORE = {f"{_YAML}{name}" for name in ("bool", "int", "float", "timestamp", "value")}
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _CORE]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9](?:_?[0-9])*$", "-+0123456789"),  # before float: 12 matches both; 1_000 as in Python
    ("float", r"^[-+]?(?:\.[0-9]+|[0-9](?:_?[0-9])*(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
    ("float", r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+."),
):
    _SpecLoader.add_implicit_resolver(f"{_YAML}{_tag}", re.compile(_pattern), list(_first))


def _decimal_int(loader: Any, node: ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if not re.fullmatch(r"[-+]?[0-9](?:_?[0-9])*", text):
        raise ConstructorError(None, None, f"expected a decimal integer, found {text!r}", node.start_mark)
    if len(text) > MAX_INT_DIGITS:  # Python refuses to read it, with advice for programmers
        found = f"an integer of {len(text)} digits"
        raise ConstructorError(None, None, f"expected a number, found {found}", node.start_mark)
    return int(text)


MAX_INT_DIGITS = 4000  # below Python's own limit on reading an integer (4300 digits)


_SpecLoader.add_constructor(f"{_YAML}int", _decimal_int)
PLAIN_TAGS = frozenset(f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge"))
"""The tags a spec's values may carry: text, numbers, true/false, null, lists and mappings (no sets, dates, objects)."""


def check_tags(root: Node) -> None:
    """:class:`SpecFileError` naming the first value whose tag is not a plain one (``!!set``, ``!!python/...``)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in PLAIN_TAGS:
            tag = node.tag.replace(_YAML, "!!")
            raise SpecFileError(
                f"expected plain values (text, numbers, true/false, lists, mappings), found the tag {tag} "
                f"at line {node.start_mark.line + 1}"
            )
        stack.extend(_children(node))


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: Node) -> int:
    """How many values ``root`` holds with every alias expanded; :class:`SpecFileError` past :data:`MAX_VALUES`.

    Each node is visited once (an aliased node's count is reused), so a bomb is caught without
    expanding it. An alias inside its own anchor (a recursive document) is refused too.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                raise SpecFileError(
                    f"expected at most {MAX_VALUES:,} values (keys, scalars, lists and mappings, any YAML "
                    f"alias *name expanded), found {sizes[key]:,} in the value at line {node.start_mark.line + 1}"
                )
        elif key in open_nodes:
            raise SpecFileError(
                f"expected plain values, found an alias inside its own anchor at line {node.start_mark.line + 1}"
            )
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def check_duplicate_keys(root: Node) -> None:
    """:class:`SpecFileError` naming each key given twice in one mapping (dotted path and both lines), at any depth.

    A merge key (``<<: *defaults``) is not a duplicate, nor is a key that overrides a merged one.
    """
    found: list[tuple[int, str]] = []
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(reversed([(child, f"{path}{i}.") for i, child in enumerate(node.value)]))
        elif isinstance(node, MappingNode):
            lines: dict[tuple[str, str], int] = {}
            values: list[tuple[Node, str]] = []
            for key, value in node.value:
                name = str(key.value) if isinstance(key, ScalarNode) else "?"
                if isinstance(key, ScalarNode) and key.tag != _MERGE:
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in lines:
                        first = lines[(key.tag, key.value)]
                        where = f"lines {first} and {line}" if first != line else f"line {line}"
                        found.append((line, f"{path}{name}: given twice ({where})"))
                    lines.setdefault((key.tag, key.value), line)
                values.append((value, f"{path}{name}."))
            stack.extend(reversed(values))  # document order, so a shared node is named by its first path
    if found:
        details = "".join(f"\n  {problem}" for _, problem in sorted(found, key=lambda item: item[0]))
        raise SpecFileError(f"invalid pipeline spec ({len(found)} error(s)){details}")
