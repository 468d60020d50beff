"""A starter config for a CSV: look at its columns once and write a commented YAML config that trains as is."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from nnctl.data.fit import is_numeric, labels_of
from nnctl.data.reader import read_csv
from nnctl.data.starter_recipe import recipe
from nnctl.errors import DataError
from nnctl.registry import not_found

MAX_CLASSES = 20  # integer targets with at most this many values (and fewer than half the rows) are class codes
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


def starter_config(csv_path: str | Path, target: str, config_dir: str | Path = ".") -> str:
    """YAML text of a commented config that trains a network to predict `target` from the CSV's other columns.

    The task is classification when the target holds text or booleans, or integers with at most 20 distinct
    values that are also fewer than half the labelled rows (class codes such as 0/1/2, not counts or amounts);
    otherwise regression. `data.train` is written relative to `config_dir`, where the config will be saved."""
    source = str(csv_path)
    frame = read_csv(csv_path)
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise DataError(not_found(f"{source}: no column '{target}' to predict", target, columns, "columns"))
    labels = frame[target].dropna()
    task, target_note = _task(labels, source, target)
    features = [_column(frame[name]) for name in columns if name != target]
    kept = [c for c in features if c.keep]
    if not kept:
        reasons = "; ".join(f"{c.name}: {c.note}" for c in features) or "there are none"
        raise DataError(f"{source}: no usable feature columns besides the target '{target}' ({reasons})")
    n_inputs = sum(c.width for c in kept)
    small = len(labels) < MIN_ROWS
    plan = recipe(len(labels), 0.0 if small else VALIDATION_SPLIT)
    classification = task == "classification"

    lines: list[tuple[str, str]] = [
        ("", f"Starter config: predict {_scalar(target)} from {_scalar(Path(csv_path).name)} ({task}), written by "
             "nnctl from one look at the data."),
        ("", "Check it with `nnctl check CONFIG`, train it with `nnctl train CONFIG`; comments give the reasons."),
        ("seed: 0", "every random choice (split, init, shuffling) follows from it"),
        ("data:", ""),
        (f"  train: {_scalar(_relative(csv_path, config_dir))}", "relative to this file's folder"),
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
    lines += [
        ("  scale: standard", "numbers to mean 0, std 1, so one learning rate suits every input"),
        ("  missing: impute", "a missing number becomes the training mean, missing text a category"),
    ]
    if not classification:
        lines.append(("  target_scale: standard", "the loss sees the target standardised: its units do not matter"))
    output = "softmax" if classification else "identity"
    lines += [
        ("model:", ""),
        *plan.model_lines(n_inputs),
        (f"    - {{activation: {output}}}", "one probability per class; units follow from the data" if classification
         else "one unbounded number"),
        (f"loss: {'cross_entropy' if classification else 'mse'}", _loss_note(labels, classification)),
        *plan.training_lines(),
    ]
    lines.append((f"output: {_scalar(Path(csv_path).stem + '.npz')}", "the trained model, next to this file"))
    return "".join(_render(text, comment) for text, comment in lines)


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
    if np.all(values == np.round(values)) and distinct <= MAX_CLASSES and distinct < len(labels) / 2:
        return "classification", f"few distinct integers: class codes, {_class_counts(labels)}"
    return "regression", f"numbers with {distinct} distinct values: regression"


def _loss_note(labels: pd.Series, classification: bool) -> str:
    if not classification:
        return "mean squared error, the usual loss for predicting a number"
    if is_numeric(labels):
        return "written out: for integer labels nnctl would otherwise choose regression (mse)"
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
    stray = _stray_text(present) if text else ""
    if text and not missing and n > 1 and distinct == n:
        return _Column(name, False, f"a different text in every row, an identifier{stray}")
    if distinct > MAX_CATEGORIES or distinct > n / 2:
        # one-hot over categories that mostly occur once gives inputs no other row shares: nothing to generalise
        return _Column(name, False, f"text with {distinct} distinct values in {n} rows, too many categories to "
                                    f"learn from{stray}")
    also = f", plus one for its {gaps}" if gaps else ""
    return _Column(name, True, f"categorical: one-hot over {distinct} values{also}{stray}", distinct + bool(missing))


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
    """`value` as a YAML scalar, quoted only when it needs to be (`yes`, `a: b`, `#1`, ...)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=2**31 - 1, allow_unicode=True)
    return text.strip()[1:-1]


def _render(text: str, comment: str) -> str:
    """One line: `text  # comment` with comments aligned; a blank `text` gives a comment line at its indent."""
    if not comment:
        return f"{text}\n"
    if not text.strip():
        return f"{text}# {comment}\n"
    return f"{text.ljust(_COMMENT_AT - 1)} # {comment}\n" if len(text) < _COMMENT_AT - 1 else f"{text}  # {comment}\n"
