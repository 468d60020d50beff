"""Metrics of predicted class probabilities: log loss, ROC AUC, average precision (PR AUC), Brier score and the
expected calibration error; and MAPE and the median absolute error of regression residuals.

Each takes every row at once (a ranking needs all scores): the true class indices y (n,) and the class
probabilities P (n, k), k = 2 for a binary model (columns 1 - p, p). They equal scikit-learn's `log_loss`,
`roc_auc_score` (binary; `multi_class="ovr"`, `average="macro"` for more classes), `average_precision_score`
(macro one-vs-rest for more classes), `brier_score_loss` and `mean_absolute_percentage_error` /
`median_absolute_error`. A one-vs-rest score is averaged over the classes it is defined for (ROC AUC: the class
has both positive and negative rows; average precision: it has positive rows); NaN when there is none.
"""

from __future__ import annotations

import numpy as np

from nnctl._types import Array, IntArray

ECE_BINS = 15  # equal-width bins of the top-class confidence on [0, 1]


def log_loss(y: IntArray, P: Array) -> float:
    """Mean of -log P[i, y_i], the probabilities clipped to [eps, 1 - eps] as scikit-learn does."""
    return ProbabilitySums(P.shape[1]).add(y, P, np.asarray(P).argmax(axis=1)).result(len(y))["log_loss"]


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


def binary_roc_auc(positive: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve of scores s (n,) for the boolean labels `positive` (n,), from the Mann-Whitney U
    statistic (ties count one half); NaN without both positive and negative rows."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    u = float(_average_ranks(np.asarray(s, np.float64))[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def binary_average_precision(positive: np.ndarray, s: np.ndarray) -> float:
    """Average precision Σ (R_t - R_{t-1}) P_t over the distinct thresholds t of the scores s (n), highest first
    (no interpolation); NaN without positive rows."""
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


def _one_vs_rest(y: IntArray, P: Array, score: str) -> float:
    """The binary score (`roc_auc` or `pr_auc`) of the positive class (k = 2) or the macro one-vs-rest mean."""
    metric = binary_roc_auc if score == "roc_auc" else binary_average_precision
    if P.shape[1] == 2:
        return metric(y == 1, P[:, 1])
    values = np.array([metric(y == k, P[:, k]) for k in range(P.shape[1])])
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def roc_auc(y: IntArray, P: Array) -> float:
    """ROC AUC: binary, or the macro mean over classes of one-vs-rest AUCs."""
    return _one_vs_rest(y, P, "roc_auc")


def pr_auc(y: IntArray, P: Array) -> float:
    """Average precision: binary, or the macro mean over classes of one-vs-rest average precisions."""
    return _one_vs_rest(y, P, "pr_auc")


def brier(y: IntArray, P: Array) -> float:
    """Brier score as scikit-learn's `brier_score_loss`: binary, the mean of (p - y)² (p the positive class's
    probability); more classes, the mean over rows of Σ_k (P_k - [y = k])² (range 0 to 2)."""
    return ProbabilitySums(P.shape[1]).add(y, P, np.asarray(P).argmax(axis=1)).result(len(y))["brier"]


def ece(y: IntArray, P: Array, predicted: IntArray, bins: int = ECE_BINS) -> float:
    """Expected calibration error Σ_b |acc_b - conf_b| n_b / n: the predicted class's probability (the top-class
    confidence) in `bins` equal-width bins (lower, upper] of [0, 1], acc_b the bin's share of correct rows."""
    return ProbabilitySums(P.shape[1], bins).add(y, P, predicted).result(len(y))["ece"]


class ProbabilitySums:
    """Log loss, Brier score and ECE as sums over rows that arrive in chunks (memory does not grow with the rows):
    Σ -log p_true, Σ_rows Σ_k (P_k - [y = k])², and per confidence bin its rows, correct rows and confidences."""

    def __init__(self, n_classes: int, bins: int = ECE_BINS) -> None:
        self.n_classes, self.bins = n_classes, bins
        self.log_loss = self.brier = 0.0
        self.count, self.correct, self.confidence = np.zeros(bins), np.zeros(bins), np.zeros(bins)

    def add(self, y: IntArray, P: Array, predicted: IntArray) -> ProbabilitySums:
        """One chunk: true classes y (m,), probabilities P (m, k), predicted classes (m,)."""
        rows = np.arange(len(y))
        Q = np.asarray(P, np.float64)
        eps = np.finfo(np.float64).eps
        self.log_loss += float(-np.sum(np.log(np.clip(Q[rows, y], eps, 1 - eps))))
        confidence = Q[rows, predicted]
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        b = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, self.bins - 1)
        self.count += np.bincount(b, minlength=self.bins)
        self.correct += np.bincount(b, weights=(predicted == y).astype(np.float64), minlength=self.bins)
        self.confidence += np.bincount(b, weights=confidence, minlength=self.bins)
        Q = Q.copy()
        Q[rows, y] -= 1.0
        self.brier += float(np.sum(np.einsum("ij,ij->i", Q, Q)))
        return self

    def result(self, rows: int) -> dict[str, float]:
        """log_loss, brier and ece over `rows` rows (NaN for none)."""
        if not rows:
            return dict.fromkeys(("log_loss", "brier", "ece"), float("nan"))
        half = 2.0 if self.n_classes == 2 else 1.0  # binary: the positive class's (p - y)², half the two columns'
        return {"log_loss": self.log_loss / rows, "brier": self.brier / half / rows,
                "ece": float(np.sum(np.abs(self.correct - self.confidence)) / rows)}


def probability_metrics(y: IntArray, P: Array, predicted: IntArray) -> dict[str, float]:
    """log_loss, roc_auc, pr_auc, brier and ece of the true classes y (n,), probabilities P (n, k) and the
    predicted classes (n,)."""
    sums = ProbabilitySums(P.shape[1]).add(y, P, predicted).result(len(y))
    return {"log_loss": sums["log_loss"], "roc_auc": roc_auc(y, P), "pr_auc": pr_auc(y, P), "brier": sums["brier"],
            "ece": sums["ece"]}


def ape_sum(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Σ |y - ŷ| / max(|y|, eps) over rows (y_true, y_pred (n,)): MAPE's numerator, summed chunk by chunk. MAPE
    is it over the row count, as scikit-learn's (a fraction, not a percentage; huge when some y is 0)."""
    truth = np.asarray(y_true, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(np.abs(truth - y_pred) / np.maximum(np.abs(truth), np.finfo(np.float64).eps)))
