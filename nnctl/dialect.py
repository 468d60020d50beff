"""How a CSV is written — the character between fields, the decimal mark, the text encoding — as asked for or as
detected from the first few KB of the file, in one place for every reader: training and `init` (pandas), `predict`
and `evaluate`.

What is not asked for is detected (`detect`), from the header and the first rows:

- encoding: UTF-8, with or without a byte-order mark; any other (cp1252, latin-1, ...) must be asked for, and a
  file that is not UTF-8 is an error naming the byte, its line and the setting;
- delimiter: among `,` `;` tab `|`, the one under which the header holds the columns the caller needs (the target,
  a model's features); else the one that splits the header and gives every row as many fields as the header;
- decimal: `,` when numbers in the rows are written with a decimal comma (`5,1`; in a comma-separated file they
  must be quoted), `.` when with a point; without either, `,` after a `;` delimiter (Excel's habit) and `.` else.

When the sample leaves two answers open, the error names the setting. Errors name the settings as `prefix` says:
"data." gives the config's keys (`data.delimiter`), "" the caller's arguments as `{delimiter}` placeholders (the
CLI shows its flags, `--delimiter`). Standard library only: predict imports this before anything else.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from nnctl.errors import DataError
from nnctl.registry import closest

DELIMITERS = (",", ";", "\t", "|")  # what detection chooses among
DECIMALS = (".", ",")
SAMPLE_BYTES = 1 << 14  # detection reads this much, more only while it holds fewer than _SAMPLE_LINES lines
_SAMPLE_LINES = 8
_SAMPLE_LIMIT = 1 << 20
_KEYS = ("delimiter", "decimal", "encoding")
_UTF8 = "utf-8-sig"  # UTF-8 that drops a byte-order mark: Excel writes one, and it is not part of the first name
_NUMBER = {  # a value's shape, by its decimal mark; "plain" numbers (7, 1e5) read the same either way
    "plain": re.compile(r"[+-]?\d+(?:[eE][+-]?\d+)?"),
    ".": re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?"),
    ",": re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?"),
}
# pandas' missing-value markers that hold letters (the rest, like "" and "?", hold no letter or digit at all)
_GAPS = frozenset({"#N/A", "#N/A N/A", "#NA", "<NA>", "N/A", "NA", "NULL", "NaN", "-NaN", "nan", "-nan", "None", "n/a",
                   "null"})
_THOUSANDS = re.compile(r"[+-]?\d{1,3},\d{3}")  # 1,234: a decimal comma, or a thousands separator?
_SPLIT_DECIMAL = re.compile(r"(?:^|,)[+-]?\d+,\d+(?:,|$)")  # 5,1 unquoted in a comma-separated row


# --- the settings, as asked for --------------------------------------------------------------------------


def delimiter_value(value: str) -> str:
    """A delimiter as a config or a flag may write it ("tab" and "\\t" for a tab); ValueError when unusable."""
    value = {"tab": "\t", "\\t": "\t"}.get(value, value)
    if len(value) != 1 or value.isalnum() or value in "\"'.\r\n":
        raise ValueError(f"expected one character such as ',', ';', '|' or tab (written tab or \"\\t\"), got "
                         f"{value!r}; not a letter, digit, quote, '.' or line break")
    return value


def encoding_value(value: str) -> str:
    """A text encoding Python knows (utf-8, cp1252, latin-1, ...); ValueError naming the closest otherwise."""
    try:
        if codecs.lookup(value)._is_text_encoding:  # rot13, base64 and the like are codecs, not text encodings
            return value
        problem = f"{value!r} is not a text encoding"
    except LookupError:
        from encodings.aliases import aliases

        hint = closest(value, sorted({*aliases.values(), *aliases}))
        problem = f"unknown text encoding {value!r}" + (f"; did you mean '{hint}'?" if hint else "")
    raise ValueError(f"{problem} (use a Python codec name such as utf-8, cp1252, latin-1, iso8859-15 or utf-16)")


@dataclass(frozen=True)
class Settings:
    """A CSV's dialect as asked for; None: detect it (delimiter, decimal) or UTF-8 (encoding). `prefix` is how errors
    name the settings: "data." (a config's keys), or "" ({delimiter} placeholders, the caller's arguments)."""

    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    prefix: str = ""

    @classmethod
    def checked(cls, delimiter: str | None = None, decimal: str | None = None,
                encoding: str | None = None) -> Settings:
        """Settings from a caller's arguments (the CLI's flags), each checked; an error names the argument."""
        try:
            delimiter = delimiter_value(delimiter) if delimiter is not None else None
        except ValueError as exc:
            raise _error(f"{{delimiter}}: {exc}", "") from None
        if decimal is not None and decimal not in DECIMALS:
            raise _error(f"{{decimal}}: expected '.' or ',', got {decimal!r}", "")
        try:
            encoding = encoding_value(encoding) if encoding is not None else None
        except ValueError as exc:
            raise _error(f"{{encoding}}: {exc}", "") from None
        return cls(delimiter, decimal, encoding)

    @property
    def codec(self) -> str:
        """The codec to decode with: UTF-8 tolerates a byte-order mark whether asked for or not."""
        if self.encoding is None or codecs.lookup(self.encoding).name == "utf-8":
            return _UTF8
        return self.encoding


@dataclass(frozen=True)
class Dialect:
    """How one CSV is written, resolved: what `settings` asked for, the rest detected from `head`."""

    delimiter: str = ","
    decimal: str = "."
    encoding: str = _UTF8
    settings: Settings = Settings()
    head: str = field(default="", compare=False, repr=False)  # the text detection looked at

    def key(self) -> list[str]:
        """What changes how the file parses (for a cache key)."""
        return [self.delimiter, self.decimal, self.encoding]

    def error(self, template: str) -> DataError:
        """A DataError whose `{delimiter}`, `{decimal}`, `{encoding}` name the settings as `settings.prefix` says."""
        return _error(template, self.settings.prefix)


def _error(template: str, prefix: str) -> DataError:
    """A DataError whose `{delimiter}` (...) are the config's keys with `prefix`, else arguments for the caller."""
    error = DataError(template, arguments=[key for key in _KEYS if "{" + key + "}" in template])
    return DataError(error.render({key: prefix + key for key in _KEYS})) if prefix else error


