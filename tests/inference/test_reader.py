"""The pandas-free input side of predict: chunking, line numbers, latency on a slow pipe, flat memory."""

import io
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from nnctl.errors import DataError
from nnctl.inference.reader import read_chunks
from nnctl.model.preprocessing import NA_VALUES, is_missing

from conftest import ROOT


def chunks(text: str, columns, **options):
    return list(read_chunks(io.BytesIO(text.encode()), "in.csv", columns, **options))


def test_missing_markers_are_pandas_defaults():
    from pandas._libs.parsers import STR_NA_VALUES

    assert NA_VALUES == STR_NA_VALUES
    assert is_missing(None) and is_missing(float("nan")) and is_missing("NA") and not is_missing("0")


def test_chunks_keep_physical_line_numbers():
    text = 'a,b\n1,x\n\n2,"two\nlines"\n3,z\n4,w\n'
    got = chunks(text, ["b", "a"], chunk_rows=2)
    assert [c.lines for c in got] == [[2, 5], [6, 7]]
    assert list(got[0].columns["b"]) == ["x", "two\nlines"] and list(got[1].columns["a"]) == ["3", "4"]


def test_short_rows_are_missing_values_and_long_rows_an_error():
    got = chunks("a,b,c\n1,2\n", ["c"])
    assert list(got[0].columns["c"]) == [""]
    with pytest.raises(DataError, match=r"in.csv: line 3: 3 fields, but the header has 2"):
        chunks("a,b\n1,2\n1,2,3\n", ["a"])


def test_header_problems():
    with pytest.raises(DataError, match="no data; expected a header line"):
        chunks("", ["a"])
    with pytest.raises(DataError, match="duplicate column name 'a'"):
        chunks("a,b,a\n1,2,3\n", ["b"])
    with pytest.raises(DataError, match="no feature column 'c'"):
        chunks("a,b\n1,2\n", ["c"])
    assert [c.n for c in chunks("\ufeffa,b\n", ["a"])] == [0]  # BOM stripped; header only: one empty chunk


def test_output_starts_before_the_input_ends(tmp_path):
    """One row in, one prediction out, while stdin is still open: a true pipeline stage."""
    model = tmp_path / "iris.npz"
    trained = subprocess.run([sys.executable, "-m", "nnctl", "train", "configs/iris.yaml", "-o", str(model),
                              "-q", "--epochs", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    proc = subprocess.Popen([sys.executable, "-m", "nnctl", "predict", str(model)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)  # a regression here would otherwise hang the suite
    watchdog.start()
    try:
        proc.stdin.write("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
        proc.stdin.flush()
        started = time.monotonic()
        assert proc.stdout.readline() == "species\n"
        assert proc.stdout.readline() in ("setosa\n", "versicolor\n", "virginica\n")
        assert time.monotonic() - started < 30
        proc.stdin.write("6.7,3.0,5.2,2.3\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() in ("setosa", "versicolor", "virginica")
    finally:
        watchdog.cancel()
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_memory_stays_flat_however_long_the_input_and_small_inputs_skip_pandas(tmp_path):
    model = tmp_path / "iris.npz"
    subprocess.run([sys.executable, "-m", "nnctl", "train", "configs/iris.yaml", "-o", str(model), "-q",
                    "--epochs", "1"], cwd=ROOT, check=True, timeout=120)

    def measure(rows: int) -> tuple[int, bool]:
        # from a file, not a pipe: how a pipe's writer keeps pace decides block sizes, and so whether pandas
        # is imported at all, which would make the two peaks incomparable
        data = tmp_path / f"{rows}.csv"
        data.write_text("sepal_length,sepal_width,petal_length,petal_width\n" + "5.1,3.5,1.4,0.2\n" * rows)
        with data.open("rb") as source:
            result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peak_memory.py"), "predict",
                                     str(model)], stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, cwd=ROOT, timeout=300)
        data.unlink()
        assert result.returncode == 0, result.stderr
        report = result.stderr.strip().splitlines()[-1]
        rss, pandas = report.split()
        return int(rss.split("=")[1]), pandas == "pandas=True"

    _, pandas_small = measure(10_000)
    assert not pandas_small  # one-row and small inputs start fast: no pandas import
    large, _ = measure(400_000)  # big inputs parse in pandas' C parser, imported for them
    larger, _ = measure(2_000_000)
    # 2M rows held at once would cost well over 500 MB of Python strings; streamed, the peak does not grow
    assert larger - large < 20_000, f"peak RSS grew from {large} kB to {larger} kB"


def test_header_names_match_what_pandas_reads():
    text = " a,,b\n1,2,3\n"
    columns = [str(c) for c in pd.read_csv(io.StringIO(text)).columns]
    assert columns == [" a", "Unnamed: 1", "b"]
    got = chunks(text, columns)
    assert [list(got[0].columns[c]) for c in columns] == [["1"], ["2"], ["3"]]


@pytest.mark.parametrize("pandas_from", [1 << 30, 0])
def test_numeric_fast_path_reads_exactly_what_the_careful_path_reads(monkeypatch, pandas_from):
    """Blocks of plain numbers go through NumPy's (or pandas') C parser; a block with a gap, text or a blank
    line falls back to the csv module. Both must give the same numbers and line numbers."""
    import nnctl.inference.reader
    import nnctl.model.preprocessing

    monkeypatch.setattr(nnctl.inference.reader, "_READ_SIZE", 4096)  # many blocks
    monkeypatch.setattr(nnctl.inference.reader, "_PANDAS_FROM", pandas_from)
    rng = np.random.default_rng(0)
    lines = ["a,b,c"] + [",".join(f"{v:.9g}" for v in row) for row in rng.standard_normal((3000, 3)) * 1e3]
    lines[1500] = "1.5,,2"  # a gap
    lines[2200] = ""  # a blank line
    lines[2500] = "1e308,-0,7"
    text = "\n".join(lines) + "\n"

    def read(numeric):
        got = chunks(text, ["c", "a"], numeric=numeric, chunk_rows=700)
        values = {c: np.concatenate([np.asarray(nnctl.model.preprocessing.to_numbers(g.columns[c])[0]) for g in got])
                  for c in ("c", "a")}
        return values, [n for g in got for n in g.lines]

    fast, fast_lines = read(["a", "b", "c"])
    careful, careful_lines = read([])
    assert fast_lines == careful_lines and len(fast_lines) == 2999
    for column in ("a", "c"):
        np.testing.assert_array_equal(fast[column], careful[column])
