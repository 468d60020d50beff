"""What the CLI shows: training progress, summaries and tables (rich), and JSON lines for machines.

Humans' output goes to stderr (progress, warnings, summaries) unless it is the command's result (`check`,
`inspect`, `evaluate` tables go to stdout). Colour and live display happen only on a terminal; rich honours
NO_COLOR.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from nnctl.model import Model
    from nnctl.training import EpochStats

class _Console(Console):
    """rich exits with status 1 when its reader goes away; nnctl decides what a closed pipe means instead
    (predict and inspect end quietly, training carries on without progress)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


stderr = _Console(stderr=True, highlight=False, soft_wrap=True)
stdout = _Console(highlight=False, soft_wrap=True)

_SPARKS = "▁▂▃▄▅▆▇█"


def fmt(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """The values' shape in one line of block characters (resampled to at most `width`)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(_SPARKS[round((v - low) / span * (len(_SPARKS) - 1))] if math.isfinite(v) else " "
                   for v in values)


def epoch_text(stats: EpochStats) -> str:
    parts = [f"loss {stats.train_loss:.4f}"]
    parts += [f"val_{k} {fmt(v)}" for k, v in stats.validation.items() if k in ("loss", "accuracy", "r2")]
    parts.append(f"lr {stats.learning_rate:.3g}")
    return "  ".join(parts)


class Reporter:
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

    def on_start(self, info: dict[str, Any]) -> None:
        epochs = info["epochs"]
        self.every = max(1, math.ceil(epochs / 10))
        if self.quiet:
            return
        layers = " → ".join(str(s) for s in info["sizes"])
        done = f", resuming after epoch {info['epochs_done']}" if info["epochs_done"] else ""
        if info.get("init_from"):
            done = f", starting from {escape(info['init_from'])}'s weights"
        plural = "" if epochs == 1 else "s"
        self._say(f"training {info['task']} network {layers} ({info['parameters']:,} parameters) on "
                  f"{info['rows_train']} rows, validating on {info['rows_validation']}, {epochs} epoch{plural}{done}")
        if self.live and epochs:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"), console=stderr, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=epochs, completed=info["epochs_done"], metrics="")

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


def silence(fd: int) -> None:
    """Point a closed pipe's file descriptor at /dev/null, so later writes (and Python's exit) do not fail."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


