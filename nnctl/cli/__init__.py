"""The `nnctl` command line: a thin Typer layer over the library.

Data goes to stdout, messages for humans to stderr. Library modules are imported inside each command so
`nnctl --help` does not pay for NumPy or pandas.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnctl import __version__
from nnctl.errors import NnctlError

if TYPE_CHECKING:
    from nnctl.training import EpochStats

app = typer.Typer(
    name="nnctl",
    help="Train neural networks from YAML config files, and predict with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@contextmanager
def _errors() -> Iterator[None]:
    """NnctlError -> one line on stderr and its exit code; Ctrl-C -> exit 130."""
    try:
        yield
    except NnctlError as exc:
        stderr.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from failing to flush stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Train neural networks from YAML config files, and predict with them."""


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


class _Reporter:
    """Shows training progress on stderr: a live bar on a terminal, a few plain lines otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.live = stderr.is_terminal and not quiet
        self.progress: Any = None
        self.task: Any = None
        self.every = 1

    def on_warning(self, message: str) -> None:
        stderr.print(f"[yellow]warning:[/] {escape(message)}")

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
        stderr.print(f"training {info['task']} network {layers} ({info['parameters']:,} parameters) on "
                     f"{info['rows_train']} rows, validating on {info['rows_validation']}, "
                     f"{epochs} epoch{plural}{done}")
        if self.live and epochs:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"), console=stderr, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("train", total=epochs, completed=info["epochs_done"], metrics="")

    def on_epoch(self, stats: EpochStats) -> None:
        text = _epoch_text(stats)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, metrics=text)
        elif not self.quiet and (stats.epoch % self.every == 0 or stats.epoch in (1, stats.epochs)):
            stderr.print(f"epoch {stats.epoch}/{stats.epochs}  {text}")

    def on_checkpoint(self, path: str, epoch: int) -> None:
        if not self.quiet:
            stderr.print(f"checkpoint after epoch {epoch}: {escape(path)}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _epoch_text(stats: EpochStats) -> str:
    parts = [f"loss {stats.train_loss:.4f}"]
    parts += [f"val_{k} {_fmt(v)}" for k, v in stats.validation.items() if k in ("loss", "accuracy", "r2")]
    parts.append(f"lr {stats.learning_rate:.3g}")
    return "  ".join(parts)


def _overrides(set_: list[str] | None, **shorthands: Any) -> list[str]:
    values = list(set_ or [])
    values += [f"{key}={value}" for key, value in shorthands.items() if value is not None]
    return values


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to save the model "
                                                "(default: the config's `output`).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a config key, e.g. training.epochs=5.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Shorthand for --set training.epochs=N.")] = None,
    seed: Annotated[int | None, typer.Option(help="Shorthand for --set seed=N.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue the run saved in this model or checkpoint "
                                                "to the configured epochs.")] = None,
    init: Annotated[Path | None, typer.Option(help="Start from this trained model's weights, preprocessing and "
                                              "classes (fine-tuning).")] = None,
) -> None:
    """Train the network CONFIG describes and save the model (.npz).

    With --resume, continue an interrupted run exactly; with --init, fine-tune a trained model on the
    config's data."""
    from nnctl.config import load_config
    from nnctl.training import train as run

    with _errors():
        cfg = load_config(config, _overrides(set_, **{"training.epochs": epochs, "seed": seed}))
        reporter = _Reporter(quiet)
        try:
            result = run(cfg, output, callback=reporter, resume=resume, init=init)  # type: ignore[arg-type]
        finally:
            reporter.close()
        summary = {
            "output": str(result.output),
            "epochs": len(result.model.history),
            "seconds": round(result.seconds, 3),
            "task": result.model.task,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            **{f"train_{k}": v for k, v in result.final["train"].items()},
            **{f"val_{k}": v for k, v in result.final.get("validation", {}).items()},
        }
        if not quiet:
            _summary_table(summary)
        if json_:
            typer.echo(json.dumps(summary))


def _summary_table(summary: dict[str, Any]) -> None:
    table = Table(title="training summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        if value is None or (key == "stopped_early" and not value):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        table.add_row(key, _fmt(value) if isinstance(value, float) and key != "seconds" else str(value))
    stderr.print(table)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="Model file (.npz) from `nnctl train`.", show_default=False)],
    input_: Annotated[str, typer.Argument(metavar="INPUT", help="Rows to predict (CSV, or JSON lines with "
                                          "--input-format jsonl); '-' or absent = stdin.")] = "-",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of stdout "
                                                "(replaced only when predict succeeds).")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one probability column per class.")] = False,
    format_: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.csv,
    input_format: Annotated[Format, typer.Option("--input-format", help="Input format.")] = Format.csv,
    keep: Annotated[list[str] | None, typer.Option("--keep", metavar="COLUMN", help="Copy this input column "
                                                   "(an id, say) into the output; repeatable.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.0, help="Two-class models: "
                                                    "predict the second class (as `inspect` lists the classes) "
                                                    "when its probability is at least this.")] = None,
) -> None:
    """Predict the target for each input row; streams CSV (or JSON lines) to stdout as rows arrive."""
    from nnctl.inference import predict as run
    from nnctl.model import load_model
    from nnctl.stream import open_input

    with _errors():
        loaded = load_model(model)
        source = open_input(input_)
        name = "<stdin>" if input_ == "-" else input_
        options: dict[str, Any] = {"name": name, "proba": proba, "fmt": format_.value,
                                   "input_format": input_format.value, "keep": keep or [], "threshold": threshold}
        try:
            if output is None:
                run(loaded, source, sys.stdout, **options)
                sys.stdout.flush()
            else:
                with _replace_on_success(output) as handle:
                    run(loaded, source, handle, **options)
        finally:
            if source is not sys.stdin.buffer:
                source.close()


