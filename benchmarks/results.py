"""Test metrics of every shipped config, next to scikit-learn's MLP with the same layers, optimizer and epochs.

Usage: python benchmarks/results.py [--seeds N] [--only iris,wine] [--set KEY=VALUE ...]   (or `make results`,
which installs the `results` extra, and then measures `nnctl init`'s starter configs with
benchmarks/starter_results.py).

Each dataset (rows with a target) is split once into 80% train and 20% test (seed 0, stratified by class for
classification); the split is the same for both libraries and every seed. nnctl trains with the config as
shipped, its `data.train` pointed at the training part; a config with early stopping holds out its
validation share of those rows (scikit-learn then holds out the same share for its own early stopping), one
without trains on all of them, as scikit-learn does. scikit-learn gets the same hidden layers and activation, solver,
learning rate, betas, batch size, epochs and early-stopping patience, and the same preprocessing (mean
imputation, the config's scaling, one-hot for text columns, standardised regression targets). What it
cannot match is listed under the table. Each library trains once per seed (seeds 0..N-1); the table
shows the mean test metric and its spread. A row "matches" when nnctl's mean is at least scikit-learn's
minus one point (0.01). Exits 1 when a row does not match.

A `loss: poisson` config is a count regression: scikit-learn's MLPRegressor trains with `loss="poisson"` too
(its output is exp), and the first metric is the mean Poisson deviance (lower is better; nnctl's is twice its
test loss), which matches within one point of the deviance of predicting the training mean (the deviance's
analogue of R²'s one point).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TOLERANCE = 0.01
PRIMARY = {"classification": ("accuracy", "f1"), "regression": ("r2", "rmse"), "counts": ("deviance", "r2")}
LOWER_IS_BETTER = ("rmse", "deviance")


def split(frame: pd.DataFrame, target: str, task: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80/20 train/test split (seed 0 for the shipped configs' table); stratified for classification."""
    rng = np.random.default_rng(seed)
    frame = frame[frame[target].notna()]
    if task == "regression":
        order = rng.permutation(len(frame))
        n_test = round(0.2 * len(frame))
        return frame.iloc[order[n_test:]], frame.iloc[order[:n_test]]
    test_rows: list[int] = []
    for label in sorted(frame[target].unique(), key=str):
        rows = np.flatnonzero((frame[target] == label).to_numpy())
        test_rows += rng.permutation(rows)[: round(0.2 * len(rows))].tolist()
    is_test = np.zeros(len(frame), bool)
    is_test[test_rows] = True
    return frame.iloc[~is_test], frame.iloc[is_test]


def run_nnctl(config_path: Path, train_csv: Path, test_csv: Path, seed: int, extra: list[str]) -> dict[str, float]:
    from nnctl.config.load import load_config
    from nnctl.inference.predict import evaluate
    from nnctl.training.run import train

    overrides = [*extra, f"data.train={train_csv}", f"seed={seed}", "data.cache=false"]
    if load_config(config_path, extra).training.early_stopping is None:
        overrides.append("data.validation_split=0")  # validation would only be reported: train on every row
    config = load_config(config_path, overrides)
    result = train(config, save=False)
    scores = evaluate(result.model, test_csv)
    if result.model.loss == "poisson":
        scores["deviance"] = 2 * scores["loss"]  # poisson's loss is half the mean Poisson deviance
    return scores


SKLEARN_ACTIVATION = {"relu": "relu", "leaky_relu": "relu", "tanh": "tanh", "sigmoid": "logistic",
                      "identity": "identity"}


