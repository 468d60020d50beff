"""Diagnoses of a trained model from what its run recorded (`training.diagnostics`) and its history: each a code,
a message saying what is wrong, the evidence in numbers and the fix (the config key to change).

Every rule is a pure function of the model's history, its recorded diagnostics and its config, with the thresholds
below. A rule whose inputs the model lacks (no validation rows, no recorded diagnostics) stays silent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from nnctl.config.schema import Config
from nnctl.errors import TrainingError
from nnctl.model.diagnostics import EpochRecord
from nnctl.model.model import Model, load_model
from nnctl.training.events import Callback

UNSCALED_STD = 100.0  # unscaled_inputs: an input's standard deviation above this after preprocessing ...
UNSCALED_MAX = 1e3  # ... or its largest |x| above this
DEAD_SHARE = 0.5  # dead_units: at least this share of a ReLU layer's units dead in the last epoch
SATURATED_SHARE = 0.5  # saturated_units: at least this share of a sigmoid/tanh layer's units saturated
TOO_LOW_GAIN = 0.01  # learning_rate_too_low: the train loss fell by less than this share over the run ...
TOO_LOW_RATIO = 1e-4  # ... while no layer's weights moved by more than this share of their norm in an epoch
TOO_HIGH_BOUNCE = 2.0  # learning_rate_too_high: the last epoch's train loss this many times the run's lowest ...
TOO_HIGH_RATIO = 0.5  # ... or the median (epochs 2 on) of an epoch's largest update/weight ratio above this
# (small networks under Adam move 0.1 to 0.3 of their weights' norm an epoch and train well), or the loss ended
# above the first epoch's
EXPLODING = 1e3  # exploding_gradients: a layer's gradient norm this many times its first epoch's ...
EXPLODING_NORM = 1e3  # ... or above this (healthy runs of the shipped configs stay below 5: the loss is a mean)
VANISHING = 1e-4  # vanishing_gradients: the first layer's gradient norm below this times the last layer's
OVERFIT_RISE = 0.1  # overfitting: the kept epoch's val_loss this share above the lowest, while train_loss fell
OVERFIT_AFTER = 3  # ... at least this many epochs after the lowest val_loss
OVERFIT_OF_GAIN = 0.05  # ... and the rise above this share of the fall from the first val_loss to the lowest
UNDERFIT_ACCURACY = 0.02  # underfitting: train accuracy within this of the most frequent class's share ...
UNDERFIT_R2 = 0.02  # ... or a regression's train R² below this
MIN_EPOCHS = 3  # rules about trends need this many epochs


@dataclass
class Diagnosis:
    """A finding: `code` (e.g. `dead_units`), one line for people, and the numbers behind it."""

    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "evidence": self.evidence}


CODES = ("unscaled_inputs", "constant_feature", "dead_units", "saturated_units", "learning_rate_too_low",
         "learning_rate_too_high", "exploding_gradients", "vanishing_gradients", "overfitting", "underfitting")


def diagnose(model: Model) -> list[Diagnosis]:
    """Every rule's findings on `model`, in the order of `CODES`. The rules run in `RULES`' order, each told the
    codes found before it: a finding that explains another (dead units, underfitting) silences or redirects it."""
    found: list[Diagnosis] = []
    for rule in RULES:
        found.extend(rule(model, frozenset(d.code for d in found)))
    return sorted(found, key=lambda d: CODES.index(d.code))


@dataclass
class Examination:
    """What `nnctl doctor` found: the diagnoses, and whether the model recorded diagnostics (else only the rules
    that read its history could run)."""

    diagnoses: list[Diagnosis]
    recorded: bool


def examine_model(path: str | Path) -> Examination:
    """The diagnoses of the model file at `path`, from what its run recorded."""
    model = load_model(path)
    return Examination(diagnose(model), model.diagnostics is not None)


def examine_config(config: Config, callback: Callback | None = None) -> Examination:
    """Train `config` (saving nothing, with diagnostics recorded whatever the config says) and diagnose the run; a
    run that diverges is itself the diagnosis `learning_rate_too_high`."""
    from nnctl.training.run import train

    # diagnostics on; no checkpoints either: doctor writes nothing
    training = config.training.model_copy(update={"diagnostics": True, "checkpoint": None, "checkpoint_every": None})
    recorded = config.model_copy(update={"training": training})
    try:
        result = train(recorded, save=False, callback=callback)
    except TrainingError as exc:
        if not str(exc).startswith("training diverged"):
            raise
        return Examination([diverged(str(exc).removeprefix("training diverged: "))], True)
    return Examination(diagnose(result.model), True)


def diverged(message: str) -> Diagnosis:
    """A run that stopped because its loss or weights blew up (`TrainingError`'s message, which names the rate)."""
    return Diagnosis("learning_rate_too_high", f"training diverged: {message}", {"error": message})


def _g(value: float) -> str:
    return f"{value:.3g}"


def _epochs(model: Model) -> list[EpochRecord]:
    return model.diagnostics.epochs if model.diagnostics is not None else []


def _rate(model: Model) -> float:
    """The configured learning rate, else (the optimizer's default) the first epoch's."""
    rate = model.setting("optimizer", "learning_rate")
    if not isinstance(rate, int | float) and model.history:
        rate = model.history[0].get("learning_rate")
    return float(rate) if isinstance(rate, int | float) else math.nan


def unscaled_inputs(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    checks = model.diagnostics.data if model.diagnostics is not None else None
    if checks is None:
        return []
    wide = {name: {"std": std, "max_abs": top} for name, std, top in zip(checks.inputs, checks.std, checks.max_abs,
                                                                         strict=True)
            if std > UNSCALED_STD or top > UNSCALED_MAX}
    if not wide:
        return []
    worst = max(wide, key=lambda n: wide[n]["max_abs"])
    scale = model.setting("data", "scale")
    return [Diagnosis("unscaled_inputs", f"{len(wide)} input(s) reach the network unscaled ({worst}: std "
                      f"{_g(wide[worst]['std'])}, max |x| {_g(wide[worst]['max_abs'])}); set data.scale: standard "
                      f"(now {scale})", {"inputs": wide, "scale": scale})]


def constant_feature(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    """A feature with one value on every training row; a numeric one that is always 0 is left alone (blank pixels,
    a count that never happened: how sparse data looks, harmless to the network)."""
    checks = model.diagnostics.data if model.diagnostics is not None else None
    if checks is None:
        return []
    constant = {name: (None if math.isnan(v) else v) for name, v in checks.constant.items() if v != 0}
    if not constant:
        return []
    shown = ", ".join(f"{n} = {v:g}" if v is not None else f"{n} (one category)" for n, v in constant.items())
    return [Diagnosis("constant_feature", f"{len(constant)} feature(s) hold one value on every training row "
                      f"({shown}): the network can learn nothing from them; drop them from data.features",
                      {"features": constant})]


def _activity(model: Model, code: str, bar: float, what: str, fix: str) -> list[Diagnosis]:
    epochs = _epochs(model)
    if not epochs:
        return []
    last = epochs[-1]
    shares = last.dead if code == "dead_units" else last.saturated
    found = []
    for i, share in enumerate(shares):
        if share is not None and share >= bar:
            units = model.network.sizes[i + 1]
            act = model.network.activation_names[i]
            found.append(Diagnosis(code, f"model.layers[{i}] ({units} {act} units): {share:.0%} of its units "
                                   f"{what} in epoch {last.epoch}; {fix.format(i=i, rate=_rate(model))}",
                                   {"layer": i, "activation": act, "share": share, "epoch": last.epoch}))
    return found


def dead_units(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    return _activity(model, "dead_units", DEAD_SHARE, "were never active (output > 0)",
                     "lower optimizer.learning_rate (now {rate:g}) or set model.layers[{i}].activation: leaky_relu")


def saturated_units(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    return _activity(model, "saturated_units", SATURATED_SHARE, "stayed saturated (no gradient)",
                     "scale the inputs (data.scale: standard), lower optimizer.learning_rate (now {rate:g}) or set "
                     "model.layers[{i}].activation: relu")


def _gain(model: Model) -> float | None:
    """The share by which the train loss fell from the first epoch to the last (None: too few epochs)."""
    history = model.history
    if len(history) < MIN_EPOCHS:
        return None
    first, last = float(history[0]["train_loss"]), float(history[-1]["train_loss"])
    return (first - last) / abs(first) if first else 0.0


def learning_rate_too_low(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    gain, epochs = _gain(model), _epochs(model)
    if gain is None or not epochs or gain >= TOO_LOW_GAIN:
        return []
    largest = max(max(e.update_ratio) for e in epochs)
    if largest >= TOO_LOW_RATIO:
        return []
    rate = _rate(model)
    return [Diagnosis("learning_rate_too_low", f"the train loss fell by {gain:.2%} over {len(model.history)} epochs "
                      f"and no layer's weights moved by more than {largest:.2g} of their norm in an epoch; raise "
                      f"optimizer.learning_rate (now {rate:g}), e.g. to 0.001 for adam",
                      {"loss_gain": gain, "largest_update_ratio": largest, "learning_rate": rate})]


def learning_rate_too_high(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    gain, epochs = _gain(model), _epochs(model)
    if gain is None:
        return []
    rate = _rate(model)
    typical = median(max(e.update_ratio) for e in epochs[1:]) if len(epochs) > 1 else 0.0
    losses = [float(row["train_loss"]) for row in model.history]
    lowest = min(losses)
    if gain < 0:
        why = f"the train loss rose by {-gain:.1%} from the first epoch to the last"
    elif lowest > 0 and losses[-1] > TOO_HIGH_BOUNCE * lowest:
        why = (f"the train loss bounced back up to {_g(losses[-1])} in the last epoch, {losses[-1] / lowest:.1f} "
               f"times its lowest ({_g(lowest)})")
    elif typical > TOO_HIGH_RATIO:
        why = f"an epoch typically moves a layer's weights by {typical:.2g} of their norm (more than {TOO_HIGH_RATIO})"
    else:
        return []
    return [Diagnosis("learning_rate_too_high", f"{why}; lower optimizer.learning_rate (now {rate:g}), e.g. tenfold",
                      {"loss_gain": gain, "lowest_train_loss": lowest, "last_train_loss": losses[-1],
                       "median_update_ratio": typical, "learning_rate": rate})]


def exploding_gradients(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    epochs = _epochs(model)
    if not epochs:
        return []
    first = epochs[0].grad_norm
    for e in epochs:
        for i, (norm, start) in enumerate(zip(e.grad_norm, first, strict=True)):
            evidence = {"layer": i, "first": start, "grad_norm": norm, "epoch": e.epoch}
            if not math.isfinite(norm) or (start > 0 and norm > EXPLODING * start):
                return [_exploding(model, f"model.layers[{i}]'s gradient norm grew from {_g(start)} in epoch "
                                   f"{epochs[0].epoch} to {_g(norm)} in epoch {e.epoch}", evidence)]
            if norm > EXPLODING_NORM:
                return [_exploding(model, f"model.layers[{i}]'s gradient norm is {_g(norm)} in epoch {e.epoch} "
                                   f"(healthy runs stay below {EXPLODING_NORM:g})", evidence)]
    return []


def _exploding(model: Model, why: str, evidence: dict[str, Any]) -> Diagnosis:
    return Diagnosis("exploding_gradients", f"{why}; set training.clip_norm (e.g. 1.0), lower "
                     f"optimizer.learning_rate (now {_rate(model):g}) or scale the inputs and a regression's "
                     "target (data.scale: standard, data.target_scale: standard)",
                     evidence)


def vanishing_gradients(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    """Silent when a layer is mostly dead or saturated: that stops the gradient, and its own finding names the fix."""
    epochs = [e for e in _epochs(model) if len(e.grad_norm) > 1 and e.grad_norm[-1] > 0]
    if not epochs or {"dead_units", "saturated_units"} & seen:
        return []
    ratio = median(e.grad_norm[0] / e.grad_norm[-1] for e in epochs)
    if ratio >= VANISHING:
        return []
    acts = model.network.activation_names[:-1]
    return [Diagnosis("vanishing_gradients", f"the first layer's gradient norm is typically {_g(ratio)} times the "
                      f"last layer's over {len(model.network.W)} layers ({', '.join(acts)}): the first layers "
                      "barely learn; use fewer layers or relu activations in model.layers",
                      {"first_to_last": ratio, "layers": len(model.network.W)})]


def overfitting(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    """Judged at the epoch whose weights the model holds (early stopping may have restored an earlier one). Silent
    when the model underfits: one no better than a constant has not learnt its training rows too well."""
    history = model.history
    if len(history) < MIN_EPOCHS or "val_loss" not in history[0] or "underfitting" in seen:
        return []
    losses = [float(row["val_loss"]) for row in history]
    best = min(range(len(losses)), key=losses.__getitem__)
    kept = (model.provenance.restored_best_epoch or len(history)) - 1
    lowest, now = losses[best], losses[kept]
    rise = (now - lowest) / abs(lowest) if lowest else 0.0
    train_fell = float(history[kept]["train_loss"]) < float(history[best]["train_loss"])
    # a rise that matters next to what training achieved: not 0.036 -> 0.043 on a run that began at 1.0
    gained = float(losses[0]) - lowest
    if (kept - best < OVERFIT_AFTER or rise <= OVERFIT_RISE or not train_fell
            or now - lowest <= OVERFIT_OF_GAIN * gained):
        return []
    return [Diagnosis("overfitting", f"val_loss was lowest in epoch {best + 1} ({_g(lowest)}) and is {rise:.0%} "
                      f"higher in epoch {kept + 1} ({_g(now)}) while the train loss kept falling; set "
                      "training.early_stopping (monitor: val_loss), add dropout to model.layers or use fewer "
                      f"epochs (training.epochs: {best + 1})",
                      {"best_epoch": best + 1, "best_val_loss": lowest, "epoch": kept + 1, "val_loss": now,
                       "rise": rise})]


def underfitting(model: Model, seen: frozenset[str]) -> list[Diagnosis]:
    if len(model.history) < MIN_EPOCHS:
        return []
    last = model.history[-1]
    checks = model.diagnostics.data if model.diagnostics is not None else None
    fix = "train longer (training.epochs), use more units in model.layers or raise optimizer.learning_rate"
    if {"dead_units", "saturated_units"} & seen:  # the units that stopped learning are the cause: say so
        fix = "the dead or saturated units found above are why; fix those first"
    if "train_accuracy" in last and checks is not None and checks.majority is not None:
        accuracy, majority = float(last["train_accuracy"]), checks.majority
        if accuracy <= majority + UNDERFIT_ACCURACY:
            return [Diagnosis("underfitting", f"the train accuracy {accuracy:.3f} is no better than always "
                              f"predicting the most frequent class ({majority:.3f}); {fix}",
                              {"train_accuracy": accuracy, "majority_share": majority})]
    if "train_r2" in last:
        r2 = float(last["train_r2"])
        if r2 < UNDERFIT_R2:
            return [Diagnosis("underfitting", f"the train R² is {r2:.3f}: no better than predicting the mean; {fix}",
                              {"train_r2": r2})]
    return []


# in the order they depend on each other: vanishing and underfitting read dead and saturated units, overfitting
# reads underfitting
RULES: tuple[Callable[[Model, frozenset[str]], list[Diagnosis]], ...] = (
    unscaled_inputs, constant_feature, dead_units, saturated_units, learning_rate_too_low, learning_rate_too_high,
    exploding_gradients, vanishing_gradients, underfitting, overfitting)
