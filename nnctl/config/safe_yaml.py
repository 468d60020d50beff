"""YAML as configs are written, and as hostile files are not allowed to be.

Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1: `1e-3`, `3E-4`, `+1e3`, `.5` and `-2.5e-1` are
numbers (1.1 wants a dot and a signed exponent), `true`/`false` are the only booleans (`yes`, `no`, `on`, `off`
are strings), `010` is ten, `1:30` and `2024-01-01` are strings. One addition to 1.2: underscores between
digits (`1_000`, `1_000.5`) make numbers, as in Python. Quoted scalars are always strings; `<<` merge keys work.

A config is often someone else's file. Reading one stops early, before anything is expanded, at more than
`MAX_BYTES` characters, `MAX_VALUES` values, `MAX_DEPTH` levels of nesting, `MAX_ALIASES` aliases or
`MAX_ALIAS_VALUES` values reached through aliases (a "billion laughs" bomb is a few lines of aliases that expand
to billions of values), and at an alias inside the collection it names. Every failure is a `YamlError` with the
line it is about.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import BaseResolver

MAX_BYTES = 256 << 10  # a config names its data files; it does not hold data
MAX_VALUES = 10_000  # scalars, lists and mappings written in the file: ~0.5 s of PyYAML's pure-Python parsing
MAX_DEPTH = 64  # levels of nested lists and mappings; a config has five
MAX_ALIASES = 100
MAX_ALIAS_VALUES = 10_000  # values an alias stands for, counted as if every alias were written out
MAX_INT_DIGITS = 100  # Python refuses to parse integers of more than 4,300 digits; no config needs 100

__all__ = ["MAX_ALIASES", "MAX_ALIAS_VALUES", "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "YamlError", "dump",
           "dump_scalar", "parse"]


class YamlError(Exception):
    """Why a YAML text was refused: `problem` (one line, no file name) and the 1-based `line`, when known."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.line = problem, line


_DIGITS = r"[0-9](?:_?[0-9])*"  # 1_000: underscores only between digits
_INT = re.compile(rf"^(?:[-+]?{_DIGITS}|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(rf"^(?:[-+]?(?:\.{_DIGITS}|{_DIGITS}(?:\.(?:{_DIGITS})?)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _Resolver(BaseResolver):
    """The YAML 1.2 core schema's tags for plain scalars (with underscores in numbers), and `<<` merges."""


for _tag, _pattern, _first in (
    ("bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    ("int", _INT, "-+0123456789"),  # before float: `1` is an int
    ("float", _FLOAT, "-+0123456789."),
    ("null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("merge", re.compile(r"^<<$"), "<"),
):
    _Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", _pattern, list(_first))


def _construct_int(loader: yaml.SafeLoader, node: Node) -> int:
    """YAML 1.2 integers: `010` is ten, `0o10` eight, `0x10` sixteen; `1_000` a thousand."""
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        raise ConstructorError(None, None, f"an integer of more than {MAX_INT_DIGITS} digits", node.start_mark)
    if text[:2] in ("0o", "0x"):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text)


def _too_deep(line: int, through: str = "") -> YamlError:
    return YamlError(f"nested more than {MAX_DEPTH} levels deep{through} (limit {MAX_DEPTH}); a config needs a few",
                     line)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 resolver, counting as it composes: the values, the nesting depth,
    the aliases and the values they stand for.

    Each composed collection's size (values, as if its aliases were written out) and height (levels below
    it) is known once it is complete, so an alias is weighed before the document grows by it."""

    yaml_implicit_resolvers = _Resolver.yaml_implicit_resolvers

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        """`[[[[...` is refused as the scanner reads it: its bookkeeping of where a key may start costs time in
        proportion to the depth, for every token of the next 1,024 characters."""
        if self.flow_level >= MAX_DEPTH:
            raise _too_deep(self.get_mark().line + 1)
        super().fetch_flow_collection_start(TokenClass)

    def compose_document(self) -> Node | None:
        self._depth, self._values, self._aliases, self._alias_values = 0, 0, 0, 0
        self._measures: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height)
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            return self._alias(parent, index)
        line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_deep(line)
        self._values += 1
        if self._values > MAX_VALUES:
            raise YamlError(f"more than {MAX_VALUES:,} values (limit {MAX_VALUES:,}); a config lists settings, "
                            "not data", line)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, SequenceNode | MappingNode):
            children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
            measures = [self._measures.get(id(child), (1, 0)) for child in children]
            self._measures[id(node)] = (1 + sum(m[0] for m in measures), 1 + max((m[1] for m in measures), default=0))
        return node

    def _alias(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlError(f"too many aliases (limit {MAX_ALIASES}); a config needs no YAML anchors at this scale",
                            line)
        node = super().compose_node(parent, index)  # the anchored node (or an error: undefined alias)
        if isinstance(node, ScalarNode):
            size, height = 1, 0
        elif id(node) in self._measures:
            size, height = self._measures[id(node)]
        else:
            raise YamlError(f"the alias *{event.anchor} is inside the collection it refers to; a config cannot "
                            "contain itself", line)
        self._alias_values += size
        if self._alias_values > MAX_ALIAS_VALUES:
            raise YamlError(f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (limit {MAX_ALIAS_VALUES:,});"
                            " a config needs no YAML anchors at this scale", line)
        if self._depth + height > MAX_DEPTH:
            raise _too_deep(line, f" through the alias *{event.anchor}")
        return node


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse(text: str) -> tuple[Any, Node | None]:
    """The value of a one-document YAML text, and its node tree (with line marks; None for an empty text).

    Raises YamlError: invalid YAML, or a limit (size, values, depth, aliases, what aliases stand for) exceeded."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{len(text):,} characters (limit {MAX_BYTES:,}); a config names its data files, it does "
                          "not hold data")
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        return (None if node is None else loader.construct_document(node)), node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or str(exc).splitlines()[0]
        if problem.startswith("but ") and exc.context:  # "expected a single document ..., but found another"
            problem = f"{exc.context}, {problem}"
        raise YamlError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    except ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        raise YamlError(f"invalid YAML: {str(exc).splitlines()[0]}", line) from None
    finally:
        if loader is not None:
            loader.dispose()


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})  # YAML 1.1 reads these as values


class _Dumper(yaml.SafeDumper):
    """Writes a string plain only when both YAML 1.2 (`parse`) and 1.1 (PyYAML's default, and many other tools)
    read it back as a string: `1e-3`, `yes` and `2024-01-01` are quoted."""

    _yaml12 = _Resolver()

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        tag = self._yaml12.resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if kind is ScalarNode and tag == self.DEFAULT_SCALAR_TAG:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


def dump(value: Any) -> str:
    """A YAML document (block style) that `parse` reads back as `value`."""
    return yaml.dump(value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True)


def dump_scalar(value: Any) -> str:
    """`value` on one line (flow style), as `KEY=VALUE` overrides write it: `parse` reads it back as `value`.

    A name of letters, digits and underscores (a letter or underscore first) that is no YAML 1.1 boolean or null
    is plain in every YAML: it is returned as it is, without the emitter's half a millisecond (a starter config of
    100,000 columns names each)."""
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    text = yaml.dump([value], Dumper=_Dumper, default_flow_style=True, sort_keys=False, allow_unicode=True,
                     width=1 << 30)
    return text.strip()[1:-1]
