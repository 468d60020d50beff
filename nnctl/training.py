"""Training: build the network a config describes (or take one from a model file), train it, save it.

`train()` wires config, data, network, optimizer, schedule and early stopping into a `Loop`, handles
`resume` (continue a run bit for bit) and `init` (fine-tune a trained model on new data), and saves
models and checkpoints atomically. Progress goes to a `Callback`; the library itself never prints.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnctl.config import Config
from nnctl.dataset import Dataset, Split, load_dataset
from nnctl.errors import ConfigError, InputError, ModelFileError, TrainingError, TrainingInterrupted
from nnctl.files import refuse_to_replace
from nnctl.initializers import default_init
from nnctl.loop import Callback, EarlyStopping, EpochStats, Loop, evaluate, signals_held
from nnctl.losses import LOSSES
from nnctl.metrics import metric_names
from nnctl.model import Model, load_model
from nnctl.network import Network, available_memory, parameter_count, training_bytes
from nnctl.schedules import monitor_mode

if TYPE_CHECKING:
    from nnctl.streaming import Plan

__all__ = ["Callback", "EpochStats", "TrainResult", "output_path", "resolve_layers", "train"]


@dataclass
class TrainResult:
    model: Model
    output: Path | None
    seconds: float
    final: dict[str, dict[str, float]]  # {"train": {...}, "validation": {...}}
    best_epoch: int | None = None  # the epoch whose weights were saved, when early stopping restored them
    stopped_early: bool = False

    def summary(self) -> dict[str, Any]:
        """The run in one flat mapping: what `train --json` prints and `--fail-under` checks."""
        return {
            "output": None if self.output is None else str(self.output),
            "epochs": len(self.model.history),
            "seconds": round(self.seconds, 3),
            "task": self.model.task,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            **{f"train_{k}": v for k, v in self.final["train"].items()},
            **{f"val_{k}": v for k, v in self.final.get("validation", {}).items()},
        }


def resolve_layers(config: Config, dataset: Dataset) -> tuple[list[int], list[str], list[str]]:
    """Layer widths, activations and initialisers, with the output layer's gaps filled from the data and loss."""
    loss = LOSSES[dataset.loss]
    layers = config.model.layers
    sizes = [dataset.preprocessor.n_inputs] + [layer.units or 0 for layer in layers]
    activations = [layer.activation or "relu" for layer in layers[:-1]]
    out = layers[-1]
    activations.append(out.activation or loss.output_activation)
    sizes[-1] = out.units or dataset.target.n_outputs
    where = f"{config.source}: model.layers[{len(layers) - 1}]"
    if loss.allowed_activations and activations[-1] not in loss.allowed_activations:
        raise ConfigError(f"{where}.activation: loss '{loss.name}' needs a {loss.output_activation} output layer, "
                          f"got '{activations[-1]}'")
    if sizes[-1] != dataset.target.n_outputs:
        raise ConfigError(f"{where}.units: the data needs {dataset.target.n_outputs} output units for loss "
                          f"'{loss.name}', got {sizes[-1]}; omit units to infer it")
    inits = [layer.init or (config.model.init if config.model.init != "auto" else default_init(act))
             for layer, act in zip(layers, activations, strict=True)]
    train = dataset.train
    _check_fits(config, sizes, len(train) if isinstance(train, Split) else train.rows_in_memory)
    return sizes, activations, inits


def _check_fits(config: Config, sizes: list[int], rows: int) -> None:
    """A network too big for this machine is a config error now, not a MemoryError mid-way."""
    itemsize = np.dtype(config.training.dtype).itemsize
    need, free = training_bytes(sizes, itemsize, min(config.training.batch_size, rows), rows), available_memory()
    if free is not None and need > free:
        gib = 1 << 30
        raise ConfigError(f"{config.source}: model.layers: a network of {parameter_count(sizes):,} parameters "
                          f"needs about {need / gib:.1f} GiB to train, and this machine has {free / gib:.1f} GiB "
                          "available; use fewer units or layers (or dtype float32, a smaller batch_size)")


def resolved_config(config: Config, dataset: Dataset, sizes: list[int], activations: list[str],
                    inits: list[str]) -> dict[str, Any]:
    """The config as trained: defaults filled in, output layer and loss resolved."""
    resolved = config.model_dump(mode="json")
    resolved["loss"] = dataset.loss
    resolved["data"]["features"] = [spec.name for spec in dataset.preprocessor.features]
    for layer, units, act, init in zip(resolved["model"]["layers"], sizes[1:], activations, inits, strict=True):
        layer.update(units=units, activation=act, init=init)
    return resolved


