"""Row weights in every metric: equal to scikit-learn's with `sample_weight` (a test dependency only), a row of
weight 2 counts as the row twice, and without weights nothing changes."""

import itertools

import numpy as np
import pytest
from sklearn import metrics as sk
from sklearn.utils.stats import _weighted_percentile

from nnctl.engine.metrics import (
    CLASSIFICATION,
    RUNNING_REGRESSION,
    RunningMetrics,
    Scores,
    classification_metrics,
    confusion_matrix,
    regression_metrics,
    squared_deviations,
)
from nnctl.engine.probability_metrics import (
    ECE_BINS,
    ProbabilitySums,
    ape_sum,
    binary_average_precision,
    binary_roc_auc,
    brier,
    ece,
    log_loss,
    pr_auc,
    probability_metrics,
    roc_auc,
)
from nnctl.engine.weighted import WeightedSpread, weighted_median

TOL = 1e-9


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _weights(rng, n):
    """Random weights in [0, 3) with about a tenth of them exactly 0."""
    w = rng.random(n) * 3
    w[rng.random(n) < 0.1] = 0.0
    return w


def _cases(rng):
    """(name, y (n,), P (n, k), w (n,)): random and tied scores, 2 and 3 classes, random weights with zeros."""
    n = 300
    for k in (2, 3):
        y = rng.integers(0, k, n)
        yield f"random-{k}", y, _softmax(rng.standard_normal((n, k)) * 2), _weights(rng, n)
        yield f"ties-{k}", y, _softmax(np.round(rng.standard_normal((n, k)), 0)), _weights(rng, n)


def _ece_by_loop(y, P, predicted, w, bins=ECE_BINS):
    """Σ_b |Σ_b w·correct - Σ_b w·confidence| / Σ w, bins (lower, upper] of the top-class confidence."""
    confidence = P[np.arange(len(y)), predicted]
    result = 0.0
    for lower, upper in itertools.pairwise(np.linspace(0, 1, bins + 1)):
        inside = (confidence > lower) & (confidence <= upper)
        result += abs(np.sum(w[inside] * (predicted[inside] == y[inside])) - np.sum(w[inside] * confidence[inside]))
    return result / np.sum(w)


