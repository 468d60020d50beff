"""The models a server answers with, each swapped whole when its file is replaced.

A `Slot` holds one model file's `Served` model. A request reads `slot.current` once and uses that object to the
end, so it is answered by one model, never a mix. The `Watcher` thread polls the files (modification time, size,
inode) and, when one changed, loads the new model completely before it assigns `slot.current` (one reference
assignment: atomic under the GIL). A file that does not load is reported and the old model keeps serving.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nnctl.errors import InputError, NnctlError
from nnctl.model.model import Model, load_model

Stamp = tuple[int, int, int]  # (mtime_ns, size, inode): a rename over the file changes the inode at least


@dataclass(frozen=True)
class Served:
    """A loaded model, its file, and when it was loaded (seconds since the epoch)."""

    name: str
    path: Path
    model: Model
    loaded_at: float


def stamp(path: Path) -> Stamp | None:
    """What tells a file's versions apart; None when it is missing (for now: a rename is under way)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class Slot:
    """One served model file; `current` is the model answering now."""

    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.path = path
        self.seen = stamp(path)
        self.current = Served(self.name, path, load_model(path), time.time())
        self.reloads = 0  # successful swaps
        self.failures = 0  # replacements that did not load

    def refresh(self) -> str | None:
        """Load and swap in the file's new version, if it changed since the last look: a line saying what happened
        (the swap, or why the new file was not taken), or None when nothing changed."""
        now = stamp(self.path)
        if now is None or now == self.seen:
            return None
        self.seen = now  # a file that fails is tried again only when it changes again
        try:
            model = load_model(self.path)
        except NnctlError as exc:
            self.failures += 1
            loaded = time.strftime("%H:%M:%S", time.localtime(self.current.loaded_at))
            return f"warning: {exc}; still serving the model loaded at {loaded}"
        self.current = Served(self.name, self.path, model, time.time())
        self.reloads += 1
        return f"reloaded {self.name} from {self.path}"


def open_slots(paths: Sequence[Path]) -> dict[str, Slot]:
    """A slot per model file, by file stem; two files with one stem are an InputError."""
    slots: dict[str, Slot] = {}
    for path in paths:
        if path.stem in slots:
            raise InputError(f"{path}: another model is also named '{path.stem}' ({slots[path.stem].path}); models "
                             "are served by file stem, so rename one")
        slots[path.stem] = Slot(path)
    return slots


class Watcher:
    """A daemon thread that refreshes `slots` every `interval` seconds and tells `report` what changed."""

    def __init__(self, slots: dict[str, Slot], report: Callable[[str], None], interval: float = 0.5) -> None:
        self.slots, self.report, self.interval = slots, report, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nnctl-serve-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for slot in self.slots.values():
                try:
                    message = slot.refresh()
                except Exception as exc:  # never let the watcher die: the old model keeps serving
                    message = f"warning: {slot.path}: cannot reload ({type(exc).__name__}: {exc})"
                if message:
                    self.report(message)
