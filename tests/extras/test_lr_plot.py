"""`lr-find --plot`'s figure shows the test's own numbers: the losses against the rates, on a log axis, with the
suggested rate and the config's marked."""

from __future__ import annotations

import pytest

from nnctl.extras.lr_plot import LR_SIZE, lr_figure
from nnctl.extras.plot import DPI
from nnctl.training.lr_find import RangeTest

pytest.importorskip("matplotlib")


def test_the_figure_draws_the_test():
    rates = [1e-4 * 10 ** (i / 4) for i in range(17)]  # 1e-4 .. 1
    losses = [2.0 - 0.1 * i if i < 12 else 0.8 + 0.5 * (i - 11) for i in range(17)]
    smoothed = [v + 0.01 for v in losses]
    test = RangeTest(rates, losses, smoothed, suggested=rates[6], why="steepest", stopped=None, start=1e-4, end=1.0,
                     steps=17, batch_size=16, optimizer="adam", learning_rate=0.003)
    figure = lr_figure(test, "a$b.yaml")
    assert tuple(figure.get_size_inches() * DPI) == tuple(x * DPI for x in LR_SIZE)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["batch loss"].get_ydata()) == losses and list(lines["smoothed loss"].get_xdata()) == rates
    assert list(lines[f"suggested {rates[6]:.3g}"].get_xdata()) == [rates[6], rates[6]]
    assert list(lines["the config's 0.003"].get_xdata()) == [0.003, 0.003]
    assert figure.get_suptitle().startswith(r"a\$b.yaml: learning-rate range test, adam, 17 steps of 16 rows")
