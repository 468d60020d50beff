import numpy as np
import pytest

from nnctl.engine.metrics import RunningMetrics, classification_metrics, confusion_matrix, regression_metrics


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
    assert scores == pytest.approx({"accuracy": 4 / 6, "precision": precision, "recall": recall, "f1": f1})


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
    assert running.result() == pytest.approx(whole)
    P = rng.random((7, 3))
    labels = rng.integers(0, 3, 7)
    clf = RunningMetrics("classification", False)
    clf.add(P[:3], P[:3], labels[:3], P[:3].copy())
    clf.add(P[3:], P[3:], labels[3:], P[3:].copy())
    assert clf.result() == {"accuracy": float(np.mean(P.argmax(1) == labels))}
