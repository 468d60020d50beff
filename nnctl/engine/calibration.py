"""Fitting what a classifier decides with after training, on held-out rows: one temperature T that rescales the
output layer's pre-activation Z (softmax(Z / T), or sigmoid(z / T) for one sigmoid unit), and a decision threshold
on the second class's probability.

Everything is float64. The log-loss of softmax(Z / T) is convex in 1 / T, so it has one minimum along log T,
which a golden-section search over a bounded interval finds; T = 1 is compared at the end, so the result is never
worse than leaving the model as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nnctl._types import Array

LOG_T_RANGE = (-6.0, 6.0)  # T between about 0.0025 and 400
_TOL = 1e-6
THRESHOLD_CRITERIA = ("f1", "youden", "balanced_accuracy")


def log_loss(Z: Array, y: np.ndarray, T: float, binary: bool, w: np.ndarray | None = None) -> float:
    """Mean log-loss of the class probabilities softmax(Z / T) (Z (n, k)) or, `binary`, sigmoid(z / T) (Z (n, 1)),
    for true class indices y (n,); the weighted mean with row weights w (n,)."""
    S = np.asarray(Z, np.float64) / T
    if binary:
        z = S[:, 0]
        # -log sigmoid(z) for y = 1, -log sigmoid(-z) for y = 0, both as logaddexp(0, -/+z)
        losses = np.logaddexp(0.0, np.where(y == 1, -z, z))
    else:
        top = S.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(S - top).sum(axis=1))
        losses = log_norm - S[np.arange(len(y)), y]
    return float(np.mean(losses)) if w is None else float(losses @ w / w.sum())


def fit_temperature(Z: Array, y: np.ndarray, binary: bool, w: np.ndarray | None = None) -> float:
    """The temperature T > 0 that minimises `log_loss(Z, y, T, binary, w)`: golden section over log T in
    LOG_T_RANGE, then T = 1 if that is at least as good."""

    def f(s: float) -> float:
        return log_loss(Z, y, math.exp(s), binary, w)

    s = _golden_section(f, *LOG_T_RANGE)
    T = math.exp(s)
    return T if f(s) < log_loss(Z, y, 1.0, binary, w) else 1.0


def _golden_section(f: Callable[[float], float], low: float, high: float) -> float:
    """The minimiser of a unimodal f on [low, high], to within _TOL."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > _TOL:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return c if fc <= fd else d


def threshold_scores(p: np.ndarray, y: np.ndarray, criterion: str,
                     w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every cut point t among the distinct values of p (n,) strictly between 0 and 1, ascending, and the
    criterion's value when rows with p >= t are predicted as the second class (y (n,) is 1 for it, else 0); rows
    count with their weights w (n,) when given."""
    p = np.asarray(p)
    positive = np.asarray(y) == 1
    weight = np.ones(len(p)) if w is None else np.asarray(w, np.float64)
    order = np.argsort(-p, kind="stable")
    ps, pos, ws = p[order], positive[order], weight[order]
    tp, fp = np.cumsum(pos * ws), np.cumsum(~pos * ws)
    last = np.r_[ps[1:] != ps[:-1], True]  # the last row of each run of equal p: counts for t = that p
    cuts, tp, fp = ps[last], tp[last], fp[last]
    P, N = float(weight[positive].sum()), float(weight[~positive].sum())
    if criterion == "f1":
        values = 2 * tp / (P + tp + fp)
    elif criterion == "youden":
        values = tp / P - fp / N
    elif criterion == "balanced_accuracy":
        values = (tp / P + (N - fp) / N) / 2
    else:
        raise ValueError(f"unknown threshold criterion '{criterion}' (choose from {', '.join(THRESHOLD_CRITERIA)})")
    inside = (cuts > 0) & (cuts < 1)
    return cuts[inside][::-1].astype(np.float64), values[inside][::-1]


def best_threshold(p: np.ndarray, y: np.ndarray, criterion: str, w: np.ndarray | None = None) -> float:
    """The threshold that maximises the criterion over the cut points of `threshold_scores` (of equally good ones,
    the nearest to 0.5): halfway between that cut point and the next lower value of p (in p's dtype), so a row whose
    probability is computed a rounding error differently is not decided by it. ValueError when y lacks one of the
    two classes (of positive weight, with row weights w (n,)) or no p lies strictly inside (0, 1)."""
    p = np.asarray(p)
    positive = np.asarray(y) == 1
    if w is not None:
        positive, p, y = positive[w > 0], p[w > 0], np.asarray(y)[w > 0]
        w = w[w > 0]
    if positive.all() or not positive.any():
        raise ValueError("the validation rows hold only one of the two classes")
    cuts, values = threshold_scores(p, y, criterion, w)
    if not len(cuts):
        raise ValueError("every validation probability is exactly 0 or 1")
    best = np.flatnonzero(values >= values.max() - 1e-12)
    cut = float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])
    below = p[p < cut]
    lower = float(below.max()) if below.size else 0.0
    halfway = float(p.dtype.type((lower + cut) / 2)) if p.dtype.kind == "f" else (lower + cut) / 2
    return halfway if lower < halfway <= cut else cut
