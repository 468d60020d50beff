"""One table written as CSVs of different dialects (delimiter, decimal mark, encoding, byte-order mark, line
ends), for the tests that check every reader gets the same numbers from each (tests/data/test_csv_dialects.py,
tests/inference/test_predict_dialects.py, tests/cli/test_dialect_acceptance.py)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from conftest import DATASETS

# name -> how the file is written; "cp1252" must be read with data.encoding: cp1252 (or --encoding cp1252)
VARIANTS: dict[str, dict[str, object]] = {
    "clean": {},
    "excel_eu": {"delimiter": ";", "decimal": ",", "bom": True, "newline": "\r\n"},  # Excel's export in Europe
    "tsv": {"delimiter": "\t"},
    "cp1252": {"encoding": "cp1252"},
    "quoted_commas": {"decimal": ","},  # comma-separated, numbers quoted: "5,1"
}
ENCODINGS = {"cp1252": "cp1252"}
_DECIMAL = re.compile(r"-?\d+\.\d+")


def auto_mpg_table() -> tuple[list[str], list[list[str]]]:
    """datasets/auto_mpg.csv as text, its European cars' `origin` (a feature) made non-ASCII and comma-holding."""
    with open(DATASETS / "auto_mpg.csv", encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    origin = header.index("origin")
    for row in rows:
        if row[origin] == "Europe":
            row[origin] = "Europa (Škoda, Citroën)"
    return header, rows


def write(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str = ",", decimal: str = ".",
          encoding: str = "utf-8", bom: bool = False, newline: str = "\n") -> Path:
    """The table as a CSV written so; with decimal ',' every number like 307.0 is written 307,0."""
    with open(path, "w", encoding=encoding, newline="") as handle:
        if bom:
            handle.write("\ufeff")
        writer = csv.writer(handle, delimiter=delimiter, lineterminator=newline)
        writer.writerow(header)
        for row in rows:
            writer.writerow([v.replace(".", decimal) if _DECIMAL.fullmatch(v) else v for v in row])
    return path


def write_variants(folder: Path) -> dict[str, Path]:
    """Every variant of the Auto MPG table in `folder`, by name."""
    header, rows = auto_mpg_table()
    paths = {}
    for name, how in VARIANTS.items():
        paths[name] = write(folder / f"{name}.csv", header, rows, **how)  # type: ignore[arg-type]
    return paths
