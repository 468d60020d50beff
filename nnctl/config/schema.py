"""The config's schema: pydantic models for every section, strict types, unknown keys and names answered with
the closest valid one, and the JSON Schema editors use.

Validation happens once, at loading (`nnctl.config.load`); everything downstream trusts a `Config`. Names a
config gives (activations, losses, optimizers, ...) are checked against the engine's registries.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nnctl.config.sections import (
    MONITORS,
    ActivationName,
    DateOrder,
    InitName,
    LossName,
    MissingPolicy,
    MonitorName,
    OptimizerName,
    ScaleName,
    ScheduleName,
    Section,
    TargetScale,
    key_line,
)
from nnctl.config.tracking import MlflowConfig, TrackingConfig
from nnctl.config.training import EarlyStoppingConfig, TrainingConfig
from nnctl.dialect import delimiter_value, encoding_value
from nnctl.engine.losses import LOSSES
from nnctl.engine.optimizers import OPTIMIZERS
from nnctl.engine.schedules import SCHEDULES
from nnctl.registry import unknown_name_message

__all__ = ["MONITORS", "ActivationName", "Config", "DataConfig", "EarlyStoppingConfig", "InitName", "LayerConfig",
           "LossConfig", "MlflowConfig", "ModelConfig", "MonitorName", "OptimizerConfig", "ScheduleConfig",
           "TrackingConfig", "TrainingConfig",
           "json_schema"]


class DataConfig(Section):
    train: str = Field(description="CSV file with the training rows (relative to the config's folder)")
    delimiter: str | None = Field(None, description="the character between fields: ',', ';', tab (written tab or "
                                  "\"\\t\"), '|' or another; default: detected among , ; tab | from the header and "
                                  "the first rows")
    decimal: Literal[".", ","] | None = Field(None, description="the decimal mark of numbers, '.' or ','; default: "
                                              "detected from the first rows (',' when they write 5,1)")
    encoding: str | None = Field(None, description="the CSV's text encoding, a Python codec name (cp1252, latin-1, "
                                 "utf-16, ...); default: UTF-8, with or without a byte-order mark")
    target: str = Field(description="the column to predict")
    features: list[str] | None = Field(None, min_length=1, description="feature columns (default: all others)")
    validation_split: float = Field(0.2, ge=0, lt=1, description="fraction of rows held out for validation")
    validation: str | None = Field(None, description="a separate validation CSV (overrides validation_split)")
    scale: ScaleName = Field("standard", description="numeric feature scaling, fitted on training rows")
    missing: MissingPolicy = Field("impute", description="what to do with missing feature values")
    missing_indicators: bool = Field(False, description="with missing: impute, one more 0/1 input per numeric or "
                                     "date column that had gaps in training, 1 where the value was missing")
    dates: list[str] | None = Field(None, description="date or datetime columns, turned into the year and the "
                                    "month, weekday, day of year and hour as sine/cosine pairs (default: every text "
                                    "column whose values are all dates; [] for none)")
    date_order: DateOrder = Field("auto", description="how dates are written: iso (2024-03-31), dmy (31/03/2024), "
                                  "mdy (03/31/2024), or auto (detected; a day-or-month doubt is an error)")
    target_scale: TargetScale = Field("none", description="regression: standardise the target for the loss")
    cache: bool = Field(True, description="keep the parsed, preprocessed data of CSVs over 1 MB in the user's "
                        "cache folder, so the next run on the same file starts at once")
    class_weight: Literal["balanced"] | dict[str | int, float] | None = Field(
        None, description="classification: 'balanced' or a mapping of label to loss weight")
    weight: str | None = Field(None, description="a column of per-row loss weights (numbers >= 0), times any "
                               "class_weight, scaled to average 1 over the training rows; not a feature")
    group: str | None = Field(None, description="a column whose rows stay together: validation_split and cv "
                              "hold out whole groups (default: not a feature)")
    streaming: bool = Field(False, description="train from CSVs larger than memory: one pass fits the "
                            "preprocessing chunk by chunk, a second writes the preprocessed rows to a temporary "
                            "file in the cache folder, and every epoch reads that file in shuffled chunks")
    chunk_rows: int = Field(50_000, ge=1, description="streaming: rows per CSV chunk and per temporary-file chunk")
    shuffle_buffer: int = Field(200_000, ge=1, description="streaming: rows shuffled together; >= chunk_rows")

    @model_validator(mode="after")
    def _indicators(self) -> DataConfig:
        if self.missing_indicators and self.missing != "impute":
            raise PydanticCustomError(
                "missing_indicators", "needs data.missing: impute (with {missing} no row keeps a gap to indicate); "
                "remove it or set missing: impute", {"key": "missing_indicators", "missing": self.missing})
        return self

    @model_validator(mode="after")
    def _streaming_sizes(self) -> DataConfig:
        if self.streaming and self.shuffle_buffer < self.chunk_rows:
            raise PydanticCustomError(
                "shuffle_buffer", "must be at least data.chunk_rows ({chunk_rows}), got {value}; the buffer holds "
                "whole chunks", {"key": "shuffle_buffer", "chunk_rows": self.chunk_rows, "value": self.shuffle_buffer})
        return self

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        """`tab` and `\\t` are a tab; one character otherwise."""
        return _checked(delimiter_value, value)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        return _checked(encoding_value, value)

    @field_validator("class_weight", mode="before")
    @classmethod
    def _class_weight(cls, value: Any) -> Any:
        """One clear message instead of pydantic's error per union branch."""
        if value is None or value == "balanced":
            return value
        if not isinstance(value, dict):
            raise PydanticCustomError("class_weight", "expected 'balanced' or a mapping of class label to weight, "
                                      "got {value}", {"value": repr(value)})
        for label, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise PydanticCustomError("class_weight", "the weight of class '{label}' must be a number >= 0, "
                                          "got {weight}", {"label": label, "weight": repr(weight)})
        return value


