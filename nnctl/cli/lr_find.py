"""`nnctl lr-find CONFIG`: the learning-rate range test, as a sparkline of the smoothed loss across the rates, the
suggested rate and the `train` line that uses it; `--json` for scripts, `--plot` for a picture."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nnctl.cli.app import app, errors
from nnctl.cli.render import sparkline, stderr, stdout

if TYPE_CHECKING:
    from nnctl.training.lr_find import RangeTest

SPARK_WIDTH = 56  # columns of the sparkline: with its rate labels, a line fits 80 columns


@app.command("lr-find")
def lr_find(
    config: Annotated[Path, typer.Argument(help="YAML config file.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a config key, e.g. training.batch_size=64.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Batches to train, one per rate.")] = 200,
    start: Annotated[float, typer.Option("--start", metavar="RATE", help="The first learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option("--end", metavar="RATE", help="The last learning rate.")] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help="Print {\"suggested\", \"rates\", \"losses\", "
                                        "\"smoothed\", ...} as JSON instead.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="PNG", help="Also draw loss against rate to "
                                              "this PNG (the 'plot' extra).")] = None,
) -> None:
    """Find a learning rate with the range test, and suggest one.

    Train from the config's initial weights while the rate rises exponentially from --start to --end, one batch
    per rate, and suggest the rate where the smoothed loss falls fastest.

    The config's optimizer, batch size, clip_norm and data are used as train uses them; its schedule and early
    stopping are not. Nothing is saved (except the --plot PNG)."""
    from nnctl.config.load import load_config
    from nnctl.training.lr_find import check_range
    from nnctl.training.lr_find import lr_find as run

    with errors():
        check_range(start, end, steps)
        if plot is not None:
            from nnctl.extras.plot import require_matplotlib

            require_matplotlib("lr-find --plot")
        overrides = list(set_ or [])
        cfg = load_config(config, overrides)
        test = run(cfg, steps=steps, start=start, end=end, warn=lambda m: stderr.print(f"warning: {m}", markup=False))
        if plot is not None:
            from nnctl.extras.lr_plot import lr_figure
            from nnctl.extras.plot import save_png

            save_png(lr_figure(test, config.name), plot)
            stderr.print(f"wrote {plot} (loss against learning rate)", markup=False)
        if json_:
            typer.echo(json.dumps(test.to_json()))
        else:
            for line in report(test, str(config), overrides):
                stdout.print(line, markup=False)


def marker_column(index: int, points: int, width: int) -> int:
    """The sparkline column that shows point `index` of `points` (`sparkline` resamples to at most `width`)."""
    if points <= width:
        return index
    return round(index * (width - 1) / (points - 1))


def report(test: RangeTest, config: str, overrides: Sequence[str]) -> list[str]:
    """The text lr-find prints: what ran, the smoothed loss as a sparkline over the rates with the suggestion
    marked below it, the suggestion and why, and the `train` command that uses it."""
    first, last = f"{test.rates[0]:.2g}", f"{test.rates[-1]:.2g}"
    ceiling = test.ceiling  # the diverging end is drawn as full blocks, not as the scale that flattens the dip
    spark = sparkline([min(v, ceiling) for v in test.smoothed], SPARK_WIDTH)
    column = len(first) + 1 + marker_column(test.suggested_index, len(test.smoothed), SPARK_WIDTH)
    suggested = f"{test.suggested:.2g}"
    label = f"▲ {suggested}"
    if column + len(label) > len(first) + 1 + len(spark) + 1 + len(last):  # near the right end: the label goes left
        label = f"{suggested} ▲"
        column -= len(suggested) + 1
    lines = [f"{test.optimizer}, {len(test.rates)} steps of {test.batch_size} rows, learning rate {first} to {last}"]
    if test.stopped is not None:
        lines.append(f"stopped early: {test.stopped}")
    kept = [item for item in overrides if not item.replace(" ", "").startswith("optimizer.learning_rate=")]
    command = ["nnctl", "train", shlex.quote(config), *(f"--set {shlex.quote(item)}" for item in kept),
               f"--set optimizer.learning_rate={suggested}"]
    lines += [
        "smoothed training loss against learning rate (log scale):",
        f"{first} {spark} {last}",
        " " * column + label,
        f"suggested learning rate: {suggested} (the config's: {test.learning_rate:g})",
        f"  {test.why}",
        "train with:",
        "  " + " ".join(command),  # on its own line, to copy whole; the only line a long path makes wider than 80
    ]
    return lines
