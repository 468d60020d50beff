"""Building a run from a config and its data: the layers (the output layer's gaps filled from the data and the
loss), the checks a run must pass before it starts, the loop, and `describe` — all of that without training,
for `nnctl check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.config.schema import Config
from nnctl.data.cache import spill_root
from nnctl.data.dataset import Dataset, Warn
from nnctl.data.load import load_dataset
from nnctl.engine.initializers import default_init
from nnctl.engine.losses import LOSSES
from nnctl.engine.metrics import EVERY_ROW, RUNNING_REGRESSION, metric_names
from nnctl.engine.network import Network, parameter_count, training_bytes
from nnctl.errors import ConfigError
from nnctl.model.model import Model
from nnctl.training import calibrate
from nnctl.training.loop import EarlyStopping, Loop


def loss_options(config: Config, base: Model | None) -> dict[str, float]:
    """The loss's parameters (huber: delta): the config's, its defaults filled in; left out, a fine-tuned model's."""
    if config.loss is not None:
        return {key: float(value) for key, value in config.loss.hyperparameters().items()}
    return dict(base.loss_options) if base is not None else {}


@dataclass
class Layers:
    """The network a config describes on its data: widths [inputs, hidden..., outputs], and per layer its
    activation, initialiser and dropout rate."""

    sizes: list[int]
    activations: list[str]
    inits: list[str]
    dropout: list[float]

    def network(self, dtype: str) -> Network:
        return Network(self.sizes, self.activations, dtype, self.dropout)


def resolve_layers(config: Config, dataset: Dataset) -> Layers:
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
        allowed = " or ".join(loss.allowed_activations)
        article = "an" if allowed[0] in "aeiou" else "a"
        raise ConfigError(f"{where}.activation: loss '{loss.name}' needs {article} {allowed} output layer, got "
                          f"'{activations[-1]}'; use activation: {loss.output_activation} (or leave it out)")
    if loss.task == "regression" and activations[-1] == "softmax":
        raise ConfigError(f"{where}.activation: a softmax output is for classes (its one unit would always output "
                          f"1), but loss '{loss.name}' is a regression; use activation: {loss.output_activation} to "
                          "predict numbers, or loss: cross_entropy to predict classes")
    if sizes[-1] != dataset.target.n_outputs:
        raise ConfigError(f"{where}.units: the data needs {dataset.target.n_outputs} output units for loss "
                          f"'{loss.name}', got {sizes[-1]}; omit units to infer it")
    inits = []
    for layer, act in zip(layers, activations, strict=True):
        init = layer.init or config.model.init  # a layer's own init wins; `auto` is He or Glorot by activation
        inits.append(default_init(act) if init == "auto" else init)
    _check_fits(config, sizes, dataset.train.rows_in_memory)
    return Layers(sizes, activations, inits, [layer.dropout for layer in layers])


def available_memory() -> int | None:
    """Bytes the system can still give this process (Linux MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_fits(config: Config, sizes: list[int], rows: int) -> None:
    """A network too big for this machine is a config error now, not a MemoryError mid-way."""
    itemsize = np.dtype(config.training.dtype).itemsize
    need, free = training_bytes(sizes, itemsize, min(config.training.batch_size, rows), rows), available_memory()
    if free is not None and need > free:
        gib = 1 << 30
        raise ConfigError(f"{config.source}: model.layers: a network of {parameter_count(sizes):,} parameters "
                          f"needs about {need / gib:.1f} GiB to train, and this machine has {free / gib:.1f} GiB "
                          "available; use fewer units or layers (or dtype float32, a smaller batch_size)")


def resolved_config(config: Config, dataset: Dataset, layers: Layers,
                    loss_options: dict[str, float] | None = None) -> dict[str, Any]:
    """The config as trained: defaults filled in, output layer and loss resolved (a loss with parameters as the
    mapping `{name: huber, delta: 1.0}`, any other by its name)."""
    resolved = config.model_dump(mode="json")
    resolved["loss"] = {"name": dataset.loss, **loss_options} if loss_options else dataset.loss
    resolved["data"]["features"] = [spec.name for spec in dataset.preprocessor.features]
    for layer, units, act, init in zip(resolved["model"]["layers"], layers.sizes[1:], layers.activations,
                                       layers.inits, strict=True):
        layer.update(units=units, activation=act, init=init)
    return resolved


def output_path(config: Config, override: str | Path | None) -> Path:
    """The `output` argument (relative to the current directory) wins; then the config's `output` (relative to
    the config); else the config's name with .npz, in the current directory."""
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


def final_metrics(task: str, validation: bool) -> list[str]:
    """The names of the numbers a finished run reports (its summary): train_* (without the metrics that need every
    row at once, `EVERY_ROW`) and, with validation, val_*."""
    metrics = ["loss", *metric_names(task)]
    train = [f"train_{m}" for m in metrics if m not in EVERY_ROW]
    return train + [f"val_{m}" for m in metrics] if validation else train


def _check_monitor(name: str, key: str, config: Config, dataset: Dataset) -> None:
    """A monitored metric must be one this run computes."""
    # the history's train metrics come from the batch outputs: accuracy only, for a classifier
    task = dataset.target.task
    train_metrics = ("accuracy",) if task == "classification" else RUNNING_REGRESSION
    available = ["train_loss", *(f"train_{m}" for m in train_metrics)]
    if dataset.validation is not None:
        available += ["val_loss", *(f"val_{m}" for m in metric_names(task))]
    if name not in available:
        why = ("there is no validation data (set data.validation_split > 0 or data.validation)"
               if name.startswith("val_") and dataset.validation is None
               else f"{dataset.target.task} does not compute it")
        raise ConfigError(f"{config.source}: {key}: cannot monitor '{name}': {why} (available: {', '.join(available)})")


def build_loop(config: Config, dataset: Dataset, model: Model, rng: np.random.Generator) -> Loop:
    """The loop that trains `model` on the dataset as the config says: optimizer, schedule, early stopping (and
    the checks that what follows training, calibration and a threshold, can be done)."""
    calibrate.check(config, dataset, model.network.activation_names[-1])
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


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class Description:
    """What training a config would check and build, without training (what `nnctl check` shows)."""

    config: Config
    dataset: Dataset
    layers: Layers
    batch_size: int  # the batch size the loop uses (at most the training rows)
    checkpoint: Path | None  # where checkpoints would be written, when `training.checkpoint_every` is set
    spill_bytes: int  # streaming: the preprocessed rows training writes to a temporary file
    spill_folder: Path  # streaming: where that file goes


def describe(config: Config, warn: Warn) -> Description:
    """Everything `train` would check and build, without training: the data (every check; streaming runs pass 1
    and reads the validation file, but writes no spill), the layers, the loop."""
    rng = np.random.default_rng(config.seed)
    dataset = load_dataset(config, rng, warn)
    try:
        dataset.verify()
        layers = resolve_layers(config, dataset)
        model = Model(layers.network(config.training.dtype), dataset.preprocessor, dataset.target, dataset.loss,
                      loss_options=loss_options(config, None))
        loop = build_loop(config, dataset, model, rng)
    finally:
        dataset.close()
    checkpoint = checkpoint_path(config, output_path(config, None)) if config.training.checkpoint_every else None
    return Description(config, dataset, layers, loop.batch, checkpoint, dataset.spill_bytes, spill_root())
