"""After training, on the validation rows: `training.calibrate` (one temperature T for the output layer) and
`training.threshold` (the decision threshold of a two-class model). The math is in `nnctl.engine.calibration`;
this module checks that a run can do them (before it trains) and stores their results in the model.
"""

from __future__ import annotations

import numpy as np

from nnctl.config.schema import Config
from nnctl.data.dataset import Dataset
from nnctl.engine.calibration import best_threshold, fit_temperature
from nnctl.engine.metrics import batched_output
from nnctl.errors import ConfigError, DataError
from nnctl.model.model import Model

_OUTPUTS = ("softmax", "sigmoid")


def check(config: Config, dataset: Dataset, output_activation: str) -> None:
    """ConfigError, before training, when the run cannot calibrate or choose a threshold as its config asks."""
    training = config.training
    target = dataset.target
    if training.calibrate is not None:
        at = config.at("training", "calibrate")
        if target.task != "classification":
            raise ConfigError(f"{at}: training.calibrate: {training.calibrate} is for classifiers, and loss "
                              f"'{dataset.loss}' is a regression; remove training.calibrate")
        if output_activation not in _OUTPUTS:
            raise ConfigError(f"{at}: training.calibrate: {training.calibrate} needs a softmax or sigmoid output "
                              f"layer, got '{output_activation}'; remove training.calibrate")
    if training.threshold is not None:
        at = config.at("training", "threshold")
        if target.task != "classification" or len(target.classes) != 2:
            what = (f"loss '{dataset.loss}' is a regression" if target.task != "classification"
                    else f"the data has {len(target.classes)} classes ({', '.join(map(str, target.classes))})")
            raise ConfigError(f"{at}: training.threshold: {training.threshold} needs two classes, and {what}; "
                              "remove training.threshold")
    for key in ("calibrate", "threshold"):
        if getattr(training, key) is not None and dataset.validation is None:
            raise ConfigError(f"{config.at('training', key)}: training.{key} needs validation rows; set "
                              "data.validation_split > 0 or data.validation, or remove training." + key)


def calibrate(config: Config, model: Model, dataset: Dataset) -> None:
    """Fit the model's temperature, then its threshold (on the calibrated probabilities), as the config asks."""
    training = config.training
    if (training.calibrate is None and training.threshold is None) or dataset.validation is None:
        return
    Zs, ys, rs = [], [], []
    for X, _, y, r in dataset.validation.chunks():
        Zs.append(batched_output(model.network.logits, X))
        ys.append(np.array(y, np.int64))
        if r is not None:
            rs.append(np.array(r, np.float64))
    Z, y = np.concatenate(Zs), np.concatenate(ys)
    w = np.concatenate(rs) if rs else None  # data.weight: the validation rows weigh as in its metrics
    if training.calibrate == "temperature":
        model.temperature = fit_temperature(Z, y, model.target.binary, w)
    if training.threshold is not None:
        A = model.network.acts[-1].forward(Z / Z.dtype.type(model.temperature or 1.0))
        try:
            model.threshold = best_threshold(model.target.probabilities(A)[:, 1], y, training.threshold, w)
        except ValueError as exc:
            raise DataError(f"{config.at('training', 'threshold')}: training.threshold: cannot choose a threshold: "
                            f"{exc}; use more validation rows (data.validation_split) or remove "
                            "training.threshold") from None
