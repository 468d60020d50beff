"""Hostile input for the fuzz tests (tests/cli/test_fuzz.py, tests/data/test_streaming.py): CSVs with every
kind of damage, and the check every case must pass through the CLI.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

runner = CliRunner()
# Derandomised, so CI sees the same cases every run; NNCTL_FUZZ=2000 explores that many new ones per test.
_EXPLORE = int(os.environ.get("NNCTL_FUZZ", "0"))
FUZZ = settings(max_examples=_EXPLORE or 60, derandomize=not _EXPLORE, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

CELLS = st.one_of(
    st.sampled_from(["", "NA", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e-320", "1e30", "0", "-1", "3.5",
                     "abc", "a,b", 'say "hi"', "true", "False", " ", "\t", "é", "0x1F", "1_000", "None", "\x00",
                     "9" * 400]),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)
NAMES = st.one_of(st.sampled_from(["a", "b", "y", "", "a.1", "target", " y", "é"]), st.text(max_size=4))


@st.composite
def hostile_csv(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """CSV-ish bytes and the header names used: duplicates, ragged rows, odd encodings, BOMs, junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200)), ["y"]
    header = draw(st.lists(NAMES, min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(CELLS, min_size=max(0, len(header) - 1), max_size=len(header) + 1),
                         max_size=12))
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_NONNUMERIC])),
                        lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):  # break the quoting on purpose sometimes
        text = text.replace('"', "") if draw(st.booleans()) else text + '"unterminated,'
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace"), header


def _check(result: Any, folder: Path, allowed: set[str]) -> None:
    stderr = result.stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert result.exit_code in (0, 1, 2), (result.exit_code, stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code:
        lines = [line for line in stderr.splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 600, stderr
        assert result.exit_code == 2 or "diverged" in lines[0], stderr
    stray = {p.name for p in folder.iterdir()} - allowed
    assert not stray, f"stray files: {stray}"


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / "case"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    return folder
