"""What a starter config trains with: the hidden layers, initialisation, optimizer, epochs and early stopping that
`nnctl init` writes, as functions of the number of labelled rows alone, never of a dataset's name.

The rules were chosen with `benchmarks/starter_results.py` (part of `make results`), which trains the starter of
every shipped dataset on 80/20 splits next to scikit-learn's MLP and gradient boosting with default parameters:

- one hidden layer of 256 relu units: the best mean of the widths and depths tried (64 to 512 units, one or two
  layers; two layers of 64 were 0.006 R² better on Auto MPG alone, 0.006 worse on digits and wine), with early
  stopping to keep the spare capacity from overfitting;
- Glorot-uniform weights, not He-normal: with He, Auto MPG lost 0.008 R² and breast cancer 0.004 accuracy;
- Adam at its usual rate 0.001, batches of 32 and a light L2 penalty (0.001);
- enough epochs to converge on a few hundred rows (500), fewer on big tables (a budget of about 20,000
  gradient steps), and patience for a tenth of them, so a noisy validation loss on a few dozen rows does not
  stop training early; the best epoch's weights are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNITS = 256  # the hidden layer's width
INIT = "glorot_uniform"
LEARNING_RATE = 0.001
WEIGHT_DECAY = 0.001
BATCH_SIZE = 32
MAX_EPOCHS = 500  # small tables: 500 passes over a few hundred rows is a few thousand steps, well under a second each
MIN_EPOCHS = 20
STEP_BUDGET = 20_000  # big tables: about this many gradient steps at most, so a starter trains in seconds to minutes
MIN_PATIENCE = 10

Line = tuple[str, str]  # (YAML text, its comment)


@dataclass(frozen=True)
class Recipe:
    """The network and training loop a starter config writes; `patience` None means no early stopping."""

    units: int
    init: str
    learning_rate: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int | None

    def model_lines(self, n_inputs: int) -> list[Line]:
        """The `model:` section's init and hidden layers; the output layer's line follows them."""
        return [
            (f"  init: {self.init}", "Glorot: on small tables it trains better than He (relu's usual init)"),
            ("  layers:", f"{n_inputs} inputs (one per number or category, a few per date) -> {self.units} -> output"),
            (f"    - {{units: {self.units}, activation: relu}}", "one wide layer: on average it beat two "
                                                                 "narrower ones"),
        ]

    def training_lines(self) -> list[Line]:
        """The `optimizer:` and `training:` sections."""
        lines = [
            ("optimizer:", ""),
            ("  name: adam", "per-weight step sizes: works on most tables without tuning"),
            (f"  learning_rate: {self.learning_rate:g}", "Adam's usual rate; raise it if the loss falls too slowly"),
            (f"  weight_decay: {self.weight_decay:g}", "a light L2 penalty on the weights: smoother fits"),
            ("training:", ""),
            (f"  epochs: {self.epochs}", self._epochs_note()),
            (f"  batch_size: {self.batch_size}", "rows per gradient step"),
        ]
        if self.patience is None:
            return [*lines, ("  ", "no early_stopping: it watches val_loss, and there are no validation rows")]
        return [*lines,
                ("  early_stopping:", f"stop sooner once val_loss has not improved for {self.patience} epochs "
                                      + ("(a tenth of them)" if self.patience == self.epochs // 10 else
                                         f"(at least {MIN_PATIENCE})")),
                ("    monitor: val_loss", ""),
                (f"    patience: {self.patience}", ""),
                ("    restore_best: true", "keep the best epoch's weights, not the last")]

    def _epochs_note(self) -> str:
        if self.epochs >= MAX_EPOCHS:
            return f"passes over the rows: at most {MAX_EPOCHS}, or ~{STEP_BUDGET:,} steps on big tables"
        if self.epochs <= MIN_EPOCHS:
            return f"passes over the rows: at least {MIN_EPOCHS}, even on a table this big"
        return f"passes over the rows: ~{STEP_BUDGET:,} gradient steps (at most {MAX_EPOCHS} passes)"


def recipe(n_rows: int, validation_split: float) -> Recipe:
    """The starter's network and training for `n_rows` labelled rows, `validation_split` of them held out (0: no
    validation rows, so no early stopping)."""
    train_rows = max(1, n_rows - round(n_rows * validation_split))  # about what `split_rows` holds out
    steps = math.ceil(train_rows / BATCH_SIZE)  # gradient steps per epoch
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(STEP_BUDGET / steps)))
    patience = max(MIN_PATIENCE, epochs // 10) if validation_split > 0 else None
    return Recipe(UNITS, INIT, LEARNING_RATE, WEIGHT_DECAY, BATCH_SIZE, epochs, patience)
