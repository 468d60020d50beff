"""`nnctl importance`: which raw columns a model needs, by how much its score drops when each is shuffled."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nnctl.cli.app import app, errors
from nnctl.cli.console import warn
from nnctl.cli.params import (
    Decimal,
    Delimiter,
    Encoding,
    JsonTable,
    LabelledCsv,
    ModelFile,
    Strict,
    Unweighted,
    model_first,
)
from nnctl.cli.render import fmt, stderr, stdout

if TYPE_CHECKING:
    from nnctl.inference.importance import Importance

BAR_WIDTH = 16  # characters of the longest bar


@app.command()
def importance(
    model: ModelFile,
    data: LabelledCsv,
    metric: Annotated[str | None, typer.Option("--metric", metavar="NAME", show_default=False, help="Score by this "
                                               "metric of evaluate's, or loss (default: accuracy for "
                                               "classification, r2 for regression).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Shuffles of each column; the table shows their "
                                         "mean and sd.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffles: the same seed, the same "
                                      "numbers.")] = 0,
    json_: JsonTable = False,
    plot_: Annotated[Path | None, typer.Option("--plot", metavar="PNG", help="Also draw the importances as a bar "
                                               "chart with sd error bars into this PNG (needs matplotlib, the "
                                               "'plot' extra).")] = None,
    strict: Strict = False,
    unweighted: Unweighted = False,
    delimiter: Delimiter = None,
    decimal: Decimal = None,
    encoding: Encoding = None,
) -> None:
    """Rank a model's raw columns by permutation importance on a labelled CSV.

    The drop in the metric when the column's values are shuffled across rows, mean and sd over the repeats, most
    important first.

    Positive means the model needs the column (for a metric where lower is better, such as loss or mae, the
    rise). A categorical column's one-hot group and a date's parts are shuffled as one. Files of more than
    100,000 rows are read in chunks and shuffled within each chunk."""
    from nnctl.dialect import Settings
    from nnctl.inference.importance import importance as run
    from nnctl.model.model import load_model

    with errors():
        dialect = Settings.checked(delimiter, decimal, encoding)
        if plot_ is not None:
            from nnctl.extras.plot import require_matplotlib

            require_matplotlib("nnctl importance --plot")
        loaded = model_first(load_model, model, str(data), "importance")
        started = time.perf_counter()
        result = run(loaded, data, metric=metric, repeats=repeats, seed=seed, dialect=dialect, strict=strict,
                     weighted=not unweighted, warn=warn,
                     progress=lambda done: stderr.print(f"importance: {done:,} rows done", markup=False))
        seconds = time.perf_counter() - started
        if plot_ is not None:
            from nnctl.extras.importance_plot import importance_figure
            from nnctl.extras.plot import save_png

            save_png(importance_figure(result, f"{model.name} on {data.name}"), plot_)
        if json_:
            typer.echo(json.dumps(result.to_json()))
        else:
            stdout.print(importance_table(result))
        sys.stdout.flush()  # the result before the messages, when both go to one place
        stderr.print(f"{result.passes} forward passes over {result.rows:,} rows in {seconds:.2f} s", markup=False)
        if plot_ is not None:
            stderr.print(f"wrote {plot_} (importance bar chart)", markup=False)


def importance_table(result: Importance) -> object:
    """The columns, most important first: kind, mean drop, sd, and a bar as long as the mean (none below 0)."""
    from rich.markup import escape
    from rich.table import Table

    rise = "drop" if result.higher_is_better else "rise"
    weighed = f", weighted by {result.weighted_by}" if result.weighted_by else ""
    chunked = f", shuffled within chunks of {result.chunk_rows:,} rows" if result.chunks > 1 else ""
    title = (f"{result.metric} {rise} when a column is shuffled (baseline {fmt(result.baseline)}, "
             f"{result.rows:,} rows, {result.repeats} repeat{'s' if result.repeats > 1 else ''}{weighed}{chunked})")
    table = Table(title=escape(title), title_justify="left")
    table.add_column("column", overflow="fold")  # a long name wraps whole rather than being cut short
    table.add_column("kind")
    table.add_column("mean", justify="right")
    table.add_column("sd", justify="right")
    table.add_column("", no_wrap=True)
    top = max((c.mean for c in result.columns if c.mean == c.mean), default=0.0)
    for column in result.columns:
        kind = column.kind if column.inputs == 1 else f"{column.kind} ({column.inputs} inputs)"
        share = column.mean / top if top > 0 and column.mean == column.mean else 0.0
        bar = "█" * round(max(share, 0.0) * BAR_WIDTH)
        table.add_row(escape(column.name), kind, fmt(column.mean), fmt(column.std), bar)
    return table
