"""The `nnctl` command line: a thin Typer layer over the library.

`app` holds the application and maps the library's errors to exit codes and flags; `catalog` names the module
of each command, imported only when that command runs; `commands`, `extras` and the others are the commands
(each a typed signature, a docstring and a call into the library); `render` and `progress` are what they show.
Data goes to stdout, messages for humans to stderr. Only this package prints.
"""

from nnctl.cli.app import app, main

__all__ = ["app", "main"]
