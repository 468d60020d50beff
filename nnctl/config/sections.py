"""The schema's building blocks: names checked against the engine's registries (the error names the closest
one), and `Section`, the strict mapping every config section is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from nnctl.engine.activations import ACTIVATIONS
from nnctl.engine.initializers import INITIALIZERS
from nnctl.engine.losses import LOSSES
from nnctl.engine.metrics import CLASSIFICATION, REGRESSION, RUNNING_REGRESSION
from nnctl.engine.optimizers import OPTIMIZERS
from nnctl.engine.schedules import SCHEDULES
from nnctl.registry import not_found, unknown_name_message


def _choice(kind: str, choices: Iterable[str]) -> Any:
    """Validator for a str that must be one of `choices`; the error names the closest one."""
    options = sorted(choices)

    def check(value: str) -> str:
        if value not in options:
            raise PydanticCustomError("unknown_name", unknown_name_message(kind, value, options))
        return value

    return AfterValidator(check)


def _enum(choices: Iterable[str]) -> Any:
    options: list[JsonValue] = [str(c) for c in sorted(choices)]
    return Field(json_schema_extra={"enum": options})


ActivationName = Annotated[str, _choice("activation", ACTIVATIONS), _enum(ACTIVATIONS)]
InitName = Annotated[str, _choice("init", [*INITIALIZERS, "auto"]), _enum([*INITIALIZERS, "auto"])]
LossName = Annotated[str, _choice("loss", LOSSES), _enum(LOSSES)]
OptimizerName = Annotated[str, _choice("optimizer", OPTIMIZERS), _enum(OPTIMIZERS)]
ScheduleName = Annotated[str, _choice("schedule", SCHEDULES), _enum(SCHEDULES)]
# Training metrics come from the batch outputs (loss, accuracy or MAE/RMSE/R²); validation adds precision etc.
MONITORS = [*(f"train_{m}" for m in ("loss", "accuracy", *RUNNING_REGRESSION)),
            *(f"val_{m}" for m in ("loss", *CLASSIFICATION, *REGRESSION))]
MonitorName = Annotated[str, _choice("monitor", MONITORS), _enum(MONITORS)]
_SCALES, _POLICIES, _TARGET_SCALES = ["standard", "minmax", "none"], ["impute", "drop", "error"], ["none", "standard"]
ScaleName = Annotated[str, _choice("scale", _SCALES), _enum(_SCALES)]
_DATE_ORDERS = ["auto", "iso", "dmy", "mdy"]
DateOrder = Annotated[str, _choice("date_order", _DATE_ORDERS), _enum(_DATE_ORDERS)]
MissingPolicy = Annotated[str, _choice("missing policy", _POLICIES), _enum(_POLICIES)]
TargetScale = Annotated[str, _choice("target_scale", _TARGET_SCALES), _enum(_TARGET_SCALES)]


class Section(BaseModel):
    """A config mapping: strict types, and unknown keys named with the closest valid one."""

    # `_known_keys` rejects unknown keys first (with a better message); `forbid` also puts the rule in the schema.
    model_config = ConfigDict(strict=True, validate_assignment=False, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    _unknown_key(key, cls.model_fields)
        return data


def _unknown_key(key: object, valid: Iterable[str]) -> None:
    raise PydanticCustomError("unknown_key", "{message}",
                              {"key": str(key), "message": not_found("unknown key", key, list(valid))})


def key_line(lines: Mapping[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int | None:
    """The line of `path`, or of its deepest parent the document has (a missing key: its section's line)."""
    return next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
