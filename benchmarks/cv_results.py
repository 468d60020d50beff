"""Cross-validated test metrics of every shipped config, next to scikit-learn's `cross_val_score` on the same folds.

Usage: python benchmarks/cv_results.py [--folds K] [--repeats R] [--only iris,wine]   (part of `make results`).

For each config, the labelled rows are cut into K folds exactly as `nnctl cv` cuts them (`nnctl.data.folds`,
the config's seed; stratified for classification). nnctl trains each fold as `nnctl cv` does
(`nnctl.sweep.cv.run_fold`: the config from scratch on the fold's training rows, early stopping on rows split
off them) and scores the held-out rows; scikit-learn's MLP, configured as in `benchmarks/results.py` (same
layers, optimizer, epochs and preprocessing), is scored on the same folds by `cross_val_score(cv=folds)`.
The table shows each side's mean ± sample sd over the K x R folds (accuracy, R², or for a count target the mean
Poisson deviance) and the mean per-fold difference (positive: nnctl better). Folds share training rows, so their
differences are not independent: a row is WORSE only when the difference is below the bound of Nadeau and
Bengio's corrected resampled t-test (one-sided 95%; variance (1/J + 1/(K-1)) s² for J = K x R folds). Exits 1
when a row is WORSE.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from results import CONFIGS, sklearn_model, with_date_parts


def _folds(seed: int, frame: pd.DataFrame, target: str, task: str, k: int, repeats: int) -> list:  # type: ignore[type-arg]
    from nnctl.data.fit import labels_of
    from nnctl.data.folds import make_folds

    classes = np.unique(labels_of(frame[target]), return_inverse=True)[1] if task == "classification" else None
    return make_folds(len(frame), k, repeats, np.random.default_rng(seed), classes)


def corrected_bound(differences: list[float], k: int) -> float:
    """How far below 0 the mean per-fold difference may be before it counts as a loss: Nadeau and Bengio's
    corrected resampled t-test, one-sided 95%, for folds that test on 1/k of the rows and train on the rest."""
    from scipy.stats import t

    j = len(differences)
    variance = (1 / j + 1 / (k - 1)) * statistics.variance(differences)
    return float(t.ppf(0.95, j - 1)) * variance**0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5, help="folds (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats, each with its own folds (default 3)")
    parser.add_argument("--only", help="comma-separated config names (default: every config in configs/)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from sklearn import metrics
    from sklearn.model_selection import cross_val_score

    from nnctl.config.load import load_config
    from nnctl.data.reader import config_dialect, read_csv
    from nnctl.engine.losses import LOSSES
    from nnctl.sweep.cv import run_fold

    names = args.only.split(",") if args.only else sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    print(f"cross-validated test metrics: mean ± sample sd over the same {args.folds} x {args.repeats} folds (nnctl "
          "cv's) for both; the difference is nnctl's advantage, with its corrected 95% bound")
    print(f"{'dataset':<16} {'metric':<9} {'nnctl cv':>15} {'cross_val_score':>16}  {'difference (bound)':>18}  "
          f"{'nnctl s':>7} {'sklearn s':>9}  verdict")
    missed = []
    for name in names:
        config = load_config(CONFIGS / f"{name}.yaml")
        path = str(config.resolve(config.data.train))
        target = config.data.target
        frame = read_csv(path, config_dialect(config, path))
        frame = frame[frame[target].notna()].reset_index(drop=True)
        features = config.data.features or [c for c in frame.columns if c != target]
        task = LOSSES[config.loss.name].task if config.loss else "regression"
        counts = config.loss is not None and config.loss.name == "poisson"
        metric = "deviance" if counts else "accuracy" if task == "classification" else "r2"
        folds = _folds(config.seed, frame, target, task, args.folds, args.repeats)
        ours, started = [], time.perf_counter()
        for f in folds:
            scores = run_fold(config, frame.iloc[f.train].to_csv(index=False),
                              frame.iloc[f.validation].to_csv(index=False), len(f.train), f.repeat, f.number, False)[0]
            ours.append(2 * scores.metrics["val_loss"] if counts else scores.metrics[f"val_{metric}"])
        ours_seconds = time.perf_counter() - started
        x, _, x_features = with_date_parts(frame, frame.iloc[:0], features)
        model, _ = sklearn_model(config, x, x_features, task, config.seed)
        y = x[target].astype(str) if task == "classification" else x[target]
        scoring = (metrics.make_scorer(metrics.mean_poisson_deviance, greater_is_better=False) if counts
                   else "accuracy" if task == "classification" else "r2")
        started = time.perf_counter()
        theirs = cross_val_score(model, x[x_features], y, cv=[(f.train, f.validation) for f in folds],
                                 scoring=scoring)
        theirs_seconds = time.perf_counter() - started
        theirs = [-t for t in theirs] if counts else list(theirs)
        differences = [b - a if counts else a - b for a, b in zip(ours, theirs, strict=True)]
        advantage, bound = statistics.fmean(differences), corrected_bound(differences, args.folds)
        ok = advantage >= -bound
        if not ok:
            missed.append(name)
        cells = [f"{statistics.fmean(v):.3f} ± {statistics.stdev(v):.3f}" for v in (ours, theirs)]
        gap = f"{advantage:+.3f} (-{bound:.3f})"
        print(f"{name:<16} {metric:<9} {cells[0]:>15} {cells[1]:>16}  {gap:>18}  {ours_seconds / len(folds):>7.2f} "
              f"{theirs_seconds / len(folds):>9.2f}  {'match' if ok else 'WORSE'}")
    print("verdict: " + ("nnctl matches or beats scikit-learn on every dataset" if not missed
                         else "WORSE on " + ", ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
