"""predict's reader (the csv module, no pandas) in the input's dialect: detected like training's, the same
numbers from every dialect, in the careful path and the fast numeric one, and errors that name the flags."""

import codecs
import io

import numpy as np
import pytest

from nnctl.cli.app import FLAGS
from nnctl.dialect import Settings
from nnctl.errors import DataError
from nnctl.inference.reader import read_chunks

from dialects import auto_mpg_table, write

NUMERIC = ["displacement", "horsepower", "weight", "acceleration"]


def rows_of(data: bytes, columns, *, numeric=(), settings=None, chunk_rows=10_000):
    """{column: values} over every chunk, numeric columns as float64 (decimal commas made points first)."""
    chunks = list(read_chunks(io.BytesIO(data), "in.csv", columns, numeric=numeric, dialect=settings,
                              chunk_rows=chunk_rows))
    out = {}
    for column in columns:
        values = []
        for chunk in chunks:
            values += list(chunk.with_points(set(numeric))[column])
        out[column] = np.array(values, np.float64) if column in numeric else values
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict-dialects")
    header, rows = auto_mpg_table()
    rows = [row for row in rows if all(row[header.index(c)] for c in NUMERIC)]  # no gaps: the fast path applies
    written = {"clean": write(folder / "clean.csv", header, rows),
               "excel_eu": write(folder / "eu.csv", header, rows, delimiter=";", decimal=",", bom=True,
                                 newline="\r\n"),
               "tsv": write(folder / "tsv.csv", header, rows, delimiter="\t"),
               "pipe": write(folder / "pipe.csv", header, rows, delimiter="|"),
               "quoted_commas": write(folder / "quoted.csv", header, rows, decimal=","),
               "cp1252": write(folder / "cp.csv", header, rows, encoding="cp1252")}
    return {name: path.read_bytes() for name, path in written.items()}


@pytest.mark.parametrize("text", [False, True], ids=["fast path", "careful path"])
def test_every_dialect_gives_the_clean_files_values(files, text):
    """Numbers only: blocks parsed by NumPy in C; with a text column: the csv module and Python's float()."""
    columns = [*NUMERIC, "origin"] if text else NUMERIC
    clean = rows_of(files["clean"], columns, numeric=NUMERIC)
    for name, data in files.items():
        settings = Settings(encoding="cp1252") if name == "cp1252" else None
        got = rows_of(data, columns, numeric=NUMERIC, settings=settings, chunk_rows=100)
        for column in columns:
            if column in NUMERIC:
                assert got[column].tobytes() == clean[column].tobytes(), (name, column)
            else:
                assert got[column] == clean[column], (name, column)
    if text:
        assert "Europa (Škoda, Citroën)" in clean["origin"]
        assert rows_of(files["excel_eu"], ["displacement"])["displacement"][0] == "307,0"  # raw, as --keep shows


def test_big_blocks_of_decimal_commas_parse_in_pandas_as_in_numpy():
    """A block of 512 KB or more is parsed by pandas' C parser, told the decimal mark; smaller ones by NumPy."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(40_000, 3)) * 1000
    point = "a,b,c\n" + "".join(f"{x!r},{y!r},{z!r}\n" for x, y, z in values.tolist())
    comma = point.replace(",", ";").replace(".", ",")
    assert len(comma) > 1 << 20
    got = rows_of(comma.encode(), ["a", "b", "c"], numeric=["a", "b", "c"])
    assert np.array_equal(np.column_stack([got["a"], got["b"], got["c"]]), values)


def test_detection_waits_for_one_row_only():
    """A pipe's first chunk needs the header and one row; detection does not wait for more."""
    chunks = read_chunks(io.BytesIO(b"a;b\r\n1,5;2\r\n"), "in.csv", ["a", "b"], numeric=["a", "b"])
    chunk = next(chunks)
    assert list(chunk.with_points({"a", "b"})["a"]) in (["1.5"], [1.5]) and chunk.decimal == ","


def test_not_utf8_names_the_line_far_into_the_input():
    data = b"a,b\n" + b"1,2\n" * 300_000 + "é,3\n".encode("latin-1")  # beyond the first read of 1 MB
    with pytest.raises(DataError, match=r"in.csv: not UTF-8 \(byte 0xe9 at line 300002\); set encoding "
                                        r"\(e.g. cp1252 or latin-1\)"):
        rows_of(data, ["a"])
    assert rows_of(data, ["a"], settings=Settings(encoding="latin-1"))["a"][-1] == "é"
    assert rows_of(codecs.BOM_UTF8 + b"a,b\n1,2\n", ["a"])["a"] == ["1"]


def test_errors_name_the_flags():
    def error(data: bytes, columns, settings=None, fmt="csv") -> str:
        with pytest.raises(DataError) as caught:
            list(read_chunks(io.BytesIO(data), "in.csv", columns, dialect=settings, fmt=fmt))
        return caught.value.render(FLAGS)

    assert error(b"a,b;c\n1,2;3\n", ["x"]).endswith("and the rows fit both; set --delimiter")
    assert error(b"a;b\n1,5;2.5\n", ["a"]) == "in.csv: cannot tell the decimal mark: column 'a' has '1,5', column " \
                                              "'b' '2.5'; set --decimal to ',' or '.'"
    assert error(b"a;b\n1;2\n", ["b"], Settings(delimiter=",")) == \
        "in.csv: no feature column 'b' (columns: a;b); the model was trained on b; the file looks ';'-separated: " \
            "set --delimiter to ';'"
    assert error(b"a,b\n1,2\n3,4,5\n", ["a"]) == \
        "in.csv: line 3: 3 fields, but the header has 2; quote values that contain ',', or name every column"
    assert error(b'{"a": 1}\n', ["a"], Settings(delimiter=";"), "jsonl") == \
        "in.csv: --delimiter and --decimal are for CSV input, not JSON lines"


def test_json_lines_in_another_encoding():
    chunk = next(read_chunks(io.BytesIO('{"a": "Škoda"}\n'.encode("cp1252")), "in.jsonl", ["a"], fmt="jsonl",
                             dialect=Settings(encoding="cp1252")))
    assert list(chunk.columns["a"]) == ["Škoda"]
