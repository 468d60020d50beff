"""Reading CSVs with pandas (whole, or in chunks for streaming), with one-line errors naming the file, and the
CSV line of each row (a frame's index is its rows' positions in the file: line = index + 2, the header is line 1).

Applying the fitted preprocessing needs no pandas (`nnctl.model.preprocessing`), so `predict` starts fast.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pandas as pd

from nnctl.errors import DataError
from nnctl.model.columns import require_names

T = TypeVar("T")


def read_csv(path: str | Path | IO[str], **kwargs: Any) -> pd.DataFrame:
    """Read a whole CSV with pandas; any failure is a one-line DataError naming the file."""
    frame: pd.DataFrame = _guarded(path, lambda: pd.read_csv(path, **kwargs))
    _check_rows(frame, 0, path)
    check_header(frame.columns, str(path))
    return frame


def read_header(path: str | Path) -> pd.DataFrame:
    """The CSV's header as an empty frame (its columns), checked like `read_csv`'s."""
    frame: pd.DataFrame = _guarded(path, lambda: pd.read_csv(path, nrows=0))
    check_header(frame.columns, str(path))
    return frame


def read_csv_chunks(path: str | Path, chunk_rows: int,
                    dtype: Mapping[str, Any] | None = None) -> Iterator[pd.DataFrame]:
    """The CSV in frames of up to `chunk_rows` rows, parsed by pandas as `read_csv` parses the whole file.

    Each frame's index is its rows' position in the file (line = index + 2), as in a whole read. pandas infers
    each chunk's column types on its own; pass `dtype` ({column: str}) to fix a column's type across chunks.
    Any failure is a one-line DataError naming the file."""
    reader = _guarded(path, lambda: pd.read_csv(path, chunksize=chunk_rows, dtype=dict(dtype or {}) or None))
    with reader:
        start = 0
        while True:
            frame = _guarded(path, lambda: next(reader, None))
            if frame is None:
                return
            _check_rows(frame, start, path)
            if start == 0:
                check_header(frame.columns, str(path))
            start += len(frame)
            yield frame


def _check_rows(frame: pd.DataFrame, start: int, path: object) -> None:
    """The frame's index must be its rows' positions from `start`: rows with one field more than the header
    make pandas turn the first column into the index, shifting every column silently."""
    if not frame.index.equals(pd.RangeIndex(start, start + len(frame))):
        raise DataError(f"{path}: rows have more fields than the header has names; quote values that contain "
                        "commas, or name every column")


def _guarded(name: object, read: Callable[[], T]) -> T:
    try:
        return read()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, expected a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: no data; expected a header line and rows") from None
    except UnicodeDecodeError:
        raise DataError(f"{name}: not UTF-8 text; save the CSV as UTF-8") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:  # pandas maps a big file whole: out of memory
            raise MemoryError(f"{name}: {exc.strerror}") from None
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        raise DataError(f"{name}: cannot parse as CSV: {detail}") from None


def check_header(columns: pd.Index, name: str) -> None:
    """pandas renames a repeated column `x` to `x.1`; a silent rename would train on the wrong data."""
    names = [str(c) for c in columns]
    for column in names:
        stem, _, suffix = column.rpartition(".")
        if suffix.isdigit() and stem in names:
            raise DataError(f"{name}: duplicate column name '{stem}'; rename one of them")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str, role: str) -> None:
    """DataError naming the first missing column and the closest existing one."""
    require_names([str(c) for c in frame.columns], columns, source, role)


def line_of(index: Hashable) -> int:
    """CSV line of a row from its pandas index (line 1 is the header), or 0 when the index is not a row number."""
    return int(index) + 2 if isinstance(index, int | np.integer) else 0


def lines_of(frame: pd.DataFrame) -> np.ndarray | None:
    """CSV line of each row from pandas' row numbers, when the index is those."""
    index = frame.index.to_numpy()
    return index + 2 if index.dtype.kind in "iu" else None


def series_line(series: pd.Series, i: int) -> int:
    """CSV line of the series' i-th row; its position when the index holds no row numbers."""
    return line_of(series.index[i]) or i + 2
