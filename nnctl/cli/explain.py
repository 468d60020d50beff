"""`nnctl explain MODEL DATA`: one row's journey through a model, as a lesson on 80 columns or as JSON.

The text view follows docs/how-it-works.md and names its sections: data to numbers, a layer, activations,
losses and the output delta, backpropagation (and calibration, for a calibrated model).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nnctl.cli.app import app, errors
from nnctl.cli.console import warn
from nnctl.cli.params import Decimal, Delimiter, Encoding, ModelFile, Strict, model_first
from nnctl.errors import InputError

if TYPE_CHECKING:
    from nnctl.inference.explain import Explanation
    from nnctl.model.model import Model


WIDTH = 80
SHOWN = 5  # units per layer shown in the text view; a wider layer shows its most active ones
DOC = "docs/how-it-works.md"


@app.command()
def explain(
    model: ModelFile,
    data: Annotated[Path, typer.Argument(help="CSV with the model's feature columns (and the target, for the "
                                         "loss and the gradients).", show_default=False)],
    row: Annotated[int, typer.Option("--row", metavar="N", help="The data row to explain: 1 is the first row "
                                     "under the header.")] = 1,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON with the full arrays instead of the "
                                        "text view.")] = False,
    top: Annotated[int, typer.Option("--top", metavar="K", help="Show the K inputs that pushed each unit "
                                     "most (their w·x terms).")] = 3,
    strict: Strict = False,
    delimiter: Delimiter = None,
    decimal: Decimal = None,
    encoding: Encoding = None,
) -> None:
    """One row's journey through the network: its inputs, each layer, the output and backpropagation.

    The row's raw values, the network inputs they became, each layer's z = xW + b and activation with the
    inputs that pushed each unit most, the output and the prediction (as predict gives them); when the row has
    its target, the loss, the output delta and each layer's delta, dW and db for that row's loss."""
    from nnctl.dialect import Settings
    from nnctl.inference.explain import explanation
    from nnctl.model.model import load_model

    with errors():
        if top < 1:
            raise InputError(f"{{top}} must be at least 1, not {top}", arguments=("top",))
        dialect = Settings.checked(delimiter, decimal, encoding)
        loaded = model_first(load_model, model, str(data), "explain")
        result = explanation(loaded, data, row, dialect, strict=strict, warn=warn)
        if json_:
            typer.echo(json.dumps(result.to_json()))
        else:
            typer.echo("\n".join(lines(result, loaded, top)))


def lines(e: Explanation, model: Model, top: int) -> list[str]:
    """The text view, every line at most WIDTH characters."""
    sizes = model.network.sizes
    out = [f"Row {e.row} of {e.source} (line {e.line}): {' -> '.join(map(str, sizes))} "
           f"({', '.join(e.activations)})", f"§ are the sections of {DOC}", ""]
    out += _inputs(e)
    for i in range(len(e.activations)):
        out += _layer(e, model, i, top)
    out += _output(e, model)
    out += _backward(e, model)
    return [piece for line in out for piece in _wrap(line)]


def _wrap(line: str, indent: int | None = None) -> list[str]:
    """The line, cut at spaces into pieces of at most WIDTH; the rest indented by `indent` (default: 4 more)."""
    if len(line) <= WIDTH:
        return [line]
    if indent is None:
        indent = len(line) - len(line.lstrip()) + 4
    return textwrap.wrap(line, WIDTH, subsequent_indent=" " * indent, break_on_hyphens=False)


def _num(v: float) -> str:
    return f"{v:+.4g}"


def unit_names(model: Model, i: int) -> list[str]:
    """Names of layer i's units: h{i+1}[j] (A_{i+1} in the docs), the classes or the target for the output."""
    n = model.network.sizes[i + 1]
    if i < model.network.n_layers - 1:
        return [f"h{i + 1}[{j}]" for j in range(n)]
    target = model.target
    if target.task != "classification":
        return [target.name]
    return [f"P({target.classes[1]})"] if target.binary else [str(c) for c in target.classes]


def _input_names(e: Explanation, model: Model, i: int) -> list[str]:
    return e.input_names if i == 0 else unit_names(model, i - 1)


def _inputs(e: Explanation) -> list[str]:
    out = ["§1 Data to numbers: each column becomes inputs, fitted on the training rows"]
    for c in e.columns:
        out.append(f"  {c.name} = {c.raw if c.raw is not None else '(missing)'}: {c.rule}")
    out.append(f"  x = A_0, shape (1, {len(e.input_names)})")
    return [*out, ""]


