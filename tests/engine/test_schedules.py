import math

import pytest

from nnctl.engine.schedules import SCHEDULES, Cosine, Exponential, Plateau, Schedule, Step, monitor_mode


def rates(schedule: Schedule, epochs: int, base: float = 0.1) -> list[float]:
    return [schedule.rate(e, base, epochs) for e in range(epochs)]


def test_constant():
    assert rates(Schedule(), 3) == [0.1, 0.1, 0.1]


def test_step():
    assert rates(Step(step_size=2, gamma=0.5), 5, base=1.0) == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_exponential():
    assert rates(Exponential(gamma=0.5), 4, base=1.0) == [1.0, 0.5, 0.25, 0.125]


def test_cosine_with_linear_warmup():
    got = rates(Cosine(warmup_epochs=3, min_learning_rate=0.1), 7, base=1.0)
    # warmup 1/4, 2/4, 3/4 of the base; then cosine over the remaining 4 epochs from 1.0 towards 0.1
    expected = [0.25, 0.5, 0.75] + [0.1 + 0.9 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    assert got == pytest.approx(expected)
    assert got[3] == 1.0 and got[-1] > 0.1


def test_cosine_without_warmup_starts_at_the_base():
    got = rates(Cosine(), 4, base=2.0)
    assert got == pytest.approx([2.0, 1.0 + math.cos(math.pi / 4), 1.0, 1.0 - math.cos(math.pi / 4)])


def test_plateau_cuts_after_patience_then_cools_down():
    schedule = Plateau(monitor="val_loss", factor=0.5, patience=1, cooldown=1, min_learning_rate=0.3)
    seen = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        seen.append(schedule.rate(len(seen), 1.0, 8))
        schedule.observe({"val_loss": loss})
    # two epochs without improvement (> patience 1) cut the rate; one cooldown epoch is not counted;
    # the second cut would go below min_learning_rate and stops there
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.3]


def test_plateau_maximises_accuracy_and_honours_min_delta():
    schedule = Plateau(monitor="val_accuracy", factor=0.1, patience=0, min_delta=0.05)
    schedule.rate(0, 1.0, 3)
    schedule.observe({"val_accuracy": 0.80})
    schedule.observe({"val_accuracy": 0.90})  # better by 0.10: an improvement
    assert schedule.rate(2, 1.0, 3) == 1.0
    schedule.observe({"val_accuracy": 0.93})  # better by only 0.03: counts as no improvement
    assert schedule.rate(3, 1.0, 3) == pytest.approx(0.1)


def test_plateau_state_round_trip():
    a = Plateau(patience=0, factor=0.5)
    a.rate(0, 1.0, 5)
    for loss in (1.0, 2.0):
        a.observe({"val_loss": loss})
    b = Plateau(patience=0, factor=0.5)
    b.load_state(a.state())
    assert b.rate(2, 1.0, 5) == a.rate(2, 1.0, 5) == 0.5
    b.observe({"val_loss": 3.0})
    assert b.rate(3, 1.0, 5) == 0.25


def test_monitor_mode():
    assert [monitor_mode(m) for m in ("val_loss", "val_rmse", "train_mae", "val_accuracy", "val_f1", "val_r2")] == [
        "min", "min", "min", "max", "max", "max"]
    lower = ("val_log_loss", "val_brier", "val_ece", "val_mape", "val_median_ae", "train_log_loss")
    higher = ("val_balanced_accuracy", "val_mcc", "val_roc_auc", "val_pr_auc", "train_roc_auc")
    assert {monitor_mode(m) for m in lower} == {"min"} and {monitor_mode(m) for m in higher} == {"max"}


def test_registry_and_bad_arguments():
    assert sorted(SCHEDULES) == ["constant", "cosine", "exponential", "plateau", "step"]
    for build in (lambda: Step(step_size=0), lambda: Exponential(gamma=0), lambda: Plateau(factor=1.0),
                  lambda: Cosine(warmup_epochs=-1)):
        with pytest.raises(ValueError):
            build()
