"""Rows from a CSV or JSON-lines stream, in chunks: the input side of `nnctl predict`.

A chunk is handed on when it is full *or* when the input has nothing more ready (a pipe whose writer is
slow), so a pipeline stage sees its first predictions before its input ends, while a file or a fast pipe is
read in big chunks. Memory stays bounded by one chunk, however long the input. Rows are parsed by the `csv`
module, or, for blocks of plain numbers, by NumPy's C parser — and pandas' for big blocks, so pandas is
imported only when the input is big enough to repay its import.

A CSV is read in its dialect (`nnctl.dialect`): the delimiter, decimal mark and encoding asked for, the rest
detected from the first lines, as training detects them in a file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import select
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from nnctl.dialect import (
    SAMPLE_BYTES,
    Dialect,
    Settings,
    decode_error,
    detect,
    extra_fields_hint,
    open_bytes,
    other_delimiter,
)
from nnctl.errors import DataError
from nnctl.model.block import NumericBlock
from nnctl.model.columns import require_names

_READ_SIZE = 1 << 20  # read1() returns what is there: a slow pipe still yields line by line
_WIDE_READ = 1 << 26  # the most a read of a wide file gathers (64 MB): room for _BLOCK_ROWS rows of 64 KB
_BLOCK_ROWS = 1000  # rows a read aims at: each block costs a parser call whose set-up grows with the columns
_PANDAS_FROM = 1 << 19  # bytes in a block from which the numeric fast path parses with pandas (when narrow:
_PANDAS_COLUMNS = 256  # pandas' set-up costs ~70 µs a column, NumPy's parser gives wide data one 2-D array at once)


@dataclass
class RawChunk:
    """`n` rows: `columns[name]` holds the raw values of each requested column, `lines[i]` row i's line; numbers
    in text are written with the input's `decimal` mark."""

    columns: Mapping[str, Sequence[Any] | np.ndarray]
    lines: list[int]
    decimal: str = "."
    block: NumericBlock | None = None  # a block of plain numbers: every column at once, parsed in C

    @property
    def n(self) -> int:
        return len(self.lines)

    def with_points(self, numeric: Collection[str]) -> Mapping[str, Sequence[Any] | np.ndarray]:
        """`columns`, the `numeric` ones' decimal commas made points (5,1 -> 5.1: the text a point-decimal file
        holds, so it parses to the same float); a value with both marks is left to be refused as it is written."""
        if self.decimal == ".":
            return self.columns
        return {name: [v.replace(",", ".") if isinstance(v, str) and "." not in v else v for v in values]
                if name in numeric and not isinstance(values, np.ndarray) else values
                for name, values in self.columns.items()}


