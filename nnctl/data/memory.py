"""Loading a whole CSV in memory: from the data cache when it holds the result of the same file and settings,
else parsed (`nnctl.data.parse`, with pandas, imported only then). A run on cached data imports no pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnctl.config.schema import Config
from nnctl.data import cache
from nnctl.data.dataset import Dataset, Warn

if TYPE_CHECKING:
    from nnctl.model.model import Model


def load(config: Config, rng: np.random.Generator, warn: Warn, base: Model | None = None) -> Dataset:
    """Read, clean, split and preprocess the config's data; validation rows never influence the fit.

    With `base` (fine-tuning or resuming), its preprocessing, class labels and loss are kept, not refitted.
    Otherwise a big CSV's result is cached and the next identical load reads the arrays."""
    cache_key = cache.key(config) if base is None and config.data.cache else None
    if cache_key is not None:
        cached = cache.load(cache_key, rng, warn)
        if cached is not None:
            return cached
    warnings: list[str] = []

    def record(message: str) -> None:
        warnings.append(message)
        warn(message)

    from nnctl.data.parse import parse  # pandas and the parsing rules: only on a cache miss

    dataset, train, validation = parse(config, rng, record, base)
    if cache_key is not None:
        cache.store(cache_key, dataset, train, validation, rng, warnings)
    return dataset
