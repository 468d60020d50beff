"""Reading CSVs with pandas (whole, or in chunks for streaming), with one-line errors naming the file, and the
CSV line of each row (a frame's index is its rows' positions in the file: line = index + 2, the header is line 1).

Each file is read in its dialect (delimiter, decimal mark, encoding: `nnctl.dialect`), as asked for or detected
from its first few KB; a config's (`nnctl.data.dialects.config_dialect`) has errors naming the `data.*` keys.

Applying the fitted preprocessing needs no pandas (`nnctl.model.preprocessing`), so `predict` starts fast.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pandas as pd

from nnctl.dialect import (
    Dialect,
    Settings,
    decode_failure,
    extra_fields_hint,
    misread_error,
    misread_numbers,
    other_delimiter,
    sniff,
)
from nnctl.errors import DataError
from nnctl.model.columns import require_names

T = TypeVar("T")
_EXTRA_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")  # pandas' C parser
_WIDE_COLUMNS = 1000  # from this many columns a whole file is parsed in one piece (pandas' `low_memory=False`)
_CHECKED_VALUES = 10_000  # distinct values of a text column checked for numbers with the other decimal mark


def _dialect(path: str | Path | IO[str], dialect: Dialect | None) -> Dialect:
    if dialect is not None:
        return dialect
    return sniff(path, Settings()) if isinstance(path, str | Path) else Dialect()


def _options(dialect: Dialect) -> dict[str, Any]:
    return {"sep": dialect.delimiter, "decimal": dialect.decimal, "encoding": dialect.encoding}


def read_csv(path: str | Path | IO[str], dialect: Dialect | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a whole CSV with pandas in `dialect` (default: detected); any failure is a one-line DataError naming
    the file."""
    dialect = _dialect(path, dialect)
    if dialect.head.split("\n", 1)[0].count(dialect.delimiter) >= _WIDE_COLUMNS:
        kwargs.setdefault("low_memory", False)  # twice as fast on wide rows: no per-column concatenation of pieces
    frame: pd.DataFrame = _consolidated(_guarded(path, lambda: pd.read_csv(path, **_options(dialect), **kwargs),
                                                 dialect))
    _check_rows(frame, 0, path, dialect)
    check_header(frame.columns, str(path), dialect)
    _check_numbers(frame, str(path), dialect)
    return frame


def read_header(path: str | Path, dialect: Dialect | None = None) -> pd.DataFrame:
    """The CSV's header as an empty frame (its columns), checked like `read_csv`'s."""
    dialect = _dialect(path, dialect)
    frame: pd.DataFrame = _guarded(path, lambda: pd.read_csv(path, nrows=0, **_options(dialect)), dialect)
    check_header(frame.columns, str(path), dialect)
    return frame


def read_csv_chunks(path: str | Path, chunk_rows: int, dtype: Mapping[str, Any] | None = None,
                    dialect: Dialect | None = None) -> Iterator[pd.DataFrame]:
    """The CSV in frames of up to `chunk_rows` rows, parsed by pandas as `read_csv` parses the whole file.

    Each frame's index is its rows' position in the file (line = index + 2), as in a whole read. pandas infers
    each chunk's column types on its own; pass `dtype` ({column: str}) to fix a column's type across chunks.
    Any failure is a one-line DataError naming the file."""
    dialect = _dialect(path, dialect)
    reader = _guarded(path, lambda: pd.read_csv(path, chunksize=chunk_rows, dtype=dict(dtype or {}) or None,
                                                **_options(dialect)), dialect)
    with reader:
        start = 0
        while True:
            frame = _guarded(path, lambda: next(reader, None), dialect)
            if frame is None:
                return
            frame = _consolidated(frame)
            _check_rows(frame, start, path, dialect)
            if start == 0:
                check_header(frame.columns, str(path), dialect)
            _check_numbers(frame, str(path), dialect)
            start += len(frame)
            yield frame


def _consolidated(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with one block per dtype: pandas' parser may hand a small file over as one block per column, and
    then every row selection (`iloc`, a mask) costs a Python-level step per column. A frame already whole is
    returned as it is (`_consolidate` is private, but has been pandas' own way to this for every version)."""
    consolidate = getattr(frame, "_consolidate", None)
    return consolidate() if callable(consolidate) else frame


def _check_rows(frame: pd.DataFrame, start: int, path: object, dialect: Dialect) -> None:
    """The frame's index must be its rows' positions from `start`: rows with one field more than the header
    make pandas turn the first column into the index, shifting every column silently."""
    if not frame.index.equals(pd.RangeIndex(start, start + len(frame))):
        raise dialect.error(f"{path}: rows have more fields than the header has names; {extra_fields_hint(dialect)}")


def _check_numbers(frame: pd.DataFrame, name: str, dialect: Dialect) -> None:
    """A column read as text whose values are numbers with the other decimal mark than the one detected (the
    first rows showed none of them) would train as categories: an error naming `data.decimal` instead."""
    if dialect.settings.decimal is not None:
        return
    for column, dtype in zip(frame.columns, frame.dtypes, strict=True):  # from the dtypes: no lookup per column
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        series = frame[column]
        example = misread_numbers([str(v) for v in series.dropna().unique()[:_CHECKED_VALUES]], dialect)
        if example is not None:
            raise misread_error(name, str(column), example, dialect)


def _guarded(name: object, read: Callable[[], T], dialect: Dialect) -> T:
    try:
        return read()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, expected a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: no data; expected a header line and rows") from None
    except UnicodeError:
        raise _undecodable(name, dialect) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:  # pandas maps a big file whole: out of memory
            raise MemoryError(f"{name}: {exc.strerror}") from None
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        extra = _EXTRA_FIELDS.search(detail)
        if extra:  # a long row after the first: say it as predict does, with the likely cause
            expected, line, saw = extra.groups()
            raise dialect.error(f"{name}: line {line}: {saw} fields, but the header has {expected}; "
                                f"{extra_fields_hint(dialect)}") from None
        raise DataError(f"{name}: cannot parse as CSV: {detail}") from None


def _undecodable(name: object, dialect: Dialect) -> DataError:
    """The byte and line where the file stops decoding (pandas' error tells neither): the file read again."""
    found = None
    if isinstance(name, str | Path):
        with contextlib.suppress(OSError), open(name, "rb") as stream:
            found = decode_failure(stream, dialect.settings, str(name))
    return found or dialect.error(f"{name}: not {dialect.settings.encoding or 'UTF-8'} text; set {{encoding}}")


def check_header(columns: pd.Index, name: str, dialect: Dialect | None = None) -> None:
    """pandas renames a repeated column `x` to `x.1`; a silent rename would train on the wrong data. A header of one
    name that another delimiter than the one asked for would split is an error saying so: training, `init` and
    `evaluate` need two columns at least."""
    names = [str(c) for c in columns]
    if dialect is not None and len(names) == 1 and (other := other_delimiter(dialect)):
        raise dialect.error(f"{name}: the header is one name ({names[0]!r}) with fields separated by "
                            f"{dialect.delimiter!r}; {other}")
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
