"""The one way in: a config's data as a `Dataset`, read whole into memory or, with `data.streaming`, chunk by
chunk from CSVs larger than memory. Either way the same rules apply (`nnctl.data.rules`) and the same preprocessing
is fitted on the training rows only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnctl.config.schema import Config
from nnctl.data import memory
from nnctl.data.dataset import Dataset, Warn
from nnctl.errors import TrainingError

if TYPE_CHECKING:
    from nnctl.model.model import Model


def load_dataset(config: Config, rng: np.random.Generator, warn: Warn, base: Model | None = None,
                 status: Warn | None = None) -> Dataset:
    """Read, clean, split and preprocess the config's data, drawing the split from `rng`; `warn` hears about dropped
    rows and the like, `status` (streaming) about the progress of long passes.

    With `base` (fine-tuning or resuming), its preprocessing, class labels and loss are kept, not refitted. Open the
    dataset before training on it and close it afterwards (streaming writes and deletes its spill files then)."""
    if config.data.streaming:
        from nnctl.data import streaming  # its two passes and the spill, only for the runs that use them

        return streaming.load(config, rng, warn, base, status)
    try:
        return memory.load(config, rng, warn, base)
    except MemoryError:
        raise TrainingError(f"{config.source}: out of memory loading {config.data.train} (in memory, whole); "
                            "set data.streaming: true to train from files larger than memory") from None
