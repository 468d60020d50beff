"""The `nnctl` command line: a thin Typer layer over the library.

Each command is a typed signature, a docstring (its --help) and a call into the library; what it shows is
in `render`. Data goes to stdout, messages for humans to stderr. Library modules are imported inside each
command, so `nnctl --help` pays for neither NumPy nor pandas, and a small `predict` not for pandas.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from nnctl import __version__
from nnctl.cli.render import (
    Reporter,
    network_table,
    scores_table,
    show_model,
    silence,
    stderr,
    stdout,
    summary_table,
)
from nnctl.errors import InputError, NnctlError, TrainingInterrupted

app = typer.Typer(
    name="nnctl",
    help="Train neural networks from YAML config files, and predict with them.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class LogFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


@contextmanager
def _errors() -> Iterator[None]:
    """NnctlError -> one line on stderr and its exit code; Ctrl-C -> exit 130."""
    try:
        yield
    except typer.Exit:
        raise
    except NnctlError as exc:
        _debug_traceback()
        stderr.print(f"[bold red]error:[/] {escape(_one_line(str(exc)))}")
        raise typer.Exit(exc.exit_code) from None
    except MemoryError:
        _debug_traceback()
        stderr.print("[bold red]error:[/] out of memory; use a smaller network, batch_size or input")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from failing to flush stdout at exit.
        silence(sys.stdout.fileno())
        raise typer.Exit(0) from None
    except Exception as exc:  # a bug in nnctl: still one line, and the way to the details
        if _DEBUG:
            raise
        detail = escape(_one_line(f"{type(exc).__name__}: {exc}"))
        stderr.print(f"[bold red]error:[/] internal error ({detail}); this is a bug in nnctl: please report it "
                     "with the output of the same command run with --debug")
        raise typer.Exit(1) from None


_DEBUG = bool(os.environ.get("NNCTL_DEBUG"))


def _one_line(text: str) -> str:
    """Errors are one line: newlines and other invisible characters in names or values are shown escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _debug_traceback() -> None:
    if _DEBUG:
        import traceback

        traceback.print_exc()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks behind errors (or set "
                                        "NNCTL_DEBUG=1).")] = False,
) -> None:
    """Train neural networks from YAML config files, and predict with them."""
    global _DEBUG
    _DEBUG = _DEBUG or debug


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
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="Progress as text on stderr, or one "
                                                  "JSON object per epoch on stdout.")] = LogFormat.text,
    fail_under: Annotated[list[str] | None, typer.Option("--fail-under", metavar="METRIC=VALUE", help="Exit 1 "
                                                         "when a final metric misses this bar, e.g. "
                                                         "val_accuracy=0.9 (losses and errors: an upper "
                                                         "limit); repeatable.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run saved in this model or checkpoint "
                                                "to the configured epochs.")] = None,
    init: Annotated[Path | None, typer.Option(help="Start from this trained model's weights, preprocessing and "
                                              "classes (fine-tuning).")] = None,
) -> None:
    """Train the network CONFIG describes and save the model (.npz).

    With --resume, continue an interrupted run exactly; with --init, fine-tune a trained model on the
    config's data. A run that misses a --fail-under bar is saved as OUTPUT.failed.npz, never over OUTPUT."""
    from nnctl.config import load_config
    from nnctl.training import train as run

    with _errors():
        bars = _bars(fail_under or [])
        overrides = _overrides(set_, **{"training.epochs": epochs, "seed": seed})
        cfg = load_config(config, overrides)
        reporter = Reporter(quiet, log_format.value)
        def resume_hint(exc: TrainingInterrupted) -> str | None:
            if not exc.checkpoint:
                return None
            again = ["nnctl", "train", str(config), "--resume", exc.checkpoint]
            again += ["-o", str(output)] if output else []
            return "resume with: " + " ".join([*again, *(f"--set {item}" for item in overrides)])

        try:
            with _exit_130_on_interrupt(reporter.close, resume_hint):
                # Reporter has Callback's methods; subclassing it would make --help import NumPy
                result = run(cfg, output, callback=reporter, resume=resume, init=init,  # type: ignore[arg-type]
                             require=bars)
        finally:
            reporter.close()
        summary = result.summary()
        if not quiet:
            summary_table(summary)
        if json_:
            typer.echo(json.dumps(summary))


