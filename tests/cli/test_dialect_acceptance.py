"""The acceptance test of CSV dialects: one table written as a clean CSV, an Excel export from a European locale
(';', decimal commas, a UTF-8 byte-order mark, CRLF), a TSV, a Windows-1252 file and a comma-separated file with
quoted decimal commas trains byte-identical models, and every command reads each alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT
from dialects import ENCODINGS, write_variants


def nnctl(*args: str, stdin: str | bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "nnctl", *args], input=stdin.encode() if isinstance(stdin, str)
                          else stdin, capture_output=True, cwd=cwd, timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {text}"]


def _encoding(name: str) -> list[str]:
    return ["--encoding", ENCODINGS[name]] if name in ENCODINGS else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[dict[str, Path], dict[str, Path]]:
    """Each variant's CSV, and the model the shipped Auto MPG config (5 epochs) trains on it."""
    folder = tmp_path_factory.mktemp("dialects")
    files = write_variants(folder)
    models = {}
    for name, path in files.items():
        config = yaml.safe_load((CONFIGS / "auto_mpg.yaml").read_text())
        config["data"]["train"] = path.name
        if name in ENCODINGS:
            config["data"]["encoding"] = ENCODINGS[name]
        config["training"]["epochs"] = 5
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        models[name] = folder / f"{name}.npz"
        result = nnctl("train", str(folder / f"{name}.yaml"), "-o", str(models[name]), "-q")
        assert result.returncode == 0, (name, result.stderr)
    return files, models


def test_every_dialect_trains_byte_identical_arrays(trained):
    _, models = trained
    with np.load(models["clean"], allow_pickle=False) as npz:
        clean = {key: npz[key] for key in npz.files}
    meta = json.loads(str(clean.pop("meta")[()]))
    assert {"layers.0.W", "layers.2.b"} <= set(clean) and any(key.startswith("optimizer.") for key in clean)
    for name, path in models.items():
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        other = json.loads(str(arrays.pop("meta")[()]))
        assert arrays.keys() == clean.keys(), name
        for key, array in arrays.items():  # every array: weights, biases, optimizer state
            assert array.dtype == clean[key].dtype and array.shape == clean[key].shape, (name, key)
            assert array.tobytes() == clean[key].tobytes(), (name, key)
        # the metadata differs only where it names the file and how to read it
        for key in ("checksum", "features", "inputs", "preprocessing", "target", "network"):
            assert other[key] == meta[key], (name, key)
        assert [{k: v for k, v in row.items() if k != "seconds"} for row in other["history"]] == \
            [{k: v for k, v in row.items() if k != "seconds"} for row in meta["history"]], name
        assert {**other["config"]["data"], "train": "", "encoding": None} == \
            {**meta["config"]["data"], "train": "", "encoding": None}, name
    categories = next(f["categories"] for f in meta["preprocessing"]["features"] if f["name"] == "origin")
    assert "Europa (Škoda, Citroën)" in categories


def test_predict_and_evaluate_read_every_dialect_alike(trained):
    files, models = trained
    clean = nnctl("predict", str(models["clean"]), str(files["clean"]))
    assert clean.returncode == 0 and len(clean.stdout.splitlines()) == 407
    scores = nnctl("evaluate", str(models["clean"]), str(files["clean"]), "--json")
    for name, path in files.items():
        for model in (models["clean"], models[name]):
            predicted = nnctl("predict", str(model), str(path), *_encoding(name))
            assert (predicted.returncode, predicted.stdout, predicted.stderr) == (0, clean.stdout, ""), name
        evaluated = nnctl("evaluate", str(models[name]), str(path), "--json", *_encoding(name))
        assert evaluated.stdout == scores.stdout, name
    piped = nnctl("predict", str(models["clean"]), stdin=files["excel_eu"].read_bytes())
    assert piped.stdout == clean.stdout
    asked = nnctl("predict", str(models["clean"]), str(files["excel_eu"]), "--delimiter", ";", "--decimal", ",",
                  "--encoding", "utf-8")
    assert asked.stdout == clean.stdout
    assert nnctl("predict", str(models["clean"]), str(files["tsv"]), "--delimiter", "tab").stdout == clean.stdout


def test_init_on_an_excel_export_writes_a_config_that_trains_the_clean_files_model(trained, tmp_path):
    files, _ = trained
    made = {}
    for name in ("clean", "excel_eu"):
        config = tmp_path / f"{name}.yaml"
        assert nnctl("init", str(files[name]), "--target", "mpg", "-o", str(config)).returncode == 0
        data = yaml.safe_load(config.read_text())["data"]
        assert (data.get("delimiter"), data.get("decimal")) == ((";", ",") if name == "excel_eu" else (None, None))
        assert nnctl("check", str(config)).returncode == 0
        made[name] = tmp_path / f"{name}.npz"
        assert nnctl("train", str(config), "-o", str(made[name]), "-q", "--epochs", "2").returncode == 0
    with np.load(made["clean"]) as a, np.load(made["excel_eu"]) as b:
        assert all(a[key].tobytes() == b[key].tobytes() for key in a.files if key != "meta")


def test_bad_or_unsure_dialects_exit_2_naming_the_flag_or_key(trained, tmp_path):
    files, models = trained
    model = str(models["clean"])
    _one_line_error(nnctl("predict", model, str(files["cp1252"])), f"{files['cp1252']}: not UTF-8 (byte 0x8a at "
                    "line 12); set --encoding (e.g. cp1252 or latin-1)")
    _one_line_error(nnctl("predict", model, "--delimiter", "ab"), "--delimiter: expected one character such as ',', "
                    "';', '|' or tab (written tab or \"\\t\"), got 'ab'; not a letter, digit, quote, '.' or line break")
    _one_line_error(nnctl("predict", model, "--decimal", ";"), "--decimal: expected '.' or ',', got ';'")
    _one_line_error(nnctl("evaluate", model, str(files["clean"]), "--encoding", "cp1525"), "--encoding: unknown "
                    "text encoding 'cp1525'; did you mean 'cp1258'? (use a Python codec name such as utf-8, cp1252, "
                    "latin-1, iso8859-15 or utf-16)")
    _one_line_error(nnctl("init", str(files["cp1252"]), "--target", "mpg"),
                    f"{files['cp1252']}: not UTF-8 (byte 0x8a at line 12); set --encoding (e.g. cp1252 or latin-1)")
    unsure = tmp_path / "unsure.csv"
    unsure.write_text("a,b;c,mpg\n1,2;3,4\n")
    _one_line_error(nnctl("init", str(unsure), "--target", "x"), f"{unsure}: cannot tell which character separates "
                    "the fields: the header splits into 3 names on ',' and 2 names on ';', and the rows fit both; set "
                    "--delimiter")
    config = tmp_path / "eu.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": str(files["excel_eu"]), "target": "mpg", "delimiter": ","},
                                      "model": {"layers": [{}]}}))
    result = nnctl("check", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("the file looks ';'-separated: set data.delimiter to ';'"), result.stderr
