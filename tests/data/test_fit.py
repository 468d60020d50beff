import io

import numpy as np
import pandas as pd
import pytest

from nnctl.config.schema import DataConfig
from nnctl.data.fit import encode_target, fit_preprocessor, fit_target, labels_of, transform
from nnctl.data.reader import read_csv
from nnctl.errors import DataError
from nnctl.model.preprocessing import MISSING, Preprocessor


def _data(scale: str = "standard", missing: str = "impute", **settings: object) -> DataConfig:
    return DataConfig.model_validate({"train": "x.csv", "target": "y", "scale": scale, "missing": missing, **settings})


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_standard_scaling_is_fitted_on_the_given_rows():
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 10.0, 10.0]})
    pre = fit_preprocessor(train, ["a", "b"], _data("standard", "impute"))
    X = transform(pre, pd.DataFrame({"a": [2.0, 5.0], "b": [10.0, 11.0]}), np.float64, "x.csv")
    std = np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(X[:, 0], [0.0, 3.0 / std])
    np.testing.assert_allclose(X[:, 1], [0.0, 1.0])  # constant column: centred, divided by 1


def test_minmax_and_none():
    train = pd.DataFrame({"a": [2.0, 4.0, 6.0]})
    X = transform(fit_preprocessor(train, ["a"], _data("minmax", "impute")), train, np.float32, "x")
    np.testing.assert_allclose(X[:, 0], [0, 0.5, 1])
    assert X.dtype == np.float32
    X = transform(fit_preprocessor(train, ["a"], _data("none", "impute")), train, np.float64, "x")
    np.testing.assert_allclose(X[:, 0], [2, 4, 6])


def test_one_hot_with_missing_and_unknown_categories():
    train = _frame("colour,size\nred,1\nblue,2\n,3\nred,4\n")
    pre = fit_preprocessor(train, ["colour", "size"], _data("none", "impute"))
    assert pre.input_names == ["colour=" + MISSING, "colour=blue", "colour=red", "size"]
    X = transform(pre, _frame("colour,size\nblue,1\ngreen,2\n,3\n"), np.float64, "x")
    np.testing.assert_array_equal(X[:, :3], [[0, 1, 0], [0, 0, 0], [1, 0, 0]])


def test_numeric_missing_values_are_imputed_with_the_training_mean():
    train = _frame("a,b\n1,0\n,0\n5,0\n")
    pre = fit_preprocessor(train, ["a"], _data("none", "impute"))
    np.testing.assert_allclose(transform(pre, train, np.float64, "x")[:, 0], [1, 3, 5])


def test_policy_other_than_impute_rejects_gaps_at_predict_time():
    pre = fit_preprocessor(_frame("a,b\n1,x\n2,y\n"), ["a", "b"], _data("standard", "drop"))
    with pytest.raises(DataError, match=r"column 'a' line 3: missing value.*data.missing: drop"):
        transform(pre, _frame("a,b\n1,x\n,y\n"), np.float64, "new.csv")
    with pytest.raises(DataError, match=r"column 'b' line 2: missing value.*data.missing: drop"):
        transform(pre, _frame("a,b\n1,\n"), np.float64, "new.csv")


def test_text_in_a_numeric_column_names_column_and_line():
    pre = fit_preprocessor(_frame("a,b\n1,2\n3,4\n"), ["a", "b"], _data("standard", "impute"))
    with pytest.raises(DataError, match=r"new.csv: column 'b' line 4: 'oops' is not a number"):
        transform(pre, _frame("a,b\n1,2\n3,4\n5,oops\n"), np.float64, "new.csv")
    with pytest.raises(DataError, match=r"column 'a' line 2: inf is not a finite number"):
        transform(pre, _frame("a,b\ninf,2\n"), np.float64, "new.csv")


def test_missing_feature_column_suggests_the_closest():
    pre = fit_preprocessor(_frame("petal_width\n1\n"), ["petal_width"], _data("standard", "impute"))
    with pytest.raises(DataError, match="no feature column 'petal_width'; did you mean 'petal_widht'"):
        transform(pre, _frame("petal_widht\n1\n"), np.float64, "x.csv")


