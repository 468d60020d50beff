import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.data.load import load_dataset
from nnctl.data.parse import split_rows
from nnctl.errors import DataError

from conftest import DATASETS, iris_config


def _load(write_config, config, warnings=None):
    return load_dataset(load_config(write_config(config)), np.random.default_rng(0),
                        (warnings if warnings is not None else []).append)


def test_split_is_stratified_and_disjoint(rng):
    classes = np.repeat([0, 1, 2], [50, 30, 20])
    train, val = split_rows(100, 0.2, rng, classes)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 100
    assert np.bincount(classes[val]).tolist() == [10, 6, 4]


def test_iris_split_and_encoding(write_config):
    data = _load(write_config, iris_config())
    assert len(data.train) == 120 and data.validation is not None and len(data.validation) == 30
    assert data.target.classes == ["setosa", "versicolor", "virginica"]
    assert data.train.X.dtype == np.float32 and data.train.Y.shape == (120, 3)
    # scaling statistics come from the training rows only
    np.testing.assert_allclose(data.train.X.mean(axis=0), 0, atol=1e-5)
    assert np.abs(data.validation.X.mean(axis=0)).max() > 1e-3


def test_regression_with_missing_values_and_categories(write_config):
    warnings: list[str] = []
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                       "features": ["horsepower", "weight", "origin"], "validation_split": 0},
              "model": {"layers": [{"units": 4}, {}]}}
    data = _load(write_config, config, warnings)
    assert data.loss == "mse" and data.target.task == "regression"
    assert len(data.train) == 398 and data.validation is None
    assert any("dropped 8 of 406 rows whose target 'mpg' is missing" in w for w in warnings)
    assert data.preprocessor.input_names == ["horsepower", "weight", "origin=Europe", "origin=Japan", "origin=USA"]
    assert np.isfinite(data.train.X).all()


def test_missing_policies(write_config):
    base = {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg", "features": ["horsepower", "weight"],
            "validation_split": 0}
    layers = {"layers": [{"units": 4}, {}]}
    warnings: list[str] = []
    data = _load(write_config, {"data": {**base, "missing": "drop"}, "model": layers}, warnings)
    assert len(data.train) == 392
    assert any("dropped 6 of 398 rows with missing feature values" in w for w in warnings)
    with pytest.raises(DataError, match=r"column 'horsepower' line \d+: missing value \(data.missing: error\)"):
        _load(write_config, {"data": {**base, "missing": "error"}, "model": layers})


def test_separate_validation_file(write_config, tmp_path):
    val = tmp_path / "val.csv"
    val.write_text((DATASETS / "iris.csv").read_text().splitlines()[0] + "\n5.0,3.4,1.5,0.2,setosa\n")
    config = iris_config()
    config["data"]["validation"] = str(val)
    data = _load(write_config, config)
    assert len(data.train) == 150 and len(data.validation) == 1


def test_data_errors_name_file_and_column(write_config):
    config = iris_config()
    config["data"]["target"] = "specie"
    with pytest.raises(DataError, match=r"config.yaml:4: data.target: 'specie' is not a column of .*iris.csv; "
                                        r"did you mean 'species'\? \(columns: sepal_length, "):
        _load(write_config, config)
    config = iris_config(loss="mse")
    with pytest.raises(DataError, match="target 'species' is not numeric"):
        _load(write_config, config)
    config = iris_config(loss="binary_cross_entropy")
    with pytest.raises(DataError, match="exactly 2 classes"):
        _load(write_config, config)
