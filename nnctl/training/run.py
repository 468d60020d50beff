"""A training run: build the network a config describes (or take one from a model file), train it, save it.

`train()` wires config, data, network, optimizer, schedule and early stopping into a `Loop`, handles `resume`
(continue a run bit for bit) and `init` (fine-tune a trained model on new data), and saves models and
checkpoints atomically. Progress goes to a `Callback`; the library itself never prints.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.config.schema import Config
from nnctl.data.dataset import Dataset
from nnctl.data.load import load_dataset
from nnctl.engine.network import Network, parameter_count
from nnctl.engine.schedules import monitor_mode
from nnctl.errors import ConfigError, InputError, ModelFileError, TrainingError, TrainingInterrupted
from nnctl.files import refuse_to_replace, signals_held
from nnctl.model.diagnostics import Diagnostics
from nnctl.model.model import Model, load_model
from nnctl.model.state import TrainingState
from nnctl.training.calibrate import calibrate
from nnctl.training.diagnostics import data_checks
from nnctl.training.events import Callback, Callbacks, StartInfo
from nnctl.training.loop import Loop
from nnctl.training.setup import (
    build_loop,
    checkpoint_path,
    final_metrics,
    loss_options,
    output_path,
    resolve_layers,
    resolved_config,
)
from nnctl.training.tracking import TrackAs, Tracking


@dataclass
class TrainResult:
    model: Model
    output: Path | None
    seconds: float
    final: dict[str, dict[str, float]]  # {"train": {...}, "validation": {...}}
    best_epoch: int | None = None  # the epoch whose weights were saved, when early stopping restored them
    stopped_early: bool = False

    def summary(self) -> dict[str, Any]:
        """The run in one flat mapping: what the CLI's `train --json` prints and `require` checks."""
        return {
            "output": None if self.output is None else str(self.output),
            "epochs": len(self.model.history),
            "seconds": round(self.seconds, 3),
            "task": self.model.task,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            **{f"train_{k}": v for k, v in self.final["train"].items()},
            **{f"val_{k}": v for k, v in self.final.get("validation", {}).items()},
            **({"temperature": self.model.temperature} if self.model.temperature is not None else {}),
            **({"threshold": self.model.threshold} if self.model.threshold is not None else {}),
        }


@contextlib.contextmanager
def _threads(limit: int | None) -> Iterator[None]:
    """Cap the BLAS thread pool while training (the environment's OMP_NUM_THREADS applies otherwise)."""
    if limit is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def _interrupted(loop: Loop, model: Model, ckpt: Path | None) -> TrainingInterrupted:
    """Save the last completed epoch as a resumable checkpoint; the exception says where."""
    total = loop.epochs
    if not loop.restore_snapshot():
        return TrainingInterrupted("interrupted before the first epoch finished; nothing to save")
    done = len(model.history)
    if ckpt is None:
        return TrainingInterrupted(f"interrupted after epoch {done} of {total}; not saved (save=False)")
    model.training = loop.state()
    with signals_held():  # a second Ctrl-C must not cost the checkpoint
        model.save(ckpt)
    return TrainingInterrupted(f"interrupted after epoch {done} of {total}; checkpoint saved: {ckpt}", str(ckpt))


def _check_bars(require: Mapping[str, float], dataset: Dataset) -> None:
    available = final_metrics(dataset.target.task, dataset.validation is not None)
    for name in require:
        if name not in available:
            why = ("there is no validation data" if name.startswith("val_") and dataset.validation is None
                   else f"not a {dataset.target.task} metric")
            raise InputError(f"{{require}} {name}: {why} (available: {', '.join(available)})", arguments=("require",))


def missed_bars(require: Mapping[str, float], summary: Mapping[str, float]) -> list[str]:
    """'val_accuracy 0.8667 < 0.9' for each bar the run misses; losses and errors must stay at or below theirs."""
    missed = []
    for name, bar in require.items():
        value = summary[name]
        if monitor_mode(name) == "max" and not value >= bar:
            missed.append(f"{name} {value:.4g} < {bar:g}")
        elif monitor_mode(name) == "min" and not value <= bar:
            missed.append(f"{name} {value:.4g} > {bar:g}")
    return missed


def _check_compatible(base: Model, network: Network, source: str) -> None:
    ours = " → ".join(f"{s}" for s in network.sizes), network.activation_names
    theirs = " → ".join(f"{s}" for s in base.network.sizes), base.network.activation_names
    if ours != theirs:
        raise InputError(f"{source}: the model's network {theirs[0]} ({', '.join(theirs[1])}) differs from the "
                         f"config's {ours[0]} ({', '.join(ours[1])}); make model.layers match the model")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else k)]
    return [] if old == new else [prefix]


