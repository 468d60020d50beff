from pathlib import Path

import jsonschema
import pytest
import yaml

from nnctl.config.load import load_config
from nnctl.config.schema import json_schema
from nnctl.data.starter import starter_config
from nnctl.errors import DataError
from nnctl.training.run import train

from conftest import DATASETS


def _write(csv: Path, target: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{csv.stem}.yaml"
    path.write_text(starter_config(csv, target, folder))
    return path


@pytest.mark.parametrize(("name", "target", "metric", "floor"), [
    ("iris", "species", "accuracy", 0.9),
    ("auto_mpg", "mpg", "r2", 0.8),
    ("breast_cancer", "diagnosis", "accuracy", 0.95),
    ("wine", "cultivar", "accuracy", 0.95),
    ("digits", "digit", "accuracy", 0.95),
    ("diabetes", "progression", "r2", 0.4),
    ("seattle_weather", "weather", "accuracy", 0.7),
    ("doctor_visits", "mdvis", "r2", 0.05),
])
def test_starter_configs_for_the_shipped_datasets_train_as_written(tmp_path, name, target, metric, floor):
    # As written, not with fewer epochs: early stopping ends each in 55-210 epochs, 0.1 s (digits: 1.5 s).
    config = load_config(_write(DATASETS / f"{name}.csv", target, tmp_path / "configs"))
    assert config.resolve(config.data.train) == (DATASETS / f"{name}.csv").resolve()
    assert config.output is None  # so the model is named after the config, like any config without `output`
    result = train(config, save=False)
    assert result.final["validation"][metric] >= floor


def test_data_train_is_relative_to_the_config_folder_with_forward_slashes(tmp_path):
    text = starter_config(DATASETS / "iris.csv", "species", tmp_path / "a" / "b")
    line = next(line for line in text.splitlines() if line.strip().startswith("train:"))
    path = line.split(":", 1)[1].split("#")[0].strip()
    assert "\\" not in path and not Path(path).is_absolute() and path.endswith("datasets/iris.csv")


def test_auto_mpg_leaves_out_name_and_one_hot_encodes_origin(tmp_path):
    text = starter_config(DATASETS / "auto_mpg.csv", "mpg", tmp_path)
    config = load_config(_write(DATASETS / "auto_mpg.csv", "mpg", tmp_path))
    assert config.data.features == ["cylinders", "displacement", "horsepower", "weight", "acceleration",
                                    "model_year", "origin"]
    assert config.loss is not None and config.loss.name == "mse" and config.data.target_scale == "standard"
    assert config.model.layers[-1].activation == "identity"
    assert "# left out name: text with 311 distinct values in 406 rows" in text
    origin = next(line for line in text.splitlines() if line.strip() == "- origin" or "- origin " in line)
    assert "categorical: one-hot over 3 values" in origin
    horsepower = next(line for line in text.splitlines() if "- horsepower" in line)
    assert "6 missing values, imputed" in horsepower
    assert "8 rows have no mpg" in text


def test_a_count_target_gets_poisson_with_a_positive_output(tmp_path):
    """Whole numbers from 0 with many values: counts, so loss poisson, a softplus rate, target_scale none."""
    text = starter_config(DATASETS / "doctor_visits.csv", "mdvis", tmp_path)
    config = load_config(_write(DATASETS / "doctor_visits.csv", "mdvis", tmp_path))
    assert config.loss is not None and config.loss.name == "poisson"
    assert config.model.layers[-1].activation == "softplus" and config.data.target_scale == "none"
    assert "(count regression)" in text.splitlines()[0]
    assert "whole numbers from 0 to 69 (39 distinct, 1766 zeros): counts" in text
    # whole numbers that do not start at 0 or 1 are a measure, not counts: mse, as before
    diabetes = load_config(_write(DATASETS / "diabetes.csv", "progression", tmp_path / "d"))
    assert diabetes.loss is not None and diabetes.loss.name == "mse" and diabetes.data.target_scale == "standard"


def test_few_distinct_integers_are_classes_even_when_they_count(tmp_path):
    """0..4 in 100 rows: at most 20 values in fewer than half the rows are class codes, whatever they mean."""
    csv = tmp_path / "claims.csv"
    csv.write_text("x,claims\n" + "".join(f"{(i * 7) % 13},{i % 5}\n" for i in range(100)))
    config = load_config(_write(csv, "claims", tmp_path))
    assert config.loss is not None and config.loss.name == "cross_entropy"
    assert "integer labels are classes here" in starter_config(csv, "claims", tmp_path)


def test_starter_text_is_deterministic():
    assert starter_config(DATASETS / "auto_mpg.csv", "mpg") == starter_config(DATASETS / "auto_mpg.csv", "mpg")


def test_integer_class_codes_become_classification_and_odd_columns_are_left_out(tmp_path):
    rows = ["row,code,x,y,empty,label"]
    for i in range(60):
        label = i % 3
        rows.append(f"{i},id-{i},{label + 0.1 * (i % 5)},{(i * 7) % 11},,{label}")
    csv = tmp_path / "coded.csv"
    csv.write_text("\n".join(rows) + "\n")
    text = starter_config(csv, "label", tmp_path)
    config = load_config(_write(csv, "label", tmp_path))
    assert config.loss is not None and config.loss.name == "cross_entropy"
    assert config.model.layers[-1].activation == "softmax"
    assert config.data.features == ["x", "y"]
    assert "# left out row: counts the rows (0, 1, ...), an identifier" in text
    assert "# left out code: a different text in every row, an identifier" in text
    assert "# left out empty: entirely empty" in text
    assert "3 classes (0 20, 1 20, 2 20)" in text
    assert train(config, save=False).model.target.classes == [0, 1, 2]


def test_a_small_csv_trains_on_every_row_without_early_stopping(tmp_path):
    csv = tmp_path / "small.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 4},{'yes' if i % 2 else 'no'}\n" for i in range(2, 22)))
    text = starter_config(csv, "y", tmp_path)
    config = load_config(_write(csv, "y", tmp_path))
    assert config.data.validation_split == 0 and config.training.early_stopping is None
    assert "only 20 labelled rows" in text
    assert "validation" not in train(config, save=False).final


