"""Training: build the network a config describes, run mini-batch gradient descent, save the model.

Progress goes to a `Callback`; the library itself never prints.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.config import Config
from nnctl.dataset import Dataset, Split, load_dataset
from nnctl.errors import ConfigError, TrainingError
from nnctl.initializers import default_init
from nnctl.losses import LOSSES, Loss
from nnctl.model import Model
from nnctl.network import Network, Workspace, parameter_count
from nnctl.optimizers import OPTIMIZERS, Optimizer


@dataclass
class EpochStats:
    """One epoch's numbers, as stored in the model's history."""

    epoch: int
    epochs: int
    train_loss: float
    seconds: float
    learning_rate: float
    validation: dict[str, float] = field(default_factory=dict)  # loss and metrics, if there is validation data

    def record(self) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": self.epoch, "train_loss": self.train_loss}
        row.update({f"val_{k}": v for k, v in self.validation.items()})
        row.update(learning_rate=self.learning_rate, seconds=round(self.seconds, 6))
        return row


class Callback:
    """Receives what happens during training; subclass and override what you need."""

    def on_warning(self, message: str) -> None:
        """Something the user should know, e.g. rows dropped for a missing target."""

    def on_start(self, info: dict[str, Any]) -> None:
        """Data is loaded and the network built; `info` has rows, parameters, epochs and more."""

    def on_epoch(self, stats: EpochStats) -> None:
        """An epoch finished."""


@dataclass
class TrainResult:
    model: Model
    output: Path | None
    seconds: float
    final: dict[str, dict[str, float]]  # {"train": {...}, "validation": {...}}


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
    return sizes, activations, inits


def resolved_config(config: Config, dataset: Dataset, sizes: list[int], activations: list[str],
                    inits: list[str]) -> dict[str, Any]:
    """The config as trained: defaults filled in, output layer and loss resolved."""
    resolved = config.model_dump(mode="json")
    resolved["loss"] = dataset.loss
    resolved["data"]["features"] = [spec.name for spec in dataset.preprocessor.features]
    resolved["model"]["layers"] = [{"units": u, "activation": a, "init": i}
                                   for u, a, i in zip(sizes[1:], activations, inits, strict=True)]
    return resolved


def output_path(config: Config, override: str | Path | None) -> Path:
    """`-o` (relative to the current directory) wins; then the config's `output` (relative to the config)."""
    if override is not None:
        return Path(override)
    if config.output:
        return config.resolve(config.output)
    return Path(Path(config.source).stem + ".npz")


def train(config: Config, output: str | Path | None = None, callback: Callback | None = None,
          save: bool = True) -> TrainResult:
    """Train the network described by `config` on its data; save it to `output` unless `save` is False."""
    callback = callback or Callback()
    started = time.perf_counter()
    path = output_path(config, output) if save else None
    if path is not None:
        _check_writable(path)
    rng = np.random.default_rng(config.seed)
    dataset = load_dataset(config, rng, callback.on_warning)
    sizes, activations, inits = resolve_layers(config, dataset)
    network = Network(sizes, activations, config.training.dtype)
    network.initialise(inits, rng)
    optimizer = OPTIMIZERS[config.optimizer.name](network.params, **config.optimizer.hyperparameters())
    model = Model(network, dataset.preprocessor, dataset.target, dataset.loss,
                  config=resolved_config(config, dataset, sizes, activations, inits))
    callback.on_start({
        "rows_train": len(dataset.train),
        "rows_validation": len(dataset.validation) if dataset.validation else 0,
        "inputs": sizes[0], "sizes": sizes, "activations": activations,
        "parameters": parameter_count(sizes), "epochs": config.training.epochs,
        "task": dataset.target.task, "loss": dataset.loss,
    })
    fit(model, optimizer, dataset.train, dataset.validation, config, rng, callback)
    final = {"train": model.evaluate(dataset.train.X, dataset.train.Y, dataset.train.y)}
    if dataset.validation is not None:
        val = dataset.validation
        final["validation"] = model.evaluate(val.X, val.Y, val.y)
    if path is not None:
        model.save(path)
    return TrainResult(model, path, time.perf_counter() - started, final)


def fit(model: Model, optimizer: Optimizer, train: Split, validation: Split | None, config: Config,
        rng: np.random.Generator, callback: Callback) -> None:
    """Mini-batch gradient descent for `config.training.epochs` epochs, appending to `model.history`."""
    network, loss = model.network, LOSSES[model.loss]
    epochs, n = config.training.epochs, len(train)
    batch = min(config.training.batch_size, n)
    ws = Workspace(network.sizes, batch, network.dtype)
    # One contiguous shuffled copy per epoch: batches are then cheap slices, not fancy-indexed gathers.
    X, Y = (np.empty_like(train.X), np.empty_like(train.Y)) if config.training.shuffle else (train.X, train.Y)
    for epoch in range(len(model.history) + 1, epochs + 1):
        started = time.perf_counter()
        if config.training.shuffle:
            order = rng.permutation(n)
            np.take(train.X, order, axis=0, out=X)
            np.take(train.Y, order, axis=0, out=Y)
        total = 0.0
        for start in range(0, n, batch):
            total += _step(network, ws, loss, optimizer, X[start : start + batch], Y[start : start + batch],
                           epoch, start // batch + 1, config)
        stats = EpochStats(epoch, epochs, total / n, time.perf_counter() - started, optimizer.learning_rate)
        if validation is not None:
            stats.validation = model.evaluate(validation.X, validation.Y, validation.y)
        model.history.append(stats.record())
        callback.on_epoch(stats)
    model.state.update(epochs_done=len(model.history), optimizer={"name": optimizer.name, "t": optimizer.t},
                       optimizer_arrays={k: v for k, v in optimizer.state().items() if isinstance(v, np.ndarray)})


def _step(network: Network, ws: Workspace, loss: Loss, optimizer: Optimizer, X: np.ndarray, Y: np.ndarray,
          epoch: int, batch: int, config: Config) -> float:
    """One gradient step on a batch; returns the batch's summed loss (mean loss x rows)."""
    m = X.shape[0]
    A = network.forward_train(ws, X)
    value = loss.value(A, Y, ws.scratch[-1][:m])
    if not math.isfinite(value):
        raise TrainingError(
            f"training diverged: the loss became {value} in epoch {epoch}, batch {batch}; lower "
            f"optimizer.learning_rate (now {config.optimizer.learning_rate}) or check the data's scale"
        )
    network.backward(ws, X, Y, loss)
    optimizer.step(network.grads)
    return value * int(m)


def _check_writable(path: Path) -> None:
    """Fail before training, not after, when the model cannot be saved."""
    from nnctl.errors import InputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the output folder ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file path for the model, e.g. {path / 'model.npz'}")
    import os

    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path}: the folder {path.parent} is not writable")