@contextmanager
def _replace_on_success(path: Path) -> Iterator[Any]:
    """Write to a temporary file beside `path` and rename it over `path` only when the body succeeds."""
    import tempfile

    from nnctl.errors import InputError

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({exc.strerror})") from None
    try:
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)],
    data: Annotated[Path, typer.Argument(help="Labelled CSV (with the target column).", show_default=False)],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Loss and metrics of a model on a labelled CSV: accuracy, or MAE, RMSE and R²."""
    from nnctl.inference import evaluate as run
    from nnctl.model import load_model

    with _errors():
        scores = run(load_model(model), data)
        if json_:
            typer.echo(json.dumps(scores))
            return
        confusion = scores.pop("confusion_matrix", None)
        table = Table(show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in scores.items():
            table.add_row(key, str(value) if isinstance(value, int) else _fmt(value))
        stdout.print(table)
        if confusion is not None:
            stdout.print(_confusion_table(confusion["labels"], confusion["counts"]))


def _confusion_table(labels: list[Any], counts: list[list[int]]) -> Table:
    table = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for label in labels:
        table.add_column(escape(str(label)), justify="right")
    for i, (label, row) in enumerate(zip(labels, counts, strict=True)):
        cells = [f"[bold]{c}[/]" if i == j else str(c) for j, c in enumerate(row)]  # the diagonal is right
        table.add_row(escape(str(label)), *cells)
    return table


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a config key.")] = None,
) -> None:
    """Validate a config and show the network it builds and how it would train, without training."""
    from nnctl.config import load_config
    from nnctl.network import parameter_count
    from nnctl.training import describe

    with _errors():
        cfg = load_config(config, _overrides(set_))
        dataset, sizes, activations, inits, settings = describe(cfg, lambda m: stderr.print(f"warning: {m}"))
        table = Table(title=f"{config}: {dataset.target.task}, loss {dataset.loss}", title_justify="left")
        for column in ("layer", "shape (W)", "activation", "init", "dropout", "parameters"):
            table.add_column(column, justify="right" if column == "parameters" else "left")
        for i, (act, init, layer) in enumerate(zip(activations, inits, cfg.model.layers, strict=True)):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            table.add_row(str(i), f"{fan_in} × {fan_out}", act, init, f"{layer.dropout:g}" if layer.dropout else "-",
                          f"{fan_in * fan_out + fan_out:,}")
        table.add_row("total", "", "", "", "", f"{parameter_count(sizes):,}", style="bold")
        stdout.print(table)
        rows_val = len(dataset.validation) if dataset.validation else 0
        stdout.print(f"inputs: {sizes[0]} ({', '.join(dataset.preprocessor.input_names)})", markup=False)
        stdout.print(f"rows: {len(dataset.train)} training, {rows_val} validation")
        for key, text in settings.items():
            stdout.print(f"{key}: {text}", markup=False)


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)],
    json_: Annotated[bool, typer.Option("--json", help="Print the model's metadata as JSON.")] = False,
) -> None:
    """Show what a model file holds: architecture, preprocessing, classes, training history."""
    from nnctl.model import load_model

    with _errors():
        loaded = load_model(model)
        arrays = loaded.arrays()
        meta = loaded.meta(arrays)
        if json_:
            typer.echo(json.dumps(meta))
            return
        net = loaded.network
        stdout.print(f"[bold]{escape(str(model))}[/]: {loaded.task}, loss {loaded.loss}, {net.dtype.name}, "
                     f"nnctl {meta['nnctl_version']}")
        stdout.print("layers: " + ", ".join(f"{i}×{o} {a}" for i, o, a in
                                             zip(net.sizes[:-1], net.sizes[1:], net.activation_names, strict=True)))
        stdout.print(f"features: {', '.join(meta['features'])}", markup=False)
        if loaded.task == "classification":
            stdout.print(f"classes: {', '.join(map(str, loaded.target.classes))}", markup=False)
        history = loaded.history
        if history:
            last = history[-1]
            stdout.print(f"trained {len(history)} epochs; last: " +
                         "  ".join(f"{k} {_fmt(v)}" for k, v in last.items() if k not in ("epoch", "seconds")))
            best = loaded.state.get("restored_best_epoch")
            if best is not None:
                row = history[best - 1]
                stdout.print(f"weights from the best epoch, {best}: " +
                             "  ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k.startswith("val_")))


def main() -> None:
    """Console-script entry point."""
    app()


