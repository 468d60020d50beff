"""Metrics on predictions: accuracy for classification; MAE, RMSE and R² for regression."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnctl._types import Array


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows whose predicted class index equals the true one."""
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² = 1 - SS_res / SS_tot (0 for predicting the mean; 1 for perfect)."""
    residual = np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)
    total = float(np.sum((y_true - np.mean(y_true)) ** 2))
    ss_res = float(np.sum(residual**2))
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "r2": 1.0 - ss_res / total if total > 0 else float("nan"),
    }


def batched_output(forward: Callable[[Array], Array], X: Array, chunk: int = 8192) -> Array:
    """Network outputs for X in chunks of rows, so temporaries stay bounded on large inputs."""
    if len(X) <= chunk:
        return forward(X)
    return np.concatenate([forward(X[i : i + chunk]) for i in range(0, len(X), chunk)])