def test_preprocessor_round_trips_through_a_dict():
    pre = fit_preprocessor(_frame("a,c\n1,x\n2,y\n"), ["a", "c"], _data("minmax", "impute"))
    again = Preprocessor.from_dict(pre.to_dict())
    frame = _frame("a,c\n1.5,y\n")
    np.testing.assert_array_equal(transform(pre, frame, np.float64, "x"), transform(again, frame, np.float64, "x"))


def test_class_labels_keep_their_type():
    assert labels_of(pd.Series([2, 1, 2])) == [2, 1, 2]
    assert labels_of(pd.Series([1.0, 0.0])) == [1, 0]
    assert labels_of(pd.Series(["b", "a"])) == ["b", "a"]
    target = fit_target(pd.Series([3, 1, 3], name="y"), "classification", binary=False,
                               target_scale="none", source="x")
    assert target.classes == [1, 3]
    y, Y = encode_target(target, pd.Series([3, 1], name="y"), np.float32, "x")
    np.testing.assert_array_equal(y, [1, 0])
    np.testing.assert_array_equal(Y, [[0, 1], [1, 0]])


def test_binary_target_is_one_column():
    target = fit_target(pd.Series(["no", "yes", "no"], name="y"), "classification", binary=True,
                               target_scale="none", source="x")
    _, Y = encode_target(target, pd.Series(["yes", "no"], name="y"), np.float64, "x")
    np.testing.assert_array_equal(Y, [[1], [0]])
    np.testing.assert_allclose(target.probabilities(np.array([[0.25]])), [[0.75, 0.25]])


def test_target_errors():
    with pytest.raises(DataError, match="only one class"):
        fit_target(pd.Series(["a", "a"], name="y"), "classification", binary=False,
                          target_scale="none", source="x")
    target = fit_target(pd.Series(["a", "b"], name="y"), "classification", binary=False,
                               target_scale="none", source="x")
    with pytest.raises(DataError, match="label 'c'"):
        encode_target(target, pd.Series(["c"], name="y"), np.float64, "x")
    with pytest.raises(DataError, match="not a finite number"):
        fit_target(pd.Series(["1", "x"], name="y"), "regression", binary=False,
                          target_scale="none", source="x")


def test_regression_target_scaling_inverts():
    target = fit_target(pd.Series([10.0, 20.0, 30.0], name="y"), "regression", binary=False,
                               target_scale="standard", source="x")
    y, Y = encode_target(target, pd.Series([10.0, 30.0], name="y"), np.float64, "x")
    np.testing.assert_allclose(target.values(Y), y)


def test_csv_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="no data"):
        read_csv(tmp_path / "empty.csv")
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    with pytest.raises(DataError, match="duplicate column name 'a'"):
        read_csv(tmp_path / "dup.csv")
    (tmp_path / "bin.csv").write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(tmp_path / "bin.csv")


def test_rows_longer_than_the_header_are_an_error_not_an_index(tmp_path):
    """pandas would quietly use the first column as the row index and shift every value one column left."""
    for text in ("a,b,y\n1,2,x,9\n3,4,y,8\n", "a,b,y\n1,2,x,9\n3,4,y\n"):
        path = tmp_path / "shifted.csv"
        path.write_text(text)
        with pytest.raises(DataError, match="rows have more fields than the header has names"):
            read_csv(path)


def test_values_beyond_float32_range_are_named():
    pre = fit_preprocessor(_frame("a,b\n1,2\n3,4\n"), ["a"], _data("standard", "impute"))
    with pytest.raises(DataError, match=r"column 'a' line 3: 1e\+308 is too large: beyond float32 range"):
        transform(pre, _frame("a\n1\n1e308\n"), np.float32, "new.csv")
    target = fit_target(pd.Series([1.0, 2.0], name="y"), "regression", binary=False, target_scale="none",
                               source="t.csv")
    with pytest.raises(DataError, match=r"target 'y' line 3: 1e\+300 is beyond float32 range"):
        encode_target(target, pd.Series([1.0, 1e300], name="y"), np.float32, "t.csv")


# --- dates and missing indicators ------------------------------------------------------------------


