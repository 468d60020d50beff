"""The learning-rate range test: the rates it steps through, the curve it measures, the rate it suggests, and that
training with that rate works on shipped configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.engine.optimizers import SGD
from nnctl.errors import InputError
from nnctl.training.lr_find import LAG, lr_find, rate_range, smooth, suggest
from nnctl.training.run import train

from conftest import CONFIGS, iris_config


@pytest.fixture(scope="module")
def linear_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = 2 x1 - 3 x2 + 0.5 + a little noise: a convex problem whose loss falls and then blows up."""
    gen = np.random.default_rng(7)
    X = gen.normal(size=(400, 2))
    y = X @ np.array([2.0, -3.0]) + 0.5 + 0.1 * gen.normal(size=400)
    path = tmp_path_factory.mktemp("lrfind") / "linear.csv"
    path.write_text("x1,x2,y\n" + "\n".join(f"{a:.6f},{b:.6f},{c:.6f}" for (a, b), c in zip(X, y, strict=True)))
    return path


def linear_config(write_config, csv: Path, **optimizer: object) -> Path:
    return write_config({
        "seed": 3,
        "data": {"train": str(csv), "target": "y", "validation_split": 0.0, "scale": "standard"},
        "model": {"layers": [{"activation": "identity"}]},
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.01, **optimizer},
        "training": {"epochs": 10, "batch_size": 20},
    })


def test_the_rates_rise_exponentially():
    rates = rate_range(1e-6, 1.0, 7)
    assert rates[0] == 1e-6 and rates[-1] == pytest.approx(1.0, rel=1e-12)
    assert np.allclose(rates[1:] / rates[:-1], 10.0)  # one decade per step: a constant ratio
    with pytest.raises(InputError, match="start"):
        rate_range(0.0, 1.0, 10)
    with pytest.raises(InputError, match="end"):
        rate_range(1e-3, 1e-4, 10)
    with pytest.raises(InputError, match="steps"):
        rate_range(1e-3, 1.0, 2)


def test_smoothing_is_an_unbiased_moving_average():
    assert smooth(np.array([5.0, 5.0, 5.0]), 0.9).tolist() == pytest.approx([5.0, 5.0, 5.0])  # no pull to 0
    # a_0 = 0.5 * 1 = 0.5 -> 0.5 / (1 - 0.5); a_1 = 0.5 * 0.5 + 0.5 * 3 = 1.75 -> 1.75 / (1 - 0.25)
    assert smooth(np.array([1.0, 3.0]), 0.5).tolist() == pytest.approx([1.0, 1.75 / 0.75])


def test_the_suggestion_is_the_steepest_fall_before_the_minimum_or_a_tenth_of_it():
    rates = rate_range(1e-6, 1.0, 121)  # 20 steps a decade
    logs = np.log10(rates)
    curve = 1.0 / (1.0 + np.exp(4 * (logs + 2.5))) + np.where(logs > -1, (logs + 1) ** 2, 0.0)  # steepest at 10^-2.5
    rate, why = suggest(rates, curve)
    assert rate == pytest.approx(rates[np.argmin(np.abs(logs + 2.5)) - LAG])
    assert "steepest" in why
    rising = np.linspace(1.0, 2.0, 50)  # nothing falls: a tenth of the rate at the minimum (the first)
    rate, why = suggest(rate_range(1e-4, 1.0, 50), rising)
    assert rate == pytest.approx(1e-5) and "tenth" in why


def test_on_a_linear_problem_the_loss_falls_then_rises_and_the_suggestion_is_on_the_fall(write_config, linear_csv):
    test = lr_find(load_config(linear_config(write_config, linear_csv)), steps=120, start=1e-5, end=10.0)
    smoothed = np.asarray(test.smoothed)
    low = int(np.argmin(smoothed))
    assert smoothed[low] < 0.05 * smoothed[0]  # it learned
    assert test.stopped is not None and "4×" in test.stopped  # and then it blew up
    assert smoothed[-1] > 4 * smoothed[low]
    i = test.suggested_index
    assert 0 < i < low and test.suggested < test.rates[low]
    assert smoothed[i + 2 * LAG] < smoothed[i] < smoothed[0]  # on the falling stretch
    assert 0.001 < test.suggested < 0.5  # SGD on standardised linear least squares: stable below 2/λ_max ≈ 1


def test_each_step_uses_its_rate(write_config, linear_csv, monkeypatch):
    """The optimizer really steps with r_i: plain SGD moves the parameters by exactly r_i times the gradient (the
    config's schedule, a warmup here, plays no part)."""
    used: list[float] = []
    step = SGD.step

    def spy(self: SGD, grads: np.ndarray) -> None:
        before, g = self.params.copy(), grads.copy()
        step(self, grads)
        used.append(float(np.mean((before - self.params) / np.where(g == 0, np.nan, g))))

    monkeypatch.setattr(SGD, "step", spy)
    config = load_config(linear_config(write_config, linear_csv),
                         ["training.dtype=float64", "schedule.name=cosine", "schedule.warmup_epochs=3"])
    test = lr_find(config, steps=30, start=1e-4, end=1e-2)  # too low to diverge: every step is taken
    assert test.stopped is None and len(test.losses) == 30
    assert np.allclose(used, rate_range(1e-4, 1e-2, 30), rtol=1e-9)
    assert test.rates == pytest.approx(rate_range(1e-4, 1e-2, 30).tolist(), rel=1e-15)


def test_the_same_seed_gives_the_same_test_and_another_seed_another(write_config):
    path = write_config(iris_config(data={"train": iris_config()["data"]["train"], "target": "species",
                                          "validation_split": 0.2}))
    first, again = lr_find(load_config(path), steps=60), lr_find(load_config(path), steps=60)
    assert first.to_json() == again.to_json()
    other = lr_find(load_config(path, ["seed=1"]), steps=60)
    assert other.losses != first.losses


def test_the_run_starts_where_train_starts(write_config):
    """The first batch's loss is the one `train` measures first: same split, weights and shuffling."""
    path = write_config(iris_config(training={"epochs": 1, "batch_size": 150}))  # one batch: the epoch's loss
    test = lr_find(load_config(path), steps=5)
    result = train(load_config(path), save=False)
    assert test.losses[0] == pytest.approx(result.model.history[0]["train_loss"], rel=1e-6)


# Training with the suggestion reaches the config's usual metric, on every shipped config (a little below the value
# with the config's own rate, in the README's table: a validation set of 30 to 1,200 rows moves by a row or two).
@pytest.mark.parametrize(("name", "metric", "bar"), [
    ("iris", "accuracy", 0.93), ("wine", "accuracy", 0.94), ("breast_cancer", "accuracy", 0.94),
    ("digits", "accuracy", 0.96), ("seattle_weather", "accuracy", 0.74), ("diabetes", "r2", 0.45),
    ("auto_mpg", "r2", 0.83), ("doctor_visits", "r2", 0.10)])
def test_training_with_the_suggestion_converges(name: str, metric: str, bar: float):
    test = lr_find(load_config(CONFIGS / f"{name}.yaml"))
    rate = f"{test.suggested:.2g}"  # as lr-find's `train` line gives it
    result = train(load_config(CONFIGS / f"{name}.yaml", [f"optimizer.learning_rate={rate}"]), save=False)
    assert result.final["validation"][metric] >= bar
