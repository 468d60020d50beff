"""Metrics: accuracy, macro precision/recall/F1, balanced accuracy, MCC and the confusion matrix; MAE, RMSE, R²,
MAPE and the median absolute error. The metrics of predicted probabilities (log loss, ROC and PR AUC, Brier, ECE)
are in `probability_metrics`; `Scores` keeps the probabilities of every row they need.

`Scores` computes a model's loss and metrics on rows that arrive in one chunk (rows in memory) or many (a
spill read back block by block, a big CSV); `RunningMetrics` accumulates the training metrics from the batch
outputs the loop has already computed, so they cost no extra pass over the data; `Moments` merges columns'
means and variances chunk by chunk. Regression scores all come from one formula, `regression_scores`.

Every metric takes optional row weights w (n,) (`nnctl.engine.weighted`: weight 2 counts a row twice, 0 leaves it
out) and then equals scikit-learn's with `sample_weight=w`; without them the unweighted formulas run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnctl._types import Array, IntArray
from nnctl.engine.probability_metrics import ProbabilitySums, ape_sum, pr_auc, roc_auc
from nnctl.engine.weighted import WeightedSpread, total, weighted_median, weighted_squared_deviations

# what evaluate and validation report, by task
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "balanced_accuracy", "mcc", "log_loss", "roc_auc",
                  "pr_auc", "brier", "ece")
REGRESSION = ("mae", "rmse", "r2", "mape", "median_ae")
RUNNING_REGRESSION = ("mae", "rmse", "r2")  # the train_* metrics the loop sums from its batch outputs
EVERY_ROW = ("roc_auc", "pr_auc", "median_ae")  # need every row at once: not in the training rows' summary
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "balanced_accuracy", "mcc", "roc_auc", "pr_auc", "r2")


def metric_names(task: str) -> tuple[str, ...]:
    return CLASSIFICATION if task == "classification" else REGRESSION


def confusion_matrix(y_true: IntArray, y_pred: IntArray, n_classes: int, w: Array | None = None) -> np.ndarray:
    """C (n_classes, n_classes): C[i, j] counts rows of true class i predicted as class j (int64); with row
    weights w (n,), it sums their weights (float64)."""
    counts = np.bincount(y_true * n_classes + y_pred, weights=w, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def classification_metrics(C: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-averaged precision, recall and F1, balanced accuracy and MCC from a confusion matrix C
    (n_classes, n_classes) of row counts or (weighted) summed row weights.

    A class never predicted has precision 0 (and a class absent from the rows recall 0), as scikit-learn's
    `zero_division=0`; classes absent from both the rows and the predictions are left out of the averages.
    Balanced accuracy is the mean recall of the classes present in the rows; MCC is scikit-learn's multiclass
    Matthews correlation (0 when a side has a single class). Weighted, a class "present" has positive weight."""
    tp = np.diag(C).astype(np.float64)
    precision, recall, f1, actual = class_scores(C)
    present = (C.sum(axis=0) + actual) > 0
    rows = C.sum()
    return {
        "accuracy": float(tp.sum() / rows) if rows else float("nan"),
        "precision": float(precision[present].mean()) if present.any() else float("nan"),
        "recall": float(recall[present].mean()) if present.any() else float("nan"),
        "f1": float(f1[present].mean()) if present.any() else float("nan"),
        "balanced_accuracy": float(recall[actual > 0].mean()) if (actual > 0).any() else float("nan"),
        "mcc": matthews(C),
    }


def class_scores(C: np.ndarray) -> tuple[Array, Array, Array, np.ndarray]:
    """Per class (n_classes,) of a confusion matrix C (n_classes, n_classes) of counts or weights: precision,
    recall, F1 (0 where undefined) and support (the class's true rows, or their weight)."""
    tp = np.diag(C).astype(np.float64)
    predicted, actual = C.sum(axis=0), C.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, actual


def matthews(C: np.ndarray) -> float:
    """Matthews correlation coefficient of a confusion matrix C (k, k) of counts or weights, k >= 2 (Gorodkin's
    R_K, as scikit-learn)."""
    t, p = C.sum(axis=1).astype(np.float64), C.sum(axis=0).astype(np.float64)
    if np.count_nonzero(t) < 2 or np.count_nonzero(p) < 2:  # summed weights: the covariance could round off 0
        return 0.0
    correct, s = float(np.trace(C)), float(C.sum())
    cov_tp = correct * s - float(t @ p)
    cov_pp = s * s - float(p @ p)
    cov_tt = s * s - float(t @ t)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / np.sqrt(cov_tt * cov_pp))


