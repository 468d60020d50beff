"""A starter config for a CSV: look at its columns once and write a commented YAML config that trains as is."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nnctl.config.safe_yaml import dump_scalar
from nnctl.data.fit import is_numeric, labels_of, number_columns, numeric_block
from nnctl.data.reader import read_csv
from nnctl.data.starter_recipe import recipe
from nnctl.dialect import Dialect, Settings, sniff
from nnctl.errors import DataError
from nnctl.model import dates
from nnctl.registry import not_found

MAX_CLASSES = 20  # integer targets with at most this many values (and fewer than half the rows) are class codes
COUNT_STARTS = (0, 1)  # other whole-number targets starting at one of these are counts (visits, claims): poisson
MAX_CATEGORIES = 50  # text features with more values (or values in more than half the rows) are left out
MIN_ROWS = 50  # below this, a 20% validation split is too few rows to judge (or stop) training by
VALIDATION_SPLIT = 0.2
_COMMENT_AT = 38  # column where trailing comments start, so they line up


@dataclass
class _Column:
    name: str
    keep: bool
    note: str  # why it is left out, or what happens to it (one-hot encoding, imputation); may be empty
    width: int = 1  # network inputs it becomes
    date_order: str = ""  # dates written day-or-month first with every day <= 12: the order the config must name


def starter_config(csv_path: str | Path, target: str, config_dir: str | Path = ".",
                   dialect: Settings | None = None) -> str:
    """YAML text of a commented config that trains a network to predict `target` from the CSV's other columns.

    The task is classification when the target holds text or booleans, or integers with at most 20 distinct
    values that are also fewer than half the labelled rows (class codes such as 0/1/2; a softmax output makes
    them classes); a count regression (loss poisson, softplus output) when it holds other whole numbers whose
    smallest is 0 or 1 (visits, claims, events); otherwise regression (mse). `data.train` is written relative to
    `config_dir`, where the config will be saved. The CSV is read in the `dialect` asked for, the rest detected;
    the config names what differs from a plain CSV."""
    source = str(csv_path)
    found = sniff(csv_path, dialect or Settings(), [target])
    frame = read_csv(csv_path, found)
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise DataError(not_found(f"{source}: no column '{target}' to predict", target, columns, "columns"))
    labels = frame[target].dropna()
    task, target_note = _task(labels, source, target)
    numbers = _number_columns(frame, [name for name in number_columns(frame, columns) if name != target])
    features = [numbers[name] if name in numbers else _column(frame[name]) for name in columns if name != target]
    kept = [c for c in features if c.keep]
    if not kept:
        reasons = "; ".join(f"{c.name}: {c.note}" for c in features) or "there are none"
        raise DataError(f"{source}: no usable feature columns besides the target '{target}' ({reasons})")
    n_inputs = sum(c.width for c in kept)
    small = len(labels) < MIN_ROWS
    plan = recipe(len(labels), 0.0 if small else VALIDATION_SPLIT)
    classification, counts = task == "classification", task == "count regression"

    lines: list[tuple[str, str]] = [
        ("", f"Starter config: predict {_scalar(target)} from {_scalar(Path(csv_path).name)} ({task}), written by "
             "nnctl from one look at the data."),
        ("", "Check it with `nnctl check CONFIG`, train it with `nnctl train CONFIG`; comments give the reasons."),
        ("seed: 0", "every random choice (split, init, shuffling) follows from it"),
        ("data:", ""),
        (f"  train: {_scalar(_relative(csv_path, config_dir))}", "relative to this file's folder"),
        *_dialect_lines(found),
        (f"  target: {_scalar(target)}", target_note),
    ]
    if len(labels) < len(frame):
        lines.append(("  ", f"{len(frame) - len(labels)} rows have no {_scalar(target)}; training drops them"))
    lines.append(("  features:", f"all {len(kept)} other columns" if len(kept) == len(features)
                  else f"{len(kept)} of the {len(features)} other columns"))
    lines += [(f"    - {_scalar(c.name)}", c.note) for c in kept]
    lines += [("  ", f"left out {_scalar(c.name)}: {c.note}") for c in features if not c.keep]
    if small:
        lines.append(("  validation_split: 0", f"only {len(labels)} labelled rows: too few to hold some out, so "
                                               "all train and nothing measures unseen data"))
    else:
        lines.append((f"  validation_split: {VALIDATION_SPLIT}", "hold out 20% of the rows to measure the model on "
                      "unseen data"))
    doubtful = [c for c in kept if c.date_order]
    if doubtful:
        lines.append((f"  date_order: {doubtful[0].date_order}", f"{_scalar(doubtful[0].name)} reads as day first and "
                      "as month first; day first assumed: write mdy if the month comes first"))
    lines += [
        ("  scale: standard", "numbers to mean 0, std 1, so one learning rate suits every input"),
        ("  missing: impute", "a missing number becomes the training mean, missing text a category"),
    ]
    if counts:
        lines.append(("  target_scale: none", "counts stay counts: loss poisson needs them as they are"))
    elif not classification:
        lines.append(("  target_scale: standard", "the loss sees the target standardised: its units do not matter"))
    output, output_note, loss = _output(task)
    lines += [
        ("model:", ""),
        *plan.model_lines(n_inputs),
        (f"    - {{activation: {output}}}", output_note),
        (f"loss: {loss}", _loss_note(labels, task)),
        *plan.training_lines(),
    ]
    lines.append(("", "no output key: `nnctl train` saves the model as this config's name with .npz, in the current "
                      "folder (-o elsewhere)"))
    return "".join(_render(text, comment) for text, comment in lines)


def _dialect_lines(dialect: Dialect) -> list[tuple[str, str]]:
    """`data.delimiter`, `decimal`, `encoding` where the file is not a plain CSV, so training reads it as this did
    (it would detect the same, but a config that says so can be read, and edited, without guessing)."""
    how = {key: "as asked for" if getattr(dialect.settings, key) else "detected" for key in ("delimiter", "decimal")}
    lines = []
    if dialect.delimiter != ",":
        shown = "tab" if dialect.delimiter == "\t" else _scalar(dialect.delimiter)
        lines.append((f"  delimiter: {shown}", f"{how['delimiter']}: the character between fields"))
    if dialect.decimal != ".":
        lines.append((f"  decimal: {_scalar(dialect.decimal)}", f"{how['decimal']}: numbers are written 5,1"))
    if dialect.settings.encoding is not None:
        lines.append((f"  encoding: {_scalar(dialect.settings.encoding)}", "as asked for: the file's text encoding"))
    return lines


def _task(labels: pd.Series, source: str, target: str) -> tuple[str, str]:
    """("classification" | "regression", a comment saying why) for the target's non-missing values."""
    if labels.empty:
        raise DataError(f"{source}: target '{target}' has no values; nothing to learn from")
    distinct = int(labels.nunique())
    if distinct < 2:
        raise DataError(f"{source}: target '{target}' has only one class ({labels_of(labels)[0]!r}) in "
                        f"{len(labels)} rows; a network needs at least two classes (or varying numbers) to learn")
    if not is_numeric(labels):
        kind = "booleans" if pd.api.types.is_bool_dtype(labels) else "text"
        return "classification", f"{kind}: classification, {_class_counts(labels)}"
    values = labels.to_numpy(dtype=np.float64)
    whole = bool(np.all(values == np.round(values)))
    if whole and distinct <= MAX_CLASSES and distinct < len(labels) / 2:
        return "classification", f"few distinct integers: class codes, {_class_counts(labels)}"
    if whole and values.min() in COUNT_STARTS:
        zeros = int(np.count_nonzero(values == 0))
        return "count regression", (f"whole numbers from {values.min():g} to {values.max():g} ({distinct} distinct, "
                                    f"{zeros} zeros): counts, a regression of their rate")
    return "regression", f"numbers with {distinct} distinct values: regression"


