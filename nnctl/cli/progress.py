"""What the CLI shows while a command runs: training progress (a live bar on a terminal, a few plain lines
otherwise, or one JSON object per epoch for machines) and a sweep's live table of trials.

`Reporter` is a training `Callback` and `SweepView` a `SweepCallback`: the library calls them, they print.
Both base classes are plain Python, so importing this module costs no NumPy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from nnctl.cli.render import fmt, silence, stderr
from nnctl.sweep.results import SweepCallback, Trial
from nnctl.train.events import Callback, EpochStats, StartInfo

if TYPE_CHECKING:
    from nnctl.sweep.plan import Sweep


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


class SweepView(SweepCallback):
    """`nnctl sweep` on stderr: a live table of the trials on a terminal (one line per finished trial
    otherwise), then the final table, the failed trials' errors and a line naming the best trial."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live: Any = None
        self.sweep: Sweep | None = None
        self.trials: list[Trial] = []
        self.best: Trial | None = None

    def on_warning(self, message: str) -> None:
        if not self.quiet:
            stderr.print(f"[yellow]warning:[/] {escape(message)}")

    def on_start(self, sweep: Sweep, trials: Sequence[Trial], cluster: str) -> None:
        self.sweep, self.trials = sweep, list(trials)
        if self.quiet:
            return
        direction = "higher" if sweep.mode == "max" else "lower"
        plural = "" if len(trials) == 1 else "s"
        stderr.print(f"sweep {escape(sweep.source)}: {len(trials)} trial{plural} ({sweep.method} over "
                     f"{escape(', '.join(sweep.keys))}) on {escape(cluster)}; best = {direction} {sweep.metric}")
        if stderr.is_terminal:
            from rich.live import Live

            self.live = Live(self.table(), console=stderr, refresh_per_second=4, transient=True)
            self.live.start()

    def on_trial(self, trial: Trial, best: Trial | None) -> None:
        self.best = best
        if self.quiet or self.sweep is None:
            return
        if self.live is not None:
            self.live.update(self.table())
        elif trial.status in ("done", "failed"):
            values = "  ".join(f"{k}={_value(v)}" for k, v in trial.values.items())
            outcome = (f"{self.sweep.metric} {fmt(trial.value(self.sweep.metric))}" if trial.status == "done"
                       else f"error: {trial.error}")
            seconds = f"  {trial.seconds:.2f} s" if trial.seconds is not None else ""
            mark = "  (best so far)" if best is trial else ""
            stderr.print(f"trial {trial.number}/{len(self.trials)} {trial.status}  {values}  {outcome}{seconds}{mark}",
                         markup=False)

    def table(self) -> Table:
        sweep = self.sweep
        assert sweep is not None  # on_start has run
        done = sum(t.status in ("done", "failed") for t in self.trials)
        table = Table(title=f"trials ({done} of {len(self.trials)} finished)", title_justify="left")
        table.add_column("trial", justify="right")
        for key in _short_keys(sweep.keys):
            table.add_column(escape(key), justify="right")
        table.add_column("status")
        table.add_column(sweep.metric, justify="right")
        table.add_column("seconds", justify="right")
        colours = {"done": "green", "failed": "red", "running": "cyan", "cancelled": "yellow", "queued": "dim"}
        for t in self.trials:
            status = t.status
            if status == "running" and t.epochs:
                status = f"running {t.epoch}/{t.epochs}"
            elif t is self.best:
                status = "done, best"
            table.add_row(str(t.number), *(escape(_value(v)) for v in t.values.values()),
                          f"[{colours.get(t.status, 'default')}]{status}[/]", fmt(t.value(sweep.metric)),
                          "" if t.seconds is None else f"{t.seconds:.2f}",
                          style="bold" if t is self.best else None)
        return table

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, output: str | None = None, seconds: float | None = None, cluster: str = "") -> None:
        """The final table and errors; with `output`, the closing line naming the best trial and its model."""
        self.close()
        if self.quiet or self.sweep is None:
            return
        stderr.print(self.table())
        for t in self.trials:
            if t.status == "failed":
                stderr.print(f"[red]trial {t.number} failed:[/] {escape(t.error or '')}")
        if output is None:
            return
        counts = {s: sum(t.status == s for t in self.trials) for s in ("done", "failed")}
        tally = f"{counts['done']} done" + (f", {counts['failed']} failed" if counts["failed"] else "")
        where = f" in {seconds:.1f} s" if seconds is not None else ""
        where += f" on {cluster}" if cluster else ""
        results = f"results: {output}/results.csv, results.json ({tally}{where})"
        if self.best is None:
            stderr.print(f"no trial finished; {escape(results)}")
            return
        values = ", ".join(f"{k}={_value(v)}" for k, v in self.best.values.items())
        stderr.print(f"[bold]best: trial {self.best.number}[/] ({escape(values)}): {self.sweep.metric} "
                     f"{fmt(self.best.value(self.sweep.metric))}; model saved to {escape(output)}/best.npz; "
                     f"{escape(results)}")


def _short_keys(keys: Sequence[str]) -> list[str]:
    """Column headers: the keys' shortest distinct endings (`learning_rate`, `units`); the sweep's first line
    names them in full."""
    parts = [key.split(".") for key in keys]
    for n in range(1, max(map(len, parts), default=1) + 1):
        short = [".".join(p[-n:]) for p in parts]
        if len(set(short)) == len(short):
            return short
    return list(keys)


def _value(value: Any) -> str:
    """A swept value as the sweep file would write it (`--set` syntax)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, separators=(", ", ": "))
