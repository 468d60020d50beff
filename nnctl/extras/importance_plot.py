"""The picture `nnctl importance --plot` draws: one horizontal bar per raw column, its mean importance, with the
sample standard deviation over the repeats as an error bar, the most important column on top.

Drawn like `nnctl.extras.plot`'s figures (matplotlib's object-oriented API, imported only here) and written with
its `save_png`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnctl.extras.plot import TRAIN_COLOR, _figure, _plain

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nnctl.inference.importance import Importance

WIDTH = 7.5  # inches; the height grows with the columns
ROW_HEIGHT = 0.32
MIN_HEIGHT = 2.6


def importance_figure(result: Importance, heading: str, *, feature: str = "drawing a plot") -> Figure:
    """Horizontal bars, the most important column on top: the mean drop of the metric per column, with ±sd error
    bars (none with a single repeat), a line at zero (noise sits around it), the baseline in the title."""
    columns = result.columns
    height = max(MIN_HEIGHT, 1.3 + ROW_HEIGHT * len(columns))
    figure = _figure((WIDTH, height), feature)
    ax = figure.add_subplot()
    positions = list(range(len(columns)))[::-1]  # the first (most important) column at the top
    means = [c.mean for c in columns]
    errors = [c.std or 0.0 for c in columns] if result.repeats > 1 else None
    ax.barh(positions, means, xerr=errors, color=TRAIN_COLOR, alpha=0.8, ecolor="0.25", capsize=3, height=0.7)
    ax.set_yticks(positions, labels=[_plain(c.name) for c in columns])
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    rise = "drop" if result.higher_is_better else "rise"
    ax.set_xlabel(f"{result.metric} {rise} when the column is shuffled"
                  + (" (mean ± sd)" if result.repeats > 1 else ""))
    ax.grid(True, axis="x", alpha=0.3)
    ax.margins(y=0.02)
    repeats = f"{result.repeats} repeat{'s' if result.repeats > 1 else ''}"
    figure.suptitle(f"{_plain(heading)}\npermutation importance: baseline {result.metric} {result.baseline:.4f}, "
                    f"{result.rows:,} rows, {repeats}", fontsize="medium")
    return figure
