"""A cache of parsed, preprocessed training data, so a second run on the same CSV starts training at once.

Parsing is often the slowest part of a run (a 380 MB CSV takes seconds in pandas). The arrays a run
trains on, its fitted preprocessing and the generator's state after the split are stored in one .npz per
(data files, data settings) pair, under `$NNCTL_CACHE_DIR`, else `$XDG_CACHE_HOME/nnctl`, else
`~/.cache/nnctl`. The key covers each file's path, size, modification time and dialect (delimiter, decimal
mark, encoding: as set or detected) and every setting that shapes the arrays, so an edit to either misses the
cache. Deleting the folder is always safe. The cache is best effort: a file it cannot read or write is ignored,
never an error.

Streaming training (`data.streaming`) also keeps its temporary files under this folder (`nnctl.data.spill`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnctl._version import __version__
from nnctl.config.schema import Config
from nnctl.data.dataset import Dataset, Sources
from nnctl.data.dialects import config_dialect
from nnctl.data.rows import InMemoryRows
from nnctl.errors import DataError, OutputError
from nnctl.model.model import write_npz_atomic
from nnctl.model.preprocessing import Preprocessor, TargetEncoder

FORMAT = 2
MIN_BYTES = 1 << 20  # smaller data parses faster than the cache would save


def cache_dir() -> Path:
    if os.environ.get("NNCTL_CACHE_DIR"):
        return Path(os.environ["NNCTL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnctl"


def spill_root() -> Path:
    """Where streaming runs keep their temporary files, one private folder each (`nnctl.data.spill`)."""
    return cache_dir() / "spill"


def key(config: Config) -> str | None:
    """The cache key of the arrays this config's data section produces, or None when not worth caching."""
    data = config.data
    files = [config.resolve(data.train)] + ([config.resolve(data.validation)] if data.validation else [])
    try:
        stats = [(str(path.resolve()), path.stat()) for path in files]
    except OSError:
        return None  # let the loader say what is wrong with the file
    if sum(stat.st_size for _, stat in stats) < MIN_BYTES:
        return None
    try:  # what the files were read as, detected or not: a file is never taken for another dialect's arrays
        dialects = [config_dialect(config, path).key() for path in files]
    except DataError:
        return None  # the loader says what is wrong
    identity = {"format": FORMAT, "nnctl": __version__, "seed": config.seed,
                "loss": config.loss.name if config.loss else None,
                # with no loss, the output layer's activation decides it (a softmax output: classes)
                "output_activation": config.model.layers[-1].activation,
                "dtype": config.training.dtype,
                # streaming runs never use this cache; its settings do not shape the in-memory arrays
                "data": data.model_dump(mode="json", exclude={"streaming", "chunk_rows", "shuffle_buffer"}),
                "files": [[path, stat.st_size, stat.st_mtime_ns] for path, stat in stats], "dialects": dialects}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def load(cache_key: str, rng: np.random.Generator, warn: Callable[[str], None]) -> Dataset | None:
    """The cached dataset (and the generator moved to where the original load left it), or None."""
    try:
        with np.load(cache_dir() / f"{cache_key}.npz", allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"][()]))
            arrays = {name: npz[name] for name in npz.files if name != "meta"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None

    def split(prefix: str) -> InMemoryRows | None:
        if f"{prefix}.X" not in arrays:
            return None
        return InMemoryRows(arrays[f"{prefix}.X"], arrays[f"{prefix}.Y"], arrays[f"{prefix}.y"],
                            arrays.get(f"{prefix}.w"), arrays.get(f"{prefix}.r"))

    train = split("train")
    if train is None:
        return None
    for message in meta["warnings"]:
        warn(message)
    rng.bit_generator.state = meta["rng"]
    sources = Sources.from_json(meta["sources"])
    sources.cached = True
    return Dataset(train, split("validation"), Preprocessor.from_dict(meta["preprocessor"]),
                   TargetEncoder.from_dict(meta["target"]), meta["loss"], sources)


def store(cache_key: str, dataset: Dataset, train: InMemoryRows, validation: InMemoryRows | None,
          rng: np.random.Generator, warnings: list[str]) -> None:
    """Write a dataset loaded in memory, with its rows `train` and `validation`, under its key, atomically; a
    failure only means that the next run parses again."""
    arrays: dict[str, np.ndarray] = {}
    for prefix, part in (("train", train), ("validation", validation)):
        if part is not None:
            arrays.update({f"{prefix}.X": part.X, f"{prefix}.Y": part.Y, f"{prefix}.y": part.y})
            arrays.update({f"{prefix}.{name}": a for name, a in (("w", part.w), ("r", part.r)) if a is not None})
    meta: dict[str, Any] = {"warnings": warnings, "rng": rng.bit_generator.state, "loss": dataset.loss,
                            "preprocessor": dataset.preprocessor.to_dict(), "target": dataset.target.to_dict(),
                            "sources": dataset.sources.to_json()}
    # best effort: a full disk or a read-only home must not fail the training run
    with contextlib.suppress(OutputError, OSError, TypeError, ValueError):
        write_npz_atomic(cache_dir() / f"{cache_key}.npz", {**arrays, "meta": np.array(json.dumps(meta))})