def _layer(e: Explanation, model: Model, i: int, top: int) -> list[str]:
    t, act = e.trace, e.activations[i]
    fan_in, fan_out = model.network.sizes[i], model.network.sizes[i + 1]
    last = i == len(e.activations) - 1
    scaled = last and t.temperature is not None
    z = f"Z_{i} = (A_{i} W_{i} + b_{i}) / T" if scaled else f"Z_{i} = A_{i} W_{i} + b_{i}"
    head = "§2 A layer: Z = AW + b; §3 Activations: A = f(Z)" if i == 0 else ""
    out = [head] if head else []
    out.append(f"Layer {i}: {z}, (1, {fan_in}) ({fan_in}, {fan_out}) -> (1, {fan_out}); "
               f"A_{i + 1} = {act}(Z_{i})")
    if scaled:
        out.append(f"  T = {t.temperature:.4g}: the model is calibrated (§9 After training: calibration)")
    Z, A = t.Z[i], t.A[i]
    order = sorted(range(fan_out), key=lambda j: -abs(Z[j]))[:SHOWN]
    if fan_out > SHOWN:
        out.append(f"  {fan_out} units; showing the {SHOWN} most active (largest |z|)")
    names, sources = unit_names(model, i), _input_names(e, model, i)
    terms, b = t.contributions(i), model.network.b[i]
    w = max(4, *(len(names[j]) for j in order))
    out.append(f"  {'unit':<{w}} {'z':>8} {'a':>8} {'b':>8}  pushed most by (w·x)")
    for j in order:
        ranked = sorted(range(fan_in), key=lambda k: -abs(terms[k, j]))[:top]
        pushes = ", ".join(f"{sources[k]} {terms[k, j]:+.3g}" for k in ranked)
        line = f"  {names[j]:<{w}} {Z[j]:>+8.4f} {A[j]:>8.4f} {float(b[j]):>+8.4f}  {pushes}"
        out += _wrap(line, indent=w + 31)
    return [*out, ""]


def _output(e: Explanation, model: Model) -> list[str]:
    values = ", ".join(f"{k} {v:.4g}" for k, v in e.output.items())
    out = [f"Output (as predict): {values}"]
    rule = ""
    if model.threshold is not None:
        rule = f" (P({model.target.classes[1]}) >= threshold {model.threshold:.4g})"
    target = model.target
    if target.task != "classification" and (target.center != 0 or target.scale != 1):
        out.append(f"  {target.name} = a * {target.scale:.4g} + {target.center:.4g} (a: the standardised target)")
    out.append(f"Prediction: {e.prediction}{rule}")
    return [*out, ""]


def _backward(e: Explanation, model: Model) -> list[str]:
    back = e.trace.backward
    if back is None:
        return [f"No target in this row: no loss and no gradients (needs column '{model.target.name}')."]
    loss, L = model.loss_function, len(e.activations)
    act, last = e.activations[-1], e.trace.output.reshape(1, -1)
    route = (f"= {loss.fused_scale(last):.4g} * (A - Y), {act} + {e.loss} fused"
             if loss.fused and act == loss.output_activation else f"= dL/dA through {act}'s derivative")
    Y = ", ".join(f"{v:.4g}" for v in back.Y)
    out = ["§4 Losses, and the output delta (A - Y)/n",
           f"  target {model.target.name} = {e.target}: Y = [{Y}]; loss {e.loss} = {back.loss:.6g}",
           *(["  (Y is the target standardised, as the loss sees it)"]
             if model.task != "classification" and (model.target.center != 0 or model.target.scale != 1) else []),
           f"  delta_{L - 1} = dL/dZ_{L - 1} {route}:",
           "    [" + ", ".join(_num(v) for v in back.delta[-1][:SHOWN])
           + (", ...]" if back.delta[-1].size > SHOWN else "]"),
           "", "§5 Backpropagation: the chain rule, layer by layer",
           "  dW_i = A_i^T delta_i, db_i = delta_i, delta_(i-1) = (delta_i W_i^T) * f'(A_i)",
           "  §7 The gradient step moves each weight by -learning_rate * dW"]
    if e.trace.temperature is not None:
        out.append("  gradients of the training loss, without T (training is uncalibrated): what a training "
                   "step on this row would use")
    for i in range(L - 1, -1, -1):
        dW, db = back.dW[i], back.db[i]
        k, j = divmod(int(abs(dW).argmax()), dW.shape[1])
        src, dst = _input_names(e, model, i)[k], unit_names(model, i)[j]
        if i < L - 1:
            out.append(f"  delta_{i} = (delta_{i + 1} W_{i + 1}^T) * {e.activations[i]}'(A_{i + 1}): "
                       f"largest |entry| {abs(back.delta[i]).max():.4g}")
        out.append(f"  Layer {i}: dW_{i} {dW.shape} norm {_norm(dW):.4g}, db_{i} ({db.size},) norm {_norm(db):.4g}")
        out.append(f"    largest: dW_{i}[{src}, {dst}] = {_num(dW[k, j])}")
    return out


def _norm(a: Any) -> float:
    return float((a * a).sum() ** 0.5)
