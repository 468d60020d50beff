"""The README's shell examples run, and print what the README shows.

Each fenced block of README.md is a session: its `$ ` lines are commands (continued over lines that end in `\\`
or while a quote is open), and the lines up to the next `$ ` line are what that command prints, stdout and
stderr together. The blocks run in order, in one temporary folder holding a copy of configs/ and datasets/
(NNCTL_CACHE_DIR inside it), through `bash -o pipefail`, with `nnctl` and `python` on PATH running this
interpreter's `python -m nnctl` and `python`; stderr is not a terminal, so progress is printed as lines.

- Exit status: `# exit N` at the end of a `$ ` line is the status the command must end with; otherwise 0. An
  example whose output shows an `error:` line must say its status (`# exit 2` for bad input, `# exit 1` for a
  failed run), unless the command itself echoes it (`...; echo "exit $?"`).
- Output: when the README shows output, the command's whole output must match it line for line, except that
  a line starting with `...` (box characters aside) stands for any number of lines and `...` inside a line for
  any text; numbers shown with decimals match to within one unit of their last digit (so shortened JSON
  numbers match the full ones), whole numbers exactly; timings in JSON (`"seconds": 0.12`) and in a table's
  `seconds` row or column, and this machine's free memory, match anything; a line that reports a duration in
  words (`... 0.11 s`, `done in 2.1 s`) is not compared at all (sweep trials also finish in any order). A
  command whose output the README does not show is not compared.
- `^C` in an output is the reader pressing Ctrl-C: the test sends SIGINT once the lines before it have been
  printed; the lines after it may differ in their numbers (the epoch the signal lands in).
- `<!-- readme-test: skip REASON -->` on the line before a block's fence leaves the block out.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TIMEOUT = 120  # seconds per command

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b(.*?)-->\s*$")
EXIT_COMMENT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
BOX = "│┃┆|"
BORDER_CHARS = set("─━┌┐└┘├┤┬┴┼┏┓┗┛┣┫┳┻╋┡┩╇╭╮╰╯═╞╡╪ ")
WILD = "\x00"  # stands for anything, in an expected line
# Parts of a line that change from run to run or machine to machine: JSON timings, the memory this machine has.
VOLATILE = [re.compile(p) for p in (r'(?<="seconds": )[-\d.e]+', r"(?<=this machine has )[\d.]+(?= GiB available)")]
TIMED = re.compile(r"\b\d+(?:\.\d+)? s\b")  # a line reporting a duration (`0.11 s`) is not compared


@dataclass
class Command:
    text: str  # the shell command, as the README writes it (without `$ ` and the `# exit` comment)
    line: int  # its line in README.md
    status: int | None  # the status the README documents (None: 0 expected, unless an error is shown)
    expected: list[str] = field(default_factory=list)  # the output the README shows


@dataclass
class Block:
    line: int
    commands: list[Command]
    skip: str | None = None


def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text, comments=False)
    except ValueError:  # an open quote
        return False
    return True


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for fence in FENCE.finditer(text):
        first = text.count("\n", 0, fence.start()) + 2  # README line of the block's first line
        before = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        lines = fence.group(1).split("\n")[:-1]
        commands: list[Command] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                start = i
                command = line[2:]
                while not _complete(command) and i + 1 < len(lines):
                    i += 1
                    command += "\n" + lines[i]
                status = EXIT_COMMENT.search(command)
                if status:
                    command = command[: status.start()]
                commands.append(Command(command, first + start, int(status.group(1)) if status else None))
            elif commands:
                commands[-1].expected.append(line)
            i += 1
        if commands:
            blocks.append(Block(first - 1, commands, skip.group(1).strip() or "skipped" if skip else None))
    return blocks


# --- matching output ---------------------------------------------------------------------------------


def _is_elision(line: str) -> bool:
    return line.strip(BOX + " ").startswith("...")


def _is_border(line: str) -> bool:
    return bool(line.strip()) and set(line) <= BORDER_CHARS


def _mask(line: str) -> str:
    for pattern in VOLATILE:
        line = pattern.sub(WILD, line)
    return line


def _same_number(actual: str, expected: str) -> bool:
    mantissa, _, exponent = expected.lower().partition("e")
    if "." not in mantissa:
        return float(actual) == float(expected)
    unit = 10.0 ** (int(exponent or 0) - len(mantissa.split(".")[1]))
    return abs(float(actual) - float(expected)) <= unit * 1.000001


def _text_matches(expected: str, actual: str, loose: bool) -> bool:
    """`expected` (with `...` and WILD for any text, numbers to their precision) against `actual`."""
    expected, actual = expected.rstrip(), actual.rstrip()
    pattern, numbers = "", []
    for token in re.split(r"(\.\.\.|\x00|" + NUMBER.pattern + ")", expected):
        if token in ("...", WILD):
            pattern += ".*?"
        elif token and NUMBER.fullmatch(token):
            pattern += "(" + NUMBER.pattern + ")"
            numbers.append(token)
        else:
            pattern += re.escape(token)
    match = re.fullmatch(pattern, actual, re.S)
    if match is None:
        return False
    return loose or all(_same_number(a, e) for a, e in zip(match.groups(), numbers, strict=True))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(f"[{BOX}]", line)]


class Expected:
    """One shown line: how it matches a printed one, within its table's context."""

    def __init__(self, line: str, loose: bool, seconds_column: int | None) -> None:
        self.line, self.loose = line, loose
        self.border = _is_border(line)
        first = line.strip()[:1]
        self.row = not self.border and first != "" and first in BOX and line.count(first) >= 2
        if self.row:
            cells = _cells(line)
            if seconds_column is not None and seconds_column < len(cells) and cells[seconds_column]:
                cells[seconds_column] = WILD  # the timing column of a table (sweep trials)
            if len(cells) > 2 and cells[1] == "seconds":
                cells[2:-1] = [WILD] * len(cells[2:-1])  # the timing row of a table (training summary)
            self.cells = [_mask(c) for c in cells]
        else:
            self.text = WILD if TIMED.search(line) else _mask(line)

    def matches(self, actual: str) -> bool:
        if self.border:
            return _is_border(actual) and len(re.findall(r"[┬┳╇┴┻╋┼]", actual)) == len(
                re.findall(r"[┬┳╇┴┻╋┼]", self.line))
        if self.row:
            cells = _cells(actual)
            return len(cells) == len(self.cells) and all(
                c == WILD or _text_matches(c, a, self.loose) for c, a in zip(self.cells, cells, strict=True))
        return _text_matches(self.text, actual, self.loose)


