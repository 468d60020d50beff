"""Which module defines each command, and the line `nnctl --help` lists it with: the CLI imports a command's
module only when that command runs, so `nnctl --help` and `nnctl predict` do not pay for every command's
imports and Typer's conversion of every signature.

A command module registers its commands with `@app.command()` when imported; a new one is added here, in the
order `--help` lists it (tests/cli/test_catalog.py fails until it is).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A command's module, and the first paragraph of its docstring (what the command list shows)."""

    module: str
    summary: str


ROOT_HELP = "Train neural networks from YAML config files, and predict with them."
VERSION_HELP = "Print the version and exit."
DEBUG_HELP = "Show tracebacks behind errors (or set NNCTL_DEBUG=1)."

COMMANDS: dict[str, Entry] = {
    "train": Entry("nnctl.cli.commands", "Train the network CONFIG describes and save the model (.npz)."),
    "predict": Entry("nnctl.cli.commands", "Predict the target for each input row; streams CSV (or JSON lines) to "
                     "stdout as rows arrive."),
    "cv": Entry("nnctl.cli.commands", "Cross-validate CONFIG: train it from scratch on each fold and score it on "
                "the held-out rows."),
    "evaluate": Entry("nnctl.cli.commands", "Loss and metrics of a model on a labelled CSV."),
    "check": Entry("nnctl.cli.commands", "Validate a config and show the network it builds and how it would train, "
                   "without training."),
    "inspect": Entry("nnctl.cli.commands", "Show what a model file holds: architecture, preprocessing, classes, "
                     "training history."),
    "init": Entry("nnctl.cli.commands", "Write a starter config for a CSV: task, features, layers, loss and "
                  "optimizer chosen from the data."),
    "schema": Entry("nnctl.cli.commands", "Print the config's JSON Schema, for editors that validate and complete "
                    "YAML."),
    "doctor": Entry("nnctl.cli.doctor", "Diagnose a training run, and say what to fix."),
    "explain": Entry("nnctl.cli.explain", "One row's journey through the network: its inputs, each layer, the "
                     "output and backpropagation."),
    "sweep": Entry("nnctl.cli.extras", "Train a config over a grid or random search space, trials in parallel on "
                   "Dask; keep the best model."),
    "export": Entry("nnctl.cli.extras", "Export a model and its preprocessing as an ONNX graph, to run in any ONNX "
                    "runtime."),
    "plot": Entry("nnctl.cli.extras", "Draw a model's training history as a PNG."),
    "importance": Entry("nnctl.cli.importance", "Rank a model's raw columns by permutation importance on a "
                        "labelled CSV."),
    "lr-find": Entry("nnctl.cli.lr_find", "Find a learning rate with the range test, and suggest one."),
    "serve": Entry("nnctl.cli.serve", "Serve models over HTTP: POST /predict (JSON records or CSV) answers as "
                   "`nnctl predict` would."),
}


def load_all() -> None:
    """Import every command module (registering all commands), e.g. for tests that walk every command."""
    import importlib

    for entry in COMMANDS.values():
        importlib.import_module(entry.module)