def sklearn_model(config: Any, frame: pd.DataFrame, features: list[str], task: str,
                  seed: int) -> tuple[Any, list[str]]:
    """The matching scikit-learn pipeline, and what it cannot match."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

    gaps = []
    hidden = config.model.layers[:-1]
    activations = [layer.activation or "relu" for layer in hidden]
    if len(set(activations)) > 1:
        gaps.append(f"one activation for all hidden layers ({activations[0]}, nnctl: {', '.join(activations)})")
    if any(layer.dropout for layer in hidden):
        gaps.append("no dropout")
    opt = config.optimizer
    params: dict[str, Any] = {"learning_rate_init": opt.learning_rate or 1e-3, "alpha": 0.0}
    if opt.name in ("adam", "adamw", "rmsprop"):
        params.update(solver="adam", beta_1=opt.beta1 or 0.9, beta_2=opt.beta2 or 0.999, epsilon=opt.eps or 1e-8)
        if opt.name == "rmsprop":
            gaps.append("adam instead of rmsprop")
    else:
        params.update(solver="sgd", momentum=opt.momentum or 0.0, nesterovs_momentum=bool(opt.nesterov),
                      learning_rate="constant")
    decay = opt.weight_decay if opt.weight_decay is not None else (0.01 if opt.name == "adamw" else 0.0)
    if decay:
        # sklearn's penalty gradient is alpha * W / batch_size; nnctl's coupled L2 adds decay * W
        params["alpha"] = decay * config.training.batch_size
        if opt.name == "adamw":
            gaps.append("coupled L2 instead of AdamW's decoupled decay")
    if config.schedule.name != "constant":
        gaps.append(f"constant learning rate (nnctl: {config.schedule.name} schedule)")
    if config.training.clip_norm:
        gaps.append("no gradient clipping")
    if config.data.class_weight:
        gaps.append("no class weights")
    loss = config.loss.name if config.loss is not None else "mse"
    output = config.model.layers[-1].activation
    if loss == "poisson":
        params["loss"] = "poisson"
        if output not in (None, "exp"):
            gaps.append(f"an exp output (nnctl: {output})")
    elif task == "regression" and loss != "mse":
        gaps.append(f"squared error through an identity output (nnctl: {loss}, {output or 'identity'} output)")
    stop = config.training.early_stopping
    if stop is not None:
        params.update(early_stopping=True, validation_fraction=config.data.validation_split or 0.1,
                      n_iter_no_change=stop.patience, tol=stop.min_delta or 0.0)
        gaps.append(f"early stopping on its validation {'accuracy' if task == 'classification' else 'R²'} "
                    f"(nnctl: {stop.monitor})")
    else:
        params.update(n_iter_no_change=config.training.epochs + 1, tol=0.0)
    params.update(hidden_layer_sizes=tuple(layer.units for layer in hidden),
                  activation=SKLEARN_ACTIVATION[activations[0]], batch_size=config.training.batch_size,
                  max_iter=config.training.epochs, shuffle=True, random_state=seed)

    text = [f for f in features if not pd.api.types.is_numeric_dtype(frame[f]) or frame[f].dtype == bool]
    numeric = [f for f in features if f not in text]
    scaler = {"standard": StandardScaler(), "minmax": MinMaxScaler(), "none": "passthrough"}[config.data.scale]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True), scaler), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                               OneHotEncoder(handle_unknown="ignore")), text),
    ])
    if task == "classification":
        return make_pipeline(columns, MLPClassifier(**params)), gaps
    regressor = make_pipeline(columns, MLPRegressor(**params))
    if config.data.target_scale == "standard":
        return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler()), gaps
    return regressor, gaps


def run_sklearn(model: Any, train: pd.DataFrame, test: pd.DataFrame, features: list[str], target: str,
                task: str, counts: bool = False) -> dict[str, float]:
    from sklearn import metrics

    X_train = train[features].astype({f: str for f in features if train[f].dtype == object})
    model.fit(X_train, train[target].astype(str) if task == "classification" else train[target])
    predicted = model.predict(test[features])
    if task == "classification":
        truth = test[target].astype(str)
        return {"accuracy": metrics.accuracy_score(truth, predicted),
                "f1": metrics.f1_score(truth, predicted, average="macro")}
    scores = {"r2": metrics.r2_score(test[target], predicted),
              "rmse": float(np.sqrt(metrics.mean_squared_error(test[target], predicted)))}
    if counts:
        scores["deviance"] = metrics.mean_poisson_deviance(test[target], predicted)
    return scores


def with_date_parts(train: pd.DataFrame, test: pd.DataFrame,
                    features: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """scikit-learn's view of date columns: the numeric parts nnctl derives from them (the year, and month,
    weekday, day of year and hour as sine/cosine pairs), as a user would compute them by hand; without this its
    pipeline would one-hot encode every distinct date. Other columns are unchanged."""
    from nnctl.model import dates
    from nnctl.model.preprocessing import is_missing

    train, test, names = train.copy(), test.copy(), []
    for column in features:
        texts = ([str(v) for v in train[column].dropna().unique()]
                 if not pd.api.types.is_numeric_dtype(train[column]) else [])
        order = dates.detect(texts)
        if order is None:
            names.append(column)
            continue
        present = dates.parse(train[column].tolist(), order, is_missing)[0]
        parts = dates.fitted_parts(present[~np.isnan(present)])
        for part in (train, test):
            stamps = dates.parse(part[column].tolist(), order, is_missing)[0]
            gaps = np.isnan(stamps)
            values = dates.part_columns(np.where(gaps, 0.0, stamps), parts)
            for name, value in zip(dates.part_names(parts), values, strict=True):
                part[f"{column}.{name}"] = np.where(gaps, np.nan, value)  # the pipeline's imputer fills gaps
        names += [f"{column}.{name}" for name in dates.part_names(parts)]
    return train, test, names


def _null_deviance(train: pd.Series, test: pd.Series) -> float:
    """The mean Poisson deviance on `test` of predicting the training mean for every row."""
    from sklearn import metrics

    return float(metrics.mean_poisson_deviance(test, np.full(len(test), train.mean())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training runs per library and dataset (default 5)")
    parser.add_argument("--only", help="comma-separated config names (default: every config in configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every config and both libraries, as in nnctl train --set")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # sklearn's ConvergenceWarning when max_iter epochs end the run
    from nnctl.config.load import load_config
    from nnctl.engine.losses import LOSSES

    names = args.only.split(",") if args.only else sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    print(f"test metrics, mean ± standard deviation over seeds 0..{args.seeds - 1}; the same 80/20 split for both")
    print(f"{'dataset':<14} {'task':<15} {'test rows':>9}  {'metric':<8} {'nnctl':>15} {'scikit-learn':>15}  "
          f"{'nnctl s':>7} {'sklearn s':>9}  verdict")
    missed, notes = [], {}
    for name in names:
        config_path = CONFIGS / f"{name}.yaml"
        config = load_config(config_path, args.set)
        frame = pd.read_csv(config_path.parent / config.data.train)
        target = config.data.target
        features = config.data.features or [c for c in frame.columns if c != target]
        task = LOSSES[config.loss.name].task if config.loss else "regression"
        counts = config.loss is not None and config.loss.name == "poisson"
        train, test = split(frame, target, task)
        ours, theirs, seconds = [], [], {"nnctl": 0.0, "sklearn": 0.0}
        with tempfile.TemporaryDirectory() as folder:
            train_csv, test_csv = Path(folder) / "train.csv", Path(folder) / "test.csv"
            train.to_csv(train_csv, index=False)
            test.to_csv(test_csv, index=False)
            train_x, test_x, features_x = with_date_parts(train, test, features)
            for seed in range(args.seeds):
                started = time.perf_counter()
                ours.append(run_nnctl(config_path, train_csv, test_csv, seed, args.set))
                seconds["nnctl"] += time.perf_counter() - started
                model, gaps = sklearn_model(config, train_x, features_x, task, seed)
                started = time.perf_counter()
                theirs.append(run_sklearn(model, train_x, test_x, features_x, target, task, counts))
                seconds["sklearn"] += time.perf_counter() - started
        if gaps:
            notes[name] = gaps
        for i, metric in enumerate(PRIMARY["counts" if counts else task]):
            a = [float(s[metric]) for s in ours]
            b = [float(s[metric]) for s in theirs]
            higher = metric not in LOWER_IS_BETTER
            if higher:  # accuracy, R²: an absolute tolerance
                tolerance = TOLERANCE
            else:  # an error in the target's units (or a deviance): relative to its spread
                scale = _null_deviance(train[target], test[target]) if metric == "deviance" else np.std(test[target])
                tolerance = TOLERANCE * float(scale)
            ok = statistics.mean(a) >= statistics.mean(b) - tolerance if higher else \
                statistics.mean(a) <= statistics.mean(b) + tolerance
            if i == 0 and not ok:
                missed.append(f"{name} {metric}")
            cells = [f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}" for v in (a, b)]
            timing = (f"{seconds['nnctl'] / args.seeds:>7.2f} {seconds['sklearn'] / args.seeds:>9.2f}" if i == 0
                      else " " * 17)
            label = (name, task, str(len(test))) if i == 0 else ("", "", "")
            verdict = ("match" if ok else "WORSE") if i == 0 else ""
            print(f"{label[0]:<14} {label[1]:<15} {label[2]:>9}  {metric:<8} {cells[0]:>15} {cells[1]:>15}  "
                  f"{timing}  {verdict}")
    for name, gaps in notes.items():
        print(f"{name}: scikit-learn has {'; '.join(gaps)}")
    print("verdict: " + ("nnctl matches or beats scikit-learn on every dataset" if not missed
                         else "WORSE on " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
