"""Pictures of a model: its training curves, and its predictions against the truth.

matplotlib is an optional extra (`pip install 'nnctl[plot]'`), imported only when a picture is drawn, and
only through its object-oriented API (`Figure` with the Agg canvas): no pyplot, no global state, no display.
Each `*_figure` function returns the matplotlib Figure, so callers (and tests) can read the plotted data
back; `save_png` writes one atomically. Nothing here prints or exits.

- `curves_figure`: per epoch, the training and validation loss (log y-scale when it spans more than two
  decades) and a metric: accuracy for classification, RMSE in the target's units for regression (R² is not
  used: it starts far below zero and would flatten the rest of the curve). A classifier's early stopping
  monitor is drawn too when it is precision, recall or F1 (accuracy's 0-1 scale), and the best epoch early
  stopping recorded is marked on both panels.
- `evaluation_figure`: what `evaluate --plot` draws: for a classifier the confusion matrix and the reliability
  diagram side by side, for a regression model the predicted-vs-actual scatter.
- `confusion_figure`: counts, true classes down, predicted across, every cell annotated.
- `scatter_figure`: predicted against actual values, with the y = x line and R² in the title.
- `reliability_figure`: per confidence bin (the 15 of ECE), the share of rows predicted right, and the rows
  per bin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnctl.errors import InputError, require
from nnctl.files import refuse_to_replace, replace_on_success

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nnctl.inference.predict import Evaluation
    from nnctl.model.model import Model

DPI = 100
CURVES_SIZE = (11.0, 4.5)  # inches; times DPI = pixels (1100 x 450 px)
CONFUSION_SIZE = (6.4, 5.6)  # 640 x 560 px
SCATTER_SIZE = (6.0, 6.0)  # 600 x 600 px
RELIABILITY_SIZE = (6.0, 6.4)  # 600 x 640 px
CLASSIFICATION_SIZE = (12.4, 6.4)  # 1240 x 640 px: evaluate --plot of a classifier, confusion matrix + reliability
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TRAIN_COLOR, VAL_COLOR, MONITOR_COLOR, BEST_COLOR = "tab:blue", "tab:orange", "tab:green", "0.35"
LOG_SPAN = 100.0  # a series whose largest value is more than this times its smallest gets a log y-axis
MARKERS_UP_TO = 30  # epochs; fewer get a dot per epoch, so short runs do not look like straight lines
NAMES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "mae": "MAE",
         "rmse": "RMSE", "r2": "R²", "balanced_accuracy": "balanced accuracy", "mcc": "MCC", "roc_auc": "ROC AUC",
         "pr_auc": "PR AUC"}
SHARE_METRICS = ("precision", "recall", "f1", "balanced_accuracy", "mcc", "roc_auc", "pr_auc")  # drawn with accuracy


def require_matplotlib(feature: str) -> None:
    """Raise MissingExtraError (exit 2, with the pip command) unless matplotlib can be imported."""
    require("matplotlib", "plot", feature)


def _figure(size: tuple[float, float], feature: str) -> Figure:
    require_matplotlib(feature)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


# --- training curves -------------------------------------------------------------------------------------


def best_epoch(model: Model) -> tuple[int, str, bool] | None:
    """(epoch, monitored metric, whether that epoch's weights are the saved ones) when early stopping
    recorded a best epoch, else None."""
    stopping = model.training.early_stopping if model.training is not None else None
    monitor = str(model.setting("training", "early_stopping", "monitor") or "")
    restored = model.provenance.restored_best_epoch
    if restored:
        return int(restored), monitor, True
    if stopping is not None and stopping.best_epoch:
        return int(stopping.best_epoch), monitor, False
    return None


def curves_figure(model: Model, name: str, *, feature: str = "drawing a plot") -> Figure:
    """The model's training history: loss per epoch, and accuracy (classification) or RMSE (regression).

    `name` (the model file's name) heads the title. A model trained for 0 epochs has nothing to show
    (InputError)."""
    history = model.history
    if not history:
        raise InputError(f"{name}: the model has no training history (it was trained for 0 epochs); "
                         "nothing to plot")
    figure = _figure(CURVES_SIZE, feature)
    loss_ax, metric_ax = figure.subplots(1, 2)
    epochs = [int(row["epoch"]) for row in history]
    best = best_epoch(model)
    if best is not None and best[0] not in epochs:
        best = None
    classification = model.task == "classification"
    metric = "accuracy" if classification else "rmse"

    def series(key: str) -> list[float]:
        return [math.nan if row.get(key) is None else float(row[key]) for row in history]

    log = _curves(loss_ax, epochs, series, "loss")
    loss_ax.set_title(f"loss ({model.loss}{', log scale' if log else ''})")
    log = _curves(metric_ax, epochs, series, metric)
    unit = "" if classification else f" ({_plain(model.target.name)}{', log scale' if log else ''})"
    metric_ax.set_title(f"{NAMES[metric]}{unit}")
    extra = None
    if best is not None and best[1].startswith("val_"):
        monitored = best[1].removeprefix("val_")
        if classification and monitored in SHARE_METRICS and best[1] in history[0]:
            extra = best[1]
            metric_ax.plot(epochs, series(extra), color=MONITOR_COLOR, linewidth=1.2, linestyle="--",
                           label=f"validation {NAMES[monitored]}", **_markers(epochs))
    if best is not None:
        epoch, monitor, restored = best
        row = history[epochs.index(epoch)]
        value = row.get(monitor)
        what = f" ({monitor} {value:.4g})" if isinstance(value, (int, float)) else ""
        label = f"best epoch {epoch}{what}" + (", weights kept" if restored else "")
        for ax, key in ((loss_ax, "val_loss"), (metric_ax, extra or f"val_{metric}")):
            ax.axvline(epoch, color=BEST_COLOR, linestyle=":", linewidth=1.2, label=label)
            if key in row and isinstance(row[key], (int, float)) and math.isfinite(row[key]):
                ax.plot([epoch], [row[key]], marker="o", markersize=6, markerfacecolor="none",
                        markeredgecolor=BEST_COLOR, linestyle="none")
    for ax in (loss_ax, metric_ax):
        ax.legend(loc="best", fontsize="small")
    figure.suptitle(_curves_title(model, name, epochs), fontsize="medium")
    return figure


def _markers(epochs: Sequence[int]) -> dict[str, Any]:
    return {"marker": "o", "markersize": 3} if len(epochs) <= MARKERS_UP_TO else {}


def _curves(ax: Axes, epochs: list[int], series: Callable[[str], list[float]], key: str) -> bool:
    """Training and (when recorded) validation values of `key` per epoch, on a log axis (True) when they
    span more than two decades."""
    from matplotlib.ticker import MaxNLocator

    plotted: list[float] = []
    for prefix, label, color in (("train_", "training", TRAIN_COLOR), ("val_", "validation", VAL_COLOR)):
        values = series(prefix + key)
        if all(math.isnan(v) for v in values):
            continue
        ax.plot(epochs, values, color=color, linewidth=1.5, label=label, **_markers(epochs))
        plotted += [v for v in values if math.isfinite(v)]
    positive = [v for v in plotted if v > 0]
    if positive and len(positive) == len(plotted) and max(positive) > LOG_SPAN * min(positive):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        ax.set_xticks(epochs)
    else:
        ax.margins(x=0.015)  # the first epochs' steep drop stays clear of the y-axis
    ax.grid(True, alpha=0.3)
    return ax.get_yscale() == "log"


def _curves_title(model: Model, name: str, epochs: list[int]) -> str:
    network = " → ".join(map(str, model.network.sizes))
    planned = model.setting("training", "epochs")
    stopping = model.training.early_stopping if model.training is not None else None
    patience = model.setting("training", "early_stopping", "patience")
    count = f"{len(epochs)} epoch{'' if len(epochs) == 1 else 's'}"
    if (stopping is not None and isinstance(patience, int) and isinstance(planned, int)
            and stopping.wait >= patience and epochs[-1] < planned):
        count = f"stopped early after epoch {epochs[-1]} of {planned}"
    return f"{_plain(name)}: {model.task} of {_plain(model.target.name)}, network {network}, {count}"


# --- evaluation ------------------------------------------------------------------------------------------


def evaluation_figure(model: Model, evaluation: Evaluation, model_name: str, data_name: str, *,
                      feature: str = "drawing a plot") -> Figure:
    """What `evaluate --plot` draws: for a classifier, the confusion matrix (left) and the reliability diagram
    (right: share predicted right per bin, the rows per bin below); for a regression model, predicted against
    actual values."""
    scores = evaluation.scores
    heading = _plain(f"{model_name} on {data_name}")
    if model.task != "classification":
        return scatter_figure(evaluation.truth, evaluation.predicted, _plain(model.target.name),
                              f"{heading}\n{scores['rows']} rows, R² {scores['r2']:.4f}, RMSE {scores['rmse']:.4g}, "
                              f"MAE {scores['mae']:.4g}", feature=feature)
    matrix = scores["confusion_matrix"]
    figure = _figure(CLASSIFICATION_SIZE, feature)
    grid = figure.add_gridspec(2, 2, height_ratios=[3, 1], width_ratios=[1.1, 1])
    matrix_ax = figure.add_subplot(grid[:, 0])
    top = figure.add_subplot(grid[0, 1])
    bottom = figure.add_subplot(grid[1, 1], sharex=top)
    _confusion(figure, matrix_ax, matrix["labels"], matrix["counts"], _plain(model.target.name))
    matrix_ax.set_title("confusion matrix", fontsize="medium")
    _reliability(top, bottom, evaluation)
    top.set_title("reliability diagram (the 15 bins of ECE)", fontsize="medium")
    figure.suptitle(f"{heading}\n{scores['rows']} rows, accuracy {scores['accuracy']:.4f}, macro F1 "
                    f"{scores['f1']:.4f}, log loss {scores['log_loss']:.4f}, ECE {scores['ece']:.4f}",
                    fontsize="medium")
    return figure


def confusion_figure(labels: Sequence[Any], counts: Sequence[Sequence[int]] | np.ndarray, target: str, title: str,
                     *, feature: str = "drawing a plot") -> Figure:
    """Counts of rows per (true class, predicted class): true classes down, predicted across, each cell
    annotated with its count (the diagonal, the right answers, in bold)."""
    figure = _figure(CONFUSION_SIZE, feature)
    _confusion(figure, figure.add_subplot(), labels, counts, target)
    figure.suptitle(title, fontsize="medium")
    return figure


def _confusion(figure: Figure, ax: Axes, labels: Sequence[Any], counts: Sequence[Sequence[int]] | np.ndarray,
               target: str) -> None:
    """`confusion_figure`'s matrix drawn on `ax`, with its colour bar beside it."""
    C = np.asarray(counts, dtype=np.int64)
    n = len(labels)
    high = max(int(C.max()) if C.size else 0, 1)
    image = ax.imshow(C, cmap="Blues", vmin=0, vmax=high)
    names = [_plain(_short(str(label))) for label in labels]
    rotate = n > 5 or max((len(s) for s in names), default=0) * n > 48
    ax.set_xticks(range(n), labels=names, rotation=40 if rotate else 0, ha="right" if rotate else "center",
                  rotation_mode="anchor")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel(f"predicted {target}")
    ax.set_ylabel(f"true {target}")
    ax.tick_params(length=0)
    size = 16 if n <= 3 else 13 if n <= 5 else 10 if n <= 8 else 8
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=size,
                    fontweight="bold" if i == j else "normal", color="white" if C[i, j] > 0.55 * high else "black")
    figure.colorbar(image, ax=ax, shrink=0.85, label="rows")


def _plain(text: str) -> str:
    """User-given text (file, column and class names) shown as written: `$` would start matplotlib's math."""
    return text.replace("$", r"\$")


def _short(label: str, width: int = 16) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def scatter_figure(truth: np.ndarray, predicted: np.ndarray, target: str, title: str, *,
                   feature: str = "drawing a plot") -> Figure:
    """Predicted against actual values, one dot per row, with the y = x line a perfect model would sit on."""
    x, y = np.asarray(truth, np.float64), np.asarray(predicted, np.float64)
    figure = _figure(SCATTER_SIZE, feature)
    ax = figure.add_subplot()
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.04 * (high - low) or 1.0
    low, high = low - pad, high + pad
    ax.scatter(x, y, s=14, alpha=0.55, color=TRAIN_COLOR, edgecolors="none", label="rows", zorder=2)
    ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1, label="y = x (perfect)", zorder=1)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    figure.suptitle(title, fontsize="medium")
    return figure