def _output(task: str) -> tuple[str, str, str]:
    """The output layer's activation, its comment, and the loss, for the task."""
    if task == "classification":
        return "softmax", "one probability per class; units follow from the data", "cross_entropy"
    if task == "count regression":
        return "softplus", "the rate log(1 + e^z): positive, so no count is predicted below 0", "poisson"
    return "identity", "one unbounded number", "mse"


def _loss_note(labels: pd.Series, task: str) -> str:
    if task == "count regression":
        return "counts: the Poisson likelihood of the rate (mse would predict negative counts)"
    if task != "classification":
        return "mean squared error, the usual loss for predicting a number"
    if is_numeric(labels):
        return "written out, though the softmax output implies it: integer labels are classes here"
    return "one softmax output per class"


def _class_counts(labels: pd.Series) -> str:
    counts = sorted(Counter(labels_of(labels)).items())
    shown = ", ".join(f"{label if isinstance(label, int) else _scalar(label)} {n}" for label, n in counts[:6])
    return f"{len(counts)} classes ({shown}{', ...' if len(counts) > 6 else ''})"


def _column(series: pd.Series) -> _Column:
    """Whether a feature column is kept, why (not), and how many network inputs it becomes."""
    name, n = str(series.name), len(series)
    present = series.dropna()
    missing = n - len(present)
    if present.empty:
        return _Column(name, False, "entirely empty")
    gaps = f"{missing} missing values" if missing else ""
    if is_numeric(series):
        values = present.to_numpy(dtype=np.float64)
        # pandas' `to_csv` index and "id" columns: numbering says nothing about a row, but a network would fit it
        if not missing and n > 1 and values[0] in (0, 1) and np.array_equal(values, values[0] + np.arange(n)):
            return _Column(name, False, f"counts the rows ({values[0]:g}, {values[0] + 1:g}, ...), an identifier")
        return _Column(name, True, f"{gaps}, imputed" if gaps else "")
    distinct = int(present.nunique())
    text = not pd.api.types.is_bool_dtype(series)
    if text:
        date = _date_column(name, [str(v) for v in present.unique()], gaps)
        if date is not None:
            return date
    stray = _stray_text(present) if text else ""
    if text and not missing and n > 1 and distinct == n:
        return _Column(name, False, f"a different text in every row, an identifier{stray}")
    if distinct > MAX_CATEGORIES or distinct > n / 2:
        # one-hot over categories that mostly occur once gives inputs no other row shares: nothing to generalise
        return _Column(name, False, f"text with {distinct} distinct values in {n} rows, too many categories to "
                                    f"learn from{stray}")
    also = f", plus one for its {gaps}" if gaps else ""
    return _Column(name, True, f"categorical: one-hot over {distinct} values{also}{stray}", distinct + bool(missing))


