"""What a model file records besides the network and the preprocessing: where its run stands (`TrainingState`,
everything an exact resume needs) and where the model came from (`Provenance`).

Both are typed here and flattened only at the file's edge: `to_json()` gives the `state` object of the model's
`meta` JSON, `arrays()` the arrays saved beside the weights (`optimizer.m_acc`, `early_stopping.best`,
`resume.params`, ...), and `from_file` reads them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from nnctl._types import Array


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class PartState:
    """A named part of a run (an optimizer, a schedule) and its own state: JSON `values` (its step counter, a
    plateau's best value) and `arrays` (an optimizer's moment buffers). Only the part itself reads them."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Array] = field(default_factory=dict)


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class EarlyStoppingState:
    best: float | None = None  # the best monitored value so far
    best_epoch: int = 0
    wait: int = 0  # epochs since the best one
    best_params: Array | None = None  # that epoch's weights, kept when the best weights are to be restored


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class TrainingState:
    """Where a run stands after `epochs_done` epochs: enough to continue it bit for bit."""

    epochs_done: int
    reference_loss: float | None  # the run's first batch loss, the divergence guard's yardstick
    rng: dict[str, Any]  # the generator's `bit_generator.state`
    optimizer: PartState
    schedule: PartState
    early_stopping: EarlyStoppingState | None = None
    last_params: Array | None = None  # the last epoch's weights, when the saved ones are an earlier best epoch's

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epochs_done": self.epochs_done, "reference_loss": self.reference_loss,
                               "rng": self.rng, "optimizer": {"name": self.optimizer.name, **self.optimizer.values},
                               "schedule": {"name": self.schedule.name, **self.schedule.values}}
        if self.early_stopping is not None:
            stopping = self.early_stopping
            out["early_stopping"] = {"best": stopping.best, "best_epoch": stopping.best_epoch, "wait": stopping.wait}
        return out

    def arrays(self) -> dict[str, Array]:
        """The state's arrays under their names in the model file."""
        out = {f"optimizer.{key}": value for key, value in self.optimizer.arrays.items()}
        if self.early_stopping is not None and self.early_stopping.best_params is not None:
            out["early_stopping.best"] = self.early_stopping.best_params
        if self.last_params is not None:
            out["resume.params"] = self.last_params
        return out

    @classmethod
    def from_file(cls, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainingState | None:
        """The state a model file holds (its meta `state` and its arrays), or None when it holds none."""
        if "rng" not in state:
            return None
        optimizer = dict(state["optimizer"])
        schedule = dict(state["schedule"])
        stopping = None
        if "early_stopping" in state:
            raw = state["early_stopping"]
            stopping = EarlyStoppingState(raw["best"], raw["best_epoch"], raw["wait"],
                                          arrays.get("early_stopping.best"))
        return cls(
            epochs_done=int(state["epochs_done"]), reference_loss=state.get("reference_loss"), rng=state["rng"],
            optimizer=PartState(optimizer.pop("name"), optimizer,
                                {key.split(".", 1)[1]: value for key, value in arrays.items()
                                 if key.startswith("optimizer.")}),
            schedule=PartState(schedule.pop("name"), schedule),
            early_stopping=stopping, last_params=arrays.get("resume.params"))

    def copy(self, into: TrainingState | None = None) -> TrainingState:
        """A deep copy; with `into` (an earlier copy of the same run), its arrays are reused when the shapes match,
        so taking a copy every epoch allocates nothing."""

        def array(value: Array | None, old: Array | None) -> Array | None:
            if value is None:
                return None
            if old is not None and old.shape == value.shape:
                np.copyto(old, value)
                return old
            return value.copy()

        def part(value: PartState, old: PartState | None) -> PartState:
            arrays = {key: array(a, old.arrays.get(key) if old else None) for key, a in value.arrays.items()}
            return PartState(value.name, _json_copy(value.values), arrays)  # type: ignore[arg-type]

        stopping = None
        if self.early_stopping is not None:
            old = into.early_stopping.best_params if into is not None and into.early_stopping is not None else None
            stopping = replace(self.early_stopping, best_params=array(self.early_stopping.best_params, old))
        return TrainingState(self.epochs_done, self.reference_loss, _json_copy(self.rng),
                             part(self.optimizer, into.optimizer if into else None),
                             part(self.schedule, into.schedule if into else None), stopping,
                             array(self.last_params, into.last_params if into else None))


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


@dataclass
class StreamingInfo:
    """How a streaming run (`data.streaming`) read its data: settings, the columns read as text throughout, and
    the passes' costs."""

    chunk_rows: int
    shuffle_buffer: int
    text_columns: list[str]
    pass1_seconds: float
    spill_seconds: float | None = None
    spill_bytes: int | None = None


@dataclass
class Provenance:
    """Where a model came from, beyond its config: the model it was fine-tuned from, the class weights its loss
    used, how streaming read its data, the epoch whose weights it keeps when early stopping restored them, and the
    MLflow run it was logged to."""

    streaming: StreamingInfo | None = None
    init_from: str | None = None
    class_weight: dict[str, float] | None = None
    restored_best_epoch: int | None = None
    mlflow_run_id: str | None = None  # tracking.mlflow: the run a resume continues

    def to_json(self, training: TrainingState | None) -> dict[str, Any]:
        """The model file's `state` object: provenance and the training state, in the file's key order."""
        out: dict[str, Any] = {}
        if self.streaming is not None:
            out["streaming"] = asdict(self.streaming)
        if self.init_from is not None:
            out["init_from"] = self.init_from
        if self.class_weight:
            out["class_weight"] = self.class_weight
        if training is not None:
            out.update(training.to_json())
        if self.restored_best_epoch is not None:
            out["restored_best_epoch"] = self.restored_best_epoch
        if self.mlflow_run_id is not None:
            out["mlflow_run_id"] = self.mlflow_run_id
        return out

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Provenance:
        streaming = state.get("streaming")
        return cls(StreamingInfo(**streaming) if isinstance(streaming, dict) else None, state.get("init_from"),
                   state.get("class_weight"), state.get("restored_best_epoch"), _text(state.get("mlflow_run_id")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
