"""Command-line values converted without pydantic where Typer's own result is certain.

Typer (0.29) converts every parameter's value, defaults and unset ones included, through a pydantic
`TypeAdapter` it builds on first use; importing pydantic for that costs a one-row `nnctl predict` about as much
as importing NumPy. An unset value, a `str`, a choice among an enum's values and a `Path` need no pydantic:
they go through the same Typer functions the adapters call. Anything else (numbers, lists, a value Typer would
reject, so that its message stays word for word) goes to Typer's adapter, built then.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

_SLOW = object()  # this value needs Typer's adapter


def convert_without_pydantic(params: list[Any]) -> None:
    """Give each Typer parameter of `params` a converter that builds Typer's pydantic adapter only if needed."""
    for param in params:
        if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
            param._runtime_param = _Converter(param.type_descriptor)


class _Converter:
    """Stands for Typer's `RuntimeParam` (it is asked only `coerce`), until a value needs the real one."""

    def __init__(self, descriptor: Any) -> None:
        self.descriptor = descriptor
        self.typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.typer is None:
            if value is None:  # what Typer's RuntimeParam.coerce returns for an unset value
                return () if param.multiple or param.nargs == -1 else None
            converted = _convert(self.descriptor, value, param, ctx)
            if converted is not _SLOW:
                return converted
            from typer._coercion import build_runtime_param

            self.typer = build_runtime_param(self.descriptor)
        return self.typer.coerce(value, param=param, ctx=ctx)


def _convert(descriptor: Any, value: Any, param: Any, ctx: Any) -> Any:
    """`value` as Typer's adapter would convert it, or _SLOW when only the adapter can say."""
    from typer._param_types import coerce_cli_choice, coerce_cli_path

    info = descriptor.parameter_info
    annotation = descriptor.annotation
    if (descriptor.file_annotation is not None or info.parser is not None or param.multiple or param.nargs != 1
            or not isinstance(annotation, type)):
        return _SLOW
    if annotation is str and isinstance(value, str):
        return value  # Typer's _parse_cli_str: str(value)
    if issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:
            return _SLOW
    if issubclass(annotation, Path) and info.path_type is None and isinstance(value, str) and value:
        # the adapter makes the Path with pydantic (str -> Path(str)), then checks it with coerce_cli_path
        return coerce_cli_path(annotation(value), info, path_type=annotation, param=param, ctx=ctx)
    return _SLOW
