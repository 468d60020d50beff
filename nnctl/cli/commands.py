"""The core commands: train, predict, evaluate, check, inspect, init, schema.

Each is a typed signature, a docstring (its --help) and a call into the library. Library modules (and the
rich tables of `nnctl.cli.render`) are imported inside each command, so `nnctl --help` pays for neither NumPy nor
pandas, and a small `predict` not for pandas, pydantic or rich.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nnctl.cli.app import Format, LogFormat, app, errors, exit_130_on_interrupt
from nnctl.cli.console import escape, stderr, warn
from nnctl.cli.params import (
    Decimal,
    Delimiter,
    Encoding,
    JsonTable,
    LabelledCsv,
    ModelFile,
    Strict,
    Unweighted,
    model_first,
)
from nnctl.errors import InputError, TrainingInterrupted

if TYPE_CHECKING:
    from nnctl.model.model import Model

if TYPE_CHECKING:
    from nnctl.config.schema import Config

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
    from nnctl.cli.progress import Reporter
    from nnctl.cli.render import summary_table
    from nnctl.config.load import load_config
    from nnctl.training.run import train as run

    with errors():
        bars = _bars(fail_under or [])
        overrides = _overrides(set_, **{"training.epochs": epochs, "seed": seed})
        cfg = load_config(config, overrides)
        reporter = Reporter(quiet, log_format.value, monitor=_watched(cfg))

        def resume_hint(exc: TrainingInterrupted) -> str | None:
            if not exc.checkpoint:
                return None
            again = ["nnctl", "train", str(config), "--resume", exc.checkpoint]
            again += ["-o", str(output)] if output else []
            return "resume with: " + " ".join([*again, *(f"--set {item}" for item in overrides)])

        try:
            with exit_130_on_interrupt(reporter.close, resume_hint):
                result = run(cfg, output, callback=reporter, resume=resume, init=init, require=bars)
        finally:
            reporter.close()
        summary = result.summary()
        if not quiet:
            summary_table(summary)
            _doctor_hint(result.model, result.output)
        if json_:
            typer.echo(json.dumps(summary))


def _doctor_hint(model: Model, output: Path | None) -> None:
    """One line on stderr when `nnctl doctor` would find something in the run just trained."""
    from nnctl.training.doctor import diagnose

    if model.diagnostics is None:
        return
    codes = list(dict.fromkeys(d.code for d in diagnose(model)))
    if codes:
        # one line in a log; wrapped between words on a terminal, like the other messages
        stderr.print(escape(f"doctor: {len(codes)} finding{'s' if len(codes) > 1 else ''} ({', '.join(codes)}); "
                            f"run: nnctl doctor {output if output is not None else 'MODEL'}"),
                     soft_wrap=not stderr.is_terminal)


def _watched(cfg: Config) -> str | None:
    """The metric the run watches, which the progress line always shows: early stopping's, else plateau's."""
    if cfg.training.early_stopping is not None:
        return cfg.training.early_stopping.monitor
    return cfg.schedule.monitor if cfg.schedule.name == "plateau" else None


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
                                                    "when its probability is at least this (default: the "
                                                    "model's stored threshold, else the most probable "
                                                    "class).")] = None,
    strict: Strict = False,
    delimiter: Delimiter = None,
    decimal: Decimal = None,
    encoding: Encoding = None,
) -> None:
    """Predict the target for each input row; streams CSV (or JSON lines) to stdout as rows arrive."""
    from nnctl.dialect import Settings
    from nnctl.files import replace_on_success
    from nnctl.inference.predict import predict as run
    from nnctl.inference.reader import open_input
    from nnctl.model.model import load_model

    with errors():
        dialect = Settings.checked(delimiter, decimal, encoding)
        loaded = model_first(load_model, model, input_, "predict")
        source = open_input(input_)
        name = "<stdin>" if input_ == "-" else input_
        options: dict[str, Any] = {"name": name, "proba": proba, "fmt": format_.value,
                                   "input_format": input_format.value, "keep": keep or [], "threshold": threshold,
                                   "strict": strict, "warn": warn, "dialect": dialect}
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
def cv(
    config: Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)],
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Folds per repeat.")] = 5,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Repeats, each with its own folds.")] = 1,
    group: Annotated[str | None, typer.Option("--group", metavar="COLUMN", help="Keep each value of this column "
                                              "in one fold (never in training and validation at once).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", metavar="CSV", help="Write out-of-fold "
                                                "predictions here: one row per labelled row, in input order, with "
                                                "its fold.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a config key, e.g. training.epochs=5.")] = None,
    json_: JsonTable = False,
    fail_under: Annotated[list[str] | None, typer.Option("--fail-under", metavar="METRIC=VALUE", help="Exit 1 "
                                                         "when the folds' mean misses this bar, e.g. "
                                                         "val_accuracy=0.9 (losses and errors: an upper "
                                                         "limit); repeatable.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-fold lines on stderr.")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", metavar="ADDRESS", help="Run the folds on the "
                                                  "Dask cluster at this address (the 'sweep' extra).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Run the folds on an embedded Dask "
                                                "cluster of this many processes (the 'sweep' extra); 1: in this "
                                                "process. Default: here, and the rest on a cluster of a process "
                                                "per core when the first fold says they would take over 8 s.")] = None,
) -> None:
    """Cross-validate CONFIG: train it from scratch on each fold and score it on the held-out rows.

    Classification folds are stratified by class; --group keeps groups whole. Prints each fold's validation
    metrics and their mean ± sd (sample standard deviation)."""
    from nnctl.cli.render import cv_table
    from nnctl.config.load import load_config
    from nnctl.errors import TrainingError
    from nnctl.files import replace_on_success
    from nnctl.sweep.cv import cross_validate
    from nnctl.training.run import missed_bars

    with errors():
        bars = _bars(fail_under or [])
        cfg = load_config(config, _overrides(set_))

        def said(scores: Any, total: int) -> None:
            if not quiet:
                where = f" of repeat {scores.repeat} ({len(result_so_far) + 1}/{total})" if repeats > 1 else ""
                stderr.print(f"fold {scores.fold}/{folds}{where}: " + ", ".join(
                                 f"{k} {v:.4f}" for k, v in scores.metrics.items() if k in _SHOWN), markup=False)
            result_so_far.append(scores)

        result_so_far: list[Any] = []
        result = cross_validate(cfg, folds, repeats, group, on_fold=said, predictions=output is not None,
                                scheduler=scheduler, workers=workers, on_warning=warn)
        unknown = [name for name in bars if name not in result.mean]
        if unknown:
            raise InputError(f"--fail-under {unknown[0]}: not a cross-validated metric (available: "
                             f"{', '.join(result.mean)})")
        if output is not None and result.predictions is not None:
            with replace_on_success(output, "w", what="the predictions", cannot_open=InputError) as handle:
                result.predictions.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")
        if json_:
            sys.stdout.write(json.dumps(result.to_json()) + "\n")
        else:
            cv_table(result)
        missed = missed_bars(bars, result.mean)
        if missed:
            raise TrainingError(f"the folds' mean misses --fail-under: {'; '.join(missed)}")


_SHOWN = ("val_loss", "val_accuracy", "val_f1", "val_r2", "val_rmse")


@app.command()
def evaluate(
    model: ModelFile,
    data: LabelledCsv,
    json_: JsonTable = False,
    plot_: Annotated[Path | None, typer.Option("--plot", metavar="PNG", help="Also draw the confusion matrix and "
                                               "the reliability diagram (classification) or predicted against "
                                               "actual values (regression) into this PNG (needs matplotlib, "
                                               "the 'plot' extra).")] = None,
    strict: Strict = False,
    unweighted: Unweighted = False,
    delimiter: Delimiter = None,
    decimal: Decimal = None,
    encoding: Encoding = None,
) -> None:
    """Loss and metrics of a model on a labelled CSV.

    Accuracy, precision, recall, F1, balanced accuracy, MCC, log loss, ROC AUC, PR AUC, Brier, ECE and a
    per-class table, or MAE, RMSE, R², MAPE and median AE.

    A model trained with data.weight weighs the rows by that column when the CSV has it (weighted_by names it).

    With --plot, the PNG is written (replaced only when complete) before the scores are printed, so a
    plot that cannot be written prints no scores."""
    from nnctl.cli.render import scores_table
    from nnctl.dialect import Settings
    from nnctl.inference.predict import evaluation
    from nnctl.model.model import load_model

    with errors():
        dialect = Settings.checked(delimiter, decimal, encoding)
        if plot_ is not None:  # before the work: a missing extra is said at once
            from nnctl.extras.plot import require_matplotlib

            require_matplotlib("nnctl evaluate --plot")
        loaded = model_first(load_model, model, str(data), "evaluate")
        result = evaluation(loaded, data, dialect, strict=strict, weighted=not unweighted, warn=warn)
        scores, note = result.scores, None
        if plot_ is not None:
            from nnctl.extras.plot import evaluation_figure, save_png

            save_png(evaluation_figure(loaded, result, model.name, data.name), plot_)
            what = ("confusion matrix and reliability diagram" if loaded.task == "classification"
                    else "predicted against actual values")
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
    from nnctl.cli.render import show_description
    from nnctl.config.load import load_config
    from nnctl.training.setup import describe

    with errors():
        cfg = load_config(config, _overrides(set_))
        description = describe(cfg, lambda m: stderr.print(f"warning: {m}"))
        show_description(str(config), description)


@app.command()
def inspect(
    model: ModelFile,
    json_: Annotated[bool, typer.Option("--json", help="Print the model's metadata as JSON.")] = False,
) -> None:
    """Show what a model file holds: architecture, preprocessing, classes, training history."""
    from nnctl.cli.render import show_model
    from nnctl.model.model import load_model

    with errors():
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
    delimiter: Delimiter = None,
    decimal: Decimal = None,
    encoding: Encoding = None,
) -> None:
    """Write a starter config for a CSV: task, features, layers, loss and optimizer chosen from the data."""
    from nnctl.data.starter import starter_config
    from nnctl.dialect import Settings
    from nnctl.files import replace_on_success

    with errors():
        dialect = Settings.checked(delimiter, decimal, encoding)
        if output is not None and output.exists():
            raise InputError(f"{output}: already exists; choose another name or delete it first")
        folder = output.parent if output is not None else Path(".")
        text = starter_config(data, target, folder, dialect)
        if output is None:
            sys.stdout.write(text)
            return
        with replace_on_success(output, "w", what="the config", cannot_open=InputError) as handle:
            handle.write(text)
        stderr.print(f"wrote {escape(str(output))}; next: nnctl check {escape(str(output))}")


@app.command()
def schema() -> None:
    """Print the config's JSON Schema, for editors that validate and complete YAML."""
    from nnctl.config.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