def reliability_figure(evaluation: Evaluation, title: str, *, feature: str = "drawing a plot") -> Figure:
    """The reliability diagram of a classifier's evaluation: per confidence bin (the predicted class's
    probability, the 15 bins of ECE) the share of its rows predicted right against the bin's mean confidence,
    with the diagonal a calibrated model sits on, and below it how many rows each bin holds."""
    figure = _figure(RELIABILITY_SIZE, feature)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    _reliability(top, bottom, evaluation)
    figure.suptitle(title, fontsize="medium")
    return figure


def _reliability(top: Axes, bottom: Axes, evaluation: Evaluation) -> None:
    """`reliability_figure`'s panels drawn on `top` (share predicted right per bin) and `bottom` (rows per bin),
    two axes that share their x-axis."""
    from nnctl.engine.probability_metrics import ProbabilitySums

    P = evaluation.probabilities
    assert P is not None  # a classification evaluation
    sums = ProbabilitySums(P.shape[1]).add(evaluation.truth, P, evaluation.predicted)
    edges = np.linspace(0.0, 1.0, sums.bins + 1)
    filled = sums.count > 0
    accuracy = np.divide(sums.correct, sums.count, out=np.zeros_like(sums.correct), where=filled)
    confidence = np.divide(sums.confidence, sums.count, out=np.zeros_like(sums.confidence), where=filled)
    width = edges[1] - edges[0]
    top.bar(edges[:-1][filled], accuracy[filled], width=width, align="edge", color=TRAIN_COLOR, alpha=0.75,
            edgecolor="white", label="share predicted right")
    top.plot(confidence[filled], accuracy[filled], "o", color="black", markersize=4, label="at the bin's mean "
             "confidence")
    top.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="calibrated")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("share predicted right")
    top.tick_params(labelbottom=False)
    top.grid(True, alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(edges[:-1], sums.count, width=width, align="edge", color="0.55", edgecolor="white")
    bottom.set_xlabel("confidence (the predicted class's probability)")
    bottom.set_ylabel("rows")


# --- files -----------------------------------------------------------------------------------------------


def save_png(figure: Figure, path: Path) -> None:
    """Write `figure` to `path` as a PNG, atomically; an existing file that is not a PNG is never replaced."""
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: plots are written as PNG images; give a file name ending in .png")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name ending in .png")
    refuse_to_replace(path, _is_png, "a PNG image", "choose another name")
    with replace_on_success(path, "wb", what="the plot", cannot_open=InputError) as handle:
        figure.savefig(handle, format="png", dpi=DPI)


def _is_png(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError as exc:
        raise InputError(f"{path}: cannot read the existing file ({exc.strerror}); not overwriting it") from None