def _shown(delimiter: str) -> str:
    """A delimiter as a message writes it: 'tab', or quoted."""
    return "tab" if delimiter == "\t" else repr(delimiter)


# --- detection -------------------------------------------------------------------------------------------


def open_bytes(path: str | Path) -> BinaryIO:
    """A data file opened for reading bytes (the caller closes it); a missing or unreadable one is a DataError."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a data file") from None
    except PermissionError:
        raise DataError(f"{path}: not readable (permission denied)") from None


def sniff(path: str | Path, settings: Settings, columns: Sequence[str] = ()) -> Dialect:
    """The dialect of a CSV file, from its first few KB; `columns` are names its header must hold."""
    name = str(path)
    with open_bytes(path) as stream:
        head = stream.read(SAMPLE_BYTES)
        while head.count(b"\n") < _SAMPLE_LINES and len(head) < _SAMPLE_LIMIT:
            more = stream.read(len(head) or SAMPLE_BYTES)  # a file of very long lines: read on, doubling
            if not more:
                break
            head += more
        complete = not stream.read(1)
    text = decode(head, settings, name, complete=complete)
    return detect(text, name, settings, complete=complete, columns=columns)


def decode(data: bytes, settings: Settings, name: str, *, complete: bool, line: int = 1) -> str:
    """`data` decoded as `settings` say (a character cut at the end waits, unless `complete`); `line` is the line
    `data` starts on, for the error."""
    try:
        return codecs.getincrementaldecoder(settings.codec)().decode(data, final=complete)
    except UnicodeError as exc:
        raise decode_error(exc, settings, name, line) from None


def decode_error(exc: UnicodeError, settings: Settings, name: str, line: int = 1) -> DataError:
    """FILE: not UTF-8 (byte 0xe9 at line 7); set {encoding} (e.g. cp1252 or latin-1). `exc` comes from decoding
    bytes that start on `line`."""
    if not isinstance(exc, UnicodeDecodeError):  # e.g. utf-16 asked for, and no byte-order mark to say which
        return _error(f"{name}: not valid {settings.encoding} text ({exc}); set {{encoding}} to the file's encoding",
                      settings.prefix)
    raw = exc.object if isinstance(exc.object, bytes) else bytes(exc.object)
    if settings.encoding is None and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and line == 1:
        return _error(f"{name}: UTF-16 text (it starts with a UTF-16 byte-order mark); set {{encoding}} to utf-16",
                      settings.prefix)
    where = line + raw.count(b"\n", 0, exc.start)
    at = f"byte 0x{raw[exc.start]:02x} at line {where}" if exc.start < len(raw) else f"a cut character at line {where}"
    if settings.encoding is None:
        return _error(f"{name}: not UTF-8 ({at}); set {{encoding}} (e.g. cp1252 or latin-1)", settings.prefix)
    return _error(f"{name}: not valid {settings.encoding} text ({at}); set {{encoding}} to the file's encoding",
                  settings.prefix)


def decode_failure(stream: IO[bytes], settings: Settings, name: str) -> DataError | None:
    """Where a file stops decoding (its error), read from the start; None when it decodes throughout."""
    decoder = codecs.getincrementaldecoder(settings.codec)()
    line = 1
    while True:
        block = stream.read(1 << 20)
        try:
            decoder.decode(block, final=not block)
        except UnicodeError as exc:
            return decode_error(exc, settings, name, line)
        if not block:
            return None
        line += block.count(b"\n")


def detect(text: str, name: str, settings: Settings, *, complete: bool, columns: Sequence[str] = ()) -> Dialect:
    """The dialect of a CSV whose first characters are `text` (all of it when `complete`)."""
    delimiter = settings.delimiter or _delimiter(text, name, settings.prefix, complete, columns)
    decimal = settings.decimal or _decimal(records(text, delimiter, complete), delimiter, name, settings.prefix)
    return Dialect(delimiter, decimal, settings.codec, settings, text)


def records(text: str, delimiter: str, complete: bool) -> list[list[str]]:
    """The sample's records (header first; blank lines skipped, as pandas does), without a last one the sample
    may have cut; a line the csv module cannot parse ends them (the reader will name it)."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows += filter(None, reader)
    except csv.Error:
        return rows
    if not complete and rows and not (text.endswith("\n") and text.count('"') % 2 == 0):
        rows.pop()
    return rows


