"""Column names a file must have: every missing one named at once, with a guess only where a present name nobody
asked for is close to a missing one, and the names that are there. Linear in the number of columns.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from nnctl.errors import DataError


def require_names(present: Sequence[str], columns: Sequence[str], source: str, role: str,
                  noun: str = "column", trained: bool = False) -> None:
    """DataError naming every one of `columns` (or JSON keys) that `present` lacks, at once, with what is there;
    `trained`: the columns are a model's, and the message lists them all."""
    found = absent(present, columns, noun)
    if found is None:
        return
    missing, rest = found
    what = f"{role} {noun}".strip() + ("s" if len(missing) > 1 else "")
    if trained and len(missing) == len(columns) > 1:
        raise DataError(f"{source}: none of the model's {len(columns)} {what} ({_shown(columns)}); is this the data "
                        f"the model was trained for?{rest}")
    also = f"; the model was trained on {_shown(columns)}" if trained else ""
    raise DataError(f"{source}: no {what} {quoted(missing)}{rest}{also}")


def absent(present: Sequence[str], columns: Sequence[str], noun: str = "column") -> tuple[list[str], str] | None:
    """None when `present` has every one of `columns`; else the missing ones and the rest of a message: "did you
    mean" for a present name that nobody asked for and is close to a missing one, then what is present
    (`; did you mean 'ab' for 'a'? (columns: ab, c)`)."""
    have = set(present)
    missing = [c for c in columns if c not in have]
    if not missing:
        return None
    wanted = set(columns)
    hints = _hints(missing[:20], [p for p in present if p not in wanted])
    guesses = [f"'{hints[name]}'" + (f" for '{name}'" if len(missing) > 1 else "") for name in missing if name in hints]
    did_you_mean = f"; did you mean {', '.join(guesses)}?" if guesses else ""
    return missing, f"{did_you_mean} ({noun}s: {_shown(present)})"


def _hints(missing: Sequence[str], spare: Sequence[str]) -> dict[str, str]:
    """Missing name -> the spare name it was most likely meant as; each spare name goes to one missing name (the
    closest), so two misses never share a guess."""
    lower = {name.lower(): name for name in spare}  # case never hides a match: 'ID' is 'id'
    pairs = sorted(((difflib.SequenceMatcher(None, name.lower(), hint).ratio(), name, lower[hint]) for name in missing
                    for hint in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)), reverse=True)
    hints: dict[str, str] = {}
    for _, name, hint in pairs:
        if name not in hints and hint not in hints.values():
            hints[name] = hint
    return hints


def quoted(names: Sequence[str], most: int = 10) -> str:
    """`'a', 'b'`, or the first `most` and how many more."""
    return ", ".join(f"'{name}'" for name in names[:most]) + (f" and {len(names) - most} more"
                                                              if len(names) > most else "")


def _shown(names: Sequence[str], most: int = 30) -> str:
    """`a, b, c`, or the first `most` names and how many more."""
    return ", ".join(names[:most]) + (f", ... ({len(names) - most} more)" if len(names) > most else "")
