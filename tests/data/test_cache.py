"""The data cache: hits give the same model bytes as a fresh parse; any change to the data or its settings
misses; a damaged cache file is ignored."""

from __future__ import annotations

import os

import pytest

import nnctl.data.cache
import nnctl.data.parse
import nnctl.training.events
from nnctl.config.load import load_config
from nnctl.training.run import train

from conftest import DATASETS


@pytest.fixture
def cached(monkeypatch, tmp_path):
    monkeypatch.setattr(nnctl.data.cache, "MIN_BYTES", 0)  # cache even the small test files
    monkeypatch.setenv("NNCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _config(write_config, tmp_path, **data):
    csv = tmp_path / "mpg.csv"
    if not csv.exists():
        csv.write_bytes((DATASETS / "auto_mpg.csv").read_bytes())
    config = {"data": {"train": str(csv), "target": "mpg", "features": ["weight", "horsepower", "origin"],
                       "target_scale": "standard", **data},
              "model": {"layers": [{"units": 8, "dropout": 0.1}, {}]}, "training": {"epochs": 3}}
    return load_config(write_config(config))


def test_a_hit_trains_the_same_model_without_parsing(write_config, tmp_path, cached, monkeypatch):
    warnings: list[str] = []

    class Record(nnctl.training.events.Callback):
        def on_warning(self, message):
            warnings.append(message)

    first = train(_config(write_config, tmp_path), save=False, callback=Record())
    assert len(list(cached.glob("*.npz"))) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("the CSV was parsed again")

    monkeypatch.setattr(nnctl.data.parse, "read_csv", no_parsing)
    second = train(_config(write_config, tmp_path), save=False, callback=Record())
    assert second.model.network.params.tobytes() == first.model.network.params.tobytes()
    assert second.model.preprocessor == first.model.preprocessor
    assert warnings[0] == warnings[1] and "dropped 8 of 406 rows" in warnings[0]  # replayed on a hit


def test_changes_to_the_file_or_the_settings_miss(write_config, tmp_path, cached):
    train(_config(write_config, tmp_path), save=False)
    train(_config(write_config, tmp_path, scale="minmax"), save=False)
    assert len(list(cached.glob("*.npz"))) == 2
    csv = tmp_path / "mpg.csv"
    csv.write_text(csv.read_text().replace("USA", "US"))
    os.utime(csv, ns=(csv.stat().st_atime_ns, csv.stat().st_mtime_ns + 10**9))
    result = train(_config(write_config, tmp_path), save=False)
    assert len(list(cached.glob("*.npz"))) == 3
    assert "US" in result.model.preprocessor.features[2].categories


def test_a_damaged_cache_file_is_ignored(write_config, tmp_path, cached):
    first = train(_config(write_config, tmp_path), save=False)
    (entry,) = cached.glob("*.npz")
    entry.write_bytes(b"not a cache file")
    again = train(_config(write_config, tmp_path), save=False)
    assert again.model.network.params.tobytes() == first.model.network.params.tobytes()


def test_small_files_and_cache_false_are_not_cached(write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_CACHE_DIR", str(tmp_path / "cache"))
    train(_config(write_config, tmp_path), save=False)  # 22 KB: below MIN_BYTES
    monkeypatch.setattr(nnctl.data.cache, "MIN_BYTES", 0)
    train(_config(write_config, tmp_path, cache=False), save=False)
    assert not (tmp_path / "cache").exists()


def test_a_run_on_cached_data_imports_no_pandas(write_config, tmp_path, cached):
    """Parsing is the only user of pandas: `nnctl train` on a cache hit, in a fresh process, never imports it."""
    import json
    import subprocess
    import sys

    config = _config(write_config, tmp_path)
    train(config, save=False)  # fills the cache
    code = ("import json, sys\nimport nnctl.data.cache\nnnctl.data.cache.MIN_BYTES = 0\n"
            "sys.argv = ['nnctl', *sys.argv[1:]]\nfrom nnctl.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(json.dumps(sorted(m for m in sys.modules if m == 'pandas' or m.startswith('pandas.'))))")
    env = {**os.environ, "NNCTL_CACHE_DIR": str(cached)}
    args = ["train", str(config.source), "-q", "-o", str(tmp_path / "m.npz")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