def _delimiter(text: str, name: str, prefix: str, complete: bool, columns: Sequence[str]) -> str:
    parsed = {d: records(text, d, complete) for d in DELIMITERS}
    if columns:  # the header must hold these names: when one delimiter alone gives them, that is it
        named = [d for d, rows in parsed.items() if rows and set(columns) <= set(rows[0])]
        if len(named) == 1:
            return named[0]
    splits = {d: rows for d, rows in parsed.items() if rows and len(rows[0]) > 1}
    if not splits:
        return ","  # one column (or none): any delimiter reads it alike
    even = [d for d, rows in splits.items() if all(len(row) == len(rows[0]) for row in rows[1:])]
    if len(even) == 1:
        return even[0]
    fitting = [d for d, rows in splits.items() if all(len(row) <= len(rows[0]) for row in rows[1:])]
    if not even and len(fitting) == 1:
        return fitting[0]  # short rows are gaps, as pandas reads them
    if not even and len(splits) == 1:
        return next(iter(splits))  # the reader says what is wrong with the long rows
    open_ = even or fitting or list(splits)
    counts = " and ".join(f"{len(splits[d][0])} names on {_shown(d)}" for d in open_)
    rows = "the rows fit both" if even else "no choice gives every row as many fields as the header"
    raise _error(f"{name}: cannot tell which character separates the fields: the header splits into {counts}, and "
                 f"{rows}; set {{delimiter}}", prefix)


