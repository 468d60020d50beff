"""What the CLI shows once a command is done: summaries and tables (rich). Progress while it runs is in
`nnctl.cli.progress`.

Humans' output goes to stderr (progress, warnings, summaries) unless it is the command's result (`check`,
`inspect`, `evaluate` tables go to stdout). Colour and live display happen only on a terminal; rich honours
NO_COLOR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from nnctl.model.model import Model
    from nnctl.training.setup import Description

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


def summary_table(summary: dict[str, Any]) -> None:
    table = Table(title="training summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a long output path wraps; cut short with "…" it would be no use
    for key, value in summary.items():
        if value is None or (key == "stopped_early" and not value):
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        table.add_row(key, fmt(value) if isinstance(value, float) and key != "seconds" else str(value))
    stderr.print(table)


def scores_table(scores: dict[str, Any]) -> None:
    confusion = scores.pop("confusion_matrix", None)
    per_class = scores.pop("per_class", None)
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scores.items():
        table.add_row(key, str(value) if isinstance(value, int | str) else fmt(value))
    stdout.print(table)
    if per_class is not None:
        stdout.print(per_class_table(per_class))
    if confusion is not None:
        stdout.print(confusion_table(confusion["labels"], confusion["counts"]))


def cv_table(result: Any) -> None:
    """Cross-validation: per metric the folds' mean and sample standard deviation, and each fold's value."""
    table = Table(title=f"{len(result.folds)} folds ({result.task}): validation metrics", title_justify="left")
    for column in ("metric", "mean", "sd", "per fold"):
        table.add_column(column, justify="left" if column in ("metric", "per fold") else "right")
    for name, mean in result.mean.items():
        values = " ".join(f"{f.metrics[name]:.3f}" for f in result.folds if name in f.metrics)
        table.add_row(name, f"{mean:.4f}", f"{result.std[name]:.4f}", values)
    stdout.print(table)


def per_class_table(per_class: dict[str, dict[str, float]]) -> Table:
    table = Table(title="per class", title_justify="left")
    table.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for label, row in per_class.items():
        table.add_row(escape(label), fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]), str(row["support"]))
    return table


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
    stdout.print(f"[bold]{escape(path)}[/]: {model.task}, loss {_loss_text(model.loss, model.loss_options)}, "
                 f"{net.dtype.name}, "
                 f"nnctl {meta['nnctl_version']}")
    inits = [layer.get("init", "-") for layer in model.setting("model", "layers") or []]
    stdout.print(network_table("network", net.sizes, net.activation_names,
                               inits if len(inits) == len(net.acts) else ["-"] * len(net.acts), net.dropout))
    stdout.print(_features_table(model))
    if model.task == "classification":
        stdout.print(f"classes: {', '.join(map(str, model.target.classes))}", markup=False)
    if model.temperature is not None:
        stdout.print(f"calibrated: temperature {model.temperature:.6g} (the output layer's Z is divided by it; "
                     f"training.calibrate)", markup=False)
    if model.threshold is not None:
        stdout.print(f"decision threshold: {model.threshold:.6g} (the second class when its probability is at "
                     f"least this; training.threshold: {model.setting('training', 'threshold')})", markup=False)
    elif model.target.scale != 1 or model.target.center != 0:
        stdout.print(f"target {model.target.name}: standardised for the loss (mean {model.target.center:.4g}, "
                     f"std {model.target.scale:.4g})", markup=False)
    _show_history(model)
    from nnctl.config.safe_yaml import dump

    stdout.print("[bold]trained with[/] (resolved config):")
    stdout.print(dump(model.config).rstrip(), markup=False)


def _features_table(model: Model) -> Table:
    pre = model.preprocessor
    table = Table(title=f"features (scale: {pre.scale}, missing: {pre.missing}); input = (x - center) / scale",
                  title_justify="left")
    for column in ("column", "kind", "center", "scale", "missing →", "inputs"):
        table.add_column(column, justify="right" if column in ("center", "scale", "missing →") else "left")
    for spec in pre.features:
        kind = spec.kind + (" + flag" if spec.indicator else "")  # the 0/1 input of data.missing_indicators
        if spec.kind == "numeric":
            table.add_row(escape(spec.name), kind, f"{spec.center:.4g}", f"{spec.scale:.4g}", f"{spec.fill:.4g}", "")
        elif spec.kind == "date":  # the center and scale are the year's; a gap becomes the mean date
            fill = datetime.fromtimestamp(spec.fill, UTC).strftime("%Y-%m-%d")
            table.add_row(escape(spec.name), f"{kind} ({spec.order})", f"{spec.center:.6g}", f"{spec.scale:.4g}",
                          fill, ", ".join(spec.parts))
        else:
            shown = ", ".join(spec.categories[:6]) + (f", … ({len(spec.categories)})" if len(spec.categories) > 6
                                                      else "")
            table.add_row(escape(spec.name), kind, "", "", "", escape(shown))
    return table


def _show_history(model: Model, rows: int = 8) -> None:
    history = model.history
    if not history:
        stdout.print("history: not trained (0 epochs)")
        return
    keys = [k for k in history[0] if k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_f1", "val_r2",
                                             "val_rmse", "learning_rate")]
    step = max(1, math.ceil(len(history) / rows))
    best = model.provenance.restored_best_epoch
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


def _loss_text(name: str, options: dict[str, Any]) -> str:
    """`huber (delta=0.5)`; a loss without parameters by its name alone."""
    return f"{name} ({', '.join(f'{k}={v:g}' for k, v in options.items())})" if options else name


def show_description(source: str, description: Description) -> None:
    """`nnctl check`: the network a config builds on its data, the inputs and rows, and the settings it resolves
    to (optimizer, schedule, training, early stopping, checkpoints, streaming, class weights)."""
    dataset, layers, given = description.dataset, description.layers, description.config.loss
    loss = _loss_text(dataset.loss, given.hyperparameters() if given is not None else {})
    stdout.print(network_table(f"{source}: {dataset.target.task}, loss {loss}", layers.sizes,
                               layers.activations, layers.inits, layers.dropout))
    rows_val = len(dataset.validation) if dataset.validation else 0
    stdout.print(f"inputs: {layers.sizes[0]} ({', '.join(dataset.preprocessor.input_names)})", markup=False)
    stdout.print(f"rows: {len(dataset.train)} training, {rows_val} validation")
    for key, text in _settings(description).items():
        stdout.print(f"{key}: {text}", markup=False)


def _settings(description: Description) -> dict[str, str]:
    config, t = description.config, description.config.training

    def args(section: Any) -> str:
        return ", ".join(f"{k}={v}" for k, v in section.hyperparameters().items())

    es = t.early_stopping
    settings = {
        "optimizer": f"{config.optimizer.name} ({args(config.optimizer)}); weight decay on weights, not biases",
        "schedule": f"{config.schedule.name} ({args(config.schedule)})" if config.schedule.hyperparameters()
        else config.schedule.name,
        "training": f"{t.epochs} epochs, batch_size {description.batch_size}, {t.dtype}, shuffle "
                    f"{str(t.shuffle).lower()}, clip_norm {t.clip_norm or 'off'}, threads {t.threads or 'default'}",
        "early_stopping": (f"monitor {es.monitor}, patience {es.patience}, min_delta {es.min_delta}, restore_best "
                           f"{str(es.restore_best).lower()}" if es else "off"),
        "checkpoint": (f"every {t.checkpoint_every} epochs to {description.checkpoint}" if t.checkpoint_every
                       else "off"),
    }
    if t.calibrate or t.threshold:
        settings["after training"] = ", ".join(
            [*([f"calibrate: {t.calibrate}"] if t.calibrate else []),
             *([f"threshold: {t.threshold}"] if t.threshold else [])]) + " (fitted on the validation rows)"
    d = config.data
    if d.streaming:
        spill = description.spill_bytes
        size = f"{spill / 2**20:,.1f} MiB" if spill >= 2**20 else f"{spill / 2**10:,.0f} KiB"
        settings["streaming"] = (f"chunks of {d.chunk_rows:,} rows, shuffle buffer {d.shuffle_buffer:,} rows; "
                                 f"{size} of preprocessed rows spilled to {description.spill_folder} while training")
    weights = description.dataset.sources.class_weight
    if weights:
        settings["class_weight"] = ", ".join(f"{k}={v:.4g}" for k, v in weights.items())
    return settings
