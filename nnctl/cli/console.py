"""The consoles the CLI prints on, as the modules every command imports see them: `rich` (a third of NumPy's
import time) is imported when something is printed, so a `predict` that writes only its CSV never imports it.
The consoles themselves are `nnctl.cli.render.stderr` and `stdout`.
"""

from __future__ import annotations

from typing import Any


def escape(text: str) -> str:
    """rich's `escape`: `text` shown as it is, never read as markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def silence(fd: int) -> None:
    """Point a closed pipe's file descriptor at /dev/null, so later writes (and Python's exit) do not fail."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


class _Console:
    """Stands for one of `nnctl.cli.render`'s consoles, looked up (and rich imported) on each use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        from nnctl.cli import render

        return getattr(getattr(render, self._name), attr)


stderr: Any = _Console("stderr")


def warn(message: str) -> None:
    """One `warning:` line on stderr (the library's warnings, as every command shows them)."""
    stderr.print(f"[yellow]warning:[/] {escape(message)}")
