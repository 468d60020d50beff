"""nnctl: train neural networks from YAML configs, in pure NumPy.

    >>> import nnctl
    >>> config = nnctl.load_config("configs/iris.yaml")
    >>> result = nnctl.train(config, output="iris.npz")
    >>> model = nnctl.load_model("iris.npz")

Submodules are imported on first use, so `import nnctl` (and the CLI's start-up) stays cheap.
"""

from __future__ import annotations

from typing import Any

from nnctl.errors import ConfigError, DataError, InputError, ModelFileError, NnctlError, TrainingError

__version__ = "0.1.0"

_LAZY = {
    "load_config": "nnctl.config",
    "Config": "nnctl.config",
    "train": "nnctl.training",
    "Callback": "nnctl.training",
    "load_model": "nnctl.model",
    "Model": "nnctl.model",
    "Network": "nnctl.network",
    "predict": "nnctl.inference",
    "evaluate": "nnctl.inference",
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
