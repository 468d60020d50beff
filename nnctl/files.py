"""Files written so that nothing is lost: a temporary file beside the target, fsynced, then renamed over it.

A failure at any point leaves the previous file byte for byte and no temporary file behind; `signals_held` keeps
a Ctrl-C from cutting a write that must finish (a checkpoint, the results of a sweep).
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from nnctl.errors import InputError, NnctlError, OutputError


@contextmanager
def replace_on_success(path: Path, mode: str = "wb", *, what: str = "the file",
                       cannot_open: type[NnctlError] = OutputError) -> Iterator[IO[Any]]:
    """A handle to write `path` through; the target is replaced only when the body finishes.

    Not being able to start (the folder is missing or read-only) raises `cannot_open`; a failure while
    writing (a full disk, say) raises OutputError. Both name the file and say it was left as it was."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise cannot_open(f"{path}: cannot write {what} ({exc.strerror})") from None
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else "utf-8", newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise OutputError(f"{path}: cannot write {what} ({exc.strerror}); {kept}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refuse_to_replace(path: Path, is_ours: Callable[[Path], bool], kind: str, hint: str = "",
                      arguments: tuple[str, ...] = ()) -> None:
    """InputError when `path` exists and is not `kind` (`is_ours` says): a mistyped output path must never destroy
    a CSV, or the model itself. `hint` may name `arguments` (see `NnctlError`)."""
    if path.exists() and not is_ours(path):
        raise InputError(f"{path}: exists and is not {kind}; not overwriting it" + (f" ({hint})" if hint else ""),
                         arguments=arguments)


@contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT and SIGTERM until the block is done (where the platform allows it)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