def regression_scores(abs_sum: float, sq_sum: float, rows: float, ss_total: float) -> dict[str, float]:
    """MAE, RMSE and R² = 1 - SS_res / SS_tot (0 for predicting the mean; 1 for perfect) from the sums of |residual|
    and residual² over `rows` rows and the true values' sum of squared deviations SS_tot. Weighted: the sums are
    Σ w·|r| and Σ w·r², `rows` the total weight and SS_tot around the weighted mean (NaN for a total weight 0)."""
    if rows == 0:
        return dict.fromkeys(("mae", "rmse", "r2"), float("nan"))
    return {
        "mae": abs_sum / rows,
        "rmse": float(np.sqrt(sq_sum / rows)),
        "r2": 1.0 - sq_sum / ss_total if ss_total > 0 else float("nan"),
    }


def squared_deviations(values: np.ndarray, w: Array | None = None) -> float:
    """Sum of squared deviations from the mean (R²'s SS_tot) of values (n,); with row weights w (n,),
    Σ w (v - v̄_w)² around the weighted mean."""
    if w is not None:
        return weighted_squared_deviations(values, w)
    return float(np.sum((values - np.mean(values)) ** 2))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, w: Array | None = None) -> dict[str, float]:
    """MAE, RMSE, R², MAPE and the median absolute error of predictions y_pred (n,) of the values y_true (n,),
    weighted by w (n,) if given (R²'s SS_tot around the weighted mean, the median scikit-learn's weighted one)."""
    residual = np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)
    abs_residual = np.abs(residual)
    if w is not None:
        weights = np.asarray(w, np.float64)
        weight = float(np.sum(weights))
        return {**regression_scores(total(abs_residual, weights), total(residual**2, weights), weight,
                                    squared_deviations(y_true, weights)),
                "mape": ape_sum(y_true, np.asarray(y_pred, np.float64), weights) / weight if weight else float("nan"),
                "median_ae": weighted_median(abs_residual, weights)}
    return {**regression_scores(float(np.sum(abs_residual)), float(np.sum(residual**2)), len(residual),
                                squared_deviations(y_true)),
            "mape": ape_sum(y_true, np.asarray(y_pred, np.float64)) / len(residual),
            "median_ae": float(np.median(abs_residual))}


