"""Numeric columns scaled as one block give the bits the per-column path gives, fail with its errors, and never
look a numeric column up on its own."""

from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest

from nnctl.errors import DataError
from nnctl.model.block import NumericBlock
from nnctl.model.preprocessing import FeatureSpec, Preprocessor


class Counting(Mapping[str, Any]):
    """Raw columns that count which names are asked for."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns, self.asked = columns, []

    def __getitem__(self, name: str) -> Any:
        self.asked.append(name)
        return self.columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)


def _wide(p: int = 300, n: int = 40, missing: str = "impute", seed: int = 0) -> tuple[Preprocessor, np.ndarray]:
    """A preprocessor of p numeric columns (every 7th with an indicator) and 2 categorical ones, and the
    numeric values (n, p) with gaps in the indicator columns."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, p)) * rng.uniform(0.1, 1e3, p) + rng.uniform(-1e4, 1e4, p)
    specs = []
    for j in range(p):
        spec = FeatureSpec.numeric(f"x{j}", "standard", n, float(values[:, j].mean()), float(values[:, j].std()),
                                   0.0, 0.0)
        if j % 7 == 0:
            spec.indicator = True
            values[rng.integers(0, n, 3), j] = np.nan
        specs.append(spec)
    specs.insert(5, FeatureSpec("c0", "categorical", categories=["a", "b"]))
    specs.append(FeatureSpec("c1", "categorical", categories=["u", "v", "w"]))
    return Preprocessor(specs, "standard", missing), values


def _columns(values: np.ndarray) -> dict[str, Any]:
    n = len(values)
    columns: dict[str, Any] = {f"x{j}": values[:, j] for j in range(values.shape[1])}
    columns["c0"] = ["a", "b"] * (n // 2)
    columns["c1"] = ["u", "v", "w", "x"] * (n // 4)
    return columns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_block_gives_the_per_column_bits(dtype):
    pre, values = _wide()
    one_by_one = pre.transform_columns(_columns(values), len(values), dtype, "w.csv")
    block = NumericBlock(values[:, ::-1].copy(), {f"x{j}": values.shape[1] - 1 - j for j in range(values.shape[1])})
    before = block.values.copy()
    at_once = pre.transform_columns(_columns(values), len(values), dtype, "w.csv", block=block)
    assert at_once.tobytes() == one_by_one.tobytes()
    assert np.array_equal(block.values, before, equal_nan=True)  # the caller's block is not written to


def test_with_a_block_only_the_other_columns_are_looked_up():
    pre, values = _wide(p=5000, n=8)
    columns = Counting(_columns(values))
    block = NumericBlock(values, {f"x{j}": j for j in range(values.shape[1])})
    pre.transform_columns(columns, len(values), np.float32, "w.csv", block=block)
    assert sorted(columns.asked) == ["c0", "c1"]  # not one lookup per numeric column


@pytest.mark.parametrize(("bad", "missing", "message"), [
    (np.inf, "impute", "column 'x9' line 5: inf is not a finite number"),
    (np.nan, "error", "column 'x9' line 5: missing value, and the model was trained with data.missing: error"),
    (1e300, "impute", "column 'x9' line 5: 1e+300 is too large: beyond float32 range after scaling"),
])
def test_a_failing_block_column_raises_the_per_column_error(bad, missing, message):
    pre, values = _wide(missing=missing)
    values = np.where(np.isnan(values), 0.0, values)  # no other gap
    values[3, 9] = bad
    values[7, 200] = bad  # a later column fails too: the first one in feature order is named
    columns = Counting(_columns(values))
    block = NumericBlock(values, {f"x{j}": j for j in range(values.shape[1])})
    with pytest.raises(DataError) as raised:
        pre.transform_columns(columns, len(values), np.float32, "w.csv", block=block)
    assert message in str(raised.value)
    with pytest.raises(DataError) as alone:
        pre.transform_columns(_columns(values), len(values), np.float32, "w.csv")
    assert str(alone.value) == str(raised.value)
    assert "x9" in columns.asked and "x200" not in columns.asked


def test_a_spec_writes_what_asdict_writes():
    for spec in (FeatureSpec.numeric("a", "standard", 3, 1.5, 2.0, 0.0, 0.0),
                 FeatureSpec("b", "categorical", categories=["x", "y"], indicator=False),
                 FeatureSpec("d", "date", center=2020.0, scale=2.0, fill=1e9, order="iso", parts=["year", "month"],
                             indicator=True)):
        assert list(spec.to_dict().items()) == list(asdict(spec).items())
        assert spec.to_dict()["categories"] is not spec.categories  # a copy, as asdict makes