def summary_table(summary: dict[str, Any]) -> None:
    table = Table(title="training summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if value is None or (key == "stopped_early" and not value):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        table.add_row(key, fmt(value) if isinstance(value, float) and key != "seconds" else str(value))
    stderr.print(table)


def scores_table(scores: dict[str, Any]) -> None:
    confusion = scores.pop("confusion_matrix", None)
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scores.items():
        table.add_row(key, str(value) if isinstance(value, int) else fmt(value))
    stdout.print(table)
    if confusion is not None:
        stdout.print(confusion_table(confusion["labels"], confusion["counts"]))


def confusion_table(labels: list[Any], counts: list[list[int]]) -> Table:
    table = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for label in labels:
        table.add_column(escape(str(label)), justify="right")
    for i, (label, row) in enumerate(zip(labels, counts, strict=True)):
        cells = [f"[bold]{c}[/]" if i == j else str(c) for j, c in enumerate(row)]  # the diagonal is right
        table.add_row(escape(str(label)), *cells)
    return table


def network_table(title: str, sizes: list[int], activations: list[str], inits: list[str],
                  dropout: list[float]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("layer", "shape (W)", "activation", "init", "dropout", "parameters"):
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for i, (act, init, rate) in enumerate(zip(activations, inits, dropout, strict=True)):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        table.add_row(str(i), f"{fan_in} × {fan_out}", act, init, f"{rate:g}" if rate else "-",
                      f"{fan_in * fan_out + fan_out:,}")
    total = sum(a * b + b for a, b in pairwise(sizes))
    table.add_row("total", "", "", "", "", f"{total:,}", style="bold")
    return table


def show_model(path: str, model: Model, meta: dict[str, Any]) -> None:
    """`nnctl inspect`: architecture, preprocessing, classes, the training config and history."""
    net = model.network
    stdout.print(f"[bold]{escape(path)}[/]: {model.task}, loss {model.loss}, {net.dtype.name}, "
                 f"nnctl {meta['nnctl_version']}")
    inits = [layer.get("init", "-") for layer in meta["config"].get("model", {}).get("layers", [])]
    stdout.print(network_table("network", net.sizes, net.activation_names,
                               inits if len(inits) == len(net.acts) else ["-"] * len(net.acts), net.dropout))
    stdout.print(_features_table(model))
    if model.task == "classification":
        stdout.print(f"classes: {', '.join(map(str, model.target.classes))}", markup=False)
    elif model.target.scale != 1 or model.target.center != 0:
        stdout.print(f"target {model.target.name}: standardised for the loss (mean {model.target.center:.4g}, "
                     f"std {model.target.scale:.4g})", markup=False)
    _show_history(model)
    import yaml

    stdout.print("[bold]trained with[/] (resolved config):")
    stdout.print(yaml.safe_dump(meta["config"], sort_keys=False).rstrip(), markup=False)


def _features_table(model: Model) -> Table:
    pre = model.preprocessor
    table = Table(title=f"features (scale: {pre.scale}, missing: {pre.missing}); input = (x - center) / scale",
                  title_justify="left")
    for column in ("column", "kind", "center", "scale", "missing →", "categories"):
        table.add_column(column, justify="right" if column in ("center", "scale", "missing →") else "left")
    for spec in pre.features:
        if spec.kind == "numeric":
            table.add_row(escape(spec.name), spec.kind, f"{spec.center:.4g}", f"{spec.scale:.4g}", f"{spec.fill:.4g}",
                          "")
        else:
            shown = ", ".join(spec.categories[:6]) + (f", … ({len(spec.categories)})" if len(spec.categories) > 6
                                                      else "")
            table.add_row(escape(spec.name), spec.kind, "", "", "", escape(shown))
    return table


def _show_history(model: Model, rows: int = 8) -> None:
    history = model.history
    if not history:
        stdout.print("history: not trained (0 epochs)")
        return
    keys = [k for k in history[0] if k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_f1", "val_r2",
                                             "val_rmse", "learning_rate")]
    step = max(1, math.ceil(len(history) / rows))
    best = model.state.get("restored_best_epoch")
    epochs = sorted({*range(1, len(history) + 1, step), len(history), *([best] if best else [])})
    shown = [history[e - 1] for e in epochs]
    table = Table(title=f"history ({len(history)} epochs{', best in bold' if best else ''})", title_justify="left")
    for key in keys:
        table.add_column(key, justify="right")
    for row in shown:
        style = "bold" if row["epoch"] == best else None
        table.add_row(*(str(row[k]) if k == "epoch" else f"{row[k]:.4g}" if k == "learning_rate" else fmt(row[k])
                        for k in keys), style=style)
    stdout.print(table)
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            values = [row[key] for row in history]
            # a log scale shows the later epochs' progress, not just the first epoch's drop
            scaled = [math.log10(v) if v > 0 else math.nan for v in values]
            stdout.print(f"{key:<10} {sparkline(scaled)}  {fmt(values[0])} → {fmt(values[-1])} (log scale)",
                         markup=False)
    if best is not None:
        stdout.print(f"weights from the best epoch, {best}: " + "  ".join(
            f"{k} {fmt(v)}" for k, v in history[best - 1].items() if k.startswith("val_")), markup=False)


class SweepView:
    """`nnctl sweep` on stderr: a live table of the trials on a terminal (one line per finished trial
    otherwise), then the final table, the failed trials' errors and a line naming the best trial."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live: Any = None
        self.sweep: Any = None
        self.trials: list[Any] = []
        self.best: Any = None

    def on_warning(self, message: str) -> None:
        if not self.quiet:
            stderr.print(f"[yellow]warning:[/] {escape(message)}")

    def on_start(self, sweep: Any, trials: Sequence[Any], cluster: str) -> None:
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

    def on_trial(self, trial: Any, best: Any) -> None:
        self.best = best
        if self.quiet:
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
