"""A loaded dataset: training and validation rows, the preprocessing fitted on the training rows, the target's
encoding, the loss, and where the rows came from.

Both ways of loading return a `Dataset` (`nnctl.data.load.load_dataset`); streaming's (`StreamingDataset`) writes
its rows to a spill file when opened. Callers `open()` it before the first epoch and `close()` it when done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from nnctl.data.rows import Rows
from nnctl.model.preprocessing import Preprocessor, TargetEncoder
from nnctl.model.state import StreamingInfo

Warn = Callable[[str], None]  # what hears about dropped rows, leaks and the like: one line each


@dataclass
class Sources:
    """Where a dataset's rows came from, and how many of them it uses."""

    train: str  # the training CSV
    validation: str | None = None  # a separate validation CSV, if any
    validation_split: float | None = None  # else the fraction of the training CSV held out
    rows_train: int = 0
    rows_validation: int = 0
    class_weight: dict[str, float] | None = None  # label -> loss weight, when the config sets class weights
    cached: bool = False  # read from the data cache instead of parsed
    streaming: StreamingInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sources:
        streaming = data.get("streaming")
        return cls(**{**data, "streaming": StreamingInfo(**streaming) if streaming else None})


@dataclass(eq=False, repr=False)  # holds arrays: compared by identity, not shown whole
class Dataset:
    train: Rows
    validation: Rows | None
    preprocessor: Preprocessor
    target: TargetEncoder
    loss: str
    sources: Sources

    @property
    def spill_bytes(self) -> int:
        """Bytes of temporary files training on these rows writes (streaming's spill); 0 in memory."""
        return 0

    def open(self) -> None:
        """Make the rows readable for training (rows in memory already are)."""

    def verify(self) -> None:
        """Read, to check it, whatever loading left unread (`nnctl check` does this instead of `open`)."""

    def close(self) -> None:
        """Release what the rows hold outside memory; safe to call twice."""
        self.train.close()
        if self.validation is not None:
            self.validation.close()
