import numpy as np
import pytest

from nnctl.engine.metrics import (
    RUNNING_REGRESSION,
    RunningMetrics,
    Scores,
    classification_metrics,
    confusion_matrix,
    regression_metrics,
)


def test_confusion_matrix_and_macro_scores_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    C = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(C, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    scores = classification_metrics(C)
    # precision per class: 2/2, 1/2, 1/2; recall: 2/3, 1/2, 1/1
    precision = (1 + 0.5 + 0.5) / 3
    recall = (2 / 3 + 0.5 + 1) / 3
    f1 = (2 * 1 * (2 / 3) / (1 + 2 / 3) + 0.5 + 2 * 0.5 / 1.5) / 3
    mcc = (4 * 6 - (3 * 2 + 2 * 2 + 1 * 2)) / np.sqrt((36 - (9 + 4 + 1)) * (36 - (4 + 4 + 4)))
    assert scores == pytest.approx({"accuracy": 4 / 6, "precision": precision, "recall": recall, "f1": f1,
                                    "balanced_accuracy": recall, "mcc": mcc})


def test_never_predicted_class_counts_as_zero_precision():
    C = confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 0]), 2)
    scores = classification_metrics(C)
    assert scores["precision"] == pytest.approx((1 / 3 + 0) / 2)
    assert scores["recall"] == pytest.approx((1 + 0) / 2)


def test_regression_metrics_by_hand():
    scores = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert scores["mae"] == pytest.approx(2 / 3)
    assert scores["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert scores["r2"] == pytest.approx(1 - 4 / 2)
    assert scores["mape"] == pytest.approx((2 / 3) / 3)
    assert scores["median_ae"] == 0.0


def test_running_metrics_over_batches_equal_the_whole(rng):
    A = rng.standard_normal((10, 1))
    Y = rng.standard_normal((10, 1))
    scale, center = 2.0, 5.0
    y = Y[:, 0] * scale + center
    running = RunningMetrics("regression", False, scale, float(np.sum((y - y.mean()) ** 2)))
    for start in (0, 4, 8):
        rows = slice(start, start + 4)
        running.add(A[rows], Y[rows], y[rows], np.empty((len(A[rows]), 1)))
    whole = regression_metrics(y, A[:, 0] * scale + center)
    assert running.result() == pytest.approx({m: whole[m] for m in RUNNING_REGRESSION})
    P = rng.random((7, 3))
    labels = rng.integers(0, 3, 7)
    clf = RunningMetrics("classification", False)
    clf.add(P[:3], P[:3], labels[:3], P[:3].copy())
    clf.add(P[3:], P[3:], labels[3:], P[3:].copy())
    assert clf.result() == {"accuracy": float(np.mean(P.argmax(1) == labels))}


def _add(scores, y_true, predicted, losses, bounds):
    for (start, stop), loss in zip(bounds, losses, strict=True):
        scores.add(loss, y_true[start:stop], predicted[start:stop])
    return scores.result()


def test_scores_of_one_chunk_are_the_whole_data_formulas_exactly(rng):
    """Rows in memory are one chunk: the same bits as the whole-data functions, not a merge of partial sums."""
    y, p = rng.standard_normal(50) * 7 + 3, rng.standard_normal(50) * 7 + 3
    scores = Scores("regression", 0)
    scores.add(0.123456789, y, p)
    assert scores.result() == {"loss": 0.123456789, **regression_metrics(y, p)}
    labels, guesses = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    clf = Scores("classification", 4)
    clf.add(0.5, labels, guesses)
    assert clf.result() == {"loss": 0.5, **classification_metrics(confusion_matrix(labels, guesses, 4))}


def test_scores_over_chunks_equal_one_chunk_of_the_same_rows(rng):
    """A spill is scored block by block: the merged loss, metrics and R² equal the whole rows' to rounding."""
    y, p = rng.standard_normal(100) * 3 + 10, rng.standard_normal(100) * 3 + 10
    bounds = [(0, 37), (37, 74), (74, 100)]
    losses = [1.0, 2.0, 4.0]  # chunk means; the whole's mean weighs them by their rows
    whole = regression_metrics(y, p)
    merged = _add(Scores("regression", 0), y, p, losses, bounds)
    assert merged == pytest.approx({"loss": (37 * 1 + 37 * 2 + 26 * 4) / 100, **whole}, rel=1e-12)
    labels, guesses = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    merged = _add(Scores("classification", 3), labels, guesses, losses, bounds)
    assert merged == pytest.approx({"loss": (37 * 1 + 37 * 2 + 26 * 4) / 100,
                                    **classification_metrics(confusion_matrix(labels, guesses, 3))}, rel=1e-12)
