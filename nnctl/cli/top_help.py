"""`nnctl --help` without Typer: the same panels, drawn with rich alone.

Typer's help for the command list costs its whole import (about 35 ms: Typer, its click and `inspect`) before a
line is drawn, which made `nnctl --help` 1.2x a bare `import numpy` (issue 18's goal: at most 1.0x). The top-level
help needs none of it: its text is the catalog's (`nnctl.cli.catalog`). This module draws it as
`typer.rich_utils.rich_format_help` does (the same console settings, highlighters, tables and panels), and
tests/cli/test_top_help.py checks the bytes against Typer's own output at several widths, with and without
colour. Any other command line goes through Typer.
"""

from __future__ import annotations

from os import getenv
from typing import Any, ClassVar

from nnctl.cli.catalog import COMMANDS, DEBUG_HELP, ROOT_HELP, VERSION_HELP

HELP_FLAGS = (["--help"], ["-h"])
USAGE = "Usage: nnctl [OPTIONS] COMMAND [ARGS]..."
# (long flag, short flag, help) as Typer lists the root's options: ours, its completion options, then help
OPTIONS = [("--version", "", VERSION_HELP), ("--debug", "", DEBUG_HELP),
           ("--install-completion", "", "Install completion for the current shell."),
           ("--show-completion", "", "Show completion for the current shell, to copy it or customize the "
                                     "installation."),
           ("--help", "-h", "Show this message and exit.")]


def _highlighters() -> tuple[Any, Any, Any]:
    """Typer's option, negative-option and types highlighters (typer.rich_utils)."""
    from rich.highlighter import RegexHighlighter

    class Option(RegexHighlighter):
        highlights: ClassVar[list[str]] = [
            r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])", r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
            r"(?P<types>\<[^\>]+\>)", r"(?P<usage>Usage: )"]

    class Negative(RegexHighlighter):
        highlights: ClassVar[list[str]] = [
            r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
            r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])"]

    class Types(RegexHighlighter):
        highlights: ClassVar[list[str]] = [
            r"^(?P<types_sep>(\[|<))", r"(?P<types_sep>\|)", r"(?P<types_sep>(\]|>))(\.\.\.)?$"]

    return Option(), Negative(), Types()


def print_help() -> None:
    """Print the top-level help to stdout, as Typer would."""
    from rich.align import Align
    from rich.columns import Columns
    from rich.console import Console, group
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    from rich.theme import Theme

    option, negative, types = _highlighters()
    force = True if getenv("GITHUB_ACTIONS") or getenv("FORCE_COLOR") or getenv("PY_COLORS") else None
    width = getenv("TERMINAL_WIDTH")
    console = Console(theme=Theme({"option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
                                   "negative_switch": "bold red", "types": "bold yellow", "types_sep": "dim",
                                   "usage": "yellow"}),
                      highlighter=option, color_system="auto",
                      force_terminal=False if getenv("_TYPER_FORCE_DISABLE_TERMINAL") else force,
                      width=int(width) if width else None)
    console.print(Padding(option(USAGE), 1), style="bold")

    @group()
    def text(help_text: str) -> Any:
        yield option(Text.from_markup(help_text, style=""))

    console.print(Padding(Align(text(ROOT_HELP), pad=False), (0, 1, 1, 1)))
    options = Table(highlight=True, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                    border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    for long, short, help_text in OPTIONS:
        options.add_row(option(long), option(short), negative(""), negative(""),
                        types(Text("", style="bold yellow", overflow="fold")),
                        Columns([option(Text.from_markup(help_text, style=""))]))
    console.print(Panel(options, border_style="dim", title="Options", title_align="left"))
    commands = Table(highlight=False, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                     border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    commands.add_column(style="bold cyan", no_wrap=True, width=max(len(name) for name in COMMANDS))
    commands.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, entry in COMMANDS.items():
        commands.add_row(Text(name), option(Text.from_markup(entry.summary, style="")))
    console.print(Panel(commands, border_style="dim", title="Commands", title_align="left"))
    print()  # click then echoes the (empty) help string the rich panels replaced, with its newline