class RunningMetrics:
    """Training metrics summed over an epoch's batches from outputs A and targets Y already in memory.

    Classification counts correct rows; regression sums |A - Y| and (A - Y)^2 in the loss's (possibly
    standardised) target space and converts back with the target's `scale`.

    With row weights (every batch of an epoch has them, or none does) the sums are weighted and divided by the
    total weight `weight`; `ss_total`, given by the caller, must then be the weighted SS_tot
    (`squared_deviations(values, w)`)."""

    def __init__(self, task: str, binary: bool, scale: float = 1.0, ss_total: float = 0.0) -> None:
        self.task, self.binary, self.scale, self.ss_total = task, binary, scale, ss_total
        self._pred: np.ndarray | None = None
        self._hit: np.ndarray | None = None
        self._hits: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.rows, self.correct, self.abs_sum, self.sq_sum = 0, 0.0, 0.0, 0.0
        self.weight, self.weighted = 0.0, False

    def _buffers(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-row prediction, hit and (for weights) float hit buffers, grown once to the batch size (no allocation
        per batch)."""
        if self._pred is None or self._hit is None or self._hits is None or len(self._pred) < m:
            self._pred, self._hit, self._hits = np.empty(m, np.intp), np.empty(m, bool), np.empty(m)
        return self._pred[:m], self._hit[:m], self._hits[:m]

    def add(self, A: Array, Y: Array, y: np.ndarray, scratch: Array, w: Array | None = None) -> None:
        """Add one batch: outputs A (m, k), loss targets Y (m, k), class indices or values y (m,), scratch (m, k)
        and optionally the rows' weights w (m,)."""
        assert not self.rows or self.weighted == (w is not None), "every batch has weights, or none does"
        self.rows += len(A)
        self.weighted = w is not None
        if w is not None:
            self.weight += float(np.sum(w))
        if self.task == "classification":
            predicted, hit, hits = self._buffers(len(A))
            if self.binary:
                np.greater_equal(A[:, 0], 0.5, out=predicted, casting="unsafe")
            else:
                np.argmax(A, axis=1, out=predicted)
            np.equal(predicted, y, out=hit)
            if w is None:
                self.correct += int(np.count_nonzero(hit))
            else:
                np.copyto(hits, hit)  # as floats, so np.dot sums the hits' weights without a temporary
                self.correct += float(np.dot(hits, w))
        elif w is None:
            np.subtract(A, Y, out=scratch)
            self.sq_sum += float(np.vdot(scratch, scratch))
            np.abs(scratch, out=scratch)
            self.abs_sum += float(scratch.sum(dtype=np.float64))
        else:
            np.subtract(A, Y, out=scratch)
            residual = scratch[:, 0]  # a regression network has one output
            np.abs(residual, out=residual)
            self.abs_sum += float(np.dot(residual, w))
            np.multiply(residual, residual, out=residual)
            self.sq_sum += float(np.dot(residual, w))

    def result(self) -> dict[str, float]:
        if not self.rows:
            return {}
        rows = self.weight if self.weighted else self.rows
        if self.task == "classification":
            return {"accuracy": self.correct / rows if rows else float("nan")}
        return regression_scores(self.abs_sum * self.scale, self.sq_sum * self.scale**2, rows, self.ss_total)


def batched_output(forward: Callable[[Array], Array], X: Array, chunk: int = 8192) -> Array:
    """Network outputs for X in chunks of rows, so temporaries stay bounded on large inputs."""
    if len(X) <= chunk:
        return forward(X)
    return np.concatenate([forward(X[i : i + chunk]) for i in range(0, len(X), chunk)])


class Moments:
    """Count, mean, sum of squared deviations (M2), minimum and maximum of p columns, merged chunk by chunk with
    Chan, Golub and LeVeque's parallel update in float64; NaN values are skipped. Population std = sqrt(M2/count)."""

    def __init__(self, p: int) -> None:
        self.count = np.zeros(p, np.int64)
        self.mean = np.zeros(p)
        self.m2 = np.zeros(p)
        self.low = np.full(p, np.inf)
        self.high = np.full(p, -np.inf)

    def add(self, block: np.ndarray, columns: np.ndarray | None = None) -> None:
        """Add the rows of `block` (m, p), float64 with NaN for a missing value; with `columns` (q,), `block` is
        (m, q) and holds those columns only."""
        if not len(block):
            return
        at = slice(None) if columns is None else columns
        # Values near the float64 limit overflow to inf here as in a whole-column mean; the scaling's range checks
        # then report them, so no warning is raised on the way.
        with np.errstate(over="ignore", invalid="ignore"):
            present = ~np.isnan(block)
            n_b = present.sum(axis=0)
            if present.all():
                mean_b = block.mean(axis=0)
                dev = block - mean_b
            else:
                total = np.where(present, block, 0.0).sum(axis=0)
                mean_b = np.divide(total, n_b, out=np.zeros(len(n_b)), where=n_b > 0)
                dev = np.where(present, block - mean_b, 0.0)
            m2_b = np.einsum("ij,ij->j", dev, dev)
            n_a, mean_a, m2_a = self.count[at], self.mean[at], self.m2[at]
            n = n_a + n_b
            share = np.divide(n_b, n, out=np.zeros(len(n)), where=n > 0)  # n_b / n
            delta = mean_b - mean_a
            first = n_a == 0  # nothing to merge with: the chunk's own numbers, exactly
            self.m2[at] = np.where(first, m2_b, m2_a + m2_b + delta * delta * n_a * share)
            self.mean[at] = np.where(first, mean_b, mean_a + delta * share)
            self.count[at] = n
        self.low[at] = np.fmin(self.low[at], np.fmin.reduce(block, axis=0))  # fmin/fmax skip NaN
        self.high[at] = np.fmax(self.high[at], np.fmax.reduce(block, axis=0))

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per column (0 where no value was present)."""
        return np.sqrt(np.divide(self.m2, self.count, out=np.zeros(len(self.m2)), where=self.count > 0))


class Scores:
    """A model's loss and metrics on rows that arrive in chunks: classification metrics from a summed confusion
    matrix, regression ones from summed residuals and the true values' spread.

    One chunk (rows in memory) gives exactly the whole-data formulas: its mean loss, `regression_metrics`. More
    chunks (a spill read back block by block) combine them: the rows' mean of the chunks' mean losses, and SS_tot
    from the true values' moments merged chunk by chunk. Log loss, Brier and ECE are sums too; ROC AUC, PR AUC and
    the median absolute error (`EVERY_ROW`) need every row: with `every_row`, the chunks' class probabilities
    (n x classes floats) or absolute residuals (n floats) are kept and those metrics computed once, at the end;
    without it they are left out (the training rows' summary: its memory must not grow with a streamed file).

    With row weights (every chunk of one Scores has them, or none does) every metric is weighted: the loss is the
    chunks' weighted mean losses weighed by their total weights, SS_tot the weighted spread merged chunk by chunk
    (`WeightedSpread`), and the kept rows keep their weights. `weight` is the rows' total weight (their count
    without weights)."""

    def __init__(self, task: str, n_classes: int, every_row: bool = True) -> None:
        self.task, self.n_classes, self.every_row = task, n_classes, every_row
        self.probability: ProbabilitySums | None = None
        self.chunks = self.rows = 0
        self.weight, self.weighted = 0.0, False
        self.loss_sum, self.abs_sum, self.sq_sum = 0.0, 0.0, 0.0
        self.first_loss, self.first_ss_total = float("nan"), 0.0
        self.C: np.ndarray | None = np.zeros((n_classes, n_classes), np.int64) if task == "classification" else None
        self.truth: Moments | None = None  # the true values' moments, once a second chunk comes
        self._first_truth: np.ndarray | None = None
        self.spread = WeightedSpread()  # with weights: the true values' weighted spread
        self.ape_sum = 0.0
        self._kept: list[tuple[np.ndarray, ...]] = []  # per chunk: (y, P[, w]) or (|residual|[, w])

    def add(self, loss: float, y_true: np.ndarray, predicted: np.ndarray, P: Array | None = None,
            w: Array | None = None) -> None:
        """One chunk: its mean loss (weighted: Σ w·l / Σ w), the true class indices or values (m,), the predicted
        ones (m,), for the probability metrics the class probabilities P (m, n_classes) (without them, a
        classifier's scores are those of its confusion matrix only) and optionally the rows' weights w (m,)."""
        assert not self.chunks or self.weighted == (w is not None), "every chunk has weights, or none does"
        weights = None if w is None else np.asarray(w, np.float64)
        m = len(y_true)
        if not self.chunks:
            self.first_loss = loss
            self.weighted = weights is not None
        self.chunks += 1
        self.rows += m
        chunk_weight = m if weights is None else float(np.sum(weights))
        self.weight += chunk_weight
        self.loss_sum += loss * chunk_weight
        # copies, kept for the every-row metrics: a chunk's rows and outputs may live in buffers the next reuses
        kept_w = () if weights is None else (weights.copy(),)
        if self.C is not None:
            self._add_classes(y_true, predicted, P, weights, kept_w)
        else:
            self._add_values(np.asarray(y_true, np.float64), np.asarray(predicted, np.float64), weights, kept_w)

    def _add_classes(self, y_true: np.ndarray, predicted: np.ndarray, P: Array | None, w: Array | None,
                     kept_w: tuple[np.ndarray, ...]) -> None:
        assert self.C is not None
        if w is not None and self.C.dtype != np.float64:
            self.C = self.C.astype(np.float64)  # summed weights
        self.C += confusion_matrix(y_true, predicted, self.n_classes, w)
        if P is not None:
            if self.probability is None:
                self.probability = ProbabilitySums(P.shape[1])
            self.probability.add(y_true, P, predicted, w)
            if self.every_row:
                self._kept.append((np.array(y_true, copy=True), np.array(P, np.float64, copy=True), *kept_w))

    def _add_values(self, truth: np.ndarray, predicted: np.ndarray, w: Array | None,
                    kept_w: tuple[np.ndarray, ...]) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's outputs: inf, not a warning
            residual = truth - predicted
            self.abs_sum += total(np.abs(residual), w)
            self.sq_sum += total(residual**2, w)
            if self.every_row:
                self._kept.append((np.abs(residual), *kept_w))
            self.ape_sum += ape_sum(truth, predicted, w)
        if w is not None:
            self.spread.add(truth, w)
            return
        if self.chunks == 1:  # kept aside: merging moments costs more than the rest when there is one chunk
            self.first_ss_total = squared_deviations(truth)
            self._first_truth = truth.copy()
            return
        if self.truth is None:
            assert self._first_truth is not None
            self.truth = Moments(1)
            self.truth.add(self._first_truth.reshape(-1, 1))
            self._first_truth = None
        self.truth.add(truth.reshape(-1, 1))

    def result(self) -> dict[str, float]:
        """The loss, then the task's metrics."""
        if self.chunks == 1:
            scores = {"loss": self.first_loss}
        else:
            scores = {"loss": self.loss_sum / self.weight if self.weight else float("nan")}
        kept = [np.concatenate(part) for part in zip(*self._kept, strict=True)] if self._kept else []
        w = kept[-1] if kept and self.weighted else None
        if self.C is not None:
            values = classification_metrics(self.C)
            if self.probability is not None:
                values.update(self.probability.result(self.weight if self.weighted else self.rows))
            if kept:
                values.update(roc_auc=roc_auc(kept[0], kept[1], w), pr_auc=pr_auc(kept[0], kept[1], w))
            scores.update({name: values[name] for name in CLASSIFICATION if name in values})
            return scores
        if self.weighted:
            scores.update(regression_scores(self.abs_sum, self.sq_sum, self.weight, self.spread.m2))
            scores["mape"] = self.ape_sum / self.weight if self.weight else float("nan")
        else:
            ss_total = float(self.truth.m2[0]) if self.truth is not None else self.first_ss_total
            scores.update(regression_scores(self.abs_sum, self.sq_sum, max(self.rows, 1), ss_total))
            scores["mape"] = self.ape_sum / max(self.rows, 1)
        if self.every_row:
            if not kept:
                scores["median_ae"] = float("nan")
            else:
                scores["median_ae"] = float(np.median(kept[0])) if w is None else weighted_median(kept[0], w)
        return scores
