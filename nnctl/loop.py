"""The mini-batch training loop: epochs, early stopping, and the per-epoch record the history keeps.

`Loop` owns the run's moving parts (network, optimizer, schedule, early stopping, generator) so that
`state()` can capture all of them for a bit-exact resume.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnctl._types import Array
from nnctl.dataset import RowStream, Segment, Split
from nnctl.errors import TrainingError
from nnctl.losses import LOSSES
from nnctl.metrics import RunningMetrics
from nnctl.model import Model
from nnctl.optimizers import Optimizer
from nnctl.schedules import Schedule, improved, monitor_mode


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

    def on_start(self, info: dict[str, Any]) -> None:
        """Data is loaded and the network built; `info` has rows, parameters, epochs and more."""

    def on_epoch(self, stats: EpochStats) -> None:
        """An epoch finished."""

    def on_checkpoint(self, path: str, epoch: int) -> None:
        """A resumable checkpoint was written."""


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str, patience: int, min_delta: float, restore_best: bool) -> None:
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best
        self.mode = monitor_mode(monitor)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_params: Array | None = None

    def update(self, epoch: int, row: dict[str, Any], params: Array) -> bool:
        """Record epoch `epoch`'s row; True when training should stop."""
        value = float(row[self.monitor])
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                if self.best_params is None:
                    self.best_params = params.copy()
                else:
                    self.best_params[...] = params
        else:
            self.wait += 1
        return self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state(self, state: dict[str, Any], best_params: Array | None) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_params = None if best_params is None else best_params.copy()


# A loss this many times the first batch's (or 1.0, if that was smaller) is a run blowing up, even while
# it is still finite: Adam's bounded steps can push the loss to 1e10 without ever producing inf or NaN.
DIVERGENCE_FACTOR = 1e4


WIDE_ROW_BYTES = 512  # rows at least this wide are gathered per batch instead of copied per epoch


def clip_global_norm(grads: Array, max_norm: float) -> None:
    """Rescale all gradients together so their joint L2 norm is at most `max_norm`."""
    norm = math.sqrt(float(np.vdot(grads, grads)))
    if norm > max_norm:
        grads *= max_norm / norm


