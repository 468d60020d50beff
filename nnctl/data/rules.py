"""The rules every way of loading data applies, in one place: a whole CSV in memory (`nnctl.data.memory`) and a
CSV read chunk by chunk (`nnctl.data.streaming`, `nnctl.data.spill`) drop, check, warn and fail alike.

- the target and feature columns a config (or a fine-tuned model) asks for, and the loss it implies: the config's,
  else one the output layer and the target decide (`loss_name`); a classification target must hold class labels
  (text, booleans or integers), a poisson one counts (numbers >= 0);
- rows without a target are dropped, with a warning; `data.missing` drops rows with gaps (`drop`, with a warning)
  or stops at the first (`error`); "no usable rows" and "no training rows" are errors;
- a regression target must be numeric; class weights only exist for classes;
- categories a fine-tuned model has never seen are counted, and named in a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data.dataset import Warn
from nnctl.data.fit import is_numeric
from nnctl.data.reader import line_of, require_columns, series_line
from nnctl.errors import ConfigError, DataError
from nnctl.model.columns import absent, quoted
from nnctl.model.preprocessing import Preprocessor, TargetEncoder, to_numbers

if TYPE_CHECKING:
    from nnctl.model.model import Model

LEAK_CHECK_COLUMNS = 500
Unseen = dict[str, tuple[int, set[str]]]  # categorical column -> (rows with unseen categories, those categories)


# --- columns and loss ------------------------------------------------------------------------------------


def checked_features(config: Config, frame: pd.DataFrame, source: str, base: Model | None) -> list[str]:
    """The feature columns, once `frame` (a CSV, or only its header) is known to hold them and the target."""
    configured_columns(config, frame, [config.data.target], source, "target")
    for key in ("weight", "group"):
        if getattr(config.data, key):
            configured_columns(config, frame, [getattr(config.data, key)], source, key)
    features = feature_columns(config, frame, source, base)
    if base is None and config.data.features:
        configured_columns(config, frame, features, source, "features")
    require_columns(frame, features, source, "feature")
    return features


def configured_columns(config: Config, frame: pd.DataFrame, columns: list[str], source: str, key: str) -> None:
    """DataError at the config's line of `data.<key>` when the CSV lacks columns that key names."""
    found = absent([str(c) for c in frame.columns], columns)
    if found is not None:
        missing, rest = found
        what = "is not a column" if len(missing) == 1 else "are not columns"
        raise DataError(f"{config.at('data', key)}: data.{key}: {quoted(missing)} {what} of {source}{rest}")


def feature_columns(config: Config, frame: pd.DataFrame, source: str, base: Model | None) -> list[str]:
    """`data.features`, else every column but the target; a fine-tuned model's own features and target."""
    data = config.data
    if base is not None:
        known = [spec.name for spec in base.preprocessor.features]
        if data.target != base.target.name:
            raise DataError(f"{config.at('data', 'target')}: data.target '{data.target}' differs from the model's "
                            f"target '{base.target.name}'; a model keeps the target it was trained on")
        if data.features and list(data.features) != known:
            raise DataError(f"{config.at('data', 'features')}: data.features {list(data.features)} differ from the "
                            f"model's features {known}; a model keeps the features it was trained on")
        missing = [name for name in known if name not in frame.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"{source}: lacks {len(missing)} of the model's {len(known)} feature columns ({shown}); "
                            "the data must have the columns the model was trained on")
        return known
    features = list(data.features) if data.features else [str(c) for c in frame.columns
                                                          if c not in (data.target, data.weight, data.group)]
    if data.weight in features:
        raise DataError(f"{config.at('data', 'features')}: data.features lists the weight column '{data.weight}'; "
                        "a row's weight is not an input: remove it there")
    if data.target in features:
        raise DataError(f"{config.at('data', 'features')}: data.features lists the target '{data.target}' too; "
                        "remove it there")
    if not features:
        raise DataError(f"{source}: no feature columns besides the target '{data.target}'")
    return features


