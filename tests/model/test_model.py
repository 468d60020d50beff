import errno
import json
import zipfile

import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.errors import ModelFileError, OutputError
from nnctl.model.model import load_model
from nnctl.training.run import train

from conftest import iris_config


@pytest.fixture
def trained(write_config, tmp_path):
    path = tmp_path / "iris.npz"
    result = train(load_config(write_config(iris_config())), output=path)
    return result.model, path


def test_file_layout_matches_the_spec(trained):
    _, path = trained
    with np.load(path, allow_pickle=False) as npz:
        assert {"layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b", "meta"} <= set(npz.files)
        assert npz["layers.0.W"].shape == (4, 8) and npz["layers.0.b"].shape == (8,)
        assert npz["layers.1.W"].shape == (8, 3)
        meta = json.loads(str(npz["meta"][()]))
    assert meta["format_version"] == 1 and meta["nnctl_version"]
    assert meta["target"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["config"]["model"]["layers"][-1] == {"units": 3, "activation": "softmax", "init": "glorot_uniform",
                                                       "dropout": 0.0}
    assert [row["epoch"] for row in meta["history"]] == [1, 2, 3, 4, 5]
    assert {"train_loss", "val_loss", "val_accuracy", "seconds", "learning_rate"} <= set(meta["history"][0])
    assert meta["preprocessing"]["features"][0]["name"] == "sepal_length"


def test_round_trip_gives_identical_predictions(trained, rng):
    model, path = trained
    loaded = load_model(path)
    X = rng.standard_normal((20, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.output(X), model.output(X))
    np.testing.assert_array_equal(loaded.network.params, model.network.params)
    assert loaded.history == model.history
    assert loaded.target == model.target and loaded.preprocessor == model.preprocessor


def test_save_is_atomic_and_leaves_no_temp_files(trained, tmp_path):
    model, path = trained
    before = path.read_bytes()
    model.save(path)
    assert path.read_bytes() == before  # deterministic bytes for the same model
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".yaml") == ["iris.npz"]


def test_to_bytes_is_the_saved_file(trained):
    model, path = trained
    assert model.to_bytes() == path.read_bytes()


def test_save_failure_keeps_the_old_file(trained, monkeypatch):
    model, path = trained
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OutputError, match=r"cannot write the model file \(No space left on device\); the "
                                          r"previous file is unchanged"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.glob(".iris.npz.*")] == []


def _rewrite(path, target, change):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = change(item.filename, src.read(item.filename))
            if data is not None:
                dst.writestr(item.filename, data)


def test_damaged_files_are_rejected_with_a_reason(trained, tmp_path):
    _, path = trained
    cases = {}
    (tmp_path / "text.npz").write_text("hello")
    cases["text.npz"] = "not a NumPy .npz archive"
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:500])
    cases["cut.npz"] = "truncated"
    _rewrite(path, tmp_path / "nometa.npz", lambda name, data: None if name == "meta.npy" else data)
    cases["nometa.npz"] = "no 'meta' entry"

    def flip(name, data):
        if name == "layers.0.W.npy":
            data = data[:-1] + bytes([data[-1] ^ 1])
        return data

    _rewrite(path, tmp_path / "flipped.npz", flip)
    cases["flipped.npz"] = "checksum mismatch"
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    cases["plain.npz"] = "no 'meta' entry"

    def newer(name, data):
        if name == "meta.npy":
            with np.load(path) as npz:
                meta = json.loads(str(npz["meta"][()]))
            meta["format_version"] = 99
            import io
            buf = io.BytesIO()
            np.save(buf, np.array(json.dumps(meta)))
            return buf.getvalue()
        return data

    _rewrite(path, tmp_path / "newer.npz", newer)
    cases["newer.npz"] = "newer than this nnctl reads"

    def replace_w(array):
        def change(name, data):
            if name == "layers.0.W.npy":
                import io
                buf = io.BytesIO()
                np.save(buf, array, allow_pickle=True)
                return buf.getvalue()
            return data
        return change

    _rewrite(path, tmp_path / "object.npz", replace_w(np.array([{"evil": 1}], dtype=object)))
    cases["object.npz"] = "object arrays"
    _rewrite(path, tmp_path / "shape.npz", replace_w(np.zeros((5, 8), np.float32)))
    cases["shape.npz"] = r"array 'layers.0.W' is float32\[5, 8\], the metadata"
    _rewrite(path, tmp_path / "dtype.npz", replace_w(np.zeros((4, 8), np.float64)))
    cases["dtype.npz"] = r"array 'layers.0.W' is float64\[4, 8\], the metadata"
    for name, reason in cases.items():
        with pytest.raises(ModelFileError, match=reason):
            load_model(tmp_path / name)
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "missing.npz")


def _with_meta(path, out, **changes):
    """A copy of the model file whose meta JSON has `changes` (None: the key removed)."""
    import io

    def change(name, data):
        if name != "meta.npy":
            return data
        with np.load(path) as npz:
            meta = json.loads(str(npz["meta"][()]))
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        buf = io.BytesIO()
        np.save(buf, np.array(json.dumps(meta)))
        return buf.getvalue()

    _rewrite(path, out, change)
    return out


def test_temperature_and_threshold_round_trip(trained, tmp_path, rng):
    model, _ = trained
    X = rng.standard_normal((20, 4)).astype(np.float32)
    raw = model.output(X)
    model.temperature = 2.5
    model.save(tmp_path / "t.npz")
    loaded = load_model(tmp_path / "t.npz")
    assert loaded.temperature == 2.5 and loaded.threshold is None
    calibrated = loaded.output(X)
    # softmax(Z / T): flatter, same argmax
    assert (calibrated.max(axis=1) < raw.max(axis=1)).all()
    np.testing.assert_array_equal(calibrated.argmax(axis=1), raw.argmax(axis=1))
    Z = model.network.logits(X) / np.float32(2.5)
    expected = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(calibrated, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    with np.load(tmp_path / "t.npz") as npz:
        meta = json.loads(str(npz["meta"][()]))
    assert meta["temperature"] == 2.5 and meta["format_version"] == 2


def test_a_file_without_the_keys_loads_as_before(trained, tmp_path):
    _, path = trained
    loaded = load_model(_with_meta(path, tmp_path / "old.npz", temperature=None, threshold=None))
    assert loaded.temperature is None and loaded.threshold is None


@pytest.mark.parametrize("key, value", [("temperature", 0), ("temperature", "2"), ("threshold", 1.0),
                                        ("threshold", -0.1)])
def test_a_bad_temperature_or_threshold_is_a_model_file_error(trained, tmp_path, key, value):
    _, path = trained
    with pytest.raises(ModelFileError, match=f"'{key}' must be"):
        load_model(_with_meta(path, tmp_path / "bad.npz", **{key: value}))
