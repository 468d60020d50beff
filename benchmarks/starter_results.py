"""The starter config `nnctl init` writes, trained as it stands, next to scikit-learn's defaults.

Usage: python benchmarks/starter_results.py [--seeds N] [--only iris,wine] [--set KEY=VALUE ...]   (or
`make results`, which runs it after benchmarks/results.py).

For every shipped dataset and the target its config in `configs/` predicts, seed s (0..N-1) splits the labelled
rows 80/20 into training and test rows (stratified by class for classification, `results.split`); all three models
get the same training rows and are scored on the same test rows:

- nnctl: `starter_config(training rows, target)` as written (`--set` overrides it, for experiments), seed s. It
  holds out its own validation share of the training rows for early stopping, as a user's run would.
- scikit-learn `MLPClassifier`/`MLPRegressor()` with default parameters and random_state=s, in the pipeline a
  user would write: the starter's feature columns, mean imputation and `StandardScaler` for numbers, a constant
  fill and `OneHotEncoder(handle_unknown="ignore")` for text, and for regression the target standardised
  (`TransformedTargetRegressor(StandardScaler())`, as the starter's `target_scale: standard`). It trains on every
  training row (no early stopping by default).
- `HistGradientBoostingClassifier`/`Regressor()` defaults, random_state=s: the same feature columns, text
  columns as pandas categories (`categorical_features="from_dtype"`, its native categorical splits), missing
  numbers left as NaN (handled natively). Its early stopping is off by default below 10,000 rows.

scikit-learn runs with one OpenMP thread (its BLAS keeps every core): on a busy 2-core machine gradient boosting's
two OpenMP threads spin-wait, and one digits fit took a minute instead of 2-3 s. This changes its seconds, never
its scores.

The metric is test accuracy (classification) or test R² (regression), mean ± sd over the seeds. The starter
loses to the MLP on a dataset when it is behind by more than the split-to-split noise explains: when the mean of
its per-seed differences (same split, so the split's own luck cancels) is below -t times its standard error, t the
one-sided 95% quantile of Student's t with seeds - 1 degrees of freedom (1.83 for 10 seeds). The test sets are
small (30 iris flowers: one flower is 0.033), so a fixed tolerance would either hide a real loss on digits or
flag split luck on iris. The same rule compares the starter with gradient boosting on the mean over datasets.
`main` exits 1 when the starter loses either way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from results import split, with_date_parts

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
MODELS = ("starter", "mlp", "hgb")
CONFIDENCE = 0.95


@dataclass
class Scores:
    """One dataset's test scores per model (one per seed), and seconds per fit."""

    name: str
    task: str
    test_rows: int
    scores: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODELS})
    seconds: dict[str, float] = field(default_factory=lambda: {m: 0.0 for m in MODELS})
    epochs: list[int] = field(default_factory=list)


def datasets(only: str | None) -> list[tuple[str, Path, str]]:
    """(name, CSV, target) of every shipped config's dataset (or those named in `only`)."""
    import yaml

    found = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())["data"]
        found.append((path.stem, (path.parent / data["train"]).resolve(), str(data["target"])))
    return [d for d in found if d[0] in only.split(",")] if only else found


def run_starter(train_csv: Path, test_csv: Path, target: str, seed: int,
                extra: list[str]) -> tuple[dict[str, Any], Any, int]:
    """Test metrics of the starter config trained on `train_csv`, the config, and the epochs it ran."""
    from nnctl.config.load import load_config
    from nnctl.data.starter import starter_config
    from nnctl.inference.predict import evaluate
    from nnctl.training.run import train

    path = train_csv.parent / "starter.yaml"
    path.write_text(starter_config(train_csv, target, train_csv.parent))
    config = load_config(path, [*extra, f"seed={seed}", "data.cache=false"])
    result = train(config, save=False)
    return evaluate(result.model, test_csv), config, len(result.model.history)