def loss_name(config: Config, target: pd.Series, base: Model | None) -> str:
    """The config's `loss`; a fine-tuned model keeps its own. Left out, the output layer and the target decide:

    - a softmax output classifies: cross_entropy (integer labels such as 0/1/2 are classes too);
    - a sigmoid output on a 0/1 (or text, or boolean) target classifies two classes: binary_cross_entropy;
    - otherwise cross_entropy for a text (or boolean) target and mse for a numeric one.

    `target` holds the target's (first) labelled values."""
    given = config.loss.name if config.loss is not None else None
    if base is not None:
        if given and given != base.loss:
            raise ConfigError(f"{config.source}: loss '{given}' differs from the model's '{base.loss}'; "
                              "a model keeps its loss and output layer")
        return base.loss
    if given:
        return given
    output = config.model.layers[-1].activation
    numeric = is_numeric(target)
    if output == "softmax":
        return "cross_entropy"
    if output == "sigmoid" and (not numeric or _zeros_and_ones(target)):
        return "binary_cross_entropy"
    return "mse" if numeric else "cross_entropy"


def _zeros_and_ones(target: pd.Series) -> bool:
    values = target.to_numpy(dtype=np.float64, na_value=np.nan)
    return bool(np.isin(values, (0.0, 1.0)).all())


def require_labels(config: Config, loss: str, target: pd.Series, source: str, base: Model | None) -> None:
    """A classification loss needs class labels: a numeric target must hold integers (0, 1, 2), not fractions. The
    ConfigError names the key that made it a classification: `loss`, or the softmax output layer's activation."""
    if base is not None or not is_numeric(target):
        return
    values = target.to_numpy(dtype=np.float64, na_value=np.nan)
    fractional = values != np.round(values)
    if not fractional.any():
        return
    i = int(np.argmax(fractional))
    found = (f"target '{config.data.target}' holds numbers that are not class labels ({values[i]:g} on line "
             f"{series_line(target, i)} of {source})")
    if config.loss is not None:
        raise ConfigError(f"{config.source}: loss: {loss} classifies, but {found}; to predict the numbers use "
                          "a regression loss (mse, mae or huber) with an identity output")
    last = len(config.model.layers) - 1
    raise ConfigError(f"{config.source}: model.layers[{last}].activation: softmax outputs class probabilities, "
                      f"but {found}; to predict the numbers use activation: identity (loss mse)")


def require_counts(config: Config, target: pd.Series, source: str) -> None:
    """loss: poisson models counts: the target must not be negative."""
    values = target.to_numpy(dtype=np.float64, na_value=np.nan)
    negative = values < 0
    if negative.any():
        i = int(np.argmax(negative))
        raise DataError(f"{source}: target '{config.data.target}' line {series_line(target, i)}: {values[i]:g} is "
                        "negative; loss: poisson predicts counts (numbers >= 0); use loss: mse for signed targets")


def require_numeric_target(numeric: bool, config: Config, loss: str, source: str) -> None:
    """A regression loss needs numbers to fit."""
    if not numeric:
        raise DataError(f"{source}: target '{config.data.target}' is not numeric, but loss '{loss}' is for "
                        "regression; use loss: cross_entropy to classify it")


# --- rows --------------------------------------------------------------------------------------------------


def clean(frame: pd.DataFrame, target: str, features: list[str], missing: str,
          source: str) -> tuple[pd.DataFrame, int, int]:
    """Drop rows without a target, then apply `data.missing` to the features: (usable rows, rows without a
    target, rows dropped for gaps). `missing: error` raises at the first gap (by row, then column)."""
    frame, unlabelled = drop_unlabelled(frame, target)
    frame, incomplete = apply_missing(frame, features, missing, source)
    return frame, unlabelled, incomplete


