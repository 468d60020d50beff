"""Dates and datetimes as network inputs, with NumPy and the standard library alone (`predict` needs no pandas).

A date column's text is parsed in one of three orders, fixed at training and stored in the model:
- `iso` (year first): `2024-03-31`, `2024/03/31`, `2024-03-31 14:05`, `2024-03-31T14:05:09.5Z`,
  `2024-03-31T14:05+02:00` (an offset is converted to UTC, so the same instant gives the same inputs whatever
  zone wrote it);
- `dmy`: `31/03/2024`, `31.03.2024`, `31-03-2024` (day first), with an optional ` 14:05[:09]`;
- `mdy`: `03/31/2024` (month first), likewise.

The instant becomes seconds since 1970-01-01 (float64), and those become the parts the model was fitted with
(`PARTS`): the year as a number with its fraction (scaled like any numeric column), and month, day of week, day
of year and hour of day as sine/cosine pairs, so December is next to January and 23:00 next to midnight.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

ORDERS = ("iso", "dmy", "mdy")
# Each part and its period (None: not cyclic); a cyclic part gives two inputs, `sin` and `cos`.
PARTS: dict[str, float | None] = {"year": None, "month": 12.0, "weekday": 7.0, "yearday": 365.25, "hour": 24.0}
# year, separator, month, day, then the time and zone as `datetime.fromisoformat` reads them
_ISO = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
                  r"((?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?)")
_NUMERIC = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
EXAMPLES = {"iso": "2024-03-31 or 2024-03-31 14:05", "dmy": "31/03/2024, day first", "mdy": "03/31/2024, month first"}
_EPOCH = datetime(1970, 1, 1)
_DAY = 86400.0


def seconds(text: str, order: str) -> float | None:
    """Seconds since 1970-01-01 (UTC for a zoned ISO value) of one date text in `order`; None if it is not one."""
    text = text.strip()
    if order == "iso":
        iso = _ISO.fullmatch(text)
        if iso is None:
            return None
        year, _, month, day, rest = iso.groups()
        try:
            stamp = datetime.fromisoformat(f"{year}-{int(month):02d}-{int(day):02d}{rest.replace(',', '.')}")
        except ValueError:
            return None
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(UTC).replace(tzinfo=None)
        return (stamp - _EPOCH).total_seconds()
    match = _NUMERIC.fullmatch(text)
    if match is None:
        return None
    first, second, year, hour, minute, second_of_minute = match.groups()
    day, month = (first, second) if order == "dmy" else (second, first)
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second_of_minute or 0))
    except ValueError:
        return None
    return (stamp - _EPOCH).total_seconds()


def parse(values: Sequence[Any] | np.ndarray, order: str,
          is_missing: Any) -> tuple[np.ndarray, int | None]:
    """Seconds (n,) float64 of each value (NaN where `is_missing(value)`), and the index of the first value that is
    not a date in `order` (None when all are). Each distinct text is parsed once: dates repeat."""
    out = np.empty(len(values), np.float64)
    known: dict[str, float | None] = {}
    for i, value in enumerate(values):
        if is_missing(value):
            out[i] = np.nan
            continue
        if not isinstance(value, str):
            return out, i
        stamp = known.get(value, np.nan)
        if stamp is not None and stamp != stamp:  # not parsed yet (NaN is never a parse's result)
            stamp = known[value] = seconds(value, order)
        if stamp is None:
            return out, i
        out[i] = stamp
    return out, None


def detect(texts: Sequence[str]) -> str | None:
    """The order in which every text (none missing, at least one) is a date: `iso`, or `dmy`/`mdy` for numeric
    dates, day first unless some value only makes sense month first; None when they are not all dates."""
    if not texts:
        return None
    if all(seconds(t, "iso") is not None for t in texts):
        return "iso"
    for order in ("dmy", "mdy"):
        if all(seconds(t, order) is not None for t in texts):
            return order
    return None


def ambiguous(texts: Sequence[str]) -> bool:
    """Whether numeric dates read equally well day first and month first (every day and month are <= 12)."""
    return all(seconds(t, "mdy") is not None for t in texts) and all(seconds(t, "dmy") is not None for t in texts)


def part_columns(stamps: np.ndarray, parts: Sequence[str]) -> list[np.ndarray]:
    """The inputs of dates `stamps` (n,) seconds, no NaN: one column (n,) float64 per non-cyclic part (the year
    with its fraction) and two (sine, cosine) per cyclic one, in `parts` order."""
    days_float = np.floor(stamps / _DAY)
    days = days_float.astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    yearday = (days - years).astype(np.float64)
    columns: list[np.ndarray] = []
    for part in parts:
        if part == "year":
            columns.append(years.astype(np.float64) + 1970.0 + yearday / 365.25)
            continue
        if part == "month":
            value = (days.astype("datetime64[M]").astype(np.float64)) % 12.0
        elif part == "weekday":
            value = (days_float + 3.0) % 7.0  # 1970-01-01 was a Thursday; Monday is 0
        elif part == "yearday":
            value = yearday
        else:  # hour, with its minutes and seconds as the fraction
            value = (stamps - days_float * _DAY) / 3600.0
        period = PARTS[part]
        assert period is not None
        angle = value * (2.0 * math.pi / period)
        columns += [np.sin(angle), np.cos(angle)]
    return columns


def width(parts: Sequence[str]) -> int:
    """How many inputs `part_columns` gives for `parts`."""
    return sum(1 if PARTS[p] is None else 2 for p in parts)


def part_names(parts: Sequence[str]) -> list[str]:
    """One name per input of `parts`: `year`, `month_sin`, `month_cos`, ..."""
    names: list[str] = []
    for part in parts:
        names += [part] if PARTS[part] is None else [f"{part}_sin", f"{part}_cos"]
    return names


def fitted_parts(stamps: np.ndarray) -> list[str]:
    """The parts worth feeding for the training dates `stamps` (present values only): the hour only when some value
    has a time of day other than midnight."""
    parts = ["year", "month", "weekday", "yearday"]
    if stamps.size and bool(np.any(stamps % _DAY)):
        parts.append("hour")
    return parts