class Loop:
    """Trains `model` on `train` until its history has `epochs` rows (or early stopping ends it)."""

    def __init__(self, model: Model, optimizer: Optimizer, schedule: Schedule, stopper: EarlyStopping | None,
                 train: Split | RowStream, validation: Split | RowStream | None, *, epochs: int, batch_size: int,
                 shuffle: bool, clip_norm: float | None, base_rate: float, rng: np.random.Generator) -> None:
        self.model, self.optimizer, self.schedule, self.stopper = model, optimizer, schedule, stopper
        self.train, self.validation = train, validation
        self.epochs, self.shuffle, self.clip_norm, self.base_rate = epochs, shuffle, clip_norm, base_rate
        self.rng = rng
        self.batch = min(batch_size, len(train)) or 1
        self.stopped_early = False
        self.reference: float | None = None  # the run's first batch loss, before any step
        self._snapshot: dict[str, Any] | None = None  # the state after the last completed epoch
        network = model.network
        self.ws = network.workspace(self.batch)
        self.dropout = any(network.dropout)
        target = model.target
        self.running = RunningMetrics(target.task, target.binary, target.scale, _ss_total(train, target.task))

    def finished_early(self) -> bool:
        """True when the (resumed) early-stopping state already says stop."""
        return self.stopper is not None and self.stopper.wait >= self.stopper.patience

    def run(self, callback: Callback, checkpoint: Callable[[int], None] | None = None,
            every: int | None = None) -> None:
        """Train the remaining epochs; `checkpoint(epoch)` is called every `every` epochs."""
        history = self.model.history
        if history:
            self.take_snapshot()  # a resumed run can be interrupted in its first epoch and still be saved
        if self.finished_early():
            self.stopped_early = True
            return
        # One contiguous shuffled copy per epoch: batches are then cheap slices, not fancy-indexed gathers.
        # Wide rows (784 pixels, say) are gathered batch by batch into a buffer the GEMM then reads from
        # cache, instead of copying (and page-faulting) the whole matrix again: same batches, less memory.
        # Streamed rows come in segments of whole batches, shuffled (or gathered) in the stream's own buffers.
        t = self.train
        network = self.model.network
        width, itemsize = (t.X.shape[1], t.X.itemsize) if isinstance(t, Split) else (network.sizes[0],
                                                                                     network.dtype.itemsize)
        self.wide = width * itemsize >= WIDE_ROW_BYTES
        copies: list[np.ndarray] = []
        if isinstance(t, Split):
            self.x_buffer = np.empty((self.batch, t.X.shape[1]), t.X.dtype) if self.wide else np.empty_like(t.X)
            copies = [np.empty_like(a) for a in (t.Y, t.y, t.w) if a is not None]
        elif self.wide:
            self.x_buffer = np.empty((self.batch, network.sizes[0]), network.dtype)
        for epoch in range(len(history) + 1, self.epochs + 1):
            self.optimizer.learning_rate = self.schedule.rate(epoch - 1, self.base_rate, self.epochs)
            # A diverging run overflows on its way to inf/NaN; the guards in _epoch report it as one message.
            with np.errstate(over="ignore", invalid="ignore"):
                stats = self._epoch(epoch, copies)
            row = stats.record()
            history.append(row)
            self.schedule.observe(row)
            stop = self.stopper.update(epoch, row, self.model.network.params) if self.stopper else False
            self.take_snapshot()  # before telling anyone: an epoch reported done is an epoch an interrupt keeps
            callback.on_epoch(stats)
            if checkpoint is not None and every and epoch % every == 0 and epoch < self.epochs and not stop:
                checkpoint(epoch)
            if stop:
                self.stopped_early = True
                break

    def _segments(self, copies: list[np.ndarray]) -> Iterator[Segment]:
        """The epoch's rows in batch order: in memory one segment (a shuffled copy, or the gather order of wide
        rows); streamed, the stream's segments of whole batches."""
        t = self.train
        if not isinstance(t, Split):
            yield from t.segments(self.rng if self.shuffle else None, self.batch, self.wide)
            return
        X, parts = t.X, [a for a in (t.Y, t.y, t.w) if a is not None]
        gather = None  # the shuffled row order, when wide rows are gathered batch by batch
        if self.shuffle:
            order = self.rng.permutation(len(t))
            parts = [np.take(a, order, axis=0, out=c) for a, c in zip(parts, copies, strict=True)]
            if self.wide:
                gather = order
            else:
                X = np.take(X, order, axis=0, out=self.x_buffer)
        yield X, parts, gather

    def _epoch(self, epoch: int, copies: list[np.ndarray]) -> EpochStats:
        started = time.perf_counter()
        network, loss, ws, B = self.model.network, LOSSES[self.model.loss], self.ws, self.batch
        rng = self.rng if self.dropout else None
        self.running.reset()
        total = 0.0
        rows_seen = batches = 0
        for X, parts, gather in self._segments(copies):
            Y, y = parts[0], parts[1]
            w = parts[2] if len(parts) > 2 else None
            for start in range(0, len(Y), B):
                batches += 1
                rows = slice(start, start + B)
                Yb = Y[rows]
                Xb = X[rows] if gather is None else np.take(X, gather[rows], axis=0, out=self.x_buffer[: len(Yb)])
                wb = None if w is None else w[rows]
                m = len(Xb)
                A = network.forward_train(ws, Xb, rng)
                scratch = ws.scratch[-1][:m]
                value = loss.value(A, Yb, scratch, wb)
                if self.reference is None:
                    self.reference = value
                if not math.isfinite(value) or value > DIVERGENCE_FACTOR * max(self.reference, 1.0):
                    what = (f"became {value}" if not math.isfinite(value) else
                            f"grew from {self.reference:.4g} to {value:.4g}")
                    raise TrainingError(f"training diverged: the loss {what} in epoch {epoch}, batch "
                                        f"{batches}; lower optimizer.learning_rate (now "
                                        f"{self.optimizer.learning_rate:g}) or check the data's scale")
                total += value * m
                self.running.add(A, Yb, y[rows], scratch)
                network.backward(ws, Xb, Yb, loss, wb, dropout=self.dropout)
                if self.clip_norm is not None:
                    clip_global_norm(network.grads, self.clip_norm)
                self.optimizer.step(network.grads)
            rows_seen += len(Y)
        if not np.isfinite(network.params).all():
            raise TrainingError(f"training diverged: the weights became non-finite in epoch {epoch}; lower "
                                f"optimizer.learning_rate (now {self.optimizer.learning_rate:g})")
        stats = EpochStats(epoch, self.epochs, total / rows_seen, 0.0, self.optimizer.learning_rate,
                           train=self.running.result())
        if self.validation is not None:
            stats.validation = evaluate(self.model, self.validation)
        stats.seconds = time.perf_counter() - started
        return stats

    def state(self) -> dict[str, Any]:
        """Everything needed to continue this run bit for bit: counters, generator, optimizer, schedule."""
        arrays: dict[str, np.ndarray] = {}
        optimizer: dict[str, Any] = {"name": self.optimizer.name}
        for key, value in self.optimizer.state().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{key}"] = value
            else:
                optimizer[key] = value
        state: dict[str, Any] = {
            "epochs_done": len(self.model.history),
            "reference_loss": self.reference,
            "rng": self.rng.bit_generator.state,
            "optimizer": optimizer,
            "schedule": {"name": self.schedule.name, **self.schedule.state()},
        }
        if self.stopper is not None:
            state["early_stopping"] = self.stopper.state()
            if self.stopper.best_params is not None:
                arrays["early_stopping.best"] = self.stopper.best_params
        state["arrays"] = arrays
        return state

    def take_snapshot(self) -> None:
        """Copy the state at this epoch boundary, so an interrupt mid-epoch can still save a resumable run.

        Signals are held off while copying: a Ctrl-C must not leave half a snapshot."""
        with signals_held():
            state = self.state()
            arrays: dict[str, np.ndarray] = dict(state.pop("arrays"))
            arrays["params"] = self.model.network.params
            old = self._snapshot["arrays"] if self._snapshot is not None else {}
            copies = {}
            for key, value in arrays.items():
                if key in old and old[key].shape == value.shape:
                    np.copyto(old[key], value)  # the buffers are reused: no allocation per epoch
                    copies[key] = old[key]
                else:
                    copies[key] = value.copy()
            self._snapshot = {**copy.deepcopy(state), "arrays": copies}

    def restore_snapshot(self) -> bool:
        """Go back to the last completed epoch (False when none has completed)."""
        if self._snapshot is None:
            return False
        snap = self._snapshot
        arrays = dict(snap["arrays"])
        self.model.network.params[...] = arrays.pop("params")
        del self.model.history[snap["epochs_done"]:]
        self.load_state({**snap, "arrays": arrays})
        return True

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state()` captured (from a model file's `state`)."""
        arrays = state.get("arrays", {})
        opt_state = {k: v for k, v in state["optimizer"].items() if k != "name"}
        opt_state.update({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer.")})
        self.optimizer.load_state(opt_state)
        self.rng.bit_generator.state = state["rng"]
        self.reference = state.get("reference_loss")
        self.schedule.load_state({k: v for k, v in state["schedule"].items() if k != "name"})
        if self.stopper is not None and "early_stopping" in state:
            self.stopper.load_state(state["early_stopping"], arrays.get("early_stopping.best"))


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT and SIGTERM until the block is done (where the platform allows it)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def evaluate(model: Model, rows: Split | RowStream) -> dict[str, float]:
    """Loss and metrics of `model` on rows in memory, or streamed chunk by chunk."""
    if isinstance(rows, Split):
        return model.evaluate(rows.X, rows.Y, rows.y)
    return rows.evaluate(model)


def _ss_total(split: Split | RowStream, task: str) -> float:
    if not isinstance(split, Split):
        return split.ss_total
    if task != "regression" or not len(split):
        return 0.0
    y = split.y.astype(np.float64)
    return float(np.sum((y - y.mean()) ** 2))