def test_a_text_column_of_dates_becomes_date_inputs_scaled_on_the_rows():
    frame = _frame("day,x\n2024-01-01,1\n2024-01-01,2\n2026-07-01,3\n,4\n")
    pre = fit_preprocessor(frame, ["day", "x"], _data())
    spec = pre.features[0]
    assert (spec.kind, spec.order, spec.parts) == ("date", "iso", ["year", "month", "weekday", "yearday"])
    years = np.array([2024.0, 2024.0, 2026 + 181 / 365.25])  # weighted by rows: 2024-01-01 counts twice
    assert spec.center == pytest.approx(years.mean()) and spec.scale == pytest.approx(years.std())
    assert pre.input_names[:3] == ["day.year", "day.month_sin", "day.month_cos"] and pre.n_inputs == 8
    X = transform(pre, frame, np.float64, "x")
    assert X[:3, 0] == pytest.approx((years - years.mean()) / years.std())
    assert X[3, 0] == pytest.approx(X[:3, 0].mean(), abs=0.05)  # a gap is the mean instant (near the mean year)


def test_data_dates_lists_columns_and_an_empty_list_turns_detection_off():
    frame = _frame("day,when\n2024-01-01,31/01/2024\n2024-02-01,01/02/2024\n")
    assert [s.kind for s in fit_preprocessor(frame, ["day", "when"], _data(dates=[])).features] == \
           ["categorical", "categorical"]
    assert [s.kind for s in fit_preprocessor(frame, ["day", "when"], _data(dates=["when"])).features] == \
           ["categorical", "date"]
    with pytest.raises(DataError, match=r"x: column 'day' \(data.dates\): 'soon' is not a date; write dates as"):
        fit_preprocessor(_frame("day\n2024-01-01\nsoon\n"), ["day"], _data(dates=["day"]), "x")


def test_day_or_month_first_is_an_error_naming_date_order_unless_set():
    frame = _frame("when\n01/02/2024\n03/04/2024\n")
    with pytest.raises(DataError, match=r"read as day first and as month first; set data\.date_order: dmy"):
        fit_preprocessor(frame, ["when"], _data(), "x")
    for order, month in (("dmy", 1), ("mdy", 0)):  # 01/02: February day first, January month first
        spec = fit_preprocessor(frame, ["when"], _data(date_order=order)).features[0]
        X = transform(Preprocessor([spec], "none", "impute"), frame, np.float64, "x")
        assert X[0, 1] == pytest.approx(np.sin(2 * np.pi * month / 12))
    with pytest.raises(DataError, match=r"'13/02/2024' is not a date in data.date_order mdy"):
        fit_preprocessor(_frame("when\n13/02/2024\n"), ["when"], _data(dates=["when"], date_order="mdy"), "x")


def test_predict_names_a_value_that_is_not_a_date_like_the_training_ones():
    pre = fit_preprocessor(_frame("day\n31/01/2024\n"), ["day"], _data())
    with pytest.raises(DataError, match=r"new.csv: column 'day' line 3: '2024-01-31' is not a date like the "
                                        r"training ones \(31/03/2024, day first\)"):
        pre.transform_columns({"day": ["01/01/2024", "2024-01-31"]}, 2, np.float64, "new.csv")


def test_missing_indicators_add_one_input_per_numeric_or_date_column_with_gaps():
    frame = _frame("a,b,day,c\n1,2,2024-01-01,x\n,3,,\n5,4,2024-02-01,y\n")
    pre = fit_preprocessor(frame, ["a", "b", "day", "c"], _data(missing_indicators=True))
    assert [s.indicator for s in pre.features] == [True, False, True, False]  # text has its <missing> category
    names = pre.input_names
    assert names[:3] == ["a", "a.missing", "b"] and names[10] == "day.missing"
    X = transform(pre, frame, np.float64, "x")
    assert X[:, 1].tolist() == [0, 1, 0] and X[:, 10].tolist() == [0, 1, 0]
    assert X[1, 0] == pytest.approx(0.0)  # the gap itself is still the (standardised) mean
    assert fit_preprocessor(frame, ["a"], _data()).n_inputs == 1  # off by default
