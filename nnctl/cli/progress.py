"""What the CLI shows while training runs: a live bar on a terminal, a few plain lines otherwise, or one JSON
object per epoch for machines (`--log-format jsonl`).

`Reporter` is a training `Callback`: the library calls it, it prints. `Callback` is plain Python, so importing
this module costs no NumPy.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.markup import escape

from nnctl.cli.render import fmt, silence, stderr
from nnctl.training.events import Callback, EpochStats, StartInfo


def epoch_text(stats: EpochStats) -> str:
    parts = [f"loss {stats.train_loss:.4f}"]
    parts += [f"val_{k} {fmt(v)}" for k, v in stats.validation.items() if k in ("loss", "accuracy", "r2")]
    parts.append(f"lr {stats.learning_rate:.3g}")
    return "  ".join(parts)


class Reporter(Callback):
    """Training progress: a live bar on a terminal, a few plain lines otherwise, or (`jsonl`) one JSON
    object per epoch on stdout for machines."""

    def __init__(self, quiet: bool, log_format: str = "text") -> None:
        self.quiet = quiet
        self.jsonl = log_format == "jsonl"
        self.live = stderr.is_terminal and not quiet and not self.jsonl
        self.progress: Any = None
        self.task: Any = None
        self.every = 1

    def _say(self, text: str, *, markup: bool = True) -> None:
        """A progress line on stderr; if nobody is reading any more (`2>&1 | head`), training goes on quietly."""
        try:
            stderr.print(text, markup=markup)
        except BrokenPipeError:
            silence(2)
            self.quiet = True

    def on_warning(self, message: str) -> None:
        self._say(f"[yellow]warning:[/] {escape(message)}")

    def on_status(self, message: str) -> None:
        if not self.quiet and not self.jsonl:
            self._say(f"[dim]{escape(message)}[/]")

    def on_start(self, info: StartInfo) -> None:
        epochs = info.epochs
        self.every = max(1, math.ceil(epochs / 10))
        if self.quiet:
            return
        layers = " → ".join(str(s) for s in info.sizes)
        done = f", resuming after epoch {info.epochs_done}" if info.epochs_done else ""
        if info.init_from:
            done = f", starting from {escape(info.init_from)}'s weights"
        plural = "" if epochs == 1 else "s"
        self._say(f"training {info.task} network {layers} ({info.parameters:,} parameters) on "
                  f"{info.rows_train} rows, validating on {info.rows_validation}, {epochs} epoch{plural}{done}")
        if self.live and epochs:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"), console=stderr, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=epochs, completed=info.epochs_done, metrics="")

    def on_epoch(self, stats: EpochStats) -> None:
        if self.jsonl:
            try:
                print(json.dumps({"epochs": stats.epochs, **stats.record()}), flush=True)
            except BrokenPipeError:  # the reader of the log left; the model is still worth finishing
                silence(1)
                self.jsonl, self.quiet = False, True
            return
        text = epoch_text(stats)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, metrics=text)
        elif not self.quiet and (stats.epoch % self.every == 0 or stats.epoch in (1, stats.epochs)):
            self._say(f"epoch {stats.epoch}/{stats.epochs}  {text}")

    def on_checkpoint(self, path: str, epoch: int) -> None:
        if not self.quiet:
            self._say(f"checkpoint after epoch {epoch}: {escape(path)}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