class _Lines:
    """Text lines (with their newline) from a binary or text stream, a block per read, and whether more
    input is ready now."""

    def __init__(self, stream: IO[Any], name: str, settings: Settings) -> None:
        self.name, self.settings = name, settings
        self.stream = stream
        self.binary = not isinstance(stream, io.TextIOBase)
        self.decoder = codecs.getincrementaldecoder(settings.codec)()  # UTF-8's drops a BOM: not part of the header
        self.lines_read = 1  # the line the next bytes start on, for a decoding error
        self.ahead: list[str] = []  # text `head` read, for `blocks` to hand out
        self.partial = ""
        self.eof = False
        self.read_size = _READ_SIZE  # wide rows read more at once (`widen`)
        try:
            self.fd: int | None = stream.fileno()
        except (OSError, AttributeError, ValueError):
            self.fd = None

    def _read(self) -> str | None:
        """The text of one read of the input; None at its end."""
        read = getattr(self.stream, "read1", None) if self.binary else None
        size = self.read_size
        data = read(size) if read is not None else self.stream.read(size)
        # a fast pipe hands over 64 KB at a time: gather what is already there into one big block
        while read is not None and data and len(data) < size and not self.idle():
            more = read(size - len(data))
            if not more:
                break
            data += more
        text = data
        if self.binary:
            try:
                text = self.decoder.decode(data, final=not data)
            except UnicodeError as exc:
                raise decode_error(exc, self.settings, self.name, self.lines_read) from None
            self.lines_read += data.count(b"\n")
        if not data:
            self.eof = True
            return None
        return str(text)

    def head(self) -> tuple[str, bool]:
        """The input's first lines, to detect its dialect from: at least the header and one row (or the whole
        input), and what else is ready now, up to SAMPLE_BYTES; `blocks` hands them out again. True when that is
        the whole input."""
        text = ""
        while not self.eof and (text.count("\n") < 2 or (len(text) < SAMPLE_BYTES and not self.idle())):
            more = self._read()
            if more is not None:
                self.ahead.append(more)
                text += more
        complete = self.eof and len(text) <= SAMPLE_BYTES
        return text[:SAMPLE_BYTES], complete

    def blocks(self) -> Iterator[list[str]]:
        """Lists of complete lines, one per read of the input (the last line may lack its newline)."""
        while True:
            text = self.ahead.pop(0) if self.ahead else None if self.eof else self._read()
            if text is None:
                if self.partial:
                    yield [self.partial]
                    self.partial = ""
                return
            parts = (self.partial + text).split("\n")
            self.partial = parts.pop()
            if parts:
                yield [part + "\n" for part in parts]

    def widen(self, row_bytes: int) -> None:
        """Rows of about `row_bytes` each: read enough at once for _BLOCK_ROWS of them (up to _WIDE_READ), so a file
        of 100,000 columns is not parsed a few rows at a time, each time paying for every column."""
        self.read_size = min(max(_READ_SIZE, row_bytes * _BLOCK_ROWS), _WIDE_READ)

    def idle(self) -> bool:
        """True when the input has nothing more ready right now (call it between blocks)."""
        if self.eof or self.fd is None:
            return False
        try:
            ready, _, _ = select.select([self.fd], [], [], 0)
        except (OSError, ValueError):
            return False
        return not ready


@dataclass
class _Fast:
    """Set once the header is read: the column positions to parse as numbers in C, and the row width."""

    usecols: list[int] | None = None
    width: int = 0


def _records(lines: _Lines, fast: _Fast,
             dialect: Dialect) -> Iterator[tuple[list[list[str]] | np.ndarray, list[int]]]:
    """(rows, line numbers) per block of input; a quoted field may span lines, and blocks. With `fast.usecols`
    a plain all-numeric block comes back as one float64 array of those columns (NumPy's C parser)."""
    carry: list[str] = []
    line = 0  # lines consumed so far
    delimiter = dialect.delimiter
    for block in lines.blocks():
        block = carry + block if carry else block
        carry = []
        text = "".join(block)
        if fast.usecols is not None and '"' not in text and text.count(delimiter) == len(block) * (fast.width - 1):
            values = _numbers(block, fast.usecols, text, dialect)
            if values is not None:
                yield values, list(range(line + 1, line + 1 + len(block)))
                line += len(block)
                continue
        if '"' in text:
            # a record is complete where the quotes seen so far balance; the rest waits for the next block
            quotes, cut = 0, 0
            for i, text in enumerate(block):
                quotes += text.count('"')
                if quotes % 2 == 0:
                    cut = i + 1
            if not lines.eof or cut:
                block, carry = block[:cut], block[cut:]
            reader = csv.reader(block, delimiter=delimiter)
            rows, numbers = [], []
            try:
                for row in reader:
                    rows.append(row)
                    numbers.append(line + reader.line_num)
            except csv.Error as exc:
                raise _unparsable(lines.name, line + reader.line_num, exc) from None
        else:  # no quotes: one line, one record, parsed in C
            reader = csv.reader(block, delimiter=delimiter)
            try:
                rows = list(reader)
            except csv.Error as exc:  # e.g. a lone carriage return inside a line
                raise _unparsable(lines.name, line + reader.line_num, exc) from None
            numbers = list(range(line + 1, line + 1 + len(block)))
        line += len(block)
        if [] in rows:  # blank lines: pandas skips them too
            keep = [i for i, row in enumerate(rows) if row]
            rows, numbers = [rows[i] for i in keep], [numbers[i] for i in keep]
        yield rows, numbers
    if carry:  # an unterminated quoted field at the end of the input
        reader = csv.reader(carry, delimiter=delimiter)
        try:
            rows = [row for row in reader if row]
        except csv.Error as exc:
            raise _unparsable(lines.name, line + reader.line_num, exc) from None
        yield rows, [line + 1] * len(rows)


