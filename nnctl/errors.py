"""Every failure nnctl reports is an `NnctlError`; its `exit_code` is what the CLI exits with.

A message may name an argument of the library call that failed as a `{name}` placeholder, listed in
`arguments`: `str(error)` names the Python argument (`require`), and `render(names)` whatever the caller calls
it (the CLI: its flag, `--fail-under`). So the library never speaks of flags, and the CLI never rewrites text.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType


class NnctlError(Exception):
    """Base of all nnctl errors. The message is one actionable line for the user."""

    exit_code = 1

    def __init__(self, message: str, *, arguments: Sequence[str] = ()) -> None:
        self.template, self.arguments = message, tuple(arguments)
        super().__init__(self.render({}))

    def render(self, names: Mapping[str, str]) -> str:
        """The message, each `{argument}` named as `names` says (by default: the argument's own name)."""
        text = self.template
        for argument in self.arguments:
            text = text.replace("{" + argument + "}", names.get(argument, argument))
        return text


class InputError(NnctlError):
    """Bad input from the user: a config, CSV, flag or model file (exit 2)."""

    exit_code = 2


class ConfigError(InputError):
    """The YAML config (or an override of one of its keys) is unreadable or invalid."""


class OverrideError(ConfigError):
    """An override (`KEY=VALUE`) is malformed or gives a key a value the config rejects: `subject` is the
    assignment or dotted key, `problem` what is wrong with it."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject, self.problem = subject, problem
        super().__init__(f"{{overrides}} {subject}: {problem}", arguments=("overrides",))

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # travels back from a Dask worker intact
        return type(self), (self.subject, self.problem)


class DataError(InputError):
    """A CSV is unreadable or its columns do not fit the config or the model."""


class ModelFileError(InputError):
    """A model file is missing, corrupt, or not an nnctl model."""


class MissingExtraError(InputError):
    """A command needs an optional package that is not installed (exit 2); the message names the extra."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional package, or raise MissingExtraError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtraError(f"{feature} needs the '{package}' package, which is not installed; install it with: "
                           f"pip install 'nnctl[{extra}]'") from None


class TrainingError(NnctlError):
    """The work itself failed, e.g. the loss diverged to NaN (exit 1)."""

    exit_code = 1


class OutputError(NnctlError):
    """A result could not be written (disk full, permissions); whatever was there is left as it was (exit 1)."""

    exit_code = 1


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped training; `checkpoint` is the resumable file written, if any (exit 130)."""

    def __init__(self, message: str, checkpoint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.checkpoint = message, checkpoint
