"""Every metric against scikit-learn's on the same predictions (scikit-learn is a test dependency only)."""

import itertools

import numpy as np
import pytest
from sklearn import metrics as sk

from nnctl.engine.metrics import Scores, classification_metrics, confusion_matrix, regression_metrics
from nnctl.engine.probability_metrics import ECE_BINS, brier, ece, log_loss, pr_auc, probability_metrics, roc_auc

TOL = 1e-9


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _cases(rng):
    """(name, y (n,), P (n, k)): random, tied scores, a class never predicted, perfect predictions; 2 and 4 classes."""
    n = 200
    for k in (2, 4):
        y = rng.integers(0, k, n)
        yield f"random-{k}", y, _softmax(rng.standard_normal((n, k)) * 2)
        yield f"ties-{k}", y, _softmax(np.round(rng.standard_normal((n, k)), 0))  # few distinct scores
        never = _softmax(rng.standard_normal((n, k)))
        never[:, k - 1] = 0.0  # the last class is never predicted (and has probability 0)
        yield f"never-predicted-{k}", y, never / never.sum(axis=1, keepdims=True)
        perfect = np.full((n, k), 0.01 / (k - 1))
        perfect[np.arange(n), y] = 0.99
        yield f"perfect-{k}", y, perfect


def _predicted(P):
    return P.argmax(axis=1)


def test_probability_metrics_equal_scikit_learn(rng):
    for name, y, P in _cases(rng):
        k = P.shape[1]
        labels = list(range(k))
        assert log_loss(y, P) == pytest.approx(sk.log_loss(y, P, labels=labels), abs=TOL), name
        if k == 2:
            assert roc_auc(y, P) == pytest.approx(sk.roc_auc_score(y, P[:, 1]), abs=TOL), name
            assert pr_auc(y, P) == pytest.approx(sk.average_precision_score(y, P[:, 1]), abs=TOL), name
            assert brier(y, P) == pytest.approx(sk.brier_score_loss(y, P[:, 1]), abs=TOL), name
        else:
            assert roc_auc(y, P) == pytest.approx(sk.roc_auc_score(y, P, multi_class="ovr", average="macro",
                                                                   labels=labels), abs=TOL), name
            onehot = np.eye(k)[y]
            assert pr_auc(y, P) == pytest.approx(sk.average_precision_score(onehot, P, average="macro"),
                                                 abs=TOL), name
            assert brier(y, P) == pytest.approx(sk.brier_score_loss(y, P, labels=labels), abs=TOL), name
        C = confusion_matrix(y, _predicted(P), k)
        scores = classification_metrics(C)
        assert scores["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y, _predicted(P)), abs=TOL)
        assert scores["mcc"] == pytest.approx(sk.matthews_corrcoef(y, _predicted(P)), abs=TOL), name


def test_perfect_and_reversed_rankings():
    y = np.array([0, 0, 1, 1])
    P = np.column_stack([1 - np.array([0.1, 0.2, 0.8, 0.9]), [0.1, 0.2, 0.8, 0.9]])
    assert roc_auc(y, P) == 1.0 and pr_auc(y, P) == 1.0
    assert roc_auc(1 - y, P) == 0.0
    assert roc_auc(y, np.full((4, 2), 0.5)) == 0.5  # all tied: one half


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_a_class_absent_from_the_rows_is_left_out_of_the_one_vs_rest_means(rng):
    """scikit-learn refuses a multiclass AUC with a class absent from y; nnctl averages the classes it can score."""
    P = _softmax(rng.standard_normal((60, 3)))
    y = rng.integers(0, 2, 60)  # class 2 never occurs
    expected_auc = np.mean([sk.roc_auc_score(y == k, P[:, k]) for k in (0, 1)])
    expected_ap = np.mean([sk.average_precision_score(y == k, P[:, k]) for k in (0, 1)])
    assert roc_auc(y, P) == pytest.approx(expected_auc, abs=TOL)
    assert pr_auc(y, P) == pytest.approx(expected_ap, abs=TOL)
    assert np.isnan(roc_auc(np.zeros(5, int), np.full((5, 2), 0.5)))  # one class: undefined
    assert sk.balanced_accuracy_score(y, P.argmax(1)) == pytest.approx(
        classification_metrics(confusion_matrix(y, P.argmax(1), 3))["balanced_accuracy"], abs=TOL)


def _ece_by_loop(y, P, predicted, bins=ECE_BINS):
    """The common definition, written out: bins (lower, upper] of the top-class confidence."""
    confidence = P[np.arange(len(y)), predicted]
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lower, upper in itertools.pairwise(edges):
        inside = (confidence > lower) & (confidence <= upper)
        if inside.any():
            accuracy = np.mean(predicted[inside] == y[inside])
            total += abs(accuracy - confidence[inside].mean()) * inside.sum() / len(y)
    return total


def test_ece_equals_the_binned_definition(rng):
    for name, y, P in _cases(rng):
        assert ece(y, P, _predicted(P)) == pytest.approx(_ece_by_loop(y, P, _predicted(P)), abs=TOL), name
    # by hand: two rows at confidence 0.9 (one right), one at 0.6 (right): |0.5 - 0.9|·2/3 + |1 - 0.6|·1/3
    y, P = np.array([0, 1, 0]), np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    assert ece(y, P, np.array([0, 0, 0])) == pytest.approx(0.4 * 2 / 3 + 0.4 / 3, abs=TOL)
    # a confidence on a bin edge belongs to the lower bin (upper edge inclusive)
    edge = np.array([[1 / 3 + 0.0, 1 / 3, 1 / 3]])
    assert ece(np.array([0]), edge, np.array([0])) == pytest.approx(1 - 1 / 3, abs=TOL)


def test_brier_by_hand():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.1, 0.9, 0.8, 0.3])
    assert brier(y, np.column_stack([1 - p, p])) == pytest.approx(0.0375, abs=TOL)
    P3 = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6]])
    assert brier(np.array([0, 1, 2]), P3) == pytest.approx(0.44 / 3, abs=TOL)  # Σ over classes, not halved


