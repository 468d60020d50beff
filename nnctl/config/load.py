"""Loading a config: the YAML file, `KEY=VALUE` overrides of dotted keys, and validation errors as one line
that names the file, the line and the key (`iris.yaml:12: training.epochs: expected an integer, got ...`).

Files and override values are read by `nnctl.config.safe_yaml`: YAML 1.2 numbers (`1e-3`), and limits that
refuse hostile files (alias bombs, deep nesting, huge files) before they cost time or memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nnctl.config.safe_yaml import MAX_BYTES, YamlError, parse
from nnctl.config.schema import Config
from nnctl.config.sections import key_line
from nnctl.errors import ConfigError, OverrideError

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key(key: str) -> list[str | int]:
    """`model.layers[1].units` -> ['model', 'layers', 1, 'units']."""
    tokens: list[str | int] = []
    pos = 0
    for match in _TOKEN.finditer(key):
        gap = key[pos : match.start()]
        if gap not in ("", ".") or (gap == "" and pos and match.group(1)):
            raise ValueError(key)
        tokens.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
        pos = match.end()
    if not tokens or pos != len(key) or isinstance(tokens[0], int):
        raise ValueError(key)
    return tokens


def dotted(loc: Sequence[str | int]) -> str:
    """['model', 'layers', 1, 'units'] -> `model.layers[1].units`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def apply_override(raw: dict[str, Any], assignment: str) -> tuple[str | int, ...]:
    """Apply one `KEY=VALUE` (dotted key, YAML scalar value) to a raw config dict; returns the key path.
    The CLI's `--set` passes its values here."""
    key, sep, text = assignment.partition("=")
    try:
        if not sep:
            raise ValueError(assignment)
        path = parse_key(key.strip())
        value = parse(text)[0] if text.strip() else None
    except ValueError:
        raise OverrideError(assignment,
                            "expected KEY=VALUE with a dotted key, e.g. {overrides} training.epochs=5") from None
    except YamlError as exc:
        raise OverrideError(assignment, exc.problem) from None
    node: Any = raw
    for depth, part in enumerate(path[:-1]):
        where = dotted(path[: depth + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise OverrideError(assignment, f"{where} does not exist ({size} entries)")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise OverrideError(assignment, f"{dotted(path[:depth])} is not a mapping")
            node = node.setdefault(part, {})
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise OverrideError(assignment, f"{key.strip()} does not exist")
    elif not isinstance(node, dict):
        raise OverrideError(assignment, f"{dotted(path[:-1])} is not a mapping")
    node[last] = value
    return tuple(path)


def line_index(node: yaml.Node | None, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    lines: dict[tuple[str | int, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, key_node.value)
            lines[sub] = key_node.start_mark.line + 1
            lines.update(line_index(value_node, sub))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            lines.update(line_index(item, (*path, i)))
    return lines


def _describe(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "missing required key"
    if kind.endswith("_type") or kind in ("int_from_float", "bool_parsing", "int_parsing", "float_parsing"):
        expected = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
                    "list": "a list", "dict": "a mapping", "model": "a mapping"}
        what = next((v for k, v in expected.items() if kind.startswith(k)), kind.removesuffix("_type"))
        if kind == "model_type":
            what = "a mapping"
        return f"expected {what}, got {type(value).__name__} {value!r}{_hint(kind, value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short"):
        return f"{error['msg'].lower()}, got {value!r}" if kind != "too_short" else error["msg"].lower()
    if kind == "literal_error":
        return f"unknown value {value!r}; {error['msg'].lower()}"
    return str(error["msg"])


def _hint(kind: str, value: Any) -> str:
    """What to write instead, where YAML's reading of a value may surprise: `yes` is a string."""
    if kind == "bool_type" and isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return "; write true or false (yes, no, on and off are strings in YAML 1.2)"
    return ""


def _error(error: Mapping[str, Any], source: str, lines: Mapping[tuple[str | int, ...], int],
           overridden: set[tuple[str | int, ...]], more: int) -> ConfigError:
    """The ConfigError for pydantic's first error (`more` others follow it): an OverrideError when an override
    set the key at fault, else one naming the file and the key's line."""
    loc = tuple(error["loc"])
    if "key" in (error.get("ctx") or {}):  # our own errors about one key of a section
        loc = (*loc, error["ctx"]["key"])
    where = dotted(loc) or "(top level)"
    problem = _describe(error) + (f" (and {more} more)" if more else "")
    if loc in overridden:
        return OverrideError(where, problem)
    line = key_line(lines, loc)
    prefix = f"{source}:{line}" if line else source
    return ConfigError(f"{prefix}: {where}: {problem}")


def read_yaml(path: str | Path, what: str = "config") -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """A YAML file's value and the line of each key path in it (`line_index`); a ConfigError names the file (and
    line) when it cannot be read, is not YAML, or is refused as hostile (see `nnctl.config.safe_yaml`)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:  # at most one byte past the limit: /dev/zero is not read to the end
            data = handle.read(MAX_BYTES + 1)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the {what} file ({exc.__class__.__name__}: {exc})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{source}: the {what} file is larger than {MAX_BYTES // 1024} KiB (the limit); a {what} "
                          "names its data files, it does not hold data")
    return parse_text(text, source)


def parse_text(text: str, source: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """YAML text's value and its keys' lines; a ConfigError names `source` and the line when it is refused."""
    try:
        value, node = parse(text)
    except YamlError as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise ConfigError(f"{where}: {exc.problem}") from None
    return value, line_index(node)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a YAML config; any problem is a ConfigError naming file, line and key."""
    raw, lines = read_yaml(path)
    return config_from(raw, str(path), Path(path).parent, overrides, lines)


def config_from(raw: Any, source: str, base_dir: Path, overrides: Sequence[str] = (),
                lines: Mapping[tuple[str | int, ...], int] | None = None) -> Config:
    """Override and validate an already parsed config (`lines`: its keys' line numbers, for the messages);
    relative paths in it resolve against `base_dir`. A sweep's trials are built this way on the workers."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of config keys at the top level, got {type(raw).__name__}")
    overridden = {apply_override(raw, assignment) for assignment in overrides}
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        raise _error(errors[0], source, lines or {}, overridden, len(errors) - 1) from None
    config._source = source
    config._base_dir = base_dir
    config._lines = dict(lines or {})
    return config
