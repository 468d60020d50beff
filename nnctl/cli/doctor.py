"""`nnctl doctor MODEL|CONFIG`: what went wrong in a run, each finding with its evidence and the fix.

A file that starts like a zip archive (an .npz), or is named *.npz, is a model file; anything else is read as a
config, which doctor trains (saving nothing) to diagnose the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from nnctl.cli.app import app, errors
from nnctl.cli.render import stderr, stdout


def is_model_file(path: Path) -> bool:
    """A model file by its name (.npz) or its first bytes (a zip archive's `PK`); otherwise a config."""
    if path.suffix.lower() == ".npz":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"PK"
    except OSError:
        return False


@app.command()
def doctor(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="MODEL, a model file (.npz) to diagnose from "
                                           "what its run recorded, or CONFIG, a YAML config to train (nothing is "
                                           "saved) and diagnose.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="CONFIG: override a config "
                                                   "key, e.g. optimizer.learning_rate=1e-7.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print {\"diagnoses\": [{code, message, evidence}]} on "
                                        "stdout.")] = False,
) -> None:
    """Diagnose a training run, and say what to fix.

    Unscaled inputs, constant features, dead or saturated units, a learning rate too low or too high, exploding
    or vanishing gradients, overfitting, underfitting.

    Each finding is its code, what is wrong with the numbers behind it, and the config key to change. Exit 1
    when anything is found (so CI can gate on it), 0 when nothing is."""
    from nnctl.errors import InputError

    with errors():
        if is_model_file(source):
            if set_:
                raise InputError(f"--set applies to a CONFIG; {source} is a model file")
            from nnctl.training.doctor import examine_model

            found = examine_model(source)
        else:
            from nnctl.cli.progress import Reporter
            from nnctl.config.load import load_config
            from nnctl.training.doctor import examine_config

            reporter = Reporter(True, "text")  # quiet: warnings only
            try:
                found = examine_config(load_config(source, list(set_ or [])), reporter)
            finally:
                reporter.close()
        if not found.recorded:
            stderr.print(f"note: {escape(str(source))} holds no recorded diagnostics (trained with "
                         "training.diagnostics: false, or by an older nnctl): only the rules that read the history "
                         "ran")
        if json_:
            typer.echo(json.dumps({"diagnoses": [d.to_json() for d in found.diagnoses]}))
        elif not found.diagnoses:
            stdout.print("no problems found")
        else:
            for diagnosis in found.diagnoses:
                stdout.print(f"[bold]{diagnosis.code}[/]: {escape(diagnosis.message)}")
    if found.diagnoses:
        raise typer.Exit(1)
