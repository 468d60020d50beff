"""The `nnctl` command line: a thin Typer layer over the library.

`app` holds the application and maps the library's errors to exit codes and flags; `catalog` names the module
of each command, imported only when that command runs; `commands`, `extras` and the others are the commands
(each a typed signature, a docstring and a call into the library); `render` and `progress` are what they show.
Data goes to stdout, messages for humans to stderr. Only this package prints.

`nnctl --help` alone is drawn by `top_help` without importing Typer: so this package imports nothing when
imported, and `nnctl.cli.app` (the Typer application, as `from nnctl.cli import app` gives it) is imported on
first use.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (`nnctl.cli.app.main` for everything but the top-level help)."""
    from nnctl.cli.top_help import HELP_FLAGS, print_help

    if sys.argv[1:] in HELP_FLAGS:
        print_help()
        sys.exit(0)
    from nnctl.cli.app import main as run

    run()


class _Package(ModuleType):
    """This package, whose `app` attribute is the Typer application, imported when first read. The import system
    records each loaded submodule as an attribute of its package; for the submodule `app` that record is ignored,
    so the name keeps meaning the application (the module itself is `sys.modules["nnctl.cli.app"]`)."""

    @property
    def app(self) -> Any:
        from nnctl.cli.app import app

        return app

    @app.setter
    def app(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Package