_RESUME_MAY_CHANGE = ("training.epochs", "output", "training.checkpoint", "training.checkpoint_every",
                      "training.early_stopping.patience", "tracking")



def train(config: Config, output: str | Path | None = None, callback: Callback | None = None, save: bool = True,
          resume: str | Path | None = None, init: str | Path | None = None,
          require: Mapping[str, float] | None = None, tracking: TrackAs | None = None) -> TrainResult:
    """Train the network `config` describes; save it to `output` (default: the config's) unless `save` is False.

    `resume`: continue the run saved in that model or checkpoint file to `training.epochs`, bit for bit.
    `init`: start from that trained model's weights, preprocessing and classes, and train on the config's data.
    `require`: bars the final metrics must meet (`{"val_accuracy": 0.9}`; losses and errors are upper limits);
    a run that misses one is saved beside the output as `*.failed.npz`, never over it, and raises TrainingError.
    The config's `tracking` section is followed (a metrics CSV, MLflow); `tracking` says how a sweep's trial or a
    cross-validation's fold is tracked instead (nested under a parent MLflow run, no CSV)."""
    if resume is not None and init is not None:
        raise ConfigError("{resume} and {init} exclude each other: resume continues a run, init starts a new one",
                          arguments=("resume", "init"))
    callback = callback or Callback()
    started = time.perf_counter()
    path = output_path(config, output) if save else None
    ckpt = checkpoint_path(config, path)
    for target in (path, ckpt if config.training.checkpoint_every else None):
        if target is not None:
            _check_writable(target)
    source = resume if resume is not None else init
    base = load_model(source) if source is not None else None
    if resume is not None and base is not None and base.training is None:
        raise ModelFileError(f"{resume}: holds no training state to resume from; use {{init}} to fine-tune it",
                             arguments=("init",))
    tracker = Tracking(config, callback.on_warning, base.provenance.mlflow_run_id if resume is not None and base
                       else None, tracking)
    tracker.check()
    rng = np.random.default_rng(config.seed)
    # streaming: pass 1 now (the checks below need its results), pass 2 when the dataset is opened
    dataset = load_dataset(config, rng, callback.on_warning, base, callback.on_status)
    try:
        return _train(config, dataset, rng, base, callback, started, path, ckpt, resume, init, require, tracker)
    except TrainingInterrupted:
        tracker.end("KILLED")
        raise
    except BaseException:
        tracker.end("FAILED")
        raise
    finally:
        dataset.close()  # streaming: delete the temporary files, also after an error or an interrupt


def _train(config: Config, dataset: Dataset, rng: np.random.Generator, base: Model | None, callback: Callback,
           started: float, path: Path | None, ckpt: Path | None, resume: str | Path | None,
           init: str | Path | None, require: Mapping[str, float] | None, tracker: Tracking) -> TrainResult:
    """`train` once the data is loaded; `tracker` hears the run before `callback` does."""
    _check_bars(require or {}, dataset)
    layers = resolve_layers(config, dataset)
    network = layers.network(config.training.dtype)
    if base is not None:
        _check_compatible(base, network, str(resume or init))
        # a finished run that restored its best epoch keeps the last epoch's weights for a resume
        last = base.training.last_params if resume is not None and base.training is not None else None
        network.params[...] = base.network.params if last is None else last
    else:
        network.initialise(layers.inits, rng)
    options = loss_options(config, base)
    resolved = resolved_config(config, dataset, layers, options)
    model = Model(network, dataset.preprocessor, dataset.target, dataset.loss, config=resolved, loss_options=options)
    if config.training.diagnostics:
        model.diagnostics = Diagnostics()
    loop = build_loop(config, dataset, model, rng)
    dataset.open()
    if model.diagnostics is not None:
        model.diagnostics.data = data_checks(dataset.train, dataset.preprocessor,
                                                len(dataset.target.classes))
    model.provenance.streaming = dataset.sources.streaming
    if config.training.batch_size > len(dataset.train):
        callback.on_warning(f"{config.source}: training.batch_size {config.training.batch_size} is more than the "
                            f"{len(dataset.train)} training rows; each epoch is one step of all of them")
    if resume is not None and base is not None:
        _resume(config, base, model, loop, resolved, resume, callback)
    elif init is not None:
        model.provenance.init_from = str(init)
    model.provenance.class_weight = dataset.sources.class_weight
    if tracker.active:
        tracker.resolved = resolved
        callback = Callbacks(tracker, callback)
    callback.on_start(StartInfo(
        rows_train=len(dataset.train), rows_validation=len(dataset.validation) if dataset.validation else 0,
        sizes=layers.sizes, activations=layers.activations, parameters=parameter_count(layers.sizes),
        epochs=config.training.epochs, epochs_done=len(model.history), task=dataset.target.task, loss=dataset.loss,
        init_from=str(init) if init is not None else None, history=list(model.history)))
    if tracker.run_id is not None:
        model.provenance.mlflow_run_id = tracker.run_id  # in every checkpoint too: a resume continues the run

    def checkpoint(epoch: int) -> None:
        assert ckpt is not None
        model.training = loop.state()
        model.save(ckpt)
        callback.on_checkpoint(str(ckpt), epoch)

    try:
        with _threads(config.training.threads):
            loop.run(callback, checkpoint if ckpt is not None else None, config.training.checkpoint_every)
    except KeyboardInterrupt:
        raise _interrupted(loop, model, ckpt) from None
    model.training = state = loop.state()
    best_epoch = _restore_best(model, state, loop)
    calibrate(config, model, dataset)
    final = {"train": model.score(dataset.train.chunks(), every_row=False)}  # memory bounded on a streamed file
    if dataset.validation is not None:
        final["validation"] = model.score(dataset.validation.chunks())
    result = TrainResult(model, path, time.perf_counter() - started, final, best_epoch, loop.stopped_early)
    _save(result, config, path, ckpt, resume, missed_bars(require or {}, result.summary()))
    tracker.finish(result.summary(), model, path)
    return result