def _numbers(block: list[str], usecols: list[int], text: str, dialect: Dialect) -> np.ndarray | None:
    """The block's `usecols` as float64 (n, len(usecols)), or None when any row needs the careful path
    (a missing or non-numeric value, a blank line)."""
    comma = dialect.decimal == "," and dialect.delimiter != ","  # quoted in a comma-separated block: not here
    try:
        if len(text) >= _PANDAS_FROM and len(usecols) <= _PANDAS_COLUMNS:
            import pandas as pd  # faster on long narrow data; its import (0.3 s) pays off on a big input

            frame = pd.read_csv(io.StringIO(text), header=None, usecols=usecols, dtype=np.float64, na_filter=False,
                                skip_blank_lines=False, sep=dialect.delimiter, decimal=dialect.decimal)
            values = frame[usecols].to_numpy()
        else:
            lines = [line.replace(",", ".") for line in block] if comma else block
            values = np.loadtxt(lines, delimiter=dialect.delimiter, dtype=np.float64, usecols=usecols, comments=None,
                                ndmin=2)
    except (ValueError, IndexError):  # pandas' ParserError is a ValueError
        return None
    return values if len(values) == len(block) else None


def read_chunks(stream: IO[Any], name: str, columns: Sequence[str], *, fmt: str = "csv",
                chunk_rows: int = 10_000, role: str = "feature", numeric: Sequence[str] = (),
                dialect: Settings | None = None) -> Iterator[RawChunk]:
    """Chunks of `columns` from a CSV (header line first) or JSON-lines stream, in the `dialect` asked for (its
    encoding for either; what a CSV's leaves out is detected, as for training).

    When every column is in `numeric`, plain blocks are parsed by NumPy in C (about 3x faster). The first
    chunk comes even when there are no rows, so a caller can write its header."""
    settings = dialect or Settings()
    if fmt == "jsonl" and (settings.delimiter or settings.decimal):
        raise DataError(f"{name}: {{delimiter}} and {{decimal}} are for CSV input, not JSON lines",
                        arguments=("delimiter", "decimal"))
    lines = _Lines(stream, name, settings)
    if fmt == "jsonl":
        yield from _jsonl_chunks(lines, name, columns, chunk_rows)
    else:
        yield from _csv_chunks(lines, name, columns, chunk_rows, role, set(columns) <= set(numeric))


def _unparsable(name: str, line: int, exc: csv.Error) -> DataError:
    problem = str(exc)
    if "new-line character" in problem:  # Python's own advice (universal-newline mode) does not apply here
        problem = "a carriage return (\\r) inside a line; save the file with \\n or \\r\\n line ends"
    return DataError(f"{name}: line {line}: cannot parse as CSV: {problem}")