def drop_unlabelled(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a target, and how many did not."""
    labelled: np.ndarray = frame[target].notna().to_numpy()
    dropped = len(frame) - int(labelled.sum())
    return (frame.loc[labelled] if dropped else frame), dropped


def apply_missing(frame: pd.DataFrame, features: list[str], missing: str, source: str) -> tuple[pd.DataFrame, int]:
    """`data.missing` on the feature columns: the rows kept, and how many `drop` dropped; `error` raises at the
    first gap (by row, then column), naming its column and line."""
    if missing == "impute":  # gaps are filled: no need to look for them (a wide frame's isna is not free)
        return frame, 0
    gaps = frame[features].isna().to_numpy()
    if not gaps.any():
        return frame, 0
    if missing == "error":
        row, column = np.argwhere(gaps)[0]
        raise DataError(f"{source}: column '{features[column]}' line {line_of(frame.index[row])}: missing value "
                        "(data.missing: error); use data.missing: impute or drop to accept gaps")
    complete = np.logical_not(gaps.any(axis=1))
    return frame.loc[complete], len(frame) - int(complete.sum())


def report_dropped(warn: Warn, source: str, target: str, rows: int, unlabelled: int, incomplete: int,
                   usable: int) -> None:
    """Warn about the rows `clean` dropped from a file of `rows` rows; DataError when none is left."""
    if unlabelled:
        warn(f"{source}: dropped {unlabelled} of {rows} rows whose target '{target}' is missing")
    if incomplete:
        warn(f"{source}: dropped {incomplete} of {rows - unlabelled} rows with missing feature values "
             "(data.missing: drop)")
    if not usable:
        raise no_usable_rows(source)


def no_usable_rows(source: str) -> DataError:
    return DataError(f"{source}: no usable rows left after removing rows with missing values")


def no_training_rows(source: str) -> DataError:
    return DataError(f"{source}: no training rows left after data.validation_split; lower it")


# --- classes and categories --------------------------------------------------------------------------------


def class_weights(config: Config, target: TargetEncoder, counts: np.ndarray) -> np.ndarray | None:
    """Loss weight per class index from `data.class_weight` (None when unset) and the training rows' count per class
    (n_classes,): 'balanced' = n_rows / (n_classes * rows of the class), or a mapping of label to weight."""
    setting = config.data.class_weight
    if setting is None:
        return None
    if target.task != "classification":
        raise ConfigError(f"{config.source}: data.class_weight: only classification has classes; remove it")
    k = len(target.classes)
    if setting == "balanced":
        counts = counts.astype(np.float64)
        balanced: np.ndarray = np.divide(int(counts.sum()), k * counts, out=np.ones(k), where=counts > 0)
        return balanced
    by_text = {str(label): i for i, label in enumerate(target.classes)}
    weights = np.ones(k)
    for label, weight in setting.items():
        if str(label) not in by_text:
            raise ConfigError(f"{config.source}: data.class_weight: unknown class {label!r} "
                              f"(classes: {', '.join(map(str, target.classes))})")
        weights[by_text[str(label)]] = weight
    return weights


def row_weights(name: str, frame: pd.DataFrame, source: str, split: str | None = "training") -> np.ndarray:
    """The values (n,) float64 of the weight column `name` (data.weight) for the rows of `frame` (the `split`'s
    rows): finite numbers >= 0, not all zero (a chunk of a streamed split, `split` None, may be all zero)."""
    series = frame[name]
    values, bad = to_numbers(series.to_numpy())
    if bad is None:
        wrong = ~np.isfinite(values) | (values < 0)
        bad = int(np.argmax(wrong)) if wrong.any() else None
    if bad is not None:
        raise DataError(f"{source}: column '{name}' (data.weight) line {series_line(series, bad)}: "
                        f"'{series.iloc[bad]}' is not a weight; weights are numbers >= 0, one in every row")
    if split is not None and not values.any():
        what = "nothing to learn" if split == "training" else "nothing to score"
        raise DataError(f"{source}: column '{name}' (data.weight): every {split} row weighs 0; {what}")
    return values


def leaks(frame: pd.DataFrame, features: list[str], target: str, task: str) -> list[str]:
    """Warnings for features that are near-perfect copies of the target (leakage: a column computed from the
    target, or recorded after it, scores well in validation and fails on new rows). Regression: a numeric
    feature with |Pearson r| >= 0.999. Classification: a column whose every value belongs to one class (and with
    fewer distinct values than half the rows, so not an identifier), or a numeric column whose classes' value
    ranges do not overlap. Only the first LEAK_CHECK_COLUMNS features are looked at: wide data stays fast."""
    found = []
    y = frame[target]
    if task == "regression":
        for name in features[:LEAK_CHECK_COLUMNS]:
            r = _correlation(frame[name], y)
            if r is not None and abs(r) >= 0.999:
                found.append(f"column '{name}' follows the target '{target}' almost exactly (r = {r:.4f})")
    else:
        y_codes, classes = pd.factorize(y)  # once: each column is compared through integer codes, no text
        if len(classes) >= 2:
            for name in features[:LEAK_CHECK_COLUMNS]:
                message = _class_leak(frame[name], y_codes, len(classes), name, target)
                if message:
                    found.append(message)
    return [f"{message}; is it computed from the target? A leaked column scores well in validation and fails on "
            "new data" for message in found]


def _correlation(x: pd.Series, y: pd.Series) -> float | None:
    """Pearson's r of a numeric feature and target over the rows that have both (None: too few, or constant)."""
    if not (is_numeric(x) and is_numeric(y)):
        return None
    both = x.notna().to_numpy() & y.notna().to_numpy()
    a, b = x.to_numpy(np.float64)[both], y.to_numpy(np.float64)[both]
    if len(a) < 10 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _class_leak(x: pd.Series, y_codes: np.ndarray, k: int, name: str, target: str) -> str | None:
    """Why column `x` gives away the class (y_codes (n,): class codes, -1 for a gap), or None."""
    x_codes, values = pd.factorize(x)
    both = (x_codes >= 0) & (y_codes >= 0)
    rows = int(both.sum())
    if rows < 10:
        return None
    xc, yc = x_codes[both], y_codes[both]
    present = np.flatnonzero(np.bincount(yc, minlength=k))
    if len(present) < 2:  # one class among these rows: nothing to give away
        return None
    distinct = int(np.count_nonzero(np.bincount(xc, minlength=len(values))))
    if distinct < rows / 2 and np.unique(xc.astype(np.int64) * k + yc).size == distinct:  # each value: one class
        return f"column '{name}' tells the class of every row by itself ({distinct} values, each always one class " \
               f"of '{target}')"
    if not is_numeric(x):
        return None
    numbers = x.to_numpy(np.float64)[both]
    low = np.array([numbers[yc == c].min() for c in present])
    high = np.array([numbers[yc == c].max() for c in present])
    order = np.argsort(low, kind="stable")
    if bool(np.all(low[order][1:] > high[order][:-1])):
        return f"column '{name}' separates every class of '{target}' by its value ranges alone"
    return None


def weights_by_label(target: TargetEncoder, weights: np.ndarray) -> dict[str, float]:
    """Class weights as the model records them: label (as text) -> weight."""
    return dict(zip(map(str, target.classes), weights.tolist(), strict=True))


def unseen_categories(preprocessor: Preprocessor, frame: pd.DataFrame, into: Unseen | None = None) -> Unseen:
    """Count the values of each categorical column that the (fine-tuned) model has never seen, added to `into`."""
    unseen: Unseen = {} if into is None else into
    for spec in preprocessor.features:
        if spec.kind != "categorical":
            continue
        values = frame[spec.name].dropna().astype(str)
        new = values[~values.isin(spec.categories)]
        if len(new):
            count, examples = unseen.get(spec.name, (0, set()))
            unseen[spec.name] = (count + len(new), examples | set(new))
    return unseen


def warn_unseen(warn: Warn, source: str, preprocessor: Preprocessor, unseen: Unseen) -> None:
    """One warning per categorical column with unseen categories, in the model's feature order."""
    for spec in preprocessor.features:
        if spec.name in unseen:
            count, examples = unseen[spec.name]
            shown = ", ".join(repr(v) for v in sorted(examples)[:5])
            warn(f"{source}: column '{spec.name}' has {count} rows with categories the model has never seen "
                 f"({shown}); they are encoded as all zeros")
