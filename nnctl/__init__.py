"""nnctl: train neural networks from YAML configs, in pure NumPy.

    >>> import nnctl
    >>> config = nnctl.load_config("configs/iris.yaml")
    >>> result = nnctl.train(config, output="iris.npz")
    >>> model = nnctl.load_model("iris.npz")

The package is organised in layers, lowest first, each importing only from those below it:

    errors, _types, _version, registry, files, dialect   the ground floor: exceptions, names, atomic writes,
               how a CSV is written
    engine/    the network, its math, the optimizers and schedules, the metrics (NumPy only)
    config/    the config's schema, YAML loading, overrides
    model/     the trained artifact: Model, its .npz file, the fitted preprocessing applied with NumPy
    data/      reading CSVs, fitting the preprocessing, the rows training reads (in memory, or spilled)
    training/  events, the epoch loop, a run (train / resume / fine-tune)
    inference/ the row reader, predict and evaluate
    sweep/     hyperparameter sweeps on Dask;   extras/   ONNX export, plots
    cli/       the Typer commands and what they print

Submodules are imported on first use, so `import nnctl` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from typing import Any

from nnctl._version import __version__
from nnctl.errors import ConfigError, DataError, InputError, ModelFileError, NnctlError, TrainingError

_LAZY = {
    "load_config": "nnctl.config.load",
    "Config": "nnctl.config.schema",
    "train": "nnctl.training.run",
    "TrainResult": "nnctl.training.run",
    "Callback": "nnctl.training.events",
    "EpochStats": "nnctl.training.events",
    "load_model": "nnctl.model.model",
    "Model": "nnctl.model.model",
    "Network": "nnctl.engine.network",
    "predict": "nnctl.inference.predict",
    "evaluate": "nnctl.inference.predict",
}

__all__ = [
    "ConfigError",
    "DataError",
    "InputError",
    "ModelFileError",
    "NnctlError",
    "TrainingError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nnctl' has no attribute {name!r}")