def _number_columns(frame: pd.DataFrame, names: list[str]) -> dict[str, _Column]:
    """`_column` of the number columns `names`, decided for all at once from one block (n, len(names)): wide data
    costs a few NumPy calls, not a dozen pandas calls a column."""
    n = len(frame)
    V = numeric_block(frame, names).values
    gaps = np.isnan(V).sum(axis=0)
    counting = (V[:1] + np.arange(n)[:, None] == V).all(axis=0) & np.isin(V[0], (0, 1)) if n > 1 else gaps < 0
    found = {}
    for j, name in enumerate(names):
        missing = int(gaps[j])
        if missing == n:
            found[name] = _Column(name, False, "entirely empty")
        elif not missing and counting[j]:
            found[name] = _Column(name, False, f"counts the rows ({V[0, j]:g}, {V[0, j] + 1:g}, ...), an identifier")
        else:
            found[name] = _Column(name, True, f"{missing} missing values, imputed" if missing else "")
    return found


def _date_column(name: str, texts: list[str], gaps: str) -> _Column | None:
    """A column whose every value is a date: kept, as the parts training will fit (`nnctl.model.dates`)."""
    order = dates.detect(texts)
    if order is None:
        return None
    doubt = "dmy" if order != "iso" and dates.ambiguous(texts) else ""
    stamps = np.array([dates.seconds(t, order) for t in texts], np.float64)
    parts = dates.fitted_parts(stamps)
    also = f"; {gaps}, imputed with the mean date" if gaps else ""
    return _Column(name, True, f"dates: the year, then {', '.join(parts[1:])} as sine/cosine pairs{also}",
                   dates.width(parts), doubt)


def _stray_text(present: pd.Series) -> str:
    """A hint when text is mostly numbers: one marker such as '?' turns a numeric column into categories."""
    strays = present[pd.to_numeric(present, errors="coerce").isna()]
    if strays.empty or len(strays) > 0.1 * len(present):
        return ""
    return f" (mostly numbers: blank {strays.iloc[0]!r} in the CSV if it marks a missing value)"


def _relative(csv_path: str | Path, config_dir: str | Path) -> str:
    """The CSV's path as the config must write it: relative to the config's folder, with forward slashes."""
    try:
        return Path(os.path.relpath(os.path.abspath(csv_path), os.path.abspath(config_dir))).as_posix()
    except ValueError:  # Windows: different drives have no relative path
        return Path(os.path.abspath(csv_path)).as_posix()


def _scalar(value: str) -> str:
    """`value` as a YAML scalar, quoted only when it needs to be (`yes`, `a: b`, `#1`, `1e3`, ...), so the config
    loader reads it back as this text."""
    return dump_scalar(value)


def _render(text: str, comment: str) -> str:
    """One line: `text  # comment` with comments aligned; a blank `text` gives a comment line at its indent."""
    if not comment:
        return f"{text}\n"
    if not text.strip():
        return f"{text}# {comment}\n"
    return f"{text.ljust(_COMMENT_AT - 1)} # {comment}\n" if len(text) < _COMMENT_AT - 1 else f"{text}  # {comment}\n"
