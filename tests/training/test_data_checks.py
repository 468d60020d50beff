"""The data checks before the first epoch find constant features with one reduction, however wide the data."""

import numpy as np

from nnctl.data.rows import InMemoryRows
from nnctl.model.preprocessing import FeatureSpec, Preprocessor
from nnctl.training.diagnostics import data_checks


def test_constant_features_of_wide_data():
    rng = np.random.default_rng(0)
    p = 2000
    specs = [FeatureSpec(f"x{j}", "numeric", center=1.0, scale=2.0) for j in range(p)]
    specs.insert(3, FeatureSpec("c", "categorical", categories=["a", "b"]))
    specs.append(FeatureSpec("k", "categorical", categories=["a", "b", "c"]))
    pre = Preprocessor(specs)
    X = rng.standard_normal((30, pre.n_inputs))
    X[:, 7] = 0.5  # x5 (after the two inputs of c): 0.5 * 2 + 1 = 2
    X[:, 3:5] = [1.0, 0.0]  # c is always 'a'
    X[:, -1] = 0.0  # one of k's three inputs is constant: k is not
    X[:, -3:-1] = rng.integers(0, 2, (30, 2))
    checks = data_checks(InMemoryRows(X, np.zeros((30, 1)), np.zeros(30)), pre, 0)
    assert checks.constant.keys() == {"x5", "c"} and checks.constant["x5"] == 2.0
    assert np.isnan(checks.constant["c"])
