"""Metrics of predicted class probabilities: log loss, ROC AUC, average precision (PR AUC), Brier score and the
expected calibration error; and MAPE and the median absolute error of regression residuals.

Each takes every row at once (a ranking needs all scores): the true class indices y (n,) and the class
probabilities P (n, k), k = 2 for a binary model (columns 1 - p, p). They equal scikit-learn's `log_loss`,
`roc_auc_score` (binary; `multi_class="ovr"`, `average="macro"` for more classes), `average_precision_score`
(macro one-vs-rest for more classes), `brier_score_loss` and `mean_absolute_percentage_error` /
`median_absolute_error`. A one-vs-rest score is averaged over the classes it is defined for (ROC AUC: the class
has both positive and negative rows; average precision: it has positive rows); NaN when there is none.

Each also takes optional row weights w (n,) (`nnctl.engine.weighted`: weight 2 counts a row twice) and then equals
scikit-learn's with `sample_weight=w`; a class is defined by its rows of positive weight.
"""

from __future__ import annotations

import numpy as np

from nnctl._types import Array, IntArray
from nnctl.engine.weighted import total

ECE_BINS = 15  # equal-width bins of the top-class confidence on [0, 1]


def log_loss(y: IntArray, P: Array, w: Array | None = None) -> float:
    """Mean (weighted: Σ w l / Σ w) of l = -log P[i, y_i], the probabilities clipped to [eps, 1 - eps] as
    scikit-learn does."""
    return ProbabilitySums(P.shape[1]).add(y, P, np.asarray(P).argmax(axis=1), w).result()["log_loss"]


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks of the scores s (n,), tied scores sharing their average rank (one argsort)."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # first position of each run of ties
    ends = np.r_[starts[1:], len(s)]
    group_rank = (starts + 1 + ends) / 2.0  # mean of the 1-based positions starts+1 .. ends
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def binary_roc_auc(positive: np.ndarray, s: np.ndarray, w: Array | None = None) -> float:
    """Area under the ROC curve of scores s (n,) for the boolean labels `positive` (n,), from the Mann-Whitney U
    statistic (ties count one half); NaN without both positive and negative rows (of positive total weight)."""
    if w is not None:
        return _weighted_roc_auc(positive, np.asarray(s, np.float64), np.asarray(w, np.float64))
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    u = float(_average_ranks(np.asarray(s, np.float64))[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _weighted_roc_auc(positive: np.ndarray, s: np.ndarray, w: Array) -> float:
    """Weighted Mann-Whitney: Σ_{positive i, negative j} w_i w_j ([s_i > s_j] + ½[s_i = s_j]) / (W_pos W_neg) of
    scores s (n,) and weights w (n,), in O(n log n): per run of tied scores, its positive weight times the negative
    weight below the run plus half the run's own."""
    w_pos = np.where(positive, w, 0.0)
    w_neg = w - w_pos
    weight_pos, weight_neg = float(np.sum(w_pos)), float(np.sum(w_neg))
    if weight_pos <= 0 or weight_neg <= 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # first position of each run of ties
    run_pos, run_neg = np.add.reduceat(w_pos[order], starts), np.add.reduceat(w_neg[order], starts)
    below = np.r_[0.0, np.cumsum(run_neg)[:-1]]  # negative weight of the lower scores
    return float(run_pos @ (below + 0.5 * run_neg)) / (weight_pos * weight_neg)


def binary_average_precision(positive: np.ndarray, s: np.ndarray, w: Array | None = None) -> float:
    """Average precision Σ (R_t - R_{t-1}) P_t over the distinct thresholds t of the scores s (n), highest first
    (no interpolation); NaN without positive rows (of positive total weight). With weights w (n,), the true and
    false positives above each threshold are summed weights, as scikit-learn's (rows of weight 0 left out)."""
    if w is not None:
        return _weighted_average_precision(positive, np.asarray(s, np.float64), np.asarray(w, np.float64))
    n_pos = int(np.count_nonzero(positive))
    if not n_pos:
        return float("nan")
    order = np.argsort(-np.asarray(s, np.float64), kind="mergesort")
    sorted_s = np.asarray(s, np.float64)[order]
    last = np.r_[np.flatnonzero(sorted_s[1:] != sorted_s[:-1]), len(s) - 1]  # last row above each threshold
    tps = np.cumsum(positive[order])[last]
    precision = tps / (last + 1.0)
    recall = tps / n_pos
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _weighted_average_precision(positive: np.ndarray, s: np.ndarray, w: Array) -> float:
    """`binary_average_precision` with weights w (n,): tps, fps the cumulative positive and negative weight."""
    keep = w > 0  # a row of weight 0 must not add a threshold (its precision would be 0 / 0)
    positive, s, w = positive[keep], s[keep], w[keep]
    w_pos = np.where(positive, w, 0.0)
    if not len(w) or float(np.sum(w_pos)) <= 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    sorted_s = s[order]
    last = np.r_[np.flatnonzero(sorted_s[1:] != sorted_s[:-1]), len(s) - 1]  # last row above each threshold
    tps = np.cumsum(w_pos[order])[last]
    fps = np.cumsum((w - w_pos)[order])[last]
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _one_vs_rest(y: IntArray, P: Array, score: str, w: Array | None = None) -> float:
    """The binary score (`roc_auc` or `pr_auc`) of the positive class (k = 2) or the macro one-vs-rest mean."""
    metric = binary_roc_auc if score == "roc_auc" else binary_average_precision
    if P.shape[1] == 2:
        return metric(y == 1, P[:, 1], w)
    values = np.array([metric(y == k, P[:, k], w) for k in range(P.shape[1])])
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def roc_auc(y: IntArray, P: Array, w: Array | None = None) -> float:
    """ROC AUC: binary, or the macro mean over classes of one-vs-rest AUCs (each weighted by w (n,) if given)."""
    return _one_vs_rest(y, P, "roc_auc", w)


def pr_auc(y: IntArray, P: Array, w: Array | None = None) -> float:
    """Average precision: binary, or the macro mean over classes of one-vs-rest average precisions."""
    return _one_vs_rest(y, P, "pr_auc", w)


def brier(y: IntArray, P: Array, w: Array | None = None) -> float:
    """Brier score as scikit-learn's `brier_score_loss`: binary, the mean of (p - y)² (p the positive class's
    probability); more classes, the mean over rows of Σ_k (P_k - [y = k])² (range 0 to 2). Weighted means with
    w (n,)."""
    return ProbabilitySums(P.shape[1]).add(y, P, np.asarray(P).argmax(axis=1), w).result()["brier"]


def ece(y: IntArray, P: Array, predicted: IntArray, bins: int = ECE_BINS, w: Array | None = None) -> float:
    """Expected calibration error Σ_b |acc_b - conf_b| n_b / n: the predicted class's probability (the top-class
    confidence) in `bins` equal-width bins (lower, upper] of [0, 1], acc_b the bin's share of correct rows. With
    weights w (n,): Σ_b |Σ_b w·correct - Σ_b w·confidence| / Σ w."""
    return ProbabilitySums(P.shape[1], bins).add(y, P, predicted, w).result()["ece"]


class ProbabilitySums:
    """Log loss, Brier score and ECE as sums over rows that arrive in chunks (memory does not grow with the rows):
    Σ -log p_true, Σ_rows Σ_k (P_k - [y = k])², and per confidence bin its rows, correct rows and confidences.
    With row weights each sum is weighted (a bin's `count` its rows' weight); `weight` is the rows' total weight
    (their count when unweighted)."""

    def __init__(self, n_classes: int, bins: int = ECE_BINS) -> None:
        self.n_classes, self.bins = n_classes, bins
        self.log_loss = self.brier = self.weight = 0.0
        self.count, self.correct, self.confidence = np.zeros(bins), np.zeros(bins), np.zeros(bins)

    def add(self, y: IntArray, P: Array, predicted: IntArray, w: Array | None = None) -> ProbabilitySums:
        """One chunk: true classes y (m,), probabilities P (m, k), predicted classes (m,), row weights w (m,)."""
        rows = np.arange(len(y))
        Q = np.asarray(P, np.float64)
        eps = np.finfo(np.float64).eps
        self.weight += len(y) if w is None else float(np.sum(w))
        self.log_loss -= total(np.log(np.clip(Q[rows, y], eps, 1 - eps)), w)
        confidence = Q[rows, predicted]
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        b = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, self.bins - 1)
        hit = (predicted == y).astype(np.float64)
        self.count += np.bincount(b, weights=w, minlength=self.bins)
        self.correct += np.bincount(b, weights=hit if w is None else hit * w, minlength=self.bins)
        self.confidence += np.bincount(b, weights=confidence if w is None else confidence * w, minlength=self.bins)
        Q = Q.copy()
        Q[rows, y] -= 1.0
        self.brier += total(np.einsum("ij,ij->i", Q, Q), w)
        return self

    def result(self, rows: float | None = None) -> dict[str, float]:
        """log_loss, brier and ece over `rows` rows, or by default over the added rows' total weight (NaN for
        none)."""
        rows = self.weight if rows is None else rows
        if not rows:
            return dict.fromkeys(("log_loss", "brier", "ece"), float("nan"))
        half = 2.0 if self.n_classes == 2 else 1.0  # binary: the positive class's (p - y)², half the two columns'
        return {"log_loss": self.log_loss / rows, "brier": self.brier / half / rows,
                "ece": float(np.sum(np.abs(self.correct - self.confidence)) / rows)}


def probability_metrics(y: IntArray, P: Array, predicted: IntArray, w: Array | None = None) -> dict[str, float]:
    """log_loss, roc_auc, pr_auc, brier and ece of the true classes y (n,), probabilities P (n, k) and the
    predicted classes (n,), weighted by w (n,) if given."""
    sums = ProbabilitySums(P.shape[1]).add(y, P, predicted, w).result()
    return {"log_loss": sums["log_loss"], "roc_auc": roc_auc(y, P, w), "pr_auc": pr_auc(y, P, w),
            "brier": sums["brier"], "ece": sums["ece"]}


def ape_sum(y_true: np.ndarray, y_pred: np.ndarray, w: Array | None = None) -> float:
    """Σ |y - ŷ| / max(|y|, eps) over rows (y_true, y_pred (n,); weighted: Σ w·that with w (n,)): MAPE's
    numerator, summed chunk by chunk. MAPE is it over the row count (or total weight), as scikit-learn's (a
    fraction, not a percentage; huge when some y is 0)."""
    truth = np.asarray(y_true, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return total(np.abs(truth - y_pred) / np.maximum(np.abs(truth), np.finfo(np.float64).eps), w)