def test_weighted_classification_metrics_equal_scikit_learn(rng):
    for name, y, P, w in _cases(rng):
        k, predicted = P.shape[1], P.argmax(axis=1)
        labels = list(range(k))
        scores = classification_metrics(confusion_matrix(y, predicted, k, w))
        assert scores["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted, sample_weight=w), abs=TOL)
        for metric in ("precision", "recall", "f1"):
            expected = getattr(sk, f"{metric}_score")(y, predicted, average="macro", labels=labels, zero_division=0,
                                                      sample_weight=w)
            assert scores[metric] == pytest.approx(expected, abs=TOL), (name, metric)
        assert scores["balanced_accuracy"] == pytest.approx(
            sk.balanced_accuracy_score(y, predicted, sample_weight=w), abs=TOL), name
        assert scores["mcc"] == pytest.approx(sk.matthews_corrcoef(y, predicted, sample_weight=w), abs=TOL), name


def test_weighted_probability_metrics_equal_scikit_learn(rng):
    for name, y, P, w in _cases(rng):
        k, predicted = P.shape[1], P.argmax(axis=1)
        labels = list(range(k))
        assert log_loss(y, P, w) == pytest.approx(sk.log_loss(y, P, labels=labels, sample_weight=w), abs=TOL)
        if k == 2:
            expected_auc = sk.roc_auc_score(y, P[:, 1], sample_weight=w)
            expected_ap = sk.average_precision_score(y, P[:, 1], sample_weight=w)
            expected_brier = sk.brier_score_loss(y, P[:, 1], sample_weight=w)
        else:
            expected_auc = sk.roc_auc_score(y, P, multi_class="ovr", average="macro", labels=labels, sample_weight=w)
            expected_ap = sk.average_precision_score(np.eye(k)[y], P, average="macro", sample_weight=w)
            expected_brier = sk.brier_score_loss(y, P, labels=labels, sample_weight=w)
        assert roc_auc(y, P, w) == pytest.approx(expected_auc, abs=TOL), name
        assert pr_auc(y, P, w) == pytest.approx(expected_ap, abs=TOL), name
        assert brier(y, P, w) == pytest.approx(expected_brier, abs=TOL), name
        assert ece(y, P, predicted, w=w) == pytest.approx(_ece_by_loop(y, P, predicted, w), abs=TOL), name
        assert probability_metrics(y, P, predicted, w) == pytest.approx(
            {"log_loss": log_loss(y, P, w), "roc_auc": expected_auc, "pr_auc": expected_ap, "brier": expected_brier,
             "ece": _ece_by_loop(y, P, predicted, w)}, abs=TOL), name


def test_a_class_only_in_rows_of_weight_zero_is_left_out_of_the_macro_means(rng):
    """Weight 0 removes a row: a class seen (true or predicted) only in such rows is absent, as unweighted."""
    y = rng.integers(0, 3, 120)
    P = _softmax(rng.standard_normal((120, 3)))
    predicted = P.argmax(axis=1)
    w = _weights(rng, 120)
    w[(y == 2) | (predicted == 2)] = 0.0
    scores = classification_metrics(confusion_matrix(y, predicted, 3, w))
    for metric in ("precision", "recall", "f1"):
        expected = getattr(sk, f"{metric}_score")(y, predicted, average="macro", labels=[0, 1], zero_division=0,
                                                  sample_weight=w)
        assert scores[metric] == pytest.approx(expected, abs=TOL), metric
    kept = w > 0
    assert scores == pytest.approx(classification_metrics(confusion_matrix(y[kept], predicted[kept], 3,
                                                                           w[kept])), abs=1e-12)
    assert roc_auc(y, P, w) == pytest.approx(np.mean([sk.roc_auc_score(y == c, P[:, c], sample_weight=w)
                                                      for c in (0, 1)]), abs=TOL)


def test_weighted_roc_auc_is_the_weighted_mann_whitney_sum_over_pairs(rng):
    positive = rng.random(60) < 0.4
    s = np.round(rng.random(60), 1)  # ties
    w = _weights(rng, 60)
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    pairs = sum(w[i] * w[j] * ((s[i] > s[j]) + 0.5 * (s[i] == s[j])) for i in pos for j in neg)
    assert binary_roc_auc(positive, s, w) == pytest.approx(pairs / (w[pos].sum() * w[neg].sum()), abs=1e-12)
    only_negatives_weigh = np.where(positive, 0.0, w)
    assert np.isnan(binary_roc_auc(positive, s, only_negatives_weigh))
    assert np.isnan(binary_average_precision(positive, s, only_negatives_weigh))
    assert binary_average_precision(positive, s, w) == pytest.approx(
        sk.average_precision_score(positive, s, sample_weight=w), abs=TOL)


def test_weighted_regression_metrics_equal_scikit_learn(rng):
    y = rng.standard_normal(201) * 5 + 2
    p = y + rng.standard_normal(201)
    y[3] = 0.0  # a zero target: both divide by eps
    w = _weights(rng, 201)
    scores = regression_metrics(y, p, w)
    assert scores == pytest.approx({
        "mae": sk.mean_absolute_error(y, p, sample_weight=w),
        "rmse": sk.root_mean_squared_error(y, p, sample_weight=w),
        "r2": sk.r2_score(y, p, sample_weight=w),
        "mape": sk.mean_absolute_percentage_error(y, p, sample_weight=w),
        "median_ae": sk.median_absolute_error(y, p, sample_weight=w)}, rel=TOL)
    assert squared_deviations(y, w) == pytest.approx(np.sum(w * (y - np.average(y, weights=w)) ** 2), rel=1e-12)
    assert ape_sum(y, p, w) / w.sum() == pytest.approx(scores["mape"], rel=1e-12)


def test_weighted_median_is_scikit_learns_averaged_inverted_cdf(rng):
    """Ties, integer weights whose cumulative sum hits half the total exactly, runs of weight 0 after the half."""
    for trial in range(200):
        n = int(rng.integers(1, 12))
        values = rng.integers(0, 6, n).astype(float) if trial % 2 else rng.standard_normal(n)
        w = rng.integers(0, 4, n).astype(float) if trial % 3 else _weights(rng, n)
        if not w.any():
            assert np.isnan(weighted_median(values, w))
            continue
        expected = _weighted_percentile(values, w, 50, average=True)
        assert weighted_median(values, w) == pytest.approx(float(expected), abs=1e-12), (values, w)
    values = rng.standard_normal(9)
    assert weighted_median(values, np.ones(9)) == np.median(values)
    assert weighted_median(values[:8], np.ones(8)) == pytest.approx(np.median(values[:8]), abs=1e-15)


def _row_losses(rng, n):
    return rng.random(n) * 2


def _scores(task, n_classes, chunks, weighted):
    """Scores over chunks of (row losses, y, predicted, P or None, w or None): each chunk's (weighted) mean loss."""
    scores = Scores(task, n_classes)
    for losses, y, predicted, P, w in chunks:
        loss = float(np.average(losses, weights=w if weighted else None))
        scores.add(loss, y, predicted, P, w if weighted else None)
    return scores


def _duplicated(chunk):
    """The chunk with each row repeated its (integer) weight times, and no weights."""
    losses, y, predicted, P, w = chunk
    times = w.astype(int)
    return (np.repeat(losses, times), np.repeat(y, times), np.repeat(predicted, times),
            None if P is None else np.repeat(P, times, axis=0), None)


def _chunks(rng, task, bounds, n_classes=3):
    n = bounds[-1][1]
    losses, w = _row_losses(rng, n), rng.integers(0, 4, n).astype(float)  # integer weights, some 0
    if task == "classification":
        P = _softmax(rng.standard_normal((n, n_classes)))
        y, predicted = rng.integers(0, n_classes, n), P.argmax(axis=1)
    else:
        P, y = None, rng.standard_normal(n) * 3 + 10
        predicted = y + rng.standard_normal(n)
    return [(losses[a:b], y[a:b], predicted[a:b], None if P is None else P[a:b], w[a:b]) for a, b in bounds]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_row_of_weight_two_counts_as_the_row_twice(rng, task):
    chunks = _chunks(rng, task, [(0, 41), (41, 90), (90, 120)])
    weighted = _scores(task, 3, chunks, weighted=True)
    duplicated = _scores(task, 3, [_duplicated(chunk) for chunk in chunks], weighted=False)
    assert weighted.result() == pytest.approx(duplicated.result(), rel=1e-12, abs=1e-12)
    assert weighted.weight == sum(chunk[4].sum() for chunk in chunks) == duplicated.weight
    assert list(weighted.result()) == list(duplicated.result())  # the same keys, in the same order


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_weighted_scores_over_chunks_equal_one_chunk(rng, task):
    chunks = _chunks(rng, task, [(0, 37), (37, 74), (74, 100)])
    whole = [np.concatenate(part) if part[0] is not None else None for part in zip(*chunks, strict=True)]
    one, three = _scores(task, 3, [tuple(whole)], weighted=True), _scores(task, 3, chunks, weighted=True)
    assert three.result() == pytest.approx(one.result(), rel=1e-12, abs=1e-12)
    losses, y, predicted, P, w = whole
    if task == "regression":
        assert one.result() == pytest.approx({"loss": np.average(losses, weights=w),
                                              **regression_metrics(y, predicted, w)}, rel=1e-12, abs=1e-12)
    else:
        expected = {**classification_metrics(confusion_matrix(y, predicted, 3, w)),
                    **probability_metrics(y, P, predicted, w)}
        assert one.result() == pytest.approx({"loss": np.average(losses, weights=w),
                                              **{m: expected[m] for m in CLASSIFICATION}}, rel=1e-12, abs=1e-12)


def test_without_weights_the_results_equal_unit_weights(rng):
    """w=None keeps the unweighted formulas (their bits are pinned by the other tests); unit weights agree."""
    for _, y, P, _ in _cases(rng):
        k, predicted, ones = P.shape[1], P.argmax(axis=1), np.ones(len(y))
        unweighted = {**classification_metrics(confusion_matrix(y, predicted, k)),
                      **probability_metrics(y, P, predicted)}
        assert unweighted == pytest.approx({**classification_metrics(confusion_matrix(y, predicted, k, ones)),
                                            **probability_metrics(y, P, predicted, ones)}, rel=1e-12, abs=1e-12)
    t = rng.standard_normal(80)
    v = t + rng.standard_normal(80)
    assert regression_metrics(t, v) == pytest.approx(regression_metrics(t, v, np.ones(80)), rel=1e-12)
    for task in ("classification", "regression"):
        chunks = _chunks(rng, task, [(0, 30), (30, 55), (55, 80)])
        chunks = [(*chunk[:4], np.ones(len(chunk[1]))) for chunk in chunks]
        unweighted, ones_scores = _scores(task, 3, chunks, weighted=False), _scores(task, 3, chunks, weighted=True)
        assert unweighted.result() == pytest.approx(ones_scores.result(), rel=1e-12, abs=1e-12)
        assert unweighted.weight == ones_scores.weight == 80


def test_scores_refuse_a_mix_of_weighted_and_unweighted_chunks(rng):
    scores = Scores("regression", 0)
    scores.add(1.0, rng.standard_normal(5), rng.standard_normal(5), w=np.ones(5))
    with pytest.raises(AssertionError):
        scores.add(1.0, rng.standard_normal(5), rng.standard_normal(5))


def test_weighted_running_metrics_over_batches_equal_the_whole(rng):
    A, Y = rng.standard_normal((12, 1)), rng.standard_normal((12, 1))
    w = _weights(rng, 12)
    scale, center = 2.0, 5.0
    y = Y[:, 0] * scale + center
    running = RunningMetrics("regression", False, scale, squared_deviations(y, w))
    for start in (0, 5, 10):
        rows = slice(start, start + 5)
        running.add(A[rows], Y[rows], y[rows], np.empty((len(A[rows]), 1)), w[rows])
    whole = regression_metrics(y, A[:, 0] * scale + center, w)
    assert running.result() == pytest.approx({m: whole[m] for m in RUNNING_REGRESSION}, rel=1e-12)
    P, labels = rng.random((9, 3)), rng.integers(0, 3, 9)
    clf = RunningMetrics("classification", False)
    clf.add(P[:4], P[:4], labels[:4], P[:4].copy(), w[:4])
    clf.add(P[4:], P[4:], labels[4:], P[4:].copy(), w[4:9])
    assert clf.result()["accuracy"] == pytest.approx(sk.accuracy_score(labels, P.argmax(1), sample_weight=w[:9]),
                                                     abs=1e-12)
    binary = RunningMetrics("classification", True)
    binary.add(P[:, :1], P[:, :1], labels % 2, P[:, :1].copy(), w[:9])
    assert binary.result()["accuracy"] == pytest.approx(
        sk.accuracy_score(labels % 2, P[:, 0] >= 0.5, sample_weight=w[:9]), abs=1e-12)
    with pytest.raises(AssertionError):
        binary.add(P[:, :1], P[:, :1], labels % 2, P[:, :1].copy())


def test_probability_sums_divide_by_the_total_weight(rng):
    y = rng.integers(0, 3, 50)
    P = _softmax(rng.standard_normal((50, 3)))
    w = _weights(rng, 50)
    chunked = ProbabilitySums(3)
    for rows in (slice(0, 20), slice(20, 50)):
        chunked.add(y[rows], P[rows], P[rows].argmax(1), w[rows])
    assert chunked.weight == pytest.approx(w.sum(), rel=1e-12)
    assert chunked.result() == pytest.approx(ProbabilitySums(3).add(y, P, P.argmax(1), w).result(), rel=1e-12)
    assert ProbabilitySums(3).add(y, P, P.argmax(1)).result() == ProbabilitySums(3).add(y, P, P.argmax(1)).result(50)


def test_weighted_spread_merges_chunks_as_one(rng):
    values, w = rng.standard_normal(90) * 4 + 100, _weights(rng, 90)
    spread = WeightedSpread()
    for start in (0, 30, 60):
        spread.add(values[start:start + 30], w[start:start + 30])
    spread.add(values[:3], np.zeros(3))  # a chunk of weight 0 changes nothing
    assert spread.weight == pytest.approx(w.sum(), rel=1e-12)
    assert spread.mean == pytest.approx(np.average(values, weights=w), rel=1e-12)
    assert spread.m2 == pytest.approx(squared_deviations(values, w), rel=1e-10)


def test_kept_weights_survive_a_reused_buffer(rng):
    """A spill reads its blocks' weights into one buffer too: the weights kept for the every-row metrics are copies."""
    y = rng.integers(0, 3, 60)
    P = _softmax(rng.standard_normal((60, 3)))
    t, v, w = rng.standard_normal(60), rng.standard_normal(60), _weights(rng, 60)
    block_w = np.empty(30)
    clf, reg = Scores("classification", 3), Scores("regression", 0)
    for start in (0, 30):
        rows = slice(start, start + 30)
        block_w[:] = w[rows]
        clf.add(0.5, y[rows], P[rows].argmax(1), P[rows], block_w)
        reg.add(0.5, t[rows], v[rows], w=block_w)
    assert clf.result()["roc_auc"] == pytest.approx(roc_auc(y, P, w), abs=1e-12)
    assert clf.result()["pr_auc"] == pytest.approx(pr_auc(y, P, w), abs=1e-12)
    assert reg.result()["median_ae"] == pytest.approx(sk.median_absolute_error(t, v, sample_weight=w), abs=TOL)


def test_weighted_mcc_of_a_single_predicted_class_is_zero(rng):
    """Summed float weights could leave the predictions' covariance a rounding error away from 0 (then MCC would
    be noise): one predicted class gives 0 exactly, as unweighted and as scikit-learn."""
    for _ in range(30):
        y, w = rng.integers(0, 6, 40), rng.random(40) * 3
        assert classification_metrics(confusion_matrix(y, np.zeros(40, int), 6, w))["mcc"] == 0.0
        assert sk.matthews_corrcoef(y, np.zeros(40, int), sample_weight=w) == 0.0