def output_path(config: Config, override: str | Path | None) -> Path:
    """`-o` (relative to the current directory) wins; then the config's `output` (relative to the config)."""
    if override is not None:
        return Path(override)
    if config.output:
        return config.resolve(config.output)
    return Path(Path(config.source).stem + ".npz")


def checkpoint_path(config: Config, output: Path | None) -> Path | None:
    """`training.checkpoint`, else the output path with `.ckpt.npz`; None when there is neither."""
    if config.training.checkpoint:
        return config.resolve(config.training.checkpoint)
    if output is None:
        return None
    return output.with_name(output.name.removesuffix(".npz") + ".ckpt.npz")


def _check_monitor(name: str, key: str, config: Config, dataset: Dataset) -> None:
    """A monitored metric must be one this run computes."""
    # the history's train metrics come from the batch outputs: accuracy only, for a classifier
    task = dataset.target.task
    train_metrics = ("accuracy",) if task == "classification" else metric_names(task)
    available = ["train_loss", *(f"train_{m}" for m in train_metrics)]
    if dataset.validation is not None:
        available += ["val_loss", *(f"val_{m}" for m in metric_names(task))]
    if name not in available:
        why = ("there is no validation data (set data.validation_split > 0 or data.validation)"
               if name.startswith("val_") and dataset.validation is None
               else f"{dataset.target.task} does not compute it")
        raise ConfigError(f"{config.source}: {key}: cannot monitor '{name}': {why} (available: {', '.join(available)})")


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
    model.state.update(loop.state())
    with signals_held():  # a second Ctrl-C must not cost the checkpoint
        model.save(ckpt)
    return TrainingInterrupted(f"interrupted after epoch {done} of {total}; checkpoint saved: {ckpt}", str(ckpt))


def final_metrics(task: str, validation: bool) -> list[str]:
    """The names of the numbers a finished run reports (its summary): train_* and, with validation, val_*."""
    metrics = ["loss", *metric_names(task)]
    return [f"{split}_{m}" for split in ("train", "val")[: 1 + validation] for m in metrics]


def _check_bars(require: Mapping[str, float], dataset: Dataset) -> None:
    available = final_metrics(dataset.target.task, dataset.validation is not None)
    for name in require:
        if name not in available:
            why = ("there is no validation data" if name.startswith("val_") and dataset.validation is None
                   else f"not a {dataset.target.task} metric")
            raise InputError(f"--fail-under {name}: {why} (available: {', '.join(available)})")


def _missed_bars(require: Mapping[str, float], summary: Mapping[str, float]) -> list[str]:
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
                      "training.early_stopping.patience")


def train(config: Config, output: str | Path | None = None, callback: Callback | None = None, save: bool = True,
          resume: str | Path | None = None, init: str | Path | None = None,
          require: Mapping[str, float] | None = None) -> TrainResult:
    """Train the network `config` describes; save it to `output` (default: the config's) unless `save` is False.

    `resume`: continue the run saved in that model or checkpoint file to `training.epochs`, bit for bit.
    `init`: start from that trained model's weights, preprocessing and classes, and train on the config's data.
    `require`: bars the final metrics must meet (`{"val_accuracy": 0.9}`; losses and errors are upper limits);
    a run that misses one is saved beside the output as `*.failed.npz`, never over it, and raises TrainingError."""
    if resume is not None and init is not None:
        raise ConfigError("--resume and --init exclude each other: resume continues a run, init starts a new one")
    callback = callback or Callback()
    started = time.perf_counter()
    path = output_path(config, output) if save else None
    ckpt = checkpoint_path(config, path)
    for target in (path, ckpt if config.training.checkpoint_every else None):
        if target is not None:
            _check_writable(target)
    source = resume if resume is not None else init
    base = load_model(source) if source is not None else None
    if resume is not None and base is not None and "rng" not in base.state:
        raise ModelFileError(f"{resume}: holds no training state to resume from; use --init to fine-tune it")
    rng = np.random.default_rng(config.seed)
    plan = None
    if config.data.streaming:
        from nnctl import streaming

        dataset, plan = streaming.fit(config, rng, callback.on_warning, base, callback.on_status)
    else:
        try:
            dataset = load_dataset(config, rng, callback.on_warning, base)
        except MemoryError:
            raise TrainingError(f"{config.source}: out of memory loading {config.data.train} (in memory, whole); "
                                "set data.streaming: true to train from files larger than memory") from None
    try:
        return _train(config, dataset, plan, rng, base, callback, started, path, ckpt, resume, init, require)
    finally:
        dataset.close()  # streaming: delete the temporary files, also after an error or an interrupt