def text_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    """The columns nnctl one-hot encodes: anything not numeric, booleans included."""
    return [f for f in features if not pd.api.types.is_numeric_dtype(frame[f]) or frame[f].dtype == bool]


def mlp_defaults(frame: pd.DataFrame, features: list[str], task: str, seed: int) -> Any:
    """scikit-learn's MLP with default parameters behind a user's usual preprocessing."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    text = text_columns(frame, features)
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()),
         [f for f in features if f not in text]),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                               OneHotEncoder(handle_unknown="ignore")), text),
    ])
    if task == "classification":
        return make_pipeline(columns, MLPClassifier(random_state=seed))
    return TransformedTargetRegressor(regressor=make_pipeline(columns, MLPRegressor(random_state=seed)),
                                      transformer=StandardScaler())


def hgb_defaults(task: str, seed: int) -> Any:
    """scikit-learn's histogram gradient boosting with default parameters; categories from the pandas dtype."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    kind = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return kind(categorical_features="from_dtype", random_state=seed)


def sklearn_score(model: Any, train: pd.DataFrame, test: pd.DataFrame, features: list[str], target: str,
                  task: str, categories: bool) -> float:
    """Test accuracy or R² of `model` fitted on `train`; text columns as pandas categories when `categories`."""
    from sklearn.metrics import accuracy_score, r2_score

    text = text_columns(train, features)
    kinds = {f: pd.CategoricalDtype(sorted(train[f].dropna().astype(str).unique())) if categories else str
             for f in text}

    def X(part: pd.DataFrame) -> pd.DataFrame:
        return part[features].astype(kinds) if kinds else part[features]

    if task == "classification":
        model.fit(X(train), train[target].astype(str))
        return float(accuracy_score(test[target].astype(str), model.predict(X(test))))
    model.fit(X(train), train[target])
    return float(r2_score(test[target], model.predict(X(test))))


def measure(name: str, csv: Path, target: str, seeds: int, extra: list[str]) -> Scores:
    """Every model's test score on `seeds` splits of one dataset."""
    from threadpoolctl import threadpool_limits

    from nnctl.engine.losses import LOSSES

    frame = pd.read_csv(csv)
    frame = frame[frame[target].notna()]
    result: Scores | None = None
    stratify = _task_of(csv, target)
    with tempfile.TemporaryDirectory() as folder:
        train_csv, test_csv = Path(folder) / f"{name}.csv", Path(folder) / "test.csv"
        for seed in range(seeds):
            train, test = split(frame, target, stratify, seed)
            train.to_csv(train_csv, index=False)
            test.to_csv(test_csv, index=False)
            started = time.perf_counter()
            metrics, config, epochs = run_starter(train_csv, test_csv, target, seed, extra)
            elapsed = time.perf_counter() - started
            task = LOSSES[config.loss.name].task
            if result is None:
                result = Scores(name, task, len(test))
            result.seconds["starter"] += elapsed
            result.epochs.append(epochs)
            result.scores["starter"].append(float(metrics["accuracy" if task == "classification" else "r2"]))
            train_x, test_x, features = with_date_parts(train, test, list(config.data.features))
            for model, kind, categories in ((mlp_defaults(train_x, features, task, seed), "mlp", False),
                                            (hgb_defaults(task, seed), "hgb", True)):
                started = time.perf_counter()
                # one OpenMP thread: gradient boosting's two threads spin-wait for minutes on a busy 2-core VM
                with threadpool_limits(1, user_api="openmp"):
                    score = sklearn_score(model, train_x, test_x, features, target, task, categories)
                result.scores[kind].append(score)
                result.seconds[kind] += time.perf_counter() - started
    assert result is not None
    return result


def _task_of(csv: Path, target: str) -> str:
    """The task of the loss the starter picks for the whole dataset (so the split is stratified as it needs)."""
    import yaml

    from nnctl.data.starter import starter_config
    from nnctl.engine.losses import LOSSES

    return LOSSES[yaml.safe_load(starter_config(csv, target, csv.parent))["loss"]].task


