"""Learning-rate schedules: the rate for each epoch, from the optimizer's base rate.

A schedule is asked `rate(epoch, base, epochs)` before each epoch (epoch counts from 0) and shown the
epoch's history row afterwards (`observe`), which only reduce-on-plateau uses. Its `state()` is plain JSON
so a resumed run continues with the same rate.
"""

from __future__ import annotations

import math
from typing import Any

from nnctl.engine.metrics import HIGHER_IS_BETTER
from nnctl.registry import Registry


def monitor_mode(name: str) -> str:
    """'max' for metrics that grow as the model improves (accuracy, f1, r2, ...), 'min' for losses and errors."""
    return "max" if name.endswith(HIGHER_IS_BETTER) else "min"


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether `value` beats `best` by more than `min_delta` in the monitor's direction (the first value does)."""
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class Schedule:
    """The constant schedule, and the base class: the rate is the optimizer's learning_rate every epoch."""

    name = "constant"

    def rate(self, epoch: int, base: float, epochs: int) -> float:
        """The learning rate for `epoch` (0-based) of `epochs`, given the base rate."""
        return base

    def observe(self, row: dict[str, Any]) -> None:
        """Called with each finished epoch's history row."""

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state()` returned."""


class Step(Schedule):
    """base * gamma ** (epoch // step_size): cut by `gamma` every `step_size` epochs."""

    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        if step_size < 1 or gamma <= 0:
            raise ValueError(f"step needs step_size >= 1 and gamma > 0, not {step_size} and {gamma}")
        self.step_size, self.gamma = step_size, gamma

    def rate(self, epoch: int, base: float, epochs: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """base * gamma ** epoch."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95) -> None:
        if gamma <= 0:
            raise ValueError(f"exponential needs gamma > 0, not {gamma}")
        self.gamma = gamma

    def rate(self, epoch: int, base: float, epochs: int) -> float:
        return base * self.gamma**epoch


class Cosine(Schedule):
    """Linear warmup base * (e + 1) / (w + 1) for the first w epochs, then cosine annealing from base
    towards `min_learning_rate` over the remaining T epochs: min + (base - min) (1 + cos(pi (e - w) / T)) / 2.
    """

    name = "cosine"

    def __init__(self, warmup_epochs: int = 0, min_learning_rate: float = 0.0) -> None:
        if warmup_epochs < 0 or min_learning_rate < 0:
            raise ValueError("cosine needs warmup_epochs >= 0 and min_learning_rate >= 0")
        self.warmup_epochs, self.min_learning_rate = warmup_epochs, min_learning_rate

    def rate(self, epoch: int, base: float, epochs: int) -> float:
        w = self.warmup_epochs
        if epoch < w:
            return base * (epoch + 1) / (w + 1)
        span = max(1, epochs - w)
        low = min(self.min_learning_rate, base)
        return low + (base - low) * (1 + math.cos(math.pi * (epoch - w) / span)) / 2


class Plateau(Schedule):
    """Reduce on plateau: multiply the rate by `factor` when `monitor` has not improved by more than
    `min_delta` for more than `patience` epochs, then wait `cooldown` epochs before counting again."""

    name = "plateau"

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 5, min_delta: float = 0.0,
                 min_learning_rate: float = 0.0, cooldown: int = 0) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"plateau needs 0 < factor < 1, not {factor}")
        if patience < 0 or cooldown < 0 or min_delta < 0 or min_learning_rate < 0:
            raise ValueError("plateau needs patience, cooldown, min_delta and min_learning_rate >= 0")
        self.monitor, self.factor, self.patience, self.min_delta = monitor, factor, patience, min_delta
        self.min_learning_rate, self.cooldown = min_learning_rate, cooldown
        self.mode = monitor_mode(monitor)
        self.current: float | None = None
        self.best: float | None = None
        self.wait = 0
        self.cooling = 0

    def rate(self, epoch: int, base: float, epochs: int) -> float:
        if self.current is None:
            self.current = base
        return self.current

    def observe(self, row: dict[str, Any]) -> None:
        value = float(row[self.monitor])
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        elif self.cooling:
            self.cooling -= 1
        else:
            self.wait += 1
            if self.wait > self.patience and self.current is not None:
                self.current = max(self.current * self.factor, self.min_learning_rate)
                self.wait, self.cooling = 0, self.cooldown

    def state(self) -> dict[str, Any]:
        return {"current": self.current, "best": self.best, "wait": self.wait, "cooling": self.cooling}

    def load_state(self, state: dict[str, Any]) -> None:
        self.current, self.best = state["current"], state["best"]
        self.wait, self.cooling = int(state["wait"]), int(state["cooling"])


SCHEDULES: Registry[type[Schedule]] = Registry("schedule")
for _cls in (Schedule, Step, Exponential, Cosine, Plateau):
    SCHEDULES[_cls.name] = _cls
