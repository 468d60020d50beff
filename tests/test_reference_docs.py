"""docs/config.md and docs/commands.md stay in step with the CLI: every config key and every flag is documented,
and nothing is documented that does not exist.

Only the command line is used (`python -m nnctl schema`, `python -m nnctl CMD --help`), never nnctl's modules, so
the test holds whatever the package's inside looks like.

Conventions the pages follow, and this test parses:

- docs/config.md declares each key in a table whose header starts `| key | type | default |`: the first cell is
  the key's dotted path in backticks, `[]` standing for the entries of a list (`model.layers[].units`). The
  default cell holds the schema's default in backticks when the schema has one; the type cell names the JSON
  type (integer, number, string, boolean, list, mapping); every choice of an enum appears in backticks in the row.
  The keys in the page's ```yaml examples must exist too.
- docs/commands.md has a `## nnctl NAME` section per command and a `## Global options` section for `nnctl`'s
  own options. A section declares its flags in a table whose header starts `| option |` (first cell: the
  flags in backticks, e.g. `` `-o`, `--output` ``) and its arguments in a table whose header starts
  `| argument |`. Any other flag the page shows in inline code or a code block belongs to the command named in
  the same code (`nnctl predict --proba`), else to the section's command; outside command sections it must be a
  flag of some command. Inline code that quotes an error message (`error: ...`) is output, not documentation.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PAGE = ROOT / "docs" / "config.md"
COMMANDS_PAGE = ROOT / "docs" / "commands.md"

# rich draws --help in boxed panels; a wide, colourless, non-interactive terminal keeps each row on one line
HELP_ENV = {"COLUMNS": "200", "LINES": "100", "TERM": "dumb", "NO_COLOR": "1"}
FLAG = re.compile(r"(?<![\w\-/.=])(--?[A-Za-z][\w-]*)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
JSON_TYPES = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean", "array": "list",
              "object": "mapping"}


def nnctl(*args: str) -> str:
    """stdout of `python -m nnctl ARGS` run from the repository's root; the command must succeed."""
    env = {**os.environ, **HELP_ENV}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([sys.executable, "-m", "nnctl", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"nnctl {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


# --- the schema ----------------------------------------------------------------------------------------


@functools.cache
def schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(nnctl("schema"))
    return result


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    """`node` with its `$ref` (into `$defs`) replaced by the definition; the node's own keys win."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), f"unexpected $ref {ref}"
        target = schema()["$defs"][ref.removeprefix("#/$defs/")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _branches(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The node and, recursively, the alternatives of its anyOf / oneOf / allOf, $refs followed."""
    node = _deref(node)
    found = [node]
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(combinator, []):
            found += _branches(sub)
    return found


@functools.cache
def schema_keys() -> dict[str, dict[str, Any]]:
    """Every key path of the schema (`data.scale`, `model.layers[].units`, ...) -> its property schema."""
    keys: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for branch in _branches(node):
            for name, prop in branch.get("properties", {}).items():
                path = f"{prefix}.{name}" if prefix else name
                keys.setdefault(path, prop)
                walk(prop, path)
            if branch.get("type") == "array" and isinstance(branch.get("items"), dict):
                walk(branch["items"], f"{prefix}[]")  # a list of mappings: model.layers[].units

    walk(schema(), "")
    assert len(keys) > 20, f"the schema walk found only {sorted(keys)}"
    return keys


def _types(prop: dict[str, Any]) -> set[str]:
    """The JSON types a key accepts, as the page words them (null left out)."""
    found = set()
    for branch in _branches(prop):
        kinds = branch.get("type", [])
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            if kind != "null":
                found.add(JSON_TYPES[kind])
        if "properties" in branch and "type" not in branch:
            found.add("mapping")
    return found


def _choices(prop: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for branch in _branches(prop):
        values += [str(v) for v in branch.get("enum", [])]
        if "const" in branch:
            values.append(str(branch["const"]))
    return values


def _written(value: Any) -> str:
    """A default as the page writes it: YAML's spelling (true, 0.0, standard)."""
    return value if isinstance(value, str) else json.dumps(value)


# --- docs/config.md ------------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _tables(text: str, first_header: str) -> list[tuple[str, int, list[list[str]], list[int]]]:
    """Markdown tables whose first header cell is `first_header`: (heading above it, its line, rows, row lines)."""
    lines = text.splitlines()
    found = []
    heading = ""
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif (not in_code and line.startswith("|") and _cells(line)[0].lower() == first_header
              and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: ")):
            start, rows, numbers = i + 1, [], []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                numbers.append(i + 1)
                i += 1
            found.append((heading, start, rows, numbers))
            continue
        i += 1
    return found


@functools.cache
def documented_keys() -> dict[str, tuple[list[str], int, str]]:
    """Keys docs/config.md declares: dotted path -> (the row's cells, its line, the heading above its table)."""
    keys: dict[str, tuple[list[str], int, str]] = {}
    duplicates, malformed = [], []
    for heading, _, rows, numbers in _tables(CONFIG_PAGE.read_text(encoding="utf-8"), "key"):
        for cells, number in zip(rows, numbers, strict=True):
            match = re.fullmatch(r"`([\w.\[\]]+)`", cells[0])
            if match is None or len(cells) < 4:
                malformed.append(f"line {number}: {cells[0]!r}")
                continue
            if match.group(1) in keys:
                duplicates.append(f"{match.group(1)} (lines {keys[match.group(1)][1]} and {number})")
            keys[match.group(1)] = (cells, number, heading)
    assert not malformed, ("docs/config.md: key-table rows must start with one dotted key in backticks and have "
                           "type, default and meaning cells: " + "; ".join(malformed))
    assert not duplicates, "docs/config.md declares keys twice: " + "; ".join(duplicates)
    assert keys, "docs/config.md has no key tables (header `| key | type | default | meaning |`)"
    return keys


def test_every_schema_key_is_documented() -> None:
    missing = [f"`{key}` ({prop.get('description', 'no description')}; default "
               f"{_written(prop['default']) if 'default' in prop else 'none'})"
               for key, prop in schema_keys().items() if key not in documented_keys()]
    assert not missing, ("keys in `nnctl schema` that docs/config.md does not declare (add a row to the key table "
                         "of their section):\n  " + "\n  ".join(missing))


def test_no_documented_key_is_unknown() -> None:
    unknown = [f"`{key}` (line {line})" for key, (_, line, _) in documented_keys().items()
               if key not in schema_keys()]
    assert not unknown, ("docs/config.md declares keys that `nnctl schema` does not have:\n  " + "\n  ".join(unknown))


def test_documented_defaults_are_the_schemas() -> None:
    wrong = []
    for key, prop in schema_keys().items():
        if key in documented_keys() and "default" in prop:
            cells, line, _ = documented_keys()[key]
            expected = f"`{_written(prop['default'])}`"
            if expected not in cells[2]:
                wrong.append(f"`{key}` (line {line}): the schema's default is {expected}, the page says {cells[2]!r}")
    assert not wrong, "docs/config.md defaults that differ from `nnctl schema`:\n  " + "\n  ".join(wrong)


def test_documented_types_and_choices_are_the_schemas() -> None:
    wrong = []
    for key, prop in schema_keys().items():
        if key not in documented_keys():
            continue
        cells, line, _ = documented_keys()[key]
        for word in sorted(_types(prop)):
            if word not in cells[1]:
                wrong.append(f"`{key}` (line {line}): the type cell {cells[1]!r} does not say '{word}'")
        row = " | ".join(cells)
        for choice in _choices(prop):
            if f"`{choice}`" not in row:
                wrong.append(f"`{key}` (line {line}): the choice `{choice}` is not in its row")
    assert not wrong, "docs/config.md types or choices that differ from `nnctl schema`:\n  " + "\n  ".join(wrong)


def test_keys_sit_in_their_sections() -> None:
    """`data.scale` under the `data` heading, `seed` under the top level's: a reader finds a key where it belongs."""
    misplaced = []
    for key, (_, line, heading) in documented_keys().items():
        section = heading.strip("`")
        if "." in key:
            parent = key.rsplit(".", 1)[0]
            if parent.endswith("[]"):  # a list entry's key sits with the list: model.layers[].units under model
                parent = parent[:-2].rsplit(".", 1)[0]
            if section != parent:
                misplaced.append(f"`{key}` (line {line}) is under '{heading}', expected under '{parent}'")
        elif section.lower() != "top level":
            misplaced.append(f"`{key}` (line {line}) is under '{heading}', expected under 'Top level'")
    assert not misplaced, "docs/config.md keys in the wrong section:\n  " + "\n  ".join(misplaced)


def _yaml_key_paths(value: Any, prefix: str = "") -> list[str]:
    paths = []
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.append(path)
            if not path.endswith("class_weight"):  # its keys are class labels, not config keys
                paths += _yaml_key_paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            paths += _yaml_key_paths(item, f"{prefix}[]")
    return paths


def test_yaml_examples_use_only_schema_keys() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", CONFIG_PAGE.read_text(encoding="utf-8"), re.M | re.S)
    assert blocks, "docs/config.md has no ```yaml example"
    unknown = [path for block in blocks for path in _yaml_key_paths(yaml.safe_load(block))
               if path not in schema_keys()]
    assert not unknown, "docs/config.md's YAML examples use keys the schema lacks: " + ", ".join(unknown)


# --- --help --------------------------------------------------------------------------------------------


def _panels(help_text: str) -> dict[str, list[str]]:
    """rich's boxed panels of a --help: title -> the rows' contents (box characters stripped)."""
    panels: dict[str, list[str]] = {}
    title = None
    for line in help_text.splitlines():
        stripped = line.strip()
        start = re.match(r"[╭┌+]─+ ?(.*?) ?─", stripped)
        if start:
            title = start.group(1).strip()
            panels[title] = []
        elif stripped.startswith(("╰", "└")):
            title = None
        elif title is not None and stripped.startswith(("│", "|")):
            panels[title].append(stripped[1:].rstrip("│|").rstrip())
    return panels


def _row_names(rows: list[str], pattern: str) -> list[list[str]]:
    """The leading names of each panel row (its first column); continuation lines of a description are skipped."""
    found = []
    for row in rows:
        if re.match(r"^ {0,8}(\* +)?" + pattern, row) is None:  # a description's next line is indented far more
            continue
        names = []
        for token in row.replace("*", " ").split():
            if re.fullmatch(pattern, token) is None:
                break
            names.append(token)
            if not token.startswith("-"):  # an argument or command: one name
                break
        found.append(names)
    return found


@functools.cache
def cli_help(command: str | None) -> dict[str, list[str]]:
    """'options' (every long and short flag), 'arguments' and, for `nnctl` itself, 'commands'."""
    text = nnctl(*([command] if command else []), "--help")
    panels = _panels(text)
    assert "Options" in panels, f"no Options panel in `nnctl {command or ''} --help`:\n{text}"
    flags = [f for names in _row_names(panels["Options"], r"--?[A-Za-z][\w-]*") for f in names]
    arguments = [n[0] for n in _row_names(panels.get("Arguments", []), r"[A-Za-z][\w-]*")]
    commands = [n[0] for n in _row_names(panels.get("Commands", []), r"[a-z][\w-]*")]
    assert "--help" in flags, f"could not read the flags of `nnctl {command or ''} --help`:\n{text}"
    return {"options": flags, "arguments": arguments, "commands": commands}


@functools.cache
def commands() -> list[str]:
    names = cli_help(None)["commands"]
    assert {"train", "predict"} <= set(names), f"could not read the commands of `nnctl --help`: {names}"
    return names


# --- docs/commands.md ----------------------------------------------------------------------------------


@functools.cache
def page_sections() -> dict[str, tuple[int, str]]:
    """docs/commands.md's `## ` sections: title -> (first line, text); the text before the first is ''."""
    sections: dict[str, tuple[int, str]] = {}
    title, start, lines = "", 1, []
    in_code = False
    for number, line in enumerate(COMMANDS_PAGE.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            sections[title] = (start, "\n".join(lines))
            title, start, lines = line[3:].strip(), number, []
        lines.append(line)
    sections[title] = (start, "\n".join(lines))
    return sections


def _section_command(title: str) -> str | None:
    match = re.fullmatch(r"`?nnctl (\S+?)`?", title)
    return match.group(1) if match else None


def _declared(text: str, header: str) -> list[str]:
    """The names in the first cell of the section's `| option |` (flags) or `| argument |` tables."""
    names = []
    for _, _, rows, _ in _tables(text, header):
        for cells in rows:
            names += [FLAG.findall(span)[0] if header == "option" else span.strip()
                      for _, span in CODE_SPAN.findall(cells[0]) if header != "option" or FLAG.findall(span)]
    return names


def _mentions(text: str) -> list[tuple[str | None, str]]:
    """(the command it belongs to, or None for 'this section's'; flag) for each flag shown in code."""
    found: list[tuple[str | None, str]] = []
    code = [span for _, span in CODE_SPAN.findall(re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))]
    code += [line for block in re.findall(r"^```\w*\n(.*?)^```", text, re.M | re.S) for line in block.splitlines()]
    for span in code:
        span = span.strip().removeprefix("$ ").strip()
        if span.startswith("error:"):
            continue
        owner: str | None = None
        match = re.match(r"nnctl(?:\s+([A-Za-z][\w-]*))?(?!\S)", span)
        if match:
            word = match.group(1)
            owner = "" if word is None else word if word in commands() else "*"  # "": nnctl's own; "*": any
        found += [(owner, flag) for flag in FLAG.findall(span)]
    return found


def _flags_of(owner: str) -> set[str]:
    if owner == "":
        return set(cli_help(None)["options"])
    if owner == "*":  # a placeholder (`nnctl COMMAND --help`): a flag every command has
        return set.intersection(*(set(cli_help(c)["options"]) for c in commands()))
    return set(cli_help(owner)["options"])


def test_every_command_has_a_section() -> None:
    documented = {_section_command(title) for title in page_sections()} - {None}
    missing = [c for c in commands() if c not in documented]
    unknown = sorted(c for c in documented if c not in commands())
    assert not missing, f"docs/commands.md has no `## nnctl NAME` section for: {', '.join(missing)}"
    assert not unknown, f"docs/commands.md documents commands `nnctl --help` does not list: {', '.join(unknown)}"
    assert "Global options" in page_sections(), "docs/commands.md has no `## Global options` section"


@pytest.mark.parametrize("command", [None, *commands()])  # None: nnctl's own options
def test_section_documents_exactly_the_commands_flags(command: str | None) -> None:
    title = "Global options" if command is None else f"nnctl {command}"
    assert title in page_sections(), f"docs/commands.md has no `## {title}` section"
    line, text = page_sections()[title]
    where = f"docs/commands.md, `## {title}` (line {line})"
    helped = cli_help(command)
    name = f"`nnctl {command} --help`" if command else "`nnctl --help`"
    declared = _declared(text, "option")
    problems = [f"{flag} is in {name} but not in the section's option table"
                for flag in helped["options"] if flag not in declared]
    problems += [f"the option table documents {flag}, which {name} does not list"
                 for flag in declared if flag not in helped["options"]]
    arguments = _declared(text, "argument")
    problems += [f"argument {arg.upper()} is in {name} but not in the section's argument table"
                 for arg in helped["arguments"] if arg.upper() not in arguments]
    problems += [f"the argument table documents {arg}, which {name} does not list"
                 for arg in arguments if arg.lower() not in [a.lower() for a in helped["arguments"]]]
    own = "" if command is None else command
    for owner, flag in _mentions(text):
        owner = own if owner is None else owner
        if flag not in _flags_of(owner):
            problems.append(f"mentions {flag}, which `nnctl {owner or ''} --help` does not list".replace("  ", " "))
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)


def test_other_sections_mention_only_real_flags() -> None:
    every = set(cli_help(None)["options"]).union(*(cli_help(c)["options"] for c in commands()))
    problems = []
    for title, (line, text) in page_sections().items():
        if title == "Global options" or _section_command(title) is not None:
            continue
        for owner, flag in _mentions(text):
            allowed = every if owner is None else _flags_of(owner)
            if flag not in allowed:
                problems.append(f"`## {title or '(top)'}` (line {line}): {flag} is not a flag of "
                                f"{'any command' if owner is None else f'nnctl {owner}'}")
    assert not problems, "docs/commands.md:\n  " + "\n  ".join(problems)


def test_exit_codes_table() -> None:
    _, text = page_sections().get("Exit codes", (0, ""))
    codes = [cells[0] for _, _, rows, _ in _tables(text, "code") for cells in rows]
    assert codes == ["0", "1", "2", "130"], f"docs/commands.md's `## Exit codes` table lists {codes}"
