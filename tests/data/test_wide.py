"""Wide data: loading, fitting, encoding and reading for predict cost a fixed number of pandas calls and parser
calls, not one (or several) per column; the results are the per-column path's, bit for bit."""

import io
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pytest

from nnctl.config.schema import DataConfig
from nnctl.data import fit, reader
from nnctl.data.fit import _fit_column, fit_preprocessor, transform
from nnctl.errors import DataError
from nnctl.inference import reader as predict_reader
from nnctl.model import columns as column_names

COLUMNS = 3000


def _data(scale: str = "standard", **settings: object) -> DataConfig:
    return DataConfig.model_validate({"train": "w.csv", "target": "y", "scale": scale, **settings})


def _csv(path, rows: int = 40, columns: int = COLUMNS, seed: int = 0) -> str:
    """A wide CSV: small counts, a float column with gaps, a text column, the target y."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.5, (rows, columns)).astype(str)
    f = np.where(rng.random(rows) < 0.2, "", rng.standard_normal(rows).round(3).astype(str))
    t = rng.choice(["red", "blue"], rows)
    y = rng.integers(0, 2, rows)
    lines = [",".join([*(f"x{j}" for j in range(columns)), "f", "t", "y"])]
    lines += [",".join([*X[i], f[i], t[i], str(y[i])]) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    path = _csv(tmp_path_factory.mktemp("wide") / "w.csv")
    return path, reader.read_csv(path)


@pytest.fixture
def lookups(monkeypatch) -> list[object]:
    """Every `DataFrame[...]` from here on."""
    seen: list[object] = []
    original = pd.DataFrame.__getitem__

    def counted(self, key):
        seen.append(key)
        return original(self, key)

    monkeypatch.setattr(pd.DataFrame, "__getitem__", counted)
    return seen


@pytest.mark.parametrize("scale", ["standard", "minmax", "none"])
def test_the_block_fit_is_the_column_by_column_fit(wide, scale):
    _, frame = wide
    features = [c for c in frame.columns if c != "y"]
    data = _data(scale, missing_indicators=True)
    fitted = fit_preprocessor(frame, features, data, "w.csv")
    assert fitted.features == [_fit_column(frame[name], name, data, "w.csv") for name in features]
    assert [s.kind for s in fitted.features[-2:]] == ["numeric", "categorical"] and fitted.features[-2].indicator


def test_fitting_and_encoding_look_up_a_fixed_number_of_columns(wide, lookups):
    _, frame = wide
    features = [c for c in frame.columns if c != "y"]
    pre = fit_preprocessor(frame, features, _data(), "w.csv")
    X = transform(pre, frame, np.float32, "w.csv")
    assert X.shape == (len(frame), COLUMNS + 1 + 2)
    assert len(lookups) <= 10, f"{len(lookups)} pandas lookups for {COLUMNS} columns: one per column came back"


def test_the_block_encoding_is_the_column_by_column_encoding(wide, monkeypatch):
    _, frame = wide
    features = [c for c in frame.columns if c != "y"]
    pre = fit_preprocessor(frame, features, _data(), "w.csv")
    at_once = transform(pre, frame, np.float64, "w.csv")
    monkeypatch.setattr(fit, "number_columns", lambda frame, columns: [])  # no block: every column on its own
    assert transform(pre, frame, np.float64, "w.csv").tobytes() == at_once.tobytes()


def test_an_infinity_in_a_wide_column_names_its_line(tmp_path):
    frame = pd.DataFrame({f"x{j}": np.arange(4.0) for j in range(50)})
    frame.loc[2, "x30"] = np.inf
    with pytest.raises(DataError, match=r"w.csv: column 'x30' line 4: inf is not a finite number"):
        fit_preprocessor(frame, list(frame.columns), _data(), "w.csv")


def test_read_csv_checks_only_text_columns_and_hands_over_one_block_per_dtype(wide, lookups):
    path, _ = wide
    frame = reader.read_csv(path)
    assert [key for key in lookups if isinstance(key, str)] == ["t"]  # the one text column, for decimal commas
    assert frame._mgr.nblocks <= 3  # int, float, text: row selections do not step through 3,000 blocks


class Names(Sequence[str]):
    """Column names that count the ways they are read."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.contains, self.iterations = names, 0, 0

    def __getitem__(self, i):  # type: ignore[override]
        return self.names[i]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        self.iterations += 1
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        self.contains += 1
        return name in self.names