def test_column_names_that_need_quoting_survive_the_yaml(tmp_path):
    csv = tmp_path / "odd names.csv"
    lines = ["yes,a: b,#c,n,target"]
    lines += [f"{i % 7},{i % 3},{i % 5},{'?' if i == 3 else i * 1.5},{i % 2}" for i in range(60)]
    csv.write_text("\n".join(lines) + "\n")
    text = starter_config(csv, "target", tmp_path)
    config = load_config(_write(csv, "target", tmp_path))
    assert config.data.features == ["yes", "a: b", "#c"]
    # one '?' makes pandas read `n` as text; the comment says how to get the numbers back
    assert "blank '?' in the CSV if it marks a missing value" in text


def test_a_missing_target_column_names_the_file_the_closest_column_and_all_columns():
    csv = DATASETS / "iris.csv"
    with pytest.raises(DataError) as info:
        starter_config(csv, "specie")
    message = str(info.value)
    assert message.startswith(f"{csv}: no column 'specie'")
    assert "did you mean 'species'?" in message
    assert "(columns: sepal_length, sepal_width, petal_length, petal_width, species)" in message


def test_a_single_class_target_is_an_error(tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("x,y\n" + "".join(f"{i},same\n" for i in range(10)))
    with pytest.raises(DataError, match=r"one\.csv: target 'y' has only one class \('same'\)"):
        starter_config(csv, "y", tmp_path)


def test_a_csv_without_usable_features_is_an_error(tmp_path):
    csv = tmp_path / "ids.csv"
    csv.write_text("id,y\n" + "".join(f"{i},{i % 2}\n" for i in range(1, 11)))
    with pytest.raises(DataError, match=r"no usable feature columns besides the target 'y' \(id: counts the rows"):
        starter_config(csv, "y", tmp_path)


def test_starter_configs_satisfy_the_json_schema(tmp_path):
    validator = jsonschema.Draft202012Validator(json_schema())
    for name, target in (("iris", "species"), ("auto_mpg", "mpg")):
        config = yaml.safe_load(starter_config(DATASETS / f"{name}.csv", target, tmp_path))
        assert list(validator.iter_errors(config)) == []


def test_a_date_column_is_kept_as_dates_and_trains_as_one(tmp_path):
    text = starter_config(DATASETS / "seattle_weather.csv", "weather", tmp_path)
    date = next(line for line in text.splitlines() if "- date " in line)
    assert "dates: the year, then month, weekday, yearday as sine/cosine pairs" in date
    assert "date_order" not in text  # 2012/01/01 is year first: no doubt


def test_dates_that_read_both_ways_get_a_date_order_in_the_config(tmp_path):
    csv = tmp_path / "visits.csv"
    csv.write_text("day,count,kind\n" + "".join(f"0{m}/0{m + 1}/2024,{m * 3 % 5},{'ab'[m % 2]}\n" for m in range(1, 9)))
    text = starter_config(csv, "kind", tmp_path)
    assert "date_order: dmy" in text and "write mdy if the month comes first" in text
    config = load_config(_write(csv, "kind", tmp_path))
    assert config.data.date_order == "dmy" and config.data.features == ["day", "count"]
