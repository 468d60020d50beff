"""What several commands take alike: the MODEL and labelled DATA arguments, --json, the input CSV's dialect
flags, --strict and --unweighted, and the MODEL-first check. Declared once, so every command's --help says the
same thing of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nnctl.errors import ModelFileError

if TYPE_CHECKING:
    from nnctl.model.model import Model

ModelFile = Annotated[Path, typer.Argument(help="Model file (.npz).", show_default=False)]
LabelledCsv = Annotated[Path, typer.Argument(help="Labelled CSV (with the target column).", show_default=False)]
JsonTable = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on a category the model never saw in training "
                                      "(otherwise it is encoded as all zeros, with a warning per column).")]
Unweighted = Annotated[bool, typer.Option("--unweighted", help="Weigh every row 1, even when the CSV has the "
                                          "model's data.weight column.")]
# How the input CSV is written (`nnctl.dialect`): every command that reads one takes the same three flags.
Delimiter = Annotated[str | None, typer.Option("--delimiter", metavar="CHAR", show_default=False, help="The "
                                               "character between fields: ',', ';', tab, '|' or another "
                                               "(default: detected).")]
Decimal = Annotated[str | None, typer.Option("--decimal", metavar="MARK", show_default=False, help="The decimal "
                                             "mark of numbers: '.' or ',' (default: detected).")]
Encoding = Annotated[str | None, typer.Option("--encoding", metavar="CODEC", show_default=False, help="The text "
                                              "encoding, e.g. cp1252 or latin-1 (default: UTF-8, with or without "
                                              "a byte-order mark).")]


def model_first(load: Callable[[Path], Model], model: Path, data: str, command: str) -> Model:
    """The model file; when MODEL is not one but the DATA argument is a .npz, the arguments were swapped: say so."""
    try:
        return load(model)
    except ModelFileError as exc:
        if data != "-" and data.endswith(".npz") and not model.name.endswith(".npz"):
            raise ModelFileError(f"{exc}; MODEL comes first: nnctl {command} {data} {model}") from None
        raise
