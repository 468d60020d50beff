"""What a training run tells its caller, as it happens: the `Callback` to subclass and the records it receives.

Plain Python, no NumPy: the CLI's reporters subclass `Callback` without making `nnctl --help` import NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StartInfo:
    """A run about to train: its data, its network and how far it has come (a resumed run: `epochs_done`)."""

    rows_train: int
    rows_validation: int
    sizes: list[int]  # layer widths: inputs, hidden layers, outputs
    activations: list[str]
    parameters: int
    epochs: int  # the epochs the run trains to
    epochs_done: int
    task: str
    loss: str
    init_from: str | None = None  # the model a fine-tuning run starts from
    history: list[dict[str, Any]] = field(default_factory=list)  # the epochs already done (a resumed run's)

    @property
    def inputs(self) -> int:
        return self.sizes[0]


@dataclass
class EpochStats:
    """One epoch's numbers, as stored in the model's history."""

    epoch: int
    epochs: int
    train_loss: float
    seconds: float
    learning_rate: float
    train: dict[str, float] = field(default_factory=dict)  # metrics from the batch outputs
    validation: dict[str, float] = field(default_factory=dict)  # loss and metrics, if there is validation data

    def record(self) -> dict[str, Any]:
        """The history row: epoch, train_loss, train_*, val_*, learning_rate, seconds."""
        row: dict[str, Any] = {"epoch": self.epoch, "train_loss": self.train_loss}
        row.update({f"train_{k}": v for k, v in self.train.items()})
        row.update({f"val_{k}": v for k, v in self.validation.items()})
        row.update(learning_rate=self.learning_rate, seconds=round(self.seconds, 6))
        return row


class Callback:
    """Receives what happens during training; subclass and override what you need."""

    def on_warning(self, message: str) -> None:
        """Something the user should know, e.g. rows dropped for a missing target."""

    def on_status(self, message: str) -> None:
        """A long step before training is under way (streaming's passes over a big CSV); every few seconds."""

    def on_start(self, info: StartInfo) -> None:
        """Data is loaded and the network built."""

    def on_epoch(self, stats: EpochStats) -> None:
        """An epoch finished."""

    def on_checkpoint(self, path: str, epoch: int) -> None:
        """A resumable checkpoint was written."""


class Callbacks(Callback):
    """Several callbacks as one: each hears everything, in order."""

    def __init__(self, *callbacks: Callback) -> None:
        self.callbacks = callbacks

    def on_warning(self, message: str) -> None:
        for callback in self.callbacks:
            callback.on_warning(message)

    def on_status(self, message: str) -> None:
        for callback in self.callbacks:
            callback.on_status(message)

    def on_start(self, info: StartInfo) -> None:
        for callback in self.callbacks:
            callback.on_start(info)

    def on_epoch(self, stats: EpochStats) -> None:
        for callback in self.callbacks:
            callback.on_epoch(stats)

    def on_checkpoint(self, path: str, epoch: int) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(path, epoch)
