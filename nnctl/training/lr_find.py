"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural Networks", section 3.3):
train from the config's initial weights for a few hundred batches while the learning rate rises exponentially,
watch the loss, and suggest a rate.

The run is built exactly as `train` builds it (the same data, split, preprocessing, initial weights, optimizer
with its momentum and weight decay, clip_norm and dropout, the first batches in the same shuffled order), and
then step i of N takes the rate r_i = start * (end / start)^(i / (N - 1)) instead of the schedule's: the config's
schedule and early stopping play no part. Each batch's loss is measured before its step (the loss the rate so far
has produced). The loss is smoothed with an exponential moving average with bias correction, beta = 0.9 (fastai's
0.98 lags about 50 steps, two decades of rate at the defaults, and moved the suggestion up by as much), and the
test stops early once the smoothed loss exceeds 4 times its best, or a loss is not finite.

The suggested rate is the one where the smoothed loss falls fastest against log rate, before its minimum
(fastai's "steep"): there the loss is still falling and the rate has clearly started to matter, a decade or so
below where the run blows up. When there is no falling stretch to measure (the minimum comes within the first few
steps), it is the rate at the minimum divided by 10 (Smith's rule of thumb). Nothing is saved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnctl._types import Array
from nnctl.config.schema import Config
from nnctl.data.load import load_dataset
from nnctl.errors import InputError, TrainingError
from nnctl.model.model import Model
from nnctl.training.loop import Loop, clip_global_norm
from nnctl.training.setup import build_loop, loss_options, resolve_layers

STEPS, START, END = 200, 1e-7, 10.0
BETA = 0.9  # the moving average's weight of the past: it lags about 10 steps (0.4 decades at the defaults)
DIVERGED = 4.0  # the test stops once the smoothed loss exceeds this many times its best
LAG = round(BETA / (1 - BETA))  # steps the moving average trails the losses by: a ramp comes out this late
SLOPE_SPAN = 0.5  # decades of rate over which a slope is measured
SKIP = 0.1  # the first tenth of the steps is not searched for the steepest descent: the average is still settling
Warn = Callable[[str], None]


@dataclass
class RangeTest:
    """A range test's steps: step i trained one batch at `rates[i]` and measured `losses[i]` before its step;
    `smoothed[i]` is their bias-corrected moving average. `suggested` is the rate to train with, `why` how it was
    chosen; `stopped` says why the test ended before `steps` steps (None when it ran them all)."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float
    why: str
    stopped: str | None
    start: float
    end: float
    steps: int
    batch_size: int
    optimizer: str
    learning_rate: float  # the rate the config trains with (its optimizer.learning_rate, or the default)

    @property
    def suggested_index(self) -> int:
        """The step whose rate is nearest the suggestion (in log rate)."""
        logs = np.log(np.asarray(self.rates))
        return int(np.argmin(np.abs(logs - math.log(self.suggested))))

    @property
    def ceiling(self) -> float:
        """The highest smoothed loss of the first tenth of the steps, before any rate mattered: what a view of the
        curve shows in full (the diverging end rises far above it and would flatten the dip that matters)."""
        return max(self.smoothed[: max(1, len(self.smoothed) // 10)])

    def to_json(self) -> dict[str, Any]:
        """What `lr-find --json` prints."""
        return {"suggested": self.suggested, "rates": self.rates, "losses": self.losses, "smoothed": self.smoothed,
                "why": self.why, "stopped": self.stopped, "optimizer": self.optimizer,
                "learning_rate": self.learning_rate, "batch_size": self.batch_size}


def rate_range(start: float, end: float, steps: int) -> Array:
    """r_i = start * (end / start)^(i / (steps - 1)), i = 0 .. steps - 1: evenly spaced in log rate, (steps,)."""
    check_range(start, end, steps)
    return start * (end / start) ** (np.arange(steps, dtype=np.float64) / (steps - 1))


def check_range(start: float, end: float, steps: int) -> None:
    """InputError unless 0 < start < end (both finite) and steps >= 5: before any data is read."""
    if not (math.isfinite(start) and start > 0):
        raise InputError(f"{{start}} {start:g}: the first rate must be a positive number, e.g. 1e-7",
                         arguments=("start",))
    if not (math.isfinite(end) and end > start):
        raise InputError(f"{{end}} {end:g}: the last rate must be larger than the first ({start:g}), e.g. 10",
                         arguments=("end",))
    if steps < 5:
        raise InputError(f"{{steps}} {steps}: the test needs at least 5 steps (200 is usual)", arguments=("steps",))


def smooth(losses: Array, beta: float = BETA) -> Array:
    """The exponential moving average of `losses` (n,) with bias correction: s_i = a_i / (1 - beta^(i+1)),
    a_i = beta a_{i-1} + (1 - beta) loss_i, so the first values are the mean so far, not pulled towards 0."""
    out = np.empty(len(losses), np.float64)
    average = 0.0
    for i, value in enumerate(losses):
        average = beta * average + (1 - beta) * float(value)
        out[i] = average / (1 - beta ** (i + 1))
    return out


def suggest(rates: Array, smoothed: Array) -> tuple[float, str]:
    """(rate, how it was chosen): where `smoothed` falls fastest against log10 rate before its minimum, after the
    first `SKIP` of the steps, moved back by the average's lag; else the rate at the minimum / 10.

    The slope at step i is measured across the steps within `SLOPE_SPAN` / 2 decades of it on either side, not
    between neighbours: a neighbour's difference is mostly the batches' noise (one step is 0.04 decades at the
    defaults), and its steepest point lands anywhere."""
    low = int(np.argmin(smoothed))
    logs = np.log10(rates)
    step = (logs[-1] - logs[0]) / (len(logs) - 1) if len(logs) > 1 else 1.0
    h = max(1, round(SLOPE_SPAN / 2 / step)) if step > 0 else 1
    first = max(h, int(SKIP * len(rates)))
    centres = np.arange(first, low - h + 1)
    if len(centres):
        slopes = (smoothed[centres + h] - smoothed[centres - h]) / (logs[centres + h] - logs[centres - h])
        k = int(np.argmin(slopes))
        if slopes[k] < 0:
            at = max(0, int(centres[k]) - LAG)  # the raw losses' steepest stretch came LAG steps before the average's
            return float(rates[at]), (f"steepest fall of the smoothed loss ({-slopes[k]:.2g} per decade); "
                                      f"minimum at {rates[low]:.2g}")
    return float(rates[low]) / 10, f"a tenth of the rate at the smoothed loss's minimum ({rates[low]:.2g})"


def lr_find(config: Config, *, steps: int = STEPS, start: float = START, end: float = END,
            warn: Warn | None = None) -> RangeTest:
    """Run the range test on `config` (see the module docstring); `warn` hears the data's warnings.

    InputError for a bad range or config; TrainingError when the very first batch's loss is not finite."""
    rates = rate_range(start, end, steps)
    rng = np.random.default_rng(config.seed)
    dataset = load_dataset(config, rng, warn or (lambda message: None))
    try:
        layers = resolve_layers(config, dataset)
        network = layers.network(config.training.dtype)
        network.initialise(layers.inits, rng)
        model = Model(network, dataset.preprocessor, dataset.target, dataset.loss,
                      loss_options=loss_options(config, None))
        loop = build_loop(config, dataset, model, rng)
        dataset.open()
        losses, stopped = _steps(loop, rates)
    finally:
        dataset.close()
    if not losses:
        raise TrainingError(f"{config.source}: the loss of the first batch is not finite; check the data's scale")
    taken = rates[: len(losses)]
    smoothed = smooth(np.asarray(losses))
    suggested, why = suggest(taken, smoothed)
    return RangeTest([float(r) for r in taken], losses, [float(s) for s in smoothed], suggested, why, stopped,
                     start, end, steps, loop.batch, config.optimizer.name, loop.base_rate)


def _batches(loop: Loop) -> Iterator[tuple[Array, Array, Array | None]]:
    """(X, Y, w) batches as the training loop draws them, epoch after epoch, without end."""
    B = loop.batch
    while True:
        for X, parts, gather in loop.train.segments(loop.rng if loop.shuffle else None, B, loop.wide):
            Y, w = parts.Y, parts.w
            for begin in range(0, len(Y), B):
                rows = slice(begin, begin + B)
                Xb = X[rows] if gather is None else loop.gather(X, gather[rows])
                yield Xb, Y[rows], None if w is None else w[rows]


def _steps(loop: Loop, rates: Array) -> tuple[list[float], str | None]:
    """Train one batch per rate; each batch's loss (before its step), and why the test stopped early, if it did."""
    network, loss, optimizer, ws = loop.model.network, loop.model.loss_function, loop.optimizer, loop.ws
    rng = loop.rng if loop.dropout else None
    losses: list[float] = []
    best, average = math.inf, 0.0
    batches = _batches(loop)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the test ends by blowing the run up
        for i, rate in enumerate(rates):
            Xb, Yb, wb = next(batches)
            A = network.forward_train(ws, Xb, rng)
            value = loss.value(A, Yb, ws.scratch[-1][: len(Xb)], wb)
            if not math.isfinite(value):
                return losses, f"the loss became {value} at rate {rate:.2g} (step {i + 1})"
            losses.append(value)
            average = BETA * average + (1 - BETA) * value
            smoothed = average / (1 - BETA ** (i + 1))
            best = min(best, smoothed)
            if smoothed > DIVERGED * best:
                return losses, f"the smoothed loss passed {DIVERGED:g}× its best at rate {rate:.2g} (step {i + 1})"
            network.backward(ws, Xb, Yb, loss, wb, dropout=loop.dropout)
            if loop.clip_norm is not None:
                clip_global_norm(network.grads, loop.clip_norm)
            optimizer.learning_rate = float(rate)
            optimizer.step(network.grads)
    return losses, None