def _train(config: Config, dataset: Dataset, plan: Plan | None, rng: np.random.Generator, base: Model | None,
           callback: Callback, started: float, path: Path | None, ckpt: Path | None, resume: str | Path | None,
           init: str | Path | None, require: Mapping[str, float] | None) -> TrainResult:
    """`train` once the data is loaded (streaming: after pass 1, which the checks here need; pass 2 follows)."""
    _check_bars(require or {}, dataset)
    sizes, activations, inits = resolve_layers(config, dataset)
    network = Network(sizes, activations, config.training.dtype, [layer.dropout for layer in config.model.layers])
    if base is not None:
        _check_compatible(base, network, str(resume or init))
        # a finished run that restored its best epoch keeps the last epoch's weights for a resume
        last = base.state.get("arrays", {}).get("resume.params") if resume is not None else None
        network.params[...] = base.network.params if last is None else last
    else:
        network.initialise(inits, rng)
    resolved = resolved_config(config, dataset, sizes, activations, inits)
    model = Model(network, dataset.preprocessor, dataset.target, dataset.loss, config=resolved)
    loop = _build_loop(config, dataset, model, rng)
    if plan is not None:
        from nnctl import streaming

        streaming.spill(plan, dataset)
        model.state["streaming"] = dataset.sources["streaming"]
    if config.training.batch_size > len(dataset.train):
        callback.on_warning(f"{config.source}: training.batch_size {config.training.batch_size} is more than the "
                            f"{len(dataset.train)} training rows; each epoch is one step of all of them")
    if resume is not None and base is not None:
        changed = [k for k in _differences(base.config, resolved) if not k.startswith(_RESUME_MAY_CHANGE)]
        if changed:
            callback.on_warning(f"resuming with a changed config ({', '.join(changed[:4])}); the result will "
                                "differ from an uninterrupted run")
        model.history = list(base.history)
        loop.load_state(base.state)
        if len(model.history) >= config.training.epochs:
            callback.on_warning(f"{resume}: already trained {len(model.history)} epochs (training.epochs is "
                                f"{config.training.epochs}); nothing left to train")
        elif loop.finished_early():
            callback.on_warning(f"{resume}: this run stopped early after epoch {len(model.history)}; nothing left "
                                "to train (raise training.early_stopping.patience to continue it)")
    elif init is not None:
        model.state["init_from"] = str(init)
    if dataset.sources.get("class_weight"):
        model.state["class_weight"] = dataset.sources["class_weight"]
    callback.on_start({
        "rows_train": len(dataset.train),
        "rows_validation": len(dataset.validation) if dataset.validation else 0,
        "inputs": sizes[0], "sizes": sizes, "activations": activations,
        "parameters": parameter_count(sizes), "epochs": config.training.epochs,
        "epochs_done": len(model.history), "task": dataset.target.task, "loss": dataset.loss,
        "init_from": str(init) if init is not None else None,
    })

    def checkpoint(epoch: int) -> None:
        assert ckpt is not None
        model.state.update(loop.state())
        model.save(ckpt)
        callback.on_checkpoint(str(ckpt), epoch)

    try:
        with _threads(config.training.threads):
            loop.run(callback, checkpoint if ckpt is not None else None, config.training.checkpoint_every)
    except KeyboardInterrupt:
        raise _interrupted(loop, model, ckpt) from None
    model.state.update(loop.state())
    best_epoch = None
    stopper = loop.stopper
    if stopper is not None and stopper.restore_best and stopper.best_params is not None:
        if stopper.best_epoch != len(model.history):
            model.state["arrays"]["resume.params"] = network.params.copy()
        network.params[...] = stopper.best_params
        best_epoch = stopper.best_epoch
        model.state["restored_best_epoch"] = best_epoch
    final = {"train": evaluate(model, dataset.train)}
    if dataset.validation is not None:
        final["validation"] = evaluate(model, dataset.validation)
    result = TrainResult(model, path, time.perf_counter() - started, final, best_epoch, loop.stopped_early)
    missed = _missed_bars(require or {}, result.summary())
    if path is not None:
        saved = path.with_name(path.name.removesuffix(".npz") + ".failed.npz") if missed else path
        model.save(saved)
        if ckpt is not None and ckpt != path and ckpt.exists() and (
                config.training.checkpoint_every or (resume is not None and Path(resume).resolve() == ckpt.resolve())):
            ckpt.unlink()  # the finished model is itself resumable; the checkpoint has served its purpose
        if missed:
            kept = f"{path} is left as it was" if path.exists() else f"nothing was written to {path}"
            raise TrainingError(f"the model misses --fail-under: {'; '.join(missed)}; it is saved as {saved}, "
                                f"{kept}")
    if missed:
        raise TrainingError(f"the model misses --fail-under: {'; '.join(missed)}")
    return result


