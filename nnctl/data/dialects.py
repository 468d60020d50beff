"""A config's CSV dialect: its `data.delimiter`, `data.decimal` and `data.encoding`, or detected from the file.

Without pandas: the data cache's key needs it, and a run on cached data never parses a CSV.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.config.schema import Config
from nnctl.dialect import Dialect, Settings, sniff


def config_dialect(config: Config, path: str | Path) -> Dialect:
    """The dialect of a config's CSV: `data.delimiter`, `data.decimal`, `data.encoding`, or detected (the header
    must hold the target and the features the config names); errors name those keys."""
    data = config.data
    settings = Settings(data.delimiter, data.decimal, data.encoding, prefix="data.")
    return sniff(path, settings, [data.target, *(data.features or [])])
