"""What the CLI shows while training runs: a live line on a terminal, a few plain lines otherwise, or one JSON
object per epoch for machines (`--log-format jsonl`).

`Reporter` is a training `Callback`: the library calls it, it prints. `Callback` is plain Python, so importing
this module costs no NumPy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.text import Text

from nnctl.cli.console import silence
from nnctl.cli.render import fmt, stderr
from nnctl.training.events import Callback, EpochStats, StartInfo

RESERVED = 3  # columns the live line leaves free: the terminal echoes ^C there, and must not wrap the line
BAR_WIDTH = (6, 20)  # the bar's narrowest and widest; it takes the room the numbers leave
_GAP = "  "


def epoch_text(stats: EpochStats) -> str:
    parts = [f"loss {stats.train_loss:.4f}"]
    parts += [f"val_{k} {fmt(v)}" for k, v in stats.validation.items() if k in ("loss", "accuracy", "r2")]
    parts.append(f"lr {stats.learning_rate:.3g}")
    return "  ".join(parts)


def clock(seconds: float) -> str:
    """0:07, 12:34, 1:02:03."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveLine:
    """The live progress line, laid out for the terminal's width each time it is drawn.

    Always `epoch N/TOTAL`, the training loss and the watched metric (the early-stopping or plateau monitor,
    else val_loss); then, as room allows and in this order of importance, the time (`eta` while training,
    `elapsed` once done), val_loss, val_accuracy or val_r2, the learning rate, and a bar in whatever room is
    left. What does not fit is left out whole, never cut short."""

    def __init__(self, total: int, done: int, monitor: str | None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.total, self.first, self.monitor, self.now = total, done, monitor, now
        self.started = now()
        self.state: tuple[int, dict[str, float]] = (done, {})  # epoch and history row, replaced in one step
        self.finished_at: float | None = None

    def update(self, stats: EpochStats) -> None:
        self.state = (stats.epoch, stats.record())

    def finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = self.now()

    def _time(self, epoch: int) -> str:
        if self.finished_at is not None:
            return f"elapsed {clock(self.finished_at - self.started)}"
        if epoch <= self.first:
            return "eta -:--"
        per_epoch = (self.now() - self.started) / (epoch - self.first)
        return f"eta {clock(per_epoch * (self.total - epoch))}"

    def _metrics(self, row: dict[str, float]) -> tuple[list[str], list[str]]:
        """The watched metric (essential), and the others worth showing, best first."""
        watched = self.monitor if self.monitor in row else ("val_loss" if "val_loss" in row else None)
        shown = [f"loss {fmt(row['train_loss'])}"] if "train_loss" in row else []
        if watched is not None and watched != "train_loss":
            shown.append(f"{watched} {fmt(row[watched])}")
        extras = [f"{k} {fmt(row[k])}" for k in ("val_loss", "val_accuracy", "val_r2") if k in row and k != watched]
        if "learning_rate" in row:
            extras.append(f"lr {row['learning_rate']:.3g}")
        return shown, extras

    def render(self, width: int) -> Text:
        """The line in at most `width` columns."""
        epoch, row = self.state
        counter = f"epoch {epoch:>{len(str(self.total))}}/{self.total}"
        essential, extras = self._metrics(row)
        while essential and len(_GAP.join([counter, *essential])) > width:
            essential.pop()  # a very narrow terminal: the watched metric goes first, then the loss
        used = len(_GAP.join([counter, *essential]))
        when = self._time(epoch)
        fits: list[bool] = []
        for part in [when, *extras]:  # in order of importance: the first that does not fit ends the line
            fits.append((not fits or fits[-1]) and used + len(_GAP) + len(part) <= width)
            used += (len(_GAP) + len(part)) * fits[-1]
        bar = min(BAR_WIDTH[1], width - used - len(_GAP))
        line = Text(overflow="crop", no_wrap=True).append(counter, style="green")
        if bar >= BAR_WIDTH[0]:
            filled = round(bar * (epoch / self.total if self.total else 1))
            line.append(_GAP).append("━" * filled, style="magenta").append("━" * (bar - filled), style="grey23")
        if fits[0]:
            line.append(_GAP).append(when, style="cyan")
        for part in essential + [p for p, fit in zip(extras, fits[1:], strict=True) if fit]:
            line.append(_GAP).append(part)
        line.truncate(width)
        return line

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.render(max(1, options.max_width - RESERVED))


class Reporter(Callback):
    """Training progress: a live line on a terminal, a few plain lines otherwise, or (`jsonl`) one JSON
    object per epoch on stdout for machines. `monitor`: the metric the run watches (early stopping, plateau)."""

    def __init__(self, quiet: bool, log_format: str = "text", monitor: str | None = None) -> None:
        self.quiet = quiet
        self.jsonl = log_format == "jsonl"
        self.live = stderr.is_terminal and not quiet and not self.jsonl
        self.monitor = monitor
        self.line: LiveLine | None = None
        self.display: Any = None
        self.every = 1

    def _say(self, text: str, *, markup: bool = True) -> None:
        """A message on stderr, wrapped at word boundaries on a terminal (one line in a log); if nobody is reading
        any more (`2>&1 | head`), training goes on quietly."""
        try:
            stderr.print(text, markup=markup, soft_wrap=not stderr.is_terminal)
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
            from rich.live import Live

            self.line = LiveLine(epochs, info.epochs_done, self.monitor)
            self.display = Live(self.line, console=stderr, refresh_per_second=4, transient=False)
            self.display.start()

    def on_epoch(self, stats: EpochStats) -> None:
        if self.jsonl:
            try:
                print(json.dumps({"epochs": stats.epochs, **stats.record()}), flush=True)
            except BrokenPipeError:  # the reader of the log left; the model is still worth finishing
                silence(1)
                self.jsonl, self.quiet = False, True
            return
        if self.line is not None:
            self.line.update(stats)
        elif not self.quiet and (stats.epoch % self.every == 0 or stats.epoch in (1, stats.epochs)):
            self._say(f"epoch {stats.epoch}/{stats.epochs}  {epoch_text(stats)}")

    def on_checkpoint(self, path: str, epoch: int) -> None:
        if not self.quiet:
            self._say(f"checkpoint after epoch {epoch}: {escape(path)}")

    def close(self) -> None:
        """Draw the live line a last time (with the time it took) and leave it on the screen."""
        if self.display is not None and self.line is not None:
            self.line.finish()
            self.display.stop()
            self.display = None
