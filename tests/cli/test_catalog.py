"""Start-up (issue 18): `nnctl --help` lists the commands from `nnctl.cli.catalog` without importing their
modules, a command's module is imported when it runs, and a one-row `predict` imports neither pandas, pydantic,
PyYAML nor rich. Structural checks in fresh interpreters, never timings (`make startup` times them)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer._coercion import build_runtime_param
from typer.testing import CliRunner

import nnctl.cli
from nnctl.cli.app import Format, app
from nnctl.cli.catalog import COMMANDS

from conftest import ROOT, iris_config

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
HELP_NEVER_IMPORTS = ["typer", "numpy", "pandas", "pydantic", "yaml", "rich.markdown", "markdown_it", "rich.traceback",
                      "attr", "nnctl.cli.commands", "nnctl.cli.extras"]
PREDICT_NEVER_IMPORTS = ["pandas", "pydantic", "yaml", "rich", "nnctl.cli.extras", "nnctl.cli.explain"]

# Runs `nnctl ARGS...` in this interpreter, then prints its stdout and the modules it imported as JSON.
_RUN = """
import contextlib, io, json, sys
sys.argv = ["nnctl", *sys.argv[1:]]
from nnctl.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main()
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "stdout": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _run(*args: str, stdin: str | None = None) -> dict:
    import os

    result = subprocess.run([sys.executable, "-c", _RUN, *args], input=stdin, capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, **ENV}, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _imported(modules: list[str], names: list[str]) -> list[str]:
    return [name for name in names if any(m == name or m.startswith(name + ".") for m in modules)]


def test_the_catalog_names_every_command_its_module_and_its_summary_in_help_order():
    for module in pkgutil.iter_modules(nnctl.cli.__path__):  # a command module missing from the catalog too
        importlib.import_module(f"nnctl.cli.{module.name}")
    registered = {}
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        summary = inspect.cleandoc(info.help or inspect.getdoc(info.callback) or "").split("\n\n")[0].strip()
        registered[name] = (info.callback.__module__, summary)
    assert {name: (e.module, e.summary) for name, e in COMMANDS.items()} == registered
    assert list(typer.main.get_command(app).commands) == list(COMMANDS)  # (conftest imported them in order)


def test_help_lists_every_command_as_before_without_importing_one():
    lazy = _run("--help")
    eager = CliRunner().invoke(app, ["--help"], env=ENV)  # every module imported (conftest)
    assert lazy["code"] == 0 and eager.exit_code == 0
    assert lazy["stdout"] == eager.output
    assert "lr-find" in lazy["stdout"] and "Find a learning rate" in lazy["stdout"]
    assert _imported(lazy["modules"], HELP_NEVER_IMPORTS) == []


def test_a_command_imports_its_own_module_only():
    shown = _run("lr-find", "--help")
    assert shown["code"] == 0 and "Usage: nnctl lr-find" in shown["stdout"]
    assert "nnctl.cli.lr_find" in shown["modules"]
    assert _imported(shown["modules"], ["nnctl.cli.commands", "nnctl.cli.extras", "nnctl.cli.doctor"]) == []


def test_one_row_predict_imports_neither_pandas_pydantic_yaml_nor_rich(tmp_path, write_config):
    model = tmp_path / "iris.npz"
    trained = CliRunner().invoke(app, ["train", str(write_config(iris_config())), "-o", str(model), "-q"])
    assert trained.exit_code == 0, trained.output
    row = "sepal_length,sepal_width,petal_length,petal_width\n7.0,3.2,4.7,1.4\n"
    predicted = _run("predict", str(model), stdin=row)
    assert predicted["code"] == 0 and predicted["stdout"].startswith("species\n")
    assert predicted["stdout"] == CliRunner().invoke(app, ["predict", str(model)], input=row).stdout
    assert _imported(predicted["modules"], PREDICT_NEVER_IMPORTS) == []


@pytest.mark.parametrize("value", ["model.npz", "-", "no/such/dir/x.csv", "csv", "jsonl", Format.jsonl, "CSV",
                                   "tsv", "0.25", "1e-3", "bogus", None])
def test_values_convert_as_typer_converts_them(value):
    """nnctl.cli.coerce against Typer's pydantic adapters, parameter by parameter of `predict`."""
    command = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    ctx = typer.Context(command)
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) or not hasattr(param, "type_descriptor"):
            continue
        ours, typers = _converted(param._runtime_param, param, ctx, value), _converted(
            build_runtime_param(param.type_descriptor), param, ctx, value)
        assert ours == typers, (param.name, value)


def _converted(converter, param, ctx, value):
    try:
        return "value", converter.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # Typer's message, word for word
        return "error", type(exc).__name__, str(exc)


def test_plain_values_build_no_pydantic_adapter():
    command = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    ctx = typer.Context(command)
    params = {p.name: p for p in command.get_params(ctx)}
    for name, value in (("model", "m.npz"), ("input_", "-"), ("format_", Format.csv), ("format_", "jsonl"),
                        ("threshold", None)):
        converter = params[name]._runtime_param
        converter.coerce(value, param=params[name], ctx=ctx)
        assert converter.typer is None, name
    params["threshold"]._runtime_param.coerce("0.5", param=params["threshold"], ctx=ctx)
    assert params["threshold"]._runtime_param.typer is not None  # a number: Typer's adapter, built on demand


def test_a_path_argument_converts_to_a_path():
    command = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    ctx = typer.Context(command)
    model = next(p for p in command.get_params(ctx) if p.name == "model")
    assert model._runtime_param.coerce("m.npz", param=model, ctx=ctx) == Path("m.npz")


@pytest.mark.parametrize("env", [{"COLUMNS": "80"}, {"COLUMNS": "36"}, {"COLUMNS": "160"}, {"TERMINAL_WIDTH": "70"},
                                 {"FORCE_COLOR": "1", "COLUMNS": "100"}, {"FORCE_COLOR": "1", "COLUMNS": "200"},
                                 {"FORCE_COLOR": "1", "NO_COLOR": "1"}])
def test_help_without_typer_is_typers_help_byte_for_byte(env):
    """`nnctl --help` draws the panels with rich alone (nnctl/cli/top_help.py); Typer's own rendering, at several
    widths and with colour forced, gives the same bytes."""
    import os

    def run(code: str) -> bytes:
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "TERM",
                                                                         "FORCE_COLOR", "TERMINAL_WIDTH")}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=120,
                              env={**environment, **env})
        assert done.returncode == 0, done.stderr
        return done.stdout

    ours = run("import sys; sys.argv = ['nnctl', '--help']; from nnctl.cli import main; main()")
    typers = run("from nnctl.cli.app import app; app(['--help'], prog_name='nnctl')")
    assert ours == typers
    assert b"lr-find" in ours