def test_required_names_are_looked_up_in_a_set():
    present = Names([f"x{j}" for j in range(50_000)])
    column_names.require_names(present, list(reversed(present.names)), "w.csv", "feature", trained=True)
    assert present.contains == 0 and present.iterations <= 2  # `in` on a list, once per name, is quadratic
    with pytest.raises(DataError, match="no feature column 'x49999_'; did you mean 'x49999'"):
        column_names.require_names(present, [*present.names[:-1], "x49999_"], "w.csv", "feature")


def test_predict_parses_a_wide_file_in_few_blocks(wide, monkeypatch):
    _, frame = wide
    calls: list[int] = []
    numbers = predict_reader._numbers

    def counted(block, usecols, text, dialect):
        calls.append(len(block))
        return numbers(block, usecols, text, dialect)

    monkeypatch.setattr(predict_reader, "_numbers", counted)
    wanted = [f"x{j}" for j in range(COLUMNS)]
    text = "".join(line + "\n" for line in ([",".join(wanted)] +
                                             [",".join(map(str, row)) for row in frame[wanted].to_numpy()] * 20))
    chunks = list(predict_reader.read_chunks(io.BytesIO(text.encode()), "w.csv", wanted, numeric=wanted))
    assert sum(chunk.n for chunk in chunks) == 20 * len(frame)
    assert len(text) > 2 * predict_reader._READ_SIZE and len(calls) <= 2  # 1 MB reads made ~5 parser calls
    assert sum(chunk.n for chunk in chunks if chunk.block is not None) > 0.7 * 20 * len(frame)  # one array each
    last = chunks[-1].columns["x7"]  # the file ends with the frame's rows, in order
    assert isinstance(last, np.ndarray) and np.array_equal(last[-len(frame):], frame["x7"].to_numpy())


def test_the_starter_decides_number_columns_from_one_block(tmp_path, lookups, monkeypatch):
    from nnctl.data import starter

    path = tmp_path / "s.csv"
    path.write_text("id,a,b,gone,t,y\n" + "".join(f"{i},{i % 3},{'' if i % 4 else 1.5},,x{i % 2},{i % 2}\n"
                                                   for i in range(60)))
    text = starter.starter_config(path, "y", tmp_path)
    assert "left out id: counts the rows (0, 1, ...), an identifier" in text
    assert "left out gone: entirely empty" in text and "- b  " in text and "45 missing values, imputed" in text
    assert not {"id", "a", "b", "gone"} & {key for key in lookups if isinstance(key, str)}  # no number column alone
    monkeypatch.setattr(starter, "number_columns", lambda frame, columns: [])  # every column on its own
    assert starter.starter_config(path, "y", tmp_path) == text


def test_plain_names_are_written_without_the_yaml_emitter():
    from nnctl.config import safe_yaml

    names = ["x0", "gene_17", "_id", "A", "yes", "Y", "No", "off", "ON", "null", "Null", "true", "FALSE", "n", "1e3",
             "x-1", "a b", "é", "x.y", "0x1F", "inf", ".nan", "y_"]
    emitted = {name: safe_yaml.yaml.dump([name], Dumper=safe_yaml._Dumper, default_flow_style=True,
                                         width=1 << 30, allow_unicode=True).strip()[1:-1] for name in names}
    assert {name: safe_yaml.dump_scalar(name) for name in names} == emitted


def test_a_wide_file_is_read_in_one_piece(wide, monkeypatch):
    path, frame = wide
    seen: list[object] = []
    original = pd.read_csv

    def spy(*args, **kwargs):
        seen.append(kwargs.get("low_memory", True))
        return original(*args, **kwargs)

    monkeypatch.setattr(reader.pd, "read_csv", spy)
    again = reader.read_csv(path)
    assert seen == [False] and again.equals(frame)  # pieces of rows each cost a concatenation per column