def _checked(check: Callable[[str], str], value: str | None) -> str | None:
    """`check(value)`, its ValueError as the message pydantic reports for the key."""
    try:
        return None if value is None else check(value)
    except ValueError as exc:
        raise PydanticCustomError("invalid_value", "{message}", {"message": str(exc)}) from None


class LayerConfig(Section):
    units: int | None = Field(None, ge=1, description="width; may be omitted on the output layer")
    activation: ActivationName | None = Field(None, description="hidden default relu; output default from loss")
    init: InitName | None = Field(None, description="weight initialisation (default: model.init)")
    dropout: float = Field(0.0, ge=0, lt=1, description="fraction of this layer's outputs zeroed in training")


class ModelConfig(Section):
    layers: list[LayerConfig] = Field(min_length=1, description="hidden layers, then the output layer")
    init: InitName = Field("auto", description="auto = he_normal for relu-like layers, else glorot_uniform")

    @model_validator(mode="after")
    def _hidden_layers_have_units(self) -> ModelConfig:
        for i, layer in enumerate(self.layers[:-1]):
            if layer.units is None:
                raise PydanticCustomError(
                    "hidden_units", "hidden layer {i} needs 'units' (only the output layer may omit it)", {"i": i}
                )
        if self.layers[-1].dropout:
            raise PydanticCustomError("output_dropout",
                                      "the output layer cannot have dropout; put it on a hidden layer")
        return self


class _NamedSection(Section):
    """A section that picks an implementation by `name` and passes the other keys to its constructor.

    The implementation's keyword arguments (and their defaults) define which keys are valid for it."""

    name: str

    def _implementation(self) -> Callable[..., Any]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _fill_defaults(self) -> Any:
        """Reject keys the chosen implementation does not take; fill the rest with its defaults."""
        signature = inspect.signature(self._implementation())
        accepted = [p for p in signature.parameters if p not in ("self", "params")]
        for key in self.model_fields_set - {"name"}:
            if key not in accepted and getattr(self, key) is not None:
                raise PydanticCustomError(
                    "unknown_key",
                    "not used by {kind} '{name}' ({valid})",
                    {"key": key, "kind": self._kind, "name": self.name,
                     "valid": f"its keys: {', '.join(accepted)}" if accepted else "it takes no other keys"},
                )
        for key in accepted:
            if getattr(self, key) is None:
                setattr(self, key, signature.parameters[key].default)
        try:
            self.build()
        except ValueError as exc:
            raise PydanticCustomError("invalid_combination", "{message}", {"message": str(exc)}) from None
        return self

    _kind: ClassVar[str] = ""

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments for the implementation."""
        return {k: v for k, v in self.model_dump(exclude={"name"}).items() if v is not None}

    def build(self, *args: Any) -> Any:
        """An instance of the implementation (for optimizers, pass the parameter buffer)."""
        return self._implementation()(*(args or self._probe_args()), **self.hyperparameters())

    def _probe_args(self) -> tuple[Any, ...]:
        return ()


class OptimizerConfig(_NamedSection):
    _kind: ClassVar[str] = "optimizer"
    name: OptimizerName = Field("adam", description="the update rule; it decides which other keys apply")
    learning_rate: float | None = Field(None, gt=0, description="step size (default: the optimizer's)")
    momentum: float | None = Field(None, ge=0, lt=1, description="sgd, rmsprop: momentum")
    nesterov: bool | None = Field(None, description="sgd: Nesterov momentum")
    beta1: float | None = Field(None, ge=0, lt=1, description="adam, adamw: decay of the first moment")
    beta2: float | None = Field(None, ge=0, lt=1, description="adam, adamw: decay of the second moment")
    rho: float | None = Field(None, ge=0, lt=1, description="rmsprop: decay of the squared-gradient average")
    eps: float | None = Field(None, gt=0, description="adam, adamw, rmsprop: added to the denominator")
    weight_decay: float | None = Field(None, ge=0, description="L2 penalty on the weights (decoupled in adamw)")

    def _implementation(self) -> Callable[..., Any]:
        return OPTIMIZERS[self.name]

    def _probe_args(self) -> tuple[Any, ...]:
        import numpy as np

        return (np.zeros(1),)


class ScheduleConfig(_NamedSection):
    _kind: ClassVar[str] = "schedule"
    name: ScheduleName = Field("constant", description="how the learning rate changes per epoch; it decides "
                               "which other keys apply")
    step_size: int | None = Field(None, ge=1, description="step: epochs between decays")
    gamma: float | None = Field(None, gt=0, description="step, exponential: decay factor")
    warmup_epochs: int | None = Field(None, ge=0, description="cosine: epochs of linear warmup")
    min_learning_rate: float | None = Field(None, ge=0, description="cosine, plateau: lower bound")
    monitor: MonitorName | None = Field(None, description="plateau: the metric to watch")
    factor: float | None = Field(None, gt=0, lt=1, description="plateau: multiply the rate by this")
    patience: int | None = Field(None, ge=0, description="plateau: epochs without improvement before a cut")
    min_delta: float | None = Field(None, ge=0, description="plateau: smallest change that counts")
    cooldown: int | None = Field(None, ge=0, description="plateau: epochs to wait after a cut")

    def _implementation(self) -> Callable[..., Any]:
        return SCHEDULES[self.name]


class LossConfig(_NamedSection):
    # `loss: huber` is `loss: {name: huber}`; the mapping form also sets the loss's parameters
    _kind: ClassVar[str] = "loss"
    name: LossName = Field(description="the loss; it fixes the task and the output layer, and which other keys "
                           "apply")
    delta: float | None = Field(None, gt=0, description="huber: the residual size where the loss turns from "
                                "squared to absolute (default 1.0), in the units the loss sees")

    def _implementation(self) -> Callable[..., Any]:
        return type(LOSSES[self.name])


def _loss_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of `loss`: a loss's name, or the mapping with its parameters."""
    schema["anyOf"].insert(0, {"enum": sorted(LOSSES), "type": "string"})