def describe(config: Config, warn: Any) -> tuple[Dataset, list[int], list[str], list[str], dict[str, str]]:
    """Everything `train` would check and build, without training: the data, the layers, and the settings
    (optimizer, schedule, early stopping, ...) as `key: description` lines for `nnctl check`."""
    rng = np.random.default_rng(config.seed)
    if config.data.streaming:  # pass 1 (and a look at the validation file): every check, no spill
        from nnctl import streaming

        dataset, plan = streaming.fit(config, rng, warn)
        streaming.check_validation_file(plan, dataset)
    else:
        dataset = load_dataset(config, rng, warn)
    sizes, activations, inits = resolve_layers(config, dataset)
    network = Network(sizes, activations, config.training.dtype, [layer.dropout for layer in config.model.layers])
    model = Model(network, dataset.preprocessor, dataset.target, dataset.loss)
    loop = _build_loop(config, dataset, model, rng)

    def args(section: Any) -> str:
        return ", ".join(f"{k}={v}" for k, v in section.hyperparameters().items())

    t = config.training
    settings = {
        "optimizer": f"{config.optimizer.name} ({args(config.optimizer)}); weight decay on weights, not biases",
        "schedule": f"{config.schedule.name} ({args(config.schedule)})" if config.schedule.hyperparameters()
        else config.schedule.name,
        "training": f"{t.epochs} epochs, batch_size {loop.batch}, {t.dtype}, shuffle {str(t.shuffle).lower()}, "
                    f"clip_norm {t.clip_norm or 'off'}, threads {t.threads or 'default'}",
        "early_stopping": (f"monitor {t.early_stopping.monitor}, patience {t.early_stopping.patience}, min_delta "
                           f"{t.early_stopping.min_delta}, restore_best {str(t.early_stopping.restore_best).lower()}"
                           if t.early_stopping else "off"),
        "checkpoint": (f"every {t.checkpoint_every} epochs to {checkpoint_path(config, output_path(config, None))}"
                       if t.checkpoint_every else "off"),
    }
    d = config.data
    if d.streaming:
        from nnctl.cache import cache_dir
        from nnctl.spill import SpilledRows

        spill = sum(len(rows) * rows.layout.row_bytes for rows in (dataset.train, dataset.validation)
                    if isinstance(rows, SpilledRows))
        size = f"{spill / 2**20:,.1f} MiB" if spill >= 2**20 else f"{spill / 2**10:,.0f} KiB"
        settings["streaming"] = (f"chunks of {d.chunk_rows:,} rows, shuffle buffer {d.shuffle_buffer:,} rows; "
                                 f"{size} of preprocessed rows spilled to {cache_dir() / 'spill'} while training")
    if dataset.sources.get("class_weight"):
        settings["class_weight"] = ", ".join(f"{k}={v:.4g}" for k, v in dataset.sources["class_weight"].items())
    return dataset, sizes, activations, inits, settings


def _build_loop(config: Config, dataset: Dataset, model: Model, rng: np.random.Generator) -> Loop:
    optimizer = config.optimizer.build(model.network.params)
    optimizer.decay_size = model.network.n_weights
    schedule = config.schedule.build()
    if config.schedule.name == "plateau":
        _check_monitor(config.schedule.monitor or "val_loss", "schedule.monitor", config, dataset)
    stopper = None
    es = config.training.early_stopping
    if es is not None:
        _check_monitor(es.monitor, "training.early_stopping.monitor", config, dataset)
        stopper = EarlyStopping(es.monitor, es.patience, es.min_delta, es.restore_best)
    return Loop(model, optimizer, schedule, stopper, dataset.train, dataset.validation,
                epochs=config.training.epochs, batch_size=config.training.batch_size,
                shuffle=config.training.shuffle, clip_norm=config.training.clip_norm,
                base_rate=float(optimizer.learning_rate), rng=rng)


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
    refuse_to_replace(path, _is_model_file, "an nnctl model", "choose another -o")


def _is_model_file(path: Path) -> bool:
    """An earlier model (or checkpoint) may be replaced; a CSV given as -o by mistake may not."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
