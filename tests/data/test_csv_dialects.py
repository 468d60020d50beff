"""Training reads a CSV in its dialect, in memory and streaming, for the training and a validation file, through
the cache and `init`: the same table gives the same numbers whatever its delimiter, decimal mark or encoding."""

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from nnctl.config.load import load_config
from nnctl.data.dialects import config_dialect
from nnctl.data.load import load_dataset
from nnctl.data.reader import read_csv
from nnctl.data.starter import starter_config
from nnctl.dialect import Settings
from nnctl.errors import DataError
from nnctl.training.run import train

from dialects import ENCODINGS, auto_mpg_table, write, write_variants

FEATURES = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return write_variants(tmp_path_factory.mktemp("dialects"))


def _config(write_config, train, **data):
    data = {"target": "mpg", "features": FEATURES, **data}
    config = {"seed": 0, "data": {"train": str(train), **data},
              "model": {"layers": [{"units": 8}, {"activation": "identity"}]}, "loss": "mse",
              "training": {"epochs": 1, "batch_size": 32}}
    return load_config(write_config(config))


def _same_frames(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
    for column in a.columns:
        if a[column].dtype.kind == "f":  # the same float64 bits, gaps included
            assert a[column].to_numpy().tobytes() == b[column].to_numpy().tobytes(), column
        else:
            assert a[column].tolist() == b[column].tolist(), column


def test_every_variant_reads_as_the_clean_file(variants, write_config):
    clean = read_csv(variants["clean"])
    assert clean["displacement"].dtype == np.float64 and "Europa (Škoda, Citroën)" in set(clean["origin"])
    for name, path in variants.items():
        config = _config(write_config, path, encoding=ENCODINGS.get(name))
        _same_frames(read_csv(path, config_dialect(config, path)), clean)


def test_streaming_and_a_validation_file_in_another_dialect(variants, write_config, rng):
    def fitted(**data):
        dataset = load_dataset(_config(write_config, variants["clean"], **data), np.random.default_rng(0),
                               lambda message: None)
        dataset.verify()  # streaming: read the validation file (pass 1 reads its header only)
        return dataset.preprocessor, dataset.target, dataset.sources.rows_validation

    memory = fitted(validation=str(variants["excel_eu"]))
    assert memory[2] == 398  # every labelled row of the Excel file validates
    streamed = fitted(validation=str(variants["tsv"]), streaming=True, chunk_rows=50, shuffle_buffer=100)
    assert streamed[2] == 398
    # streaming merges its statistics chunk by chunk: equal to the in-memory fit to rounding
    for a, b in zip(memory[0].features, streamed[0].features, strict=True):
        assert a.kind == b.kind and a.categories == b.categories
        np.testing.assert_allclose([a.center, a.scale], [b.center, b.scale], rtol=1e-12)
    eu = load_dataset(_config(write_config, variants["excel_eu"], streaming=True, chunk_rows=50,
                              shuffle_buffer=100), np.random.default_rng(0), lambda message: None)
    assert eu.preprocessor.features[6].categories == streamed[0].features[6].categories


def test_numbers_with_the_other_decimal_mark_beyond_the_sample(tmp_path, write_config):
    """The first 16 KB show no decimals, so ';' means a decimal comma; a point further down must not make the
    column text (a category per value) without a word."""
    path = tmp_path / "late.csv"
    path.write_text("x;y\n" + "1;2\n" * 6000 + "2.5;3\n")
    columns = {"target": "y", "features": ["x"]}
    with pytest.raises(DataError, match=r"late.csv: column 'x' holds numbers with a decimal point \('2.5'\), read "
                                        r"as text after the first rows showed ','; set data.decimal to '.' \(or to "
                                        r"',' to keep them as text\)"):
        load_dataset(_config(write_config, path, **columns), np.random.default_rng(0), lambda message: None)
    frame = read_csv(path, config_dialect(_config(write_config, path, decimal=".", **columns), path))
    assert frame["x"].iloc[-1] == 2.5
    with pytest.raises(DataError, match=r"column 'x' holds numbers with a decimal point"):  # chunk by chunk too
        load_dataset(_config(write_config, path, streaming=True, chunk_rows=1000, shuffle_buffer=1000, **columns),
                     np.random.default_rng(0), lambda message: None)


def test_not_utf8_beyond_the_sample_names_the_line(tmp_path, write_config):
    path = tmp_path / "late.csv"
    header, rows = auto_mpg_table()
    write(path, header, rows * 10, encoding="cp1252")  # the first 'Škoda' is far beyond the first 16 KB
    line = 2 + next(i for i, row in enumerate(rows * 10) if "Škoda" in ",".join(row))
    for streaming in (False, True):
        with pytest.raises(DataError, match=rf"late.csv: not UTF-8 \(byte 0x8a at line {line}\); set data.encoding "
                                            r"\(e.g. cp1252 or latin-1\)$"):
            load_dataset(_config(write_config, path, streaming=streaming), np.random.default_rng(0),
                         lambda message: None)


def test_the_wrong_delimiter_asked_for_says_which_is_right(variants, write_config, tmp_path):
    eu = variants["excel_eu"]
    with pytest.raises(DataError, match=r"excel_eu.csv: line \d+: \d+ fields, but the header has \d+; the file "
                                        r"looks ';'-separated: set data.delimiter to ';'$"):
        load_dataset(_config(write_config, eu, delimiter=","), np.random.default_rng(0), lambda message: None)
    one = tmp_path / "one.csv"
    one.write_text("a;b;mpg\n1;2;3\n4;5;6\n")
    with pytest.raises(DataError, match=r"one.csv: the header is one name \('a;b;mpg'\) with fields separated by "
                                        r"','; the file looks ';'-separated: set data.delimiter to ';'"):
        read_csv(one, config_dialect(_config(write_config, one, delimiter=","), one))


def test_unquoted_decimal_commas_in_a_comma_separated_file(tmp_path, write_config):
    path = tmp_path / "split.csv"
    path.write_text("a,b,mpg\n1,5,2,3\n2,5,3,4\n")
    with pytest.raises(DataError, match=r"rows have more fields than the header has names; if numbers are written "
                                        r"with a decimal comma \(5,1\), each splits into two fields: quote them "
                                        r"\(\"5,1\"\) or separate the fields with ';' \(set data.delimiter to ';'\)"):
        read_csv(path, config_dialect(_config(write_config, path), path))


def test_the_cache_keeps_dialects_apart(tmp_path, write_config, monkeypatch):
    """Same path, size and modification time, another delimiter: a key of files and settings alone would hit."""
    monkeypatch.setattr("nnctl.data.cache.MIN_BYTES", 0)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NNCTL_CACHE_DIR", str(cache))
    path = tmp_path / "data.csv"
    header, rows = auto_mpg_table()
    write(path, header, rows, delimiter=";")
    stamp = os.stat(path).st_mtime_ns
    first = train(_config(write_config, path), save=False)
    write(path, header, rows, delimiter="\t")
    os.utime(path, ns=(stamp, stamp))
    second = train(_config(write_config, path), save=False)
    assert len(list(cache.glob("*.npz"))) == 2  # missed: parsed again, in its own dialect
    assert second.model.network.params.tobytes() == first.model.network.params.tobytes()
    train(_config(write_config, path), save=False)
    assert len(list(cache.glob("*.npz"))) == 2  # the same dialect hits


def test_init_writes_the_dialect_it_read(variants, tmp_path):
    text = starter_config(variants["excel_eu"], "mpg", tmp_path)
    data = yaml.safe_load(text)["data"]
    assert (data["delimiter"], data["decimal"]) == (";", ",") and "encoding" not in data
    assert "delimiter: ;                        # detected: the character between fields" in text
    data = yaml.safe_load(starter_config(variants["cp1252"], "mpg", tmp_path, Settings(encoding="cp1252")))["data"]
    assert data["encoding"] == "cp1252" and "delimiter" not in data and "decimal" not in data
    data = yaml.safe_load(starter_config(variants["tsv"], "mpg", tmp_path))["data"]
    assert data["delimiter"] == "tab"
    assert "delimiter" not in yaml.safe_load(starter_config(variants["clean"], "mpg", tmp_path))["data"]
    with pytest.raises(DataError, match=r"not UTF-8 \(byte 0x8a at line \d+\); set encoding"):
        starter_config(variants["cp1252"], "mpg", tmp_path)