class Config(Section):
    """A whole training config. `base_dir` is the folder relative paths in it are resolved against."""

    seed: int = Field(0, ge=0, description="every random choice (init, split, shuffling, dropout) follows from it")
    data: DataConfig = Field(description="the CSV to train on, its target and features, and their preprocessing")
    model: ModelConfig = Field(description="the network's layers")
    loss: LossConfig | None = Field(None, json_schema_extra=_loss_schema,  # type: ignore[arg-type]
                                    description="a loss's name, or {name: huber, delta: 0.5}; default: "
                                    "cross_entropy for text targets and for a softmax output, "
                                    "binary_cross_entropy for a sigmoid output on 0/1 or text labels, "
                                    "else mse (see docs/config.md)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="the gradient descent rule")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="the learning rate per epoch")
    training: TrainingConfig = Field(default_factory=TrainingConfig,
                                     description="epochs, batches, early stopping and checkpoints")
    output: str | None = Field(None, description="where `train` saves the model unless -o is given")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig,
                                     description="a per-epoch metrics CSV, and MLflow (default: neither)")

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_by_name(cls, value: Any) -> Any:
        """`loss: NAME` is `loss: {name: NAME}`; an unknown name is reported at `loss` itself."""
        if isinstance(value, str):
            if value not in LOSSES:
                raise PydanticCustomError("unknown_name", unknown_name_message("loss", value, LOSSES))
            return {"name": value}
        if value is not None and not isinstance(value, Mapping):
            raise PydanticCustomError("loss_form", "expected a loss's name, or a mapping of its name and "
                                      "parameters, got {kind} {value}",
                                      {"kind": type(value).__name__, "value": repr(value)})
        return value

    @model_validator(mode="after")
    def _counts_stay_counts(self) -> Config:
        if self.loss is not None and self.loss.name == "poisson" and self.data.target_scale == "standard":
            raise PydanticCustomError(
                "target_scale", "loss poisson predicts counts on their own scale, and standardising them would make "
                "them negative; use data.target_scale: none (the default)", {"key": "data.target_scale"})
        return self

    _source: str = PrivateAttr("<config>")
    _base_dir: Path = PrivateAttr(Path("."))
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)  # key path -> line in the file

    @property
    def source(self) -> str:
        return self._source

    def at(self, *path: str | int) -> str:
        """`file:line` of a key (of its nearest written parent when the key itself is not written), for messages
        about the key's value; the file alone when the config has no lines (built in Python)."""
        line = key_line(self._lines, path)
        return f"{self._source}:{line}" if line else self._source

    def resolve(self, path: str) -> Path:
        """A path written in the config, relative to the config file's folder."""
        return Path(os.path.normpath(self._base_dir / Path(path).expanduser()))


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config file, e.g. for the YAML language server in editors."""
    schema = Config.model_json_schema()
    # Config's docstring is about the Python object; a config file's author needs the file's purpose.
    schema.pop("description")
    for section in [schema, *schema["$defs"].values()]:
        for field in section["properties"].values():
            # None means "not set" (the optimizer's own default applies, the feature is off, ...); an editor
            # would offer `null` as the value to insert.
            if "default" in field and field["default"] is None:
                del field["default"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "nnctl config",
            "description": "Train a NumPy neural network on a CSV file: data, model, loss, optimizer, schedule "
                           "and training settings (see docs/config.md).",
            **{key: value for key, value in schema.items() if key != "title"}}
