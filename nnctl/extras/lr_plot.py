"""The picture of a learning-rate range test (`nnctl lr-find --plot`): loss against rate on a log axis.

Each batch's loss is drawn faintly, the smoothed loss over it, and the suggested rate as a vertical line with a
dot on the smoothed curve; the config's own rate is marked too, for comparison. matplotlib is imported only when
the figure is drawn (the `plot` extra), and only through its object-oriented API, as in `nnctl.extras.plot`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nnctl.extras.plot import DPI, TRAIN_COLOR, require_matplotlib

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nnctl.training.lr_find import RangeTest

LR_SIZE = (8.0, 5.0)  # inches; 800 x 500 px
SUGGESTED_COLOR, CONFIG_COLOR = "tab:red", "0.45"


def lr_figure(test: RangeTest, name: str, *, feature: str = "drawing a plot") -> Figure:
    """Loss against learning rate (log x-axis): each batch's loss, the smoothed loss, the suggested rate and the
    config's own. `name` (the config file's name) heads the title."""
    require_matplotlib(feature)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=LR_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(test.rates, test.losses, color=TRAIN_COLOR, alpha=0.3, linewidth=0.8, label="batch loss")
    ax.plot(test.rates, test.smoothed, color=TRAIN_COLOR, linewidth=1.8, label="smoothed loss")
    i = test.suggested_index
    ax.axvline(test.suggested, color=SUGGESTED_COLOR, linestyle="--", linewidth=1.2,
               label=f"suggested {test.suggested:.3g}")
    ax.plot([test.rates[i]], [test.smoothed[i]], marker="o", color=SUGGESTED_COLOR, linestyle="none")
    if test.rates[0] <= test.learning_rate <= test.rates[-1]:
        ax.axvline(test.learning_rate, color=CONFIG_COLOR, linestyle=":", linewidth=1.2,
                   label=f"the config's {test.learning_rate:.3g}")
    ax.set_xscale("log")
    finite = [v for v in test.smoothed if math.isfinite(v)]
    if finite:  # the diverging end would squash the curve: the top stops a little above the starting loss
        low = min(min(finite), *(v for v in test.losses if math.isfinite(v)))  # every batch shown downwards
        high = min(max(finite), test.ceiling + 0.25 * (test.ceiling - min(finite)))
        pad = 0.08 * (high - low or abs(high) or 1.0)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    stopped = "" if test.stopped is None else ", stopped early"
    figure.suptitle((f"{name}: learning-rate range test, {test.optimizer}, {len(test.rates)} steps of "
                           f"{test.batch_size} rows{stopped}").replace("$", r"\$"),
                    fontsize="medium")  # `$` in a file name would start matplotlib's math
    return figure
