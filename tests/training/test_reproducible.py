"""The same seed, data and config give the same model, from one version of nnctl to the next.

tests/training/pinned/iris.json holds the SHA-256 of every array of the model configs/iris.yaml trains (weights,
biases and Adam's moments), recorded before the package was reorganised into layers (issue 13), and the weights'
values. Floating point is only reproducible bit for bit with the same NumPy and the same BLAS kernel, so on the
machine and libraries the file records, every hash must match; elsewhere (a newer NumPy, another CPU) the weights
must still match to float32 rounding accumulated over 150 epochs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import threadpoolctl

from nnctl.config.load import load_config
from nnctl.training.run import train

from conftest import CONFIGS

PINNED = json.loads((Path(__file__).parent / "pinned" / "iris.json").read_text())


def _environment() -> dict[str, str]:
    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    described = " ".join(str(blas[0].get(key)) for key in ("internal_api", "version", "architecture")) if blas else ""
    return {"numpy": np.__version__, "blas": described}


def test_the_shipped_iris_config_trains_the_pinned_model():
    model = train(load_config(CONFIGS / "iris.yaml", ["data.cache=false"]), save=False).model
    arrays = model.arrays()
    assert sorted(arrays) == sorted(PINNED["hashes"])
    if _environment() == PINNED["recorded_with"]:
        hashes = {key: hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
                  for key, value in arrays.items()}
        assert hashes == PINNED["hashes"]
    for key, values in PINNED["values"].items():
        np.testing.assert_allclose(np.ravel(arrays[key]), values, rtol=1e-3, atol=1e-4, err_msg=key)
