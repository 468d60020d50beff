"""`--help` of nnctl and of every command: a flag shows no value placeholder (`--quiet <bool>` suggested it takes
one), while an option that takes a value keeps its own."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from nnctl.cli import app

runner = CliRunner()
ROOT = typer.main.get_command(app)
COMMANDS: list[str] = sorted(ROOT.commands)  # type: ignore[attr-defined]


def _help(*path: str) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return result.output


def _flags(command: typer.core.TyperCommand | typer.core.TyperGroup) -> list[tuple[str, str]]:
    """(long option, first word of its help) of each flag; --help included."""
    ctx = typer.Context(command)
    return [(next(o for o in p.opts if o.startswith("--")), (p.help or "").split()[0])  # type: ignore[attr-defined]
            for p in command.get_params(ctx) if getattr(p, "is_flag", False)]


@pytest.mark.parametrize("path", [[], *([c] for c in COMMANDS)], ids=lambda p: " ".join(["nnctl", *p]))
def test_flags_show_no_value_placeholder(path):
    shown = _help(*path)
    assert not re.search(r"<bool(ean)?>|BOOLEAN|\[bool\]", shown, re.IGNORECASE), shown
    command = ROOT if not path else ROOT.commands[path[0]]  # type: ignore[attr-defined]
    flags = _flags(command)
    assert ("--help", "Show") in flags
    for flag, first_word in flags:
        # the row: the flag, maybe its short form, then straight to its help text
        assert re.search(rf"{re.escape(flag)}\s+(-\w\s+)?{re.escape(first_word)}", shown), (flag, shown)


def test_options_that_take_a_value_keep_their_placeholder():
    shown = _help("train")
    assert re.search(r"--epochs\s+<int>", shown) and re.search(r"--set\s+KEY=VALUE", shown)
    assert re.search(r"--output\s+-o\s+<path>", shown)
    assert re.search(r"--format\s+<csv\|jsonl>", _help("predict"))


def test_nnctl_alone_shows_the_help_and_exits_2():
    """Typer's `no_args_is_help`: the usage and the commands, exit 2 (no command given is a usage mistake)."""
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "Usage: nnctl" in result.output and "train" in result.output
