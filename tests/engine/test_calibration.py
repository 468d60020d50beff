"""Temperature scaling and the decision threshold, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.engine.calibration import THRESHOLD_CRITERIA, best_threshold, fit_temperature, log_loss, threshold_scores


def _softmax_rows(rng: np.random.Generator, n: int = 400, k: int = 4, scale: float = 1.0):
    """Logits Z (n, k) and labels y drawn from softmax(Z): a calibrated model; times `scale`, an over- (scale > 1)
    or underconfident (scale < 1) one."""
    Z = rng.normal(0, 2, (n, k))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in P])
    return Z * scale, y


def test_log_loss_by_hand():
    Z = np.array([[0.0, np.log(3.0)]])  # softmax: 1/4, 3/4
    assert log_loss(Z, np.array([1]), 1.0, False) == pytest.approx(-np.log(0.75))
    assert log_loss(Z, np.array([0]), 1.0, False) == pytest.approx(-np.log(0.25))
    z = np.array([[np.log(3.0)]])  # sigmoid: 3/4
    assert log_loss(z, np.array([1]), 1.0, True) == pytest.approx(-np.log(0.75))
    assert log_loss(z, np.array([0]), 1.0, True) == pytest.approx(-np.log(0.25))
    assert log_loss(2 * z, np.array([1]), 2.0, True) == pytest.approx(-np.log(0.75))


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0])
def test_the_fitted_temperature_is_the_best_on_a_fine_grid(rng, scale):
    Z, y = _softmax_rows(rng, scale=scale)
    temperature = fit_temperature(Z, y, binary=False)
    best = log_loss(Z, y, temperature, False)
    grid = np.exp(np.linspace(-4, 4, 2001))
    assert best <= min(log_loss(Z, y, t, False) for t in grid) + 1e-9
    assert best <= log_loss(Z, y, 1.0, False)
    if scale == 5.0:  # overconfident: a temperature above 1 undoes it
        assert temperature == pytest.approx(5.0, rel=0.25)
    elif scale == 0.3:
        assert temperature < 1


def test_an_overconfident_binary_model_is_cooled(rng):
    z = rng.normal(0, 2, 500)
    y = (rng.random(500) < 1 / (1 + np.exp(-z))).astype(np.int64)
    Z = (8 * z)[:, None].astype(np.float32)
    temperature = fit_temperature(Z, y, binary=True)
    assert temperature == pytest.approx(8, rel=0.3)
    assert log_loss(Z, y, temperature, True) < log_loss(Z, y, 1.0, True)


def test_temperature_one_wins_when_nothing_is_better():
    # two rows whose best temperature is 1 exactly would be luck; one perfectly right row is best at T -> 0, one
    # wrong row at T -> infinity: with one of each at equal |z| the loss is flat-ish, T = 1 is kept unless beaten
    Z = np.array([[0.0, 1.0], [0.0, 1.0]])
    y = np.array([1, 0])
    temperature = fit_temperature(Z, y, binary=False)
    assert log_loss(Z, y, temperature, False) <= log_loss(Z, y, 1.0, False)


def _criterion(p: np.ndarray, y: np.ndarray, t: float, criterion: str) -> float:
    predicted = p >= t
    tp, fp = np.sum(predicted & (y == 1)), np.sum(predicted & (y == 0))
    fn, tn = np.sum(~predicted & (y == 1)), np.sum(~predicted & (y == 0))
    if criterion == "f1":
        return 2 * tp / (2 * tp + fp + fn)
    tpr, tnr = tp / (tp + fn), tn / (tn + fp)
    return tpr + tnr - 1 if criterion == "youden" else (tpr + tnr) / 2


@pytest.mark.parametrize("criterion", THRESHOLD_CRITERIA)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_threshold_maximises_the_criterion_over_every_cut_point(rng, criterion, dtype):
    for _ in range(5):
        n = int(rng.integers(20, 200))
        y = (rng.random(n) < 0.3).astype(np.int64)
        p = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1).round(2).astype(dtype)  # ties, 0 and 1 included
        t = best_threshold(p, y, criterion)
        assert 0 < t < 1
        everything = max(_criterion(p, y, cut, criterion) for cut in np.unique(p) if 0 < cut < 1)
        assert _criterion(p, y, t, criterion) == pytest.approx(everything, abs=1e-12)
        # the threshold lies between two values of p, not on one
        assert t not in set(p.tolist())
        assert _criterion(p, y, float(dtype(t)), criterion) == pytest.approx(everything, abs=1e-12)


def test_youden_and_balanced_accuracy_agree(rng):
    y = (rng.random(300) < 0.4).astype(np.int64)
    p = rng.random(300) * 0.5 + 0.4 * y
    assert best_threshold(p, y, "youden") == best_threshold(p, y, "balanced_accuracy")


def test_one_class_or_no_inner_probability_is_an_error():
    with pytest.raises(ValueError, match="only one of the two classes"):
        best_threshold(np.array([0.2, 0.7]), np.array([1, 1]), "f1")
    with pytest.raises(ValueError, match="exactly 0 or 1"):
        best_threshold(np.array([0.0, 1.0]), np.array([0, 1]), "f1")


@pytest.mark.parametrize("binary", [True, False])
def test_row_weights_count_as_copied_rows_in_the_temperature(rng, binary):
    k = 1 if binary else 3
    Z, y = rng.normal(size=(60, k)) * 4, rng.integers(0, 2 if binary else 3, 60)
    w = rng.integers(0, 4, 60).astype(np.float64)  # 0 to 3 copies of each row
    copies = np.repeat(np.arange(60), w.astype(int))
    assert log_loss(Z, y, 1.7, binary, w) == pytest.approx(log_loss(Z[copies], y[copies], 1.7, binary), rel=1e-12)
    assert fit_temperature(Z, y, binary, w) == pytest.approx(fit_temperature(Z[copies], y[copies], binary), rel=1e-9)
    assert abs(fit_temperature(Z, y, binary, w) - fit_temperature(Z, y, binary)) > 1e-3  # the weights mattered


@pytest.mark.parametrize("criterion", THRESHOLD_CRITERIA)
def test_row_weights_count_as_copied_rows_in_the_threshold(rng, criterion):
    p, y = rng.random(80), rng.integers(0, 2, 80)
    w = rng.integers(0, 4, 80).astype(np.float64)
    copies = np.repeat(np.arange(80), w.astype(int))
    cuts, values = threshold_scores(p, y, criterion, w)
    kept = w > 0  # a row of weight 0 is no row: its probability is no cut point of the copied rows
    copied_cuts, copied_values = threshold_scores(p[copies], y[copies], criterion)
    np.testing.assert_allclose(values[np.isin(cuts, copied_cuts)], copied_values, rtol=1e-12)
    assert best_threshold(p, y, criterion, w) == best_threshold(p[copies], y[copies], criterion)
    assert kept.sum() < 80