@contextmanager
def _exit_130_on_interrupt(stop: Callable[[], None],
                           hint: Callable[[TrainingInterrupted], str | None] | None = None) -> Iterator[None]:
    """Ctrl-C or SIGTERM in the body: `stop` the live display, print what the library kept (and `hint`), exit 130."""
    try:
        with _sigterm_as_interrupt():
            yield
    except TrainingInterrupted as exc:
        stop()
        stderr.print(f"[yellow]{escape(exc.message)}[/]")
        extra = hint(exc) if hint is not None else None
        if extra:
            stderr.print(escape(extra))
        raise typer.Exit(130) from None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops training like Ctrl-C does: with a checkpoint, not mid-write."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bars(items: list[str]) -> dict[str, float]:
    bars = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            bars[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--fail-under {item}: expected METRIC=VALUE, e.g. val_accuracy=0.9")
    return bars


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
    from nnctl.files import replace_on_success
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
                with replace_on_success(output, "w", what="the predictions", cannot_open=InputError) as handle:
                    run(loaded, source, handle, **options)
        finally:
            if source is not sys.stdin.buffer:
                source.close()


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)],
    data: Annotated[Path, typer.Argument(help="Labelled CSV (with the target column).", show_default=False)],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plot_: Annotated[Path | None, typer.Option("--plot", metavar="PNG", help="Also draw the confusion matrix "
                                               "(classification) or predicted against actual values "
                                               "(regression) into this PNG (needs matplotlib, the 'plot' "
                                               "extra).")] = None,
) -> None:
    """Loss and metrics of a model on a labelled CSV: accuracy, or MAE, RMSE and R².

    With --plot, the PNG is written (replaced only when complete) before the scores are printed, so a
    plot that cannot be written prints no scores."""
    from nnctl.inference import evaluation
    from nnctl.model import load_model

    with _errors():
        note = None
        if plot_ is None:
            scores = evaluation(load_model(model), data).scores
        else:
            from nnctl.plot import evaluation_figure, require_matplotlib, save_png

            require_matplotlib("nnctl evaluate --plot")
            loaded = load_model(model)
            result = evaluation(loaded, data)
            save_png(evaluation_figure(loaded, result, model.name, data.name), plot_)
            scores = result.scores
            what = "confusion matrix" if loaded.task == "classification" else "predicted against actual values"
            note = f"wrote {plot_} ({what})"
        if json_:
            typer.echo(json.dumps(scores))
        else:
            scores_table(scores)
        if note is not None:
            stderr.print(note, markup=False)


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a config key.")] = None,
) -> None:
    """Validate a config and show the network it builds and how it would train, without training."""
    from nnctl.config import load_config
    from nnctl.training import describe

    with _errors():
        cfg = load_config(config, _overrides(set_))
        dataset, sizes, activations, inits, settings = describe(cfg, lambda m: stderr.print(f"warning: {m}"))
        stdout.print(network_table(f"{config}: {dataset.target.task}, loss {dataset.loss}", sizes, activations,
                                   inits, [layer.dropout for layer in cfg.model.layers]))
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
        else:
            show_model(str(model), loaded, meta)


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="CSV file to learn from.", show_default=False)],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the config here (not over an "
                                                "existing file) instead of to stdout.")] = None,
) -> None:
    """Write a starter config for a CSV: task, features, layers, loss and optimizer chosen from the data."""
    from nnctl.files import replace_on_success
    from nnctl.starter import starter_config

    with _errors():
        if output is not None and output.exists():
            raise InputError(f"{output}: already exists; choose another name or delete it first")
        folder = output.parent if output is not None else Path(".")
        text = starter_config(data, target, folder)
        if output is None:
            sys.stdout.write(text)
            return
        with replace_on_success(output, "w", what="the config", cannot_open=InputError) as handle:
            handle.write(text)
        stderr.print(f"wrote {escape(str(output))}; next: nnctl check {escape(str(output))}")


@app.command()
def schema() -> None:
    """Print the config's JSON Schema, for editors that validate and complete YAML."""
    from nnctl.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


