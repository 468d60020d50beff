"""The mini-batch training loop: epochs, early stopping, and the per-epoch record the history keeps.

`Loop` owns the run's moving parts (network, optimizer, schedule, early stopping, generator) so that `state()`
can capture all of them for a bit-exact resume. It reads its rows through the `Rows` interface alone: an epoch is
the rows' segments of whole batches, validation is the model scoring the rows' chunks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from nnctl._types import Array
from nnctl.data.rows import Parts, Rows, take_rows
from nnctl.engine import aligned
from nnctl.engine.metrics import RunningMetrics
from nnctl.engine.optimizers import Optimizer
from nnctl.engine.schedules import Schedule, improved, monitor_mode
from nnctl.errors import TrainingError
from nnctl.files import signals_held
from nnctl.model.model import Model
from nnctl.model.state import EarlyStoppingState, PartState, TrainingState
from nnctl.training.diagnostics import Recorder
from nnctl.training.events import Callback, EpochStats


class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str, patience: int, min_delta: float, restore_best: bool) -> None:
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best
        self.mode = monitor_mode(monitor)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_params: Array | None = None

    def update(self, epoch: int, row: dict[str, float], params: Array) -> bool:
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

    def state(self) -> EarlyStoppingState:
        return EarlyStoppingState(self.best, self.best_epoch, self.wait, self.best_params)

    def load_state(self, state: EarlyStoppingState) -> None:
        self.best, self.best_epoch, self.wait = state.best, state.best_epoch, state.wait
        self.best_params = None if state.best_params is None else state.best_params.copy()


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
                 train: Rows, validation: Rows | None, *, epochs: int, batch_size: int, shuffle: bool,
                 clip_norm: float | None, base_rate: float, rng: np.random.Generator) -> None:
        self.model, self.optimizer, self.schedule, self.stopper = model, optimizer, schedule, stopper
        self.train, self.validation = train, validation
        self.epochs, self.shuffle, self.clip_norm, self.base_rate = epochs, shuffle, clip_norm, base_rate
        self.rng = rng
        self.batch = min(batch_size, len(train)) or 1
        self.stopped_early = False
        self.reference: float | None = None  # the run's first batch loss, before any step
        self._snapshot: tuple[TrainingState, Array] | None = None  # the state after the last completed epoch
        network = model.network
        self.ws = network.workspace(self.batch)
        self.dropout = any(network.dropout)
        # Wide rows (784 pixels, say) are gathered batch by batch into a buffer the GEMM then reads from cache,
        # instead of copying (and page-faulting) the whole matrix every epoch: same batches, less memory.
        self.wide = network.sizes[0] * network.dtype.itemsize >= WIDE_ROW_BYTES
        self.x_buffer = aligned.empty((self.batch, network.sizes[0]), network.dtype) if self.wide else None
        target = model.target
        ss_total = train.ss_total if target.task == "regression" else 0.0  # R²'s denominator
        self.running = RunningMetrics(target.task, target.binary, target.scale, ss_total)
        # training.diagnostics: what `nnctl doctor` reads, into model.diagnostics (set by the run)
        self.recorder = Recorder(network, math.ceil(len(train) / self.batch)) \
            if model.diagnostics is not None else None
        self._out: Array | None = None  # a segment's outputs, and its loss terms (see `_score_segment`)
        self._terms: Array | None = None
        self.total, self.batches = 0.0, 0  # the epoch's loss sum and batches scored so far

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
        for epoch in range(len(history) + 1, self.epochs + 1):
            self.optimizer.learning_rate = self.schedule.rate(epoch - 1, self.base_rate, self.epochs)
            # A diverging run overflows on its way to inf/NaN; the guards in _epoch report it as one message.
            with np.errstate(over="ignore", invalid="ignore"):
                stats = self._epoch(epoch)
            row = stats.record()
            history.append(row)
            if self.recorder is not None and self.model.diagnostics is not None:
                self.model.diagnostics.epochs.append(self.recorder.end_epoch(epoch))
            self.schedule.observe(row)
            stop = self.stopper.update(epoch, row, self.model.network.params) if self.stopper else False
            self.take_snapshot()  # before telling anyone: an epoch reported done is an epoch an interrupt keeps
            callback.on_epoch(stats)
            if checkpoint is not None and every and epoch % every == 0 and epoch < self.epochs and not stop:
                checkpoint(epoch)
            if stop:
                self.stopped_early = True
                break

    def _epoch(self, epoch: int) -> EpochStats:
        started = time.perf_counter()
        network, loss, ws, B = self.model.network, self.model.loss_function, self.ws, self.batch
        rng = self.rng if self.dropout else None
        # looked up once an epoch, not once a batch: the pass of full batches (`engine/passes.py`) and the rest
        full, dropout, clip_norm = ws.training_pass(network, B), self.dropout, self.clip_norm
        grads, optimizer_step = network.grads, self.optimizer.step
        self.running.reset()
        self.total, self.batches = 0.0, 0
        rows_seen = batches = 0
        recorder = self.recorder
        every = 0  # training.diagnostics: record every `every`-th batch, the first included (0: none)
        if recorder is not None:
            recorder.start_epoch()
            every = recorder.every
        # In memory: one segment, a contiguous shuffled copy (batches are then cheap slices, not gathers), or the
        # gather order of wide rows; streamed: segments of whole batches, shuffled in the spill's own buffers.
        for X, parts, gather in self.train.segments(self.rng if self.shuffle else None, B, self.wide):
            Y, w = parts.Y, parts.w
            n = len(Y)
            outputs = self._outputs(n)[:n]
            for start in range(0, n, B):
                batches += 1
                stop = start + B
                step = full if stop <= n else ws.training_pass(network, n - start)
                Xb = X[start:stop] if gather is None else self.gather(X, gather[start:stop])
                A = step.forward(Xb, rng)
                # the loss and the running metrics are computed once per segment from these copies (a dozen NumPy
                # calls fewer per batch); a diverging batch is still named, with its number, at the segment's end
                np.copyto(outputs[start:stop], A)
                step.backward(Xb, Y[start:stop], loss, None if w is None else w[start:stop], dropout)
                if every and (batches - 1) % every == 0:
                    recorder.batch(ws, step.m)  # type: ignore[union-attr]
                if clip_norm is not None:
                    clip_global_norm(grads, clip_norm)
                optimizer_step(grads)
            self._score_segment(epoch, outputs, parts)
            rows_seen += len(Y)
        if not np.isfinite(network.params).all():
            raise TrainingError(f"training diverged: the weights became non-finite in epoch {epoch}; lower "
                                f"optimizer.learning_rate (now {self.optimizer.learning_rate:g})")
        stats = EpochStats(epoch, self.epochs, self.total / rows_seen, 0.0, self.optimizer.learning_rate,
                           train=self.running.result())
        if self.validation is not None:
            stats.validation = self.model.score(self.validation.chunks())
        stats.seconds = time.perf_counter() - started
        return stats

    def gather(self, X: Array, rows: np.ndarray) -> Array:
        """The batch of wide rows X[rows] (m, n_inputs), gathered into the loop's batch buffer."""
        assert self.x_buffer is not None
        return take_rows(X, rows, self.x_buffer[: len(rows)])

    def _outputs(self, n: int) -> Array:
        """A buffer for the network outputs of a segment of n rows (n, n_outputs), grown once to the largest."""
        if self._out is None or len(self._out) < n:
            self._out = np.empty((n, self.model.network.sizes[-1]), self.model.network.dtype)
            self._terms = np.empty_like(self._out)
        return self._out

    def _score_segment(self, epoch: int, A: Array, parts: Parts) -> None:
        """The segment's batch losses (each as the loss of that batch alone), the divergence guard on them in batch
        order, the epoch's loss sum, and the running train metrics, from the segment's outputs A (n, n_outputs)."""
        assert self._terms is not None
        B, n = self.batch, len(A)
        values = self.model.loss_function.batch_values(A, parts.Y, self._terms[:n], B, parts.w)
        if self.reference is None:
            self.reference = float(values[0])
        bound = DIVERGENCE_FACTOR * max(self.reference, 1.0)
        bad = ~np.isfinite(values) | (values > bound)
        if bad.any():
            j = int(np.argmax(bad))
            value = float(values[j])
            what = f"became {value}" if not math.isfinite(value) else f"grew from {self.reference:.4g} to {value:.4g}"
            raise TrainingError(f"training diverged: the loss {what} in epoch {epoch}, batch {self.batches + j + 1}; "
                                f"lower optimizer.learning_rate (now {self.optimizer.learning_rate:g}) or check the "
                                "data's scale")
        last = n - (len(values) - 1) * B
        for j, value in enumerate(values.tolist()):  # summed in batch order, as the batches came
            self.total += value * (B if j < len(values) - 1 else last)
        self.batches += len(values)
        self.running.add(A, parts.Y, parts.y, self._terms[:n], parts.r)

    def state(self) -> TrainingState:
        """Everything needed to continue this run bit for bit (referring to the live buffers, not copies)."""
        counters, arrays = {}, {}
        for key, value in self.optimizer.state().items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
            else:
                counters[key] = value
        return TrainingState(
            epochs_done=len(self.model.history), reference_loss=self.reference, rng=dict(self.rng.bit_generator.state),
            optimizer=PartState(self.optimizer.name, counters, arrays),
            schedule=PartState(self.schedule.name, self.schedule.state()),
            early_stopping=self.stopper.state() if self.stopper is not None else None)

    def take_snapshot(self) -> None:
        """Copy the state at this epoch boundary, so an interrupt mid-epoch can still save a resumable run.

        Signals are held off while copying: a Ctrl-C must not leave half a snapshot. The copies reuse the previous
        snapshot's buffers: no allocation per epoch."""
        with signals_held():
            old = self._snapshot
            params = self.model.network.params
            if old is not None and old[1].shape == params.shape:
                np.copyto(old[1], params)
                kept = old[1]
            else:
                kept = params.copy()
            self._snapshot = (self.state().copy(into=old[0] if old is not None else None), kept)

    def restore_snapshot(self) -> bool:
        """Go back to the last completed epoch (False when none has completed)."""
        if self._snapshot is None:
            return False
        state, params = self._snapshot
        self.model.network.params[...] = params
        del self.model.history[state.epochs_done:]
        if self.model.diagnostics is not None:
            kept = [e for e in self.model.diagnostics.epochs if e.epoch <= state.epochs_done]
            self.model.diagnostics.epochs[:] = kept
        self.load_state(state)
        return True

    def load_state(self, state: TrainingState) -> None:
        """Restore what `state()` captured (from a model file, or a snapshot)."""
        self.optimizer.load_state({**state.optimizer.values, **state.optimizer.arrays})
        self.rng.bit_generator.state = state.rng
        self.reference = state.reference_loss
        self.schedule.load_state(state.schedule.values)
        if self.stopper is not None and state.early_stopping is not None:
            self.stopper.load_state(state.early_stopping)
