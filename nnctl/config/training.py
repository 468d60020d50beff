"""The config's `training` section: epochs, batches, precision, early stopping, checkpoints, and what happens
after training on the validation rows (temperature calibration, a decision threshold).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nnctl.config.sections import MonitorName, Section


class EarlyStoppingConfig(Section):
    monitor: MonitorName = Field("val_loss", description="the metric to watch")
    patience: int = Field(10, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest improvement that counts")
    restore_best: bool = Field(True, description="save the best epoch's weights, not the last")


class TrainingConfig(Section):
    epochs: int = Field(100, ge=0, description="passes over the training rows (0 = save the initial model)")
    batch_size: int = Field(32, ge=1, description="rows per gradient step")
    dtype: Literal["float32", "float64"] = Field("float32", description="floating-point precision")
    shuffle: bool = Field(True, description="reshuffle the training rows every epoch")
    clip_norm: float | None = Field(None, gt=0, description="rescale gradients whose global L2 norm exceeds this")
    threads: int | None = Field(None, ge=1, description="BLAS threads for this run (default: OMP_NUM_THREADS / "
                                "OPENBLAS_NUM_THREADS, else every core)")
    early_stopping: EarlyStoppingConfig | None = Field(None, description="stop when the monitor stops improving")
    checkpoint_every: int | None = Field(None, ge=1, description="write a resumable checkpoint every N epochs")
    checkpoint: str | None = Field(None, description="checkpoint path (default: OUTPUT with .ckpt.npz)")
    calibrate: Literal["temperature"] | None = Field(
        None, description="classification: after training, fit one temperature T on the validation rows that "
        "minimises their log-loss of softmax(Z / T) (sigmoid(z / T) for one sigmoid unit); T = 1 is a candidate, so "
        "it never gets worse; the model stores T and predict, evaluate and export apply it")
    threshold: Literal["f1", "youden", "balanced_accuracy"] | None = Field(
        None, description="two classes: after training (and calibration), choose the decision threshold on the "
        "second class's probability that maximises this on the validation rows (F1 of the second class, Youden's "
        "J = TPR - FPR, or balanced accuracy); the model stores it and predict uses it unless --threshold is given")
    diagnostics: bool = Field(
        True, description="record what `nnctl doctor` reads: the inputs' scales and constant features, and per epoch "
        "and layer the gradient norm, the update/weight ratio and the share of dead (ReLU) or saturated (sigmoid, "
        "tanh) units, from up to 4 batches an epoch; stored in the model file")
