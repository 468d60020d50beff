"""Dates as inputs: parsing in each order, time zones, the parts' values, detection and its doubts."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from nnctl.model import dates
from nnctl.model.preprocessing import is_missing


@pytest.mark.parametrize(("text", "order", "expected"), [
    ("2024-03-31", "iso", datetime(2024, 3, 31)),
    ("2024/3/1", "iso", datetime(2024, 3, 1)),
    ("2024.03.31", "iso", datetime(2024, 3, 31)),
    ("2024-03-31 14:05", "iso", datetime(2024, 3, 31, 14, 5)),
    ("2024-03-31T14:05:09", "iso", datetime(2024, 3, 31, 14, 5, 9)),
    ("2024-03-31T14:05:09Z", "iso", datetime(2024, 3, 31, 14, 5, 9)),
    ("2024-03-31T16:05:09+02:00", "iso", datetime(2024, 3, 31, 14, 5, 9)),  # the same instant in UTC
    (" 2024-03-31 ", "iso", datetime(2024, 3, 31)),
    ("31/03/2024", "dmy", datetime(2024, 3, 31)),
    ("31.03.2024 14:05", "dmy", datetime(2024, 3, 31, 14, 5)),
    ("03/31/2024", "mdy", datetime(2024, 3, 31)),
    ("3-31-2024 14:05:09", "mdy", datetime(2024, 3, 31, 14, 5, 9)),
])
def test_each_order_parses_to_seconds_since_1970(text, order, expected):
    assert dates.seconds(text, order) == (expected - datetime(1970, 1, 1)).total_seconds()


@pytest.mark.parametrize(("text", "order"), [
    ("2024-02-30", "iso"), ("31/03/2024", "iso"), ("2024-03-31", "dmy"), ("31/03/2024", "mdy"),
    ("20240331", "iso"), ("March 31", "iso"), ("1.5", "dmy"), ("2024-03", "iso"), ("", "iso"),
])
def test_what_is_not_a_date_in_an_order_is_none(text, order):
    assert dates.seconds(text, order) is None


def test_parse_marks_missing_values_and_names_the_first_bad_one():
    stamps, bad = dates.parse(["2024-01-01", "", None, "NA", float("nan")], "iso", is_missing)
    assert bad is None and stamps[0] == 19723 * 86400.0 and np.isnan(stamps[1:]).all()
    assert dates.parse(["2024-01-01", "soon", "2024-01-02"], "iso", is_missing)[1] == 1


def test_the_parts_have_the_calendar_values():
    # Sunday 31 March 2024, 18:00: weekday 6 (Monday 0), month index 2, day of year 90, hour 18
    stamp = np.array([dates.seconds("2024-03-31 18:00", "iso")])
    year, m_sin, m_cos, w_sin, w_cos, d_sin, d_cos, h_sin, h_cos = (
        c[0] for c in dates.part_columns(stamp, ["year", "month", "weekday", "yearday", "hour"]))
    assert year == pytest.approx(2024 + 90 / 365.25)
    assert (m_sin, m_cos) == pytest.approx((np.sin(2 * np.pi * 2 / 12), np.cos(2 * np.pi * 2 / 12)))
    assert (w_sin, w_cos) == pytest.approx((np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)))
    assert (d_sin, d_cos) == pytest.approx((np.sin(2 * np.pi * 90 / 365.25), np.cos(2 * np.pi * 90 / 365.25)))
    assert (h_sin, h_cos) == pytest.approx((np.sin(2 * np.pi * 18 / 24), np.cos(2 * np.pi * 18 / 24)))


def test_cyclic_parts_put_december_next_to_january_and_late_night_next_to_midnight():
    stamps = np.array([dates.seconds(t, "iso") for t in ("2023-12-15 23:30", "2024-01-15 00:30", "2024-06-15 12:00")])
    month = np.column_stack(dates.part_columns(stamps, ["month"]))
    hour = np.column_stack(dates.part_columns(stamps, ["hour"]))
    for pair in (month, hour):
        assert np.linalg.norm(pair[0] - pair[1]) < np.linalg.norm(pair[0] - pair[2]) / 2


def test_dates_before_1970_and_far_ahead():
    stamps = np.array([dates.seconds("1969-12-31 23:00", "iso"), dates.seconds("2100-01-01", "iso")])
    year, w_sin, w_cos = dates.part_columns(stamps, ["year", "weekday"])
    assert year[0] == pytest.approx(1969 + 364 / 365.25) and year[1] == pytest.approx(2100.0)
    # 31 Dec 1969 was a Wednesday (2), 1 Jan 2100 a Friday (4)
    assert np.arctan2(w_sin, w_cos) % (2 * np.pi) == pytest.approx(np.array([2, 4]) * 2 * np.pi / 7)


def test_detect_prefers_iso_then_day_first_and_knows_its_doubts():
    assert dates.detect(["2024-01-31", "2024-02-01 10:00"]) == "iso"
    assert dates.detect(["31/01/2024", "01/02/2024"]) == "dmy"
    assert dates.detect(["01/31/2024", "02/01/2024"]) == "mdy"
    assert dates.detect(["2024-01-31", "soon"]) is None and dates.detect([]) is None
    assert dates.ambiguous(["01/02/2024", "03/04/2024"]) and not dates.ambiguous(["31/01/2024"])


def test_fitted_parts_add_the_hour_only_when_times_vary():
    midnight = np.array([dates.seconds("2024-01-01", "iso"), dates.seconds("2024-05-01", "iso")])
    assert dates.fitted_parts(midnight) == ["year", "month", "weekday", "yearday"]
    assert dates.fitted_parts(midnight + 3600)[-1] == "hour"
    assert dates.width(["year", "month", "hour"]) == 5
    assert dates.part_names(["year", "hour"]) == ["year", "hour_sin", "hour_cos"]