def shortfall(ours: list[float], theirs: list[float]) -> tuple[float, float]:
    """(the mean of ours - theirs per seed, how far below 0 that mean may be before it counts as a loss)."""
    from scipy.stats import t

    differences = [a - b for a, b in zip(ours, theirs, strict=True)]
    n = len(differences)
    if n < 2:
        return differences[0], 0.0
    error = statistics.stdev(differences) / n**0.5
    return statistics.mean(differences), float(t.ppf(CONFIDENCE, n - 1)) * error


def _cells(values: dict[str, list[float]]) -> str:
    return "  ".join(f"{statistics.mean(values[m]):.3f} ± {statistics.pstdev(values[m]):.3f}" for m in MODELS)


def table(results: list[Scores], seeds: int) -> tuple[list[str], list[str]]:
    """The printed lines, and what the starter lost."""
    lines = [f"starter config (nnctl init) as written vs scikit-learn defaults: test accuracy (classification) or R² "
             f"(regression), mean ± sd over seeds 0..{seeds - 1} (each seed its own 80/20 split, the same for every "
             "model); the starter loses when starter - MLP is below its bound (one-sided 95%, paired over seeds)",
             f"{'dataset':<14} {'task':<15} {'test rows':>9}  {'nnctl starter':>13}  {'MLP defaults':>13}  "
             f"{'HGB defaults':>13}  {'starter - MLP (bound)':>21}  {'epochs':>6}  {'s/fit: starter':>14} "
             f"{'MLP':>5} {'HGB':>5}  verdict"]
    missed = []
    for r in results:
        difference, tolerance = shortfall(r.scores["starter"], r.scores["mlp"])
        ok = difference >= -tolerance
        if not ok:
            missed.append(f"{r.name} (starter - MLP defaults {difference:+.3f}, bound {-tolerance:+.3f})")
        times = " ".join(f"{r.seconds[m] / seeds:>{w}.2f}" for m, w in zip(MODELS, (14, 5, 5), strict=True))
        versus = f"{difference:+.3f} ({-tolerance:+.3f})"
        lines.append(f"{r.name:<14} {r.task:<15} {r.test_rows:>9}  {_cells(r.scores)}  {versus:>21}  "
                     f"{statistics.mean(r.epochs):>6.0f}  {times}  {'match' if ok else 'WORSE'}")
    means = {m: [statistics.mean(r.scores[m][s] for r in results) for s in range(seeds)] for m in MODELS}
    difference, tolerance = shortfall(means["starter"], means["hgb"])
    ok = difference >= -tolerance
    if not ok:
        missed.append(f"the mean over datasets (starter - HGB defaults {difference:+.3f}, bound {-tolerance:+.3f})")
    lines.append(f"{'mean':<14} {'':<15} {'':>9}  {_cells(means)}  starter - HGB {difference:+.3f} "
                 f"({-tolerance:+.3f}): {'match' if ok else 'WORSE'}")
    lines.append("verdict: " + ("the starter matches or beats the MLP defaults on every dataset and gradient "
                                "boosting on average" if not missed else "WORSE: " + "; ".join(missed)))
    return lines, missed


def run(seeds: int, only: str | None, extra: list[str]) -> int:
    """Measure, print the table; 1 when the starter loses."""
    warnings.filterwarnings("ignore")  # the MLP's ConvergenceWarning when its 200 default epochs end the run
    results = [measure(name, csv, target, seeds, extra) for name, csv, target in datasets(only)]
    lines, missed = table(results, seeds)
    print("\n".join(lines))
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="splits and training runs per dataset (default 10)")
    parser.add_argument("--only", help="comma-separated config names (default: every config in configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override of every starter config, as in nnctl train --set")
    args = parser.parse_args()
    return run(args.seeds, args.only, args.set)


if __name__ == "__main__":
    sys.exit(main())