def test_regression_metrics_equal_scikit_learn(rng):
    y = rng.standard_normal(101) * 5 + 2
    p = y + rng.standard_normal(101)
    y[3] = 0.0  # a zero target: scikit-learn divides by eps
    scores = regression_metrics(y, p)
    assert scores["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, p), rel=TOL)
    assert scores["median_ae"] == pytest.approx(sk.median_absolute_error(y, p), abs=TOL)
    assert regression_metrics(y, y)["median_ae"] == 0.0 and regression_metrics(y, y)["mape"] == 0.0


def test_scores_keep_every_rows_probabilities_over_chunks(rng):
    """Validation scored chunk by chunk: the ranking and median metrics equal one chunk of the same rows."""
    y = rng.integers(0, 3, 90)
    P = _softmax(rng.standard_normal((90, 3)))
    whole, chunked = Scores("classification", 3), Scores("classification", 3)
    whole.add(0.5, y, _predicted(P), P)
    for start in (0, 30, 60):
        rows = slice(start, start + 30)
        chunked.add(0.5, y[rows], _predicted(P[rows]), P[rows])
    assert chunked.result() == pytest.approx(whole.result(), rel=1e-12)
    C = confusion_matrix(y, _predicted(P), 3)
    assert whole.result() == {"loss": 0.5, **classification_metrics(C), **probability_metrics(y, P, _predicted(P))}
    t, v = rng.standard_normal(90), rng.standard_normal(90)
    whole, chunked = Scores("regression", 0), Scores("regression", 0)
    whole.add(1.0, t, v)
    for start in (0, 45):
        chunked.add(1.0, t[start:start + 45], v[start:start + 45])
    assert chunked.result() == pytest.approx(whole.result(), rel=1e-12)
    assert whole.result()["median_ae"] == sk.median_absolute_error(t, v)


def test_without_every_row_the_ranking_and_median_metrics_are_left_out(rng):
    """The training rows' summary keeps no per-row outputs: the summed metrics stay, the ranking ones go."""
    y = rng.integers(0, 2, 50)
    P = _softmax(rng.standard_normal((50, 2)))
    bounded, whole = Scores("classification", 2, every_row=False), Scores("classification", 2)
    for scores in (bounded, whole):
        scores.add(0.5, y[:20], _predicted(P[:20]), P[:20])
        scores.add(0.5, y[20:], _predicted(P[20:]), P[20:])
    assert not bounded._kept
    assert bounded.result() == {k: v for k, v in whole.result().items() if k not in ("roc_auc", "pr_auc")}
    assert whole.result()["brier"] == pytest.approx(sk.brier_score_loss(y, P[:, 1]), abs=TOL)
    regression = Scores("regression", 0, every_row=False)
    regression.add(1.0, rng.standard_normal(9), rng.standard_normal(9))
    assert "median_ae" not in regression.result() and "mape" in regression.result()


def test_kept_rows_survive_a_reused_buffer(rng):
    """A spill reads its blocks into the same buffers: the rows kept for the ranking metrics must be copies."""
    y = rng.integers(0, 3, 60)
    P = _softmax(rng.standard_normal((60, 3)))
    block_y, block_P = np.empty(30, np.int64), np.empty((30, 3))
    scores = Scores("classification", 3)
    for start in (0, 30):
        block_y[:], block_P[:] = y[start : start + 30], P[start : start + 30]
        scores.add(0.5, block_y, _predicted(block_P), block_P)
    assert scores.result()["roc_auc"] == pytest.approx(roc_auc(y, P), abs=1e-12)
    assert scores.result()["pr_auc"] == pytest.approx(pr_auc(y, P), abs=1e-12)