# --- commands that need an optional extra (sweep, export, plot) ---


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep file (YAML): a base config, the metric "
                                               "that decides the best trial, and a search space.",
                                               show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for results.csv, results.json and "
                                                "best.npz (default: the sweep file's `output`).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", metavar="ADDRESS", help="Run the trials on an "
                                                  "existing Dask cluster, e.g. tcp://HOST:8786 (default: an "
                                                  "embedded local cluster).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes of the embedded "
                                                "cluster (default: one per core).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the results (as in results.json) on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table or summary on stderr.")] = False,
) -> None:
    """Train a config over a grid or random search space, trials in parallel on Dask; keep the best model.

    Every trial is validated before any runs. A failing trial is recorded with its error and the others go
    on; results.csv and results.json are updated as trials finish, so Ctrl-C (exit 130) keeps the finished
    trials. Exit 1 when no trial succeeds. Needs Dask distributed (the 'sweep' extra)."""
    from nnctl.cli.render import SweepView
    from nnctl.errors import TrainingError
    from nnctl.sweep import load_sweep, require_distributed, sweep_output
    from nnctl.trials import run_sweep

    with _errors():
        if scheduler is not None and workers is not None:
            raise InputError("--workers sets the size of the embedded cluster; an existing cluster (--scheduler) "
                             "has its own workers")
        require_distributed()
        view = SweepView(quiet)
        plan = load_sweep(sweep_file, view.on_warning)
        folder = sweep_output(plan, output)
        try:
            with _exit_130_on_interrupt(view.finish):
                # SweepView has SweepCallback's methods; subclassing it would make --help import NumPy
                result = run_sweep(plan, folder, scheduler=scheduler, workers=workers, callback=view,  # type: ignore[arg-type]
                                   debug=_DEBUG)
        finally:
            view.close()
        view.finish(str(folder), result.seconds, result.cluster)
        if json_:
            typer.echo(json.dumps(result.to_json()))
        if result.best is None:
            first = next((t for t in result.trials if t.status == "failed"), None)
            detail = f"; trial {first.number}: {first.error}" if first is not None else ""
            raise TrainingError(f"no trial succeeded ({len(result.trials)} failed){detail}")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the ONNX file (default: "
                                                "MODEL with the suffix .onnx).")] = None,
) -> None:
    """Export a model and its preprocessing as an ONNX graph, to run in any ONNX runtime.

    Inputs are the raw columns: `numeric` (float32, NaN = missing) and `categorical` (strings); outputs
    `probabilities` and `label`, or `prediction`. The file's metadata lists the columns in order and the
    classes. Without -o, models/iris.npz is exported to models/iris.onnx. The file is replaced only when
    complete, and an existing file that is not ONNX is never overwritten. Needs the onnx extra."""
    from nnctl.export import save_onnx, signature
    from nnctl.model import load_model

    with _errors():
        loaded = load_model(model)
        path = output if output is not None else model.with_suffix(".onnx")
        save_onnx(loaded, path)
        stderr.print(f"wrote {path} ({signature(loaded)})", markup=False)


@app.command()
def plot(
    model: Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the PNG (default: MODEL "
                                                "with .npz replaced by .curves.png).")] = None,
) -> None:
    """Draw a model's training history as a PNG: loss per epoch, and accuracy (classification) or RMSE
    (regression), training and validation, with the best epoch marked when early stopping recorded one.

    Without -o, models/iris.npz is drawn to models/iris.curves.png. The PNG is replaced only when complete,
    and an existing file that is not a PNG is never overwritten. Needs matplotlib (the 'plot' extra)."""
    from nnctl.model import load_model
    from nnctl.plot import curves_figure, require_matplotlib, save_png

    with _errors():
        require_matplotlib("nnctl plot")
        path = output if output is not None else model.with_name(model.name.removesuffix(".npz") + ".curves.png")
        save_png(curves_figure(load_model(model), model.name), path)
        stderr.print(f"wrote {path} (training curves)", markup=False)


def main() -> None:
    """Console-script entry point: usage mistakes (unknown flag, missing argument, bad value) become one
    line on stderr and exit 2, like every other bad input."""
    from typer.exceptions import TyperException

    try:
        code = app(prog_name="nnctl", standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if message:  # empty after `nnctl` alone, which has just shown the help
            stderr.print(f"[bold red]error:[/] {escape(_one_line(message + hint))}")
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
