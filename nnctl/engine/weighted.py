"""Per-row sample weights for the metrics: a weight w_i >= 0 counts row i as w_i rows (2: the row twice; 0: the
row left out). The weighted totals, mean and spread (merged chunk by chunk) and the weighted median the metrics
share; with `w=None` the metrics keep their unweighted formulas, so their results stay the same bits.
"""

from __future__ import annotations

import numpy as np

from nnctl._types import Array


def total(x: np.ndarray, w: Array | None) -> float:
    """Σ x over rows of x (n,), or Σ w·x with the row weights w (n,)."""
    return float(np.sum(x)) if w is None else float(x @ w)


def weighted_squared_deviations(values: np.ndarray, w: Array) -> float:
    """Σ w (v - v̄_w)² of values (n,) around their weighted mean v̄_w = Σ w v / Σ w (0 when Σ w = 0): R²'s weighted
    SS_tot, as scikit-learn's `r2_score` with `sample_weight`."""
    weight = float(np.sum(w))
    if weight <= 0:
        return 0.0
    v = np.asarray(values, np.float64)
    return float(((v - float(v @ w) / weight) ** 2) @ w)


class WeightedSpread:
    """Total weight W, weighted mean and M2 = Σ w (v - mean)² of values that arrive in chunks, merged with Chan,
    Golub and LeVeque's parallel update with weights: W = W_a + W_b, δ = mean_b - mean_a,
    M2 = M2_a + M2_b + δ² W_a W_b / W. After one chunk M2 is exactly `weighted_squared_deviations` of it."""

    def __init__(self) -> None:
        self.weight = self.mean = self.m2 = 0.0

    def add(self, values: np.ndarray, w: Array) -> None:
        """One chunk: values (m,) and their weights w (m,). A chunk of total weight 0 changes nothing."""
        weight_b = float(np.sum(w))
        if weight_b <= 0:
            return
        mean_b = float(np.asarray(values, np.float64) @ w) / weight_b
        m2_b = weighted_squared_deviations(values, w)
        if self.weight <= 0:  # nothing to merge with: the chunk's own numbers, exactly
            self.weight, self.mean, self.m2 = weight_b, mean_b, m2_b
            return
        weight = self.weight + weight_b
        delta = mean_b - self.mean
        self.m2 += m2_b + delta * delta * self.weight * weight_b / weight
        self.mean += delta * weight_b / weight
        self.weight = weight


def weighted_median(values: np.ndarray, w: Array) -> float:
    """The weighted median of values (n,) with weights w (n,), as scikit-learn 1.9's `_weighted_percentile(...,
    50, average=True)` (its `median_absolute_error` with `sample_weight`): the "averaged inverted CDF" -- the
    first value whose cumulative weight reaches half the total, averaged with the next value of positive weight
    when the cumulative weight equals the half exactly (to eps); equal to `np.median` for unit weights. NaN when
    every weight is 0."""
    weights = np.asarray(w, np.float64)
    if not len(weights) or not np.any(weights != 0):
        return float("nan")
    v = np.asarray(values, np.float64)
    order = np.argsort(v, kind="stable")
    cdf = np.cumsum(weights[order])
    half = 0.5 * cdf[-1]
    last = len(v) - 1
    i = min(int(np.searchsorted(cdf, half)), last)  # cdf[i - 1] < half <= cdf[i]
    if cdf[i] - half > np.finfo(np.float64).eps:  # the half falls inside row i's weight
        return float(v[order[i]])
    j = min(i + 1, last)
    if weights[order[j]] == 0:  # skip rows of weight 0: the next value is the next one of positive weight
        j = int(np.searchsorted(cdf, cdf[i], side="right"))
        j = i if j > last else j
    return float((v[order[i]] + v[order[j]]) / 2)
