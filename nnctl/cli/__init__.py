"""The `nnctl` command line: a thin Typer layer over the library.

`app` holds the application and maps the library's errors to exit codes and flags; `commands` and `extras`
are the commands (each a typed signature, a docstring and a call into the library); `render` and `progress`
are what they show. Data goes to stdout, messages for humans to stderr. Only this package prints.
"""

from nnctl.cli import commands, doctor, explain, extras, importance, lr_find, serve  # noqa: F401 - registers the commands, in the order --help lists them
from nnctl.cli.app import app, main

__all__ = ["app", "main"]
