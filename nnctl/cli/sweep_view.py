"""What `nnctl sweep` shows while it runs: a live table of the trials on a terminal (one line per finished trial
otherwise), then the final table, the failed trials' errors and a line naming the best trial.

`SweepView` is a `SweepCallback`: the sweep calls it, it prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from nnctl.cli.render import fmt, stderr
from nnctl.sweep.results import SweepCallback, Trial

if TYPE_CHECKING:
    from nnctl.sweep.plan import Sweep


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