def _csv_chunks(lines: _Lines, name: str, columns: Sequence[str], chunk_rows: int, role: str,
                all_numeric: bool) -> Iterator[RawChunk]:
    head, complete = lines.head()
    dialect = detect(head, name, lines.settings, complete=complete, columns=columns)
    fast = _Fast()
    records = _records(lines, fast, dialect)
    header: list[str] | None = None
    rows: list[list[str]] = []
    numbers: list[int] = []
    for first, numbers in records:
        assert isinstance(first, list)  # the header's block is never parsed as numbers
        if first:
            header, rows, numbers = first[0], first[1:], numbers[1:]
            break
    if header is None:
        raise DataError(f"{name}: no data; expected a header line and rows")
    # names as pandas gives them at training time: kept as written, an empty one is "Unnamed: <position>"
    header = [h if h else f"Unnamed: {i}" for i, h in enumerate(header)]
    position: dict[str, int] = {}
    for i, h in enumerate(header):
        if position.setdefault(h, i) != i:
            raise DataError(f"{name}: duplicate column name '{h}'; rename one of them")
    try:
        require_names(header, columns, name, role, trained=role == "feature")
    except DataError as exc:
        other = other_delimiter(dialect)  # a column not found in a header split on the wrong character
        raise dialect.error(f"{exc}; {other}") if other else exc from None
    index = [position[c] for c in columns]
    width = len(header)
    lines.widen(sum(map(len, rows[0] if rows else header)) + width)
    if all_numeric and columns:
        fast.usecols, fast.width = index, width
    block_index = {c: j for j, c in enumerate(columns)}
    sent = False
    _check_widths(rows, numbers, width, name, dialect)
    pending_rows, pending_numbers = rows, numbers
    while True:
        # hand on what is here before waiting for more input: a slow writer still gets its answers
        while len(pending_rows) >= chunk_rows:
            yield _chunk(pending_rows[:chunk_rows], pending_numbers[:chunk_rows], columns, index, dialect)
            pending_rows, pending_numbers, sent = pending_rows[chunk_rows:], pending_numbers[chunk_rows:], True
        if pending_rows and lines.idle():
            yield _chunk(pending_rows, pending_numbers, columns, index, dialect)
            pending_rows, pending_numbers, sent = [], [], True
        block = next(records, None)
        if block is None:
            break
        values, block_numbers = block
        if isinstance(values, np.ndarray):
            if pending_rows:  # keep the rows in order
                yield _chunk(pending_rows, pending_numbers, columns, index, dialect)
                pending_rows, pending_numbers = [], []
            parsed = NumericBlock(values, block_index)
            yield RawChunk(_BlockColumns(parsed), block_numbers, dialect.decimal, parsed)
            sent = True
            continue
        _check_widths(values, block_numbers, width, name, dialect)
        pending_rows += values
        pending_numbers += block_numbers
    if pending_rows or not sent:
        yield _chunk(pending_rows, pending_numbers, columns, index, dialect)


class _BlockColumns(Mapping[str, np.ndarray]):
    """A block's columns by name, each a view made when asked for (a wide block has 100,000 of them)."""

    def __init__(self, block: NumericBlock) -> None:
        self.block = block

    def __getitem__(self, name: str) -> np.ndarray:
        return self.block.values[:, self.block.index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.block.index)

    def __len__(self) -> int:
        return len(self.block.index)


def _check_widths(rows: list[list[str]], numbers: list[int], width: int, name: str, dialect: Dialect) -> None:
    """Too many fields is an error (saying the likely cause); too few are missing values, as pandas reads them."""
    if set(map(len, rows)) <= {width}:
        return
    for i, row in enumerate(rows):
        if len(row) > width:
            raise dialect.error(f"{name}: line {numbers[i]}: {len(row)} fields, but the header has {width}; "
                                f"{extra_fields_hint(dialect)}")
        if len(row) < width:
            rows[i] = row + [""] * (width - len(row))


def _chunk(rows: list[list[str]], numbers: list[int], columns: Sequence[str], index: list[int],
           dialect: Dialect) -> RawChunk:
    if not rows:
        return RawChunk({c: () for c in columns}, [], dialect.decimal)
    cols = list(zip(*rows, strict=True))
    return RawChunk({c: cols[i] for c, i in zip(columns, index, strict=True)}, numbers, dialect.decimal)


def _jsonl_chunks(lines: _Lines, name: str, columns: Sequence[str], chunk_rows: int) -> Iterator[RawChunk]:
    values: dict[str, list[Any]] = {c: [] for c in columns}
    numbers: list[int] = []
    sent = False
    number = 0
    for block in lines.blocks():
        for line in block:
            number += 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{name}: line {number}: not valid JSON ({exc.msg}); expected one object per "
                                "line") from None
            if not isinstance(record, dict):
                raise DataError(f"{name}: line {number}: expected a JSON object, got {type(record).__name__}")
            for column in columns:
                if column not in record:
                    require_names(list(record), [column], f"{name}: line {number}", "", "key")
                values[column].append(record[column])
            numbers.append(number)
        if numbers and (len(numbers) >= chunk_rows or lines.idle()):
            yield RawChunk(values, numbers)
            values, numbers, sent = {c: [] for c in columns}, [], True
    if numbers or not sent:
        yield RawChunk(values, numbers)


def open_input(path: str) -> IO[bytes]:
    """The named file (or stdin for '-'), as bytes; a missing file is a DataError."""
    if path == "-":
        import sys

        return sys.stdin.buffer
    return open_bytes(path)  # the caller closes it