def _resume(config: Config, base: Model, model: Model, loop: Loop, resolved: dict[str, Any], resume: str | Path,
            callback: Callback) -> None:
    """Continue `base`'s run: its history and training state; a warning when the config changed or nothing is
    left to train."""
    assert base.training is not None
    changed = [k for k in _differences(base.config, resolved) if not k.startswith(_RESUME_MAY_CHANGE)]
    if changed:
        callback.on_warning(f"resuming with a changed config ({', '.join(changed[:4])}); the result will "
                            "differ from an uninterrupted run")
    model.history = list(base.history)
    model.provenance.mlflow_run_id = base.provenance.mlflow_run_id
    if model.diagnostics is not None and base.diagnostics is not None:
        model.diagnostics.epochs = list(base.diagnostics.epochs)
    loop.load_state(base.training)
    if len(model.history) >= config.training.epochs:
        callback.on_warning(f"{resume}: already trained {len(model.history)} epochs (training.epochs is "
                            f"{config.training.epochs}); nothing left to train")
    elif loop.finished_early():
        callback.on_warning(f"{resume}: this run stopped early after epoch {len(model.history)}; nothing left "
                            "to train (raise training.early_stopping.patience to continue it)")


def _restore_best(model: Model, state: TrainingState, loop: Loop) -> int | None:
    """Early stopping's best weights, when it is to restore them: the model takes them (the last epoch's are kept
    for a resume); returns that epoch."""
    stopping = state.early_stopping
    if loop.stopper is None or not loop.stopper.restore_best or stopping is None or stopping.best_params is None:
        return None
    params = model.network.params
    if stopping.best_epoch != len(model.history):
        state.last_params = params.copy()
    params[...] = stopping.best_params
    model.provenance.restored_best_epoch = stopping.best_epoch
    return stopping.best_epoch


def _save(result: TrainResult, config: Config, path: Path | None, ckpt: Path | None, resume: str | Path | None,
          missed: list[str]) -> None:
    """Save the model (as `*.failed.npz` when it misses a bar, never over the output) and delete the checkpoint it
    makes unnecessary; TrainingError for a missed bar."""
    if path is not None:
        saved = path.with_name(path.name.removesuffix(".npz") + ".failed.npz") if missed else path
        result.model.save(saved)
        if ckpt is not None and ckpt != path and ckpt.exists() and (
                config.training.checkpoint_every or (resume is not None and Path(resume).resolve() == ckpt.resolve())):
            ckpt.unlink()  # the finished model is itself resumable; the checkpoint has served its purpose
        if missed:
            kept = f"{path} is left as it was" if path.exists() else f"nothing was written to {path}"
            raise TrainingError(f"the model misses {{require}}: {'; '.join(missed)}; it is saved as {saved}, {kept}",
                                arguments=("require",))
    if missed:
        raise TrainingError(f"the model misses {{require}}: {'; '.join(missed)}", arguments=("require",))


def _check_writable(path: Path) -> None:
    """Fail before training, not after, when the model cannot be saved."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the output folder ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path for the model, e.g. {path / 'model.npz'}")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path}: the folder {path.parent} is not writable")
    refuse_to_replace(path, _is_model_file, "an nnctl model", "choose another {output}", arguments=("output",))


def _is_model_file(path: Path) -> bool:
    """An earlier model (or checkpoint) may be replaced; a CSV given as the output by mistake may not."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