def _pattern(expected: list[str]) -> list[Expected | None]:
    """The shown lines as matchers; None for an elision (any number of lines)."""
    items: list[Expected | None] = []
    loose, seconds_column = False, None
    for line in expected:
        if _is_elision(line) or line.strip() == "^C":
            loose = loose or line.strip() == "^C"  # after Ctrl-C, the numbers depend on when it landed
            if items[-1:] != [None]:
                items.append(None)
            continue
        if line.lstrip().startswith("┃") and "seconds" in _cells(line):
            seconds_column = _cells(line).index("seconds")
        elif line.lstrip().startswith("└"):
            seconds_column = None
        items.append(Expected(line, loose, seconds_column))
    return items


def output_matches(expected: list[str], actual: list[str]) -> bool:
    pattern = _pattern(expected)
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(pattern):
                result = j == len(actual)
            elif pattern[i] is None:
                result = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
            else:
                item = pattern[i]
                result = j < len(actual) and item.matches(actual[j]) and match(i + 1, j + 1)
            memo[i, j] = result
        return memo[i, j]

    return match(0, 0)


# --- running -----------------------------------------------------------------------------------------


@dataclass
class Result:
    command: Command
    status: int
    output: list[str]
    seconds: float


class Session:
    """Runs the README's blocks in order, each once, in one temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blocks = readme_blocks()
        self.results: dict[int, list[Result]] = {}
        for name in ("configs", "datasets"):
            shutil.copytree(ROOT / name, folder / name)
        bin_dir = folder.parent / f"{folder.name}-bin"
        bin_dir.mkdir()
        for name, command in (("nnctl", f'"{sys.executable}" -m nnctl'), ("python", f'"{sys.executable}"')):
            (bin_dir / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
            (bin_dir / name).chmod(0o755)
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": python_path,
                    "NNCTL_CACHE_DIR": str(folder / ".cache"), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1",
                    "TERM": "dumb", "COLUMNS": "80", "LINES": "25"}
        for name in ("FORCE_COLOR", "NNCTL_DEBUG"):
            self.env.pop(name, None)

    def results_of(self, index: int) -> list[Result]:
        for k in range(index + 1):
            if k not in self.results:
                block = self.blocks[k]
                self.results[k] = [] if block.skip else [self._run(c) for c in block.commands]
        return self.results[index]

    def _run(self, command: Command) -> Result:
        started = time.perf_counter()
        process = subprocess.Popen(["bash", "-o", "pipefail", "-c", command.text], cwd=self.folder, env=self.env,
                                   text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        assert process.stdout is not None
        watchdog = threading.Timer(TIMEOUT, os.killpg, (process.pid, signal.SIGKILL))
        watchdog.start()
        shown = [line.strip() for line in command.expected]
        # Ctrl-C: once the line shown before `^C` is printed, interrupt the command as the reader did
        trigger = Expected(command.expected[shown.index("^C") - 1], False, None) if "^C" in shown[1:] else None
        output: list[str] = []
        try:
            for line in process.stdout:
                output.append(line.rstrip("\n"))
                if trigger is not None and trigger.matches(output[-1]):
                    os.killpg(process.pid, signal.SIGINT)
                    trigger = None
            status = process.wait()
        finally:
            watchdog.cancel()
        return Result(command, status, output, time.perf_counter() - started)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(tmp_path_factory.mktemp("readme"))


BLOCKS = readme_blocks()


def test_the_readme_has_examples() -> None:
    assert sum(len(b.commands) for b in BLOCKS if not b.skip) >= 30


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_block_runs_as_shown(index: int, session: Session) -> None:
    block = BLOCKS[index]
    if block.skip:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    problems = []
    for result in session.results_of(index):
        command = result.command
        shown_error = any(line.startswith("error:") for line in command.expected)
        echoed = re.search(r'echo "exit \$\?"\s*$', command.text) is not None
        if command.status is None and shown_error and not echoed:
            problems.append(f"README.md:{command.line}: `{command.text}` shows an error; say its exit status "
                            "with `# exit N` at the end of the $ line")
        expected_status = command.status if command.status is not None else 0
        printed = "\n".join(result.output)
        if result.status != expected_status:
            problems.append(f"README.md:{command.line}: `{command.text}` exited {result.status}, the README says "
                            f"{expected_status}; it printed:\n{printed}")
        elif command.expected and not output_matches(command.expected, result.output):
            shown = "\n".join(command.expected)
            problems.append(f"README.md:{command.line}: `{command.text}` printed:\n{printed}\n"
                            f"--- the README shows:\n{shown}")
    assert not problems, "\n\n".join(problems)
