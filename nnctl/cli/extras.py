"""The commands that need an optional extra: sweep (Dask), export (ONNX), plot (matplotlib).

Their extras are imported only inside the commands, and a missing one is one line saying how to install it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli.app import app, debugging, errors, exit_130_on_interrupt
from nnctl.cli.params import ModelFile
from nnctl.cli.render import stderr
from nnctl.errors import InputError


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep file (YAML): a base config, the metric "
                                               "that decides the best trial, and a search space.",
                                               show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for results.csv, results.json and "
                                                "best.npz (default: the sweep file's `output`).")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", metavar="ADDRESS", help="Run the trials on an "
                                                  "existing Dask cluster, e.g. tcp://HOST:8786 (default: an "
                                                  "embedded local cluster).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes of the embedded "
                                                "cluster (default: one per core).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the results (as in results.json) on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No table or summary on stderr.")] = False,
) -> None:
    """Train a config over a grid or random search space, trials in parallel on Dask; keep the best model.

    Every trial is validated before any runs. A failing trial is recorded with its error and the others go
    on; results.csv and results.json are updated as trials finish, so Ctrl-C (exit 130) keeps the finished
    trials. Exit 1 when no trial succeeds. Needs Dask distributed (the 'sweep' extra)."""
    from nnctl.cli.sweep_view import SweepView
    from nnctl.errors import TrainingError
    from nnctl.sweep.plan import load_sweep, require_distributed, sweep_output
    from nnctl.sweep.trials import run_sweep

    with errors():
        if scheduler is not None and workers is not None:
            raise InputError("--workers sets the size of the embedded cluster; an existing cluster (--scheduler) "
                             "has its own workers")
        require_distributed()
        view = SweepView(quiet)
        definition = load_sweep(sweep_file, view.on_warning)
        folder = sweep_output(definition, output)
        try:
            with exit_130_on_interrupt(view.finish):
                result = run_sweep(definition, folder, scheduler=scheduler, workers=workers, callback=view,
                                   debug=debugging())
        finally:
            view.close()
        view.finish(str(folder), result.seconds, result.cluster)
        if json_:
            typer.echo(json.dumps(result.to_json()))
        if result.best is None:
            first = next((t for t in result.trials if t.status == "failed"), None)
            detail = f"; trial {first.number}: {first.error}" if first is not None else ""
            raise TrainingError(f"no trial succeeded ({len(result.trials)} failed){detail}")


@app.command()
def export(
    model: ModelFile,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the ONNX file (default: "
                                                "MODEL with the suffix .onnx).")] = None,
) -> None:
    """Export a model and its preprocessing as an ONNX graph, to run in any ONNX runtime.

    Inputs are the raw columns: `numeric` (float32, NaN = missing) and `categorical` (strings); outputs
    `probabilities` and `label`, or `prediction`. The file's metadata lists the columns in order and the
    classes. Without -o, models/iris.npz is exported to models/iris.onnx. The file is replaced only when
    complete, and an existing file that is not ONNX is never overwritten. Needs the onnx extra."""
    from nnctl.extras.export import save_onnx, signature
    from nnctl.model.model import load_model

    with errors():
        loaded = load_model(model)
        path = output if output is not None else model.with_suffix(".onnx")
        save_onnx(loaded, path)
        stderr.print(f"wrote {path} ({signature(loaded)})", markup=False)


@app.command()
def plot(
    model: ModelFile,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write the PNG (default: MODEL "
                                                "with .npz replaced by .curves.png, or .calibration.png).")] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", metavar="DATA", help="Instead of the "
                                                     "curves, draw the classifier's reliability diagram on this "
                                                     "labelled CSV.")] = None,
) -> None:
    """Draw a model's training history as a PNG.

    Loss per epoch, and accuracy (classification) or RMSE (regression), training and validation, with the best
    epoch marked when early stopping recorded one.

    Without -o, models/iris.npz is drawn to models/iris.curves.png. The PNG is replaced only when complete,
    and an existing file that is not a PNG is never overwritten. Needs matplotlib (the 'plot' extra)."""
    from nnctl.extras.plot import curves_figure, require_matplotlib, save_png
    from nnctl.model.model import load_model

    with errors():
        require_matplotlib("nnctl plot")
        kind = "calibration" if calibration is not None else "curves"
        path = output if output is not None else model.with_name(model.name.removesuffix(".npz") + f".{kind}.png")
        loaded = load_model(model)
        if calibration is None:
            save_png(curves_figure(loaded, model.name), path)
            stderr.print(f"wrote {path} (training curves)", markup=False)
            return
        from nnctl.extras.plot import reliability_figure
        from nnctl.inference.predict import evaluation

        if loaded.task != "classification":
            raise InputError(f"--calibration: {model} is a regression model; a reliability diagram needs class "
                             "probabilities")
        result = evaluation(loaded, calibration)
        title = (f"{model.name} on {calibration.name}: {result.scores['rows']} rows, ECE {result.scores['ece']:.4f}, "
                 f"log loss {result.scores['log_loss']:.4f}")
        save_png(reliability_figure(result, title), path)
        stderr.print(f"wrote {path} (reliability diagram)", markup=False)