def _decimal(rows: list[list[str]], delimiter: str, name: str, prefix: str) -> str:
    evidence: dict[str, tuple[str, str]] = {}  # mark -> (column, an example value)
    commas: list[str] = []
    for j, column in enumerate(rows[0] if rows else []):
        values = [row[j] for row in rows[1:] if j < len(row)]
        marks = _marks(values)
        for mark, example in (marks or {}).items():
            evidence.setdefault(mark, (column, example))
        if marks and "," in marks:
            commas += [v for v in values if _NUMBER[","].fullmatch(v)]
    if "," in evidence and "." in evidence:
        (a, x), (b, y) = evidence[","], evidence["."]
        raise _error(f"{name}: cannot tell the decimal mark: column '{a}' has {x!r}, column '{b}' {y!r}; set "
                     "{decimal} to ',' or '.'", prefix)
    if "," in evidence:
        if delimiter == "," and all(_THOUSANDS.fullmatch(v) for v in commas):
            column, example = evidence[","]
            raise _error(f"{name}: column '{column}' has numbers like {example!r}: a decimal comma, or a thousands "
                         "separator? set {decimal} to ',' to read them as decimals, or to '.' to keep them as text",
                         prefix)
        return ","
    if "." in evidence:
        return "."
    return "," if delimiter == ";" else "."


def _marks(values: Iterable[str]) -> dict[str, str] | None:
    """The decimal marks a column's values use ({mark: an example}), or None when one is not a number. Gaps (an
    empty field, NA, ?) say nothing."""
    marks: dict[str, str] = {}
    for value in values:
        if value.isdigit() and value.isascii():  # a plain integer, the commonest value of wide data: no regex
            continue
        if value in _GAPS or not any(c.isalnum() for c in value):
            continue
        for shape in ("plain", ".", ","):
            if _NUMBER[shape].fullmatch(value):
                if shape != "plain":
                    marks.setdefault(shape, value)
                break
        else:
            return None
    return marks


# --- what the readers say when the dialect seems wrong ---------------------------------------------------


def misread_numbers(values: Iterable[str], dialect: Dialect) -> str | None:
    """An example when a column read as text holds numbers written with the other decimal mark than `dialect`
    detected (one the sample did not show); None when the decimal mark was asked for."""
    if dialect.settings.decimal is not None:
        return None
    marks = _marks(values)
    other = "," if dialect.decimal == "." else "."
    return marks.get(other) if marks else None


def misread_error(name: str, column: str, example: str, dialect: Dialect) -> DataError:
    other = "," if dialect.decimal == "." else "."
    what = "a decimal comma" if other == "," else "a decimal point"
    return dialect.error(f"{name}: column '{column}' holds numbers with {what} ({example!r}), read as text after "
                         f"the first rows showed {dialect.decimal!r}; set {{decimal}} to {other!r} (or to "
                         f"{dialect.decimal!r} to keep them as text)")


def other_delimiter(dialect: Dialect) -> str:
    """"the file looks ';'-separated: set {delimiter} to ';'" when detection would choose another delimiter than
    the one asked for; else ""."""
    if dialect.settings.delimiter is None:
        return ""
    try:
        guess = _delimiter(dialect.head, "", "", False, ())
    except DataError:
        return ""
    return f"the file looks {_shown(guess)}-separated: set {{delimiter}} to {_shown(guess)}" \
        if guess != dialect.delimiter else ""


def extra_fields_hint(dialect: Dialect) -> str:
    """Why rows have more fields than the header, as far as the head of the file tells: another delimiter than
    the one asked for, unquoted decimal commas, or unquoted values that hold the delimiter."""
    other = other_delimiter(dialect)
    if other:
        return other
    rows = records(dialect.head, ",", False) if dialect.delimiter == "," else [[]]
    long = [row for row in rows[1:] if len(row) > len(rows[0])]
    # most rows too long, each with digits on both sides of a comma: numbers like 5,1 would do that
    if long and 2 * len(long) > len(rows) - 1 and all(_SPLIT_DECIMAL.search(",".join(row)) for row in long):
        return ("if numbers are written with a decimal comma (5,1), each splits into two fields: quote them "
                "(\"5,1\") or separate the fields with ';' (set {delimiter} to ';')")
    return f"quote values that contain {_shown(dialect.delimiter)}, or name every column"
