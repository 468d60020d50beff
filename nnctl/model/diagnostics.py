"""What a run recorded about itself for `nnctl doctor` (`training.diagnostics`): the data checks made before the
first epoch and, per epoch and layer, the gradient norm, the update/weight ratio and the share of dead or
saturated units. Stored in the model file's meta as `diagnostics` (absent in files written without it).

Plain records with their JSON form; `nnctl.training.diagnostics` records them, `nnctl.training.doctor` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _short(value: float | None) -> float | None:
    """Four significant digits: the meta stays small, and diagnoses need no more."""
    return None if value is None else float(f"{value:.4g}")


@dataclass
class DataChecks:
    """The training rows' inputs after preprocessing: per network input its population standard deviation and
    largest absolute value; the raw features that hold one value on every training row, with that value; and for
    a classifier, the share of the most frequent class (the accuracy of always predicting it)."""

    inputs: list[str]
    std: list[float]
    max_abs: list[float]
    constant: dict[str, float] = field(default_factory=dict)  # feature -> its one value (NaN: a category)
    majority: float | None = None  # classification: the share of the training rows in their most frequent class

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "std": [_short(v) for v in self.std],
                "max_abs": [_short(v) for v in self.max_abs],
                "constant": {k: (None if v != v else _short(v)) for k, v in self.constant.items()},
                **({"majority": _short(self.majority)} if self.majority is not None else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataChecks:
        constant = {str(k): float("nan") if v is None else float(v) for k, v in data.get("constant", {}).items()}
        return cls([str(n) for n in data["inputs"]], [float(v) for v in data["std"]],
                   [float(v) for v in data["max_abs"]], constant,
                   None if data.get("majority") is None else float(data["majority"]))


@dataclass
class EpochRecord:
    """One epoch, one entry per layer (0 = first hidden layer): `grad_norm`, the root mean square over the recorded
    batches of ‖dW_i‖ (the batch-mean loss's gradient, before clipping); `update_ratio`, ‖W_i after - W_i before
    the epoch‖ / ‖W_i before‖; `dead`, for a ReLU hidden layer, the share of its units never > 0 on the recorded
    rows; `saturated`, for a sigmoid or tanh hidden layer, the share of its units never out of saturation on those
    rows (sigmoid: every output < 0.01 or > 0.99; tanh: every |output| > 0.99). None where it does not apply."""

    epoch: int
    grad_norm: list[float]
    update_ratio: list[float]
    dead: list[float | None]
    saturated: list[float | None]

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "grad_norm": [_short(v) for v in self.grad_norm],
                "update_ratio": [_short(v) for v in self.update_ratio], "dead": [_short(v) for v in self.dead],
                "saturated": [_short(v) for v in self.saturated]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpochRecord:
        def floats(key: str) -> list[float]:
            return [float(v) for v in data[key]]

        def optional(key: str) -> list[float | None]:
            return [None if v is None else float(v) for v in data[key]]

        return cls(int(data["epoch"]), floats("grad_norm"), floats("update_ratio"), optional("dead"),
                   optional("saturated"))


@dataclass
class Diagnostics:
    """A run's data checks and its epochs' records (a resumed run continues the list)."""

    data: DataChecks | None = None
    epochs: list[EpochRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"data": None if self.data is None else self.data.to_json(),
                "epochs": [e.to_json() for e in self.epochs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Diagnostics:
        checks = data.get("data")
        return cls(None if checks is None else DataChecks.from_json(checks),
                   [EpochRecord.from_json(e) for e in data.get("epochs", [])])
