"""How configs' YAML is read: YAML 1.2 numbers as people write them, and hostile files refused early."""

from __future__ import annotations

import math
import time

import pytest

from nnctl.config.safe_yaml import (
    MAX_ALIAS_VALUES,
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    YamlError,
    dump,
    dump_scalar,
    parse,
)

NUMBERS = [("1e-3", 0.001), ("3E-4", 0.0003), ("1_000", 1000), ("+1e3", 1000.0), (".5", 0.5), ("-2.5e-1", -0.25),
           ("1.0e-3", 0.001), ("1.5", 1.5), ("1.", 1.0), ("-7", -7), ("+5", 5), ("010", 10), ("0o10", 8),
           ("0x1F", 31), ("1_000.5", 1000.5), ("2.5E+2", 250.0), ("1e400", math.inf), (".inf", math.inf),
           ("-.Inf", -math.inf)]
STRINGS = ["yes", "no", "on", "off", "Yes", "y", "1:30", "2024-01-01", "0b101", "1__0", "_1", "1_", "1e", "e3",
           "1e1_0", "1.2.3", "0x", "inf", "nan", "relu"]


def value(text: str) -> object:
    return parse(text)[0]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_numbers_follow_yaml_1_2_with_underscores(text, expected):
    got = value(text)
    assert got == expected and type(got) is type(expected), (text, got)
    assert value(f"key: {text}") == {"key": expected}
    assert value(f"[{text}]") == [expected]


def test_nan_is_a_float():
    assert math.isnan(value(".nan"))  # type: ignore[arg-type]


@pytest.mark.parametrize("text", STRINGS)
def test_what_only_looks_like_a_number_or_a_boolean_is_a_string(text):
    assert value(text) == text


@pytest.mark.parametrize("text", ['"1e-3"', "'1e-3'", "'1_000'", '"true"', "'010'", '".5"'])
def test_quoted_scalars_are_strings(text):
    assert value(text) == text[1:-1]


def test_booleans_and_null():
    assert [value(t) for t in ("true", "True", "TRUE", "false", "False", "FALSE")] == [True] * 3 + [False] * 3
    assert [value(t) for t in ("null", "Null", "NULL", "~", "")] == [None] * 5
    assert value("key:") == {"key": None}


def test_merge_keys_and_anchors_still_work():
    text = "base: &b {units: 8, activation: relu}\nlayers:\n  - *b\n  - {<<: *b, units: 4}\n"
    assert value(text)["layers"] == [{"units": 8, "activation": "relu"}, {"units": 4, "activation": "relu"}]


def test_errors_name_the_line():
    with pytest.raises(YamlError) as info:
        parse("a: 1\nb: [1\n")
    assert info.value.line == 3 and info.value.problem.startswith("invalid YAML: ")
    with pytest.raises(YamlError) as info:
        parse("a: 1\n---\nb: 2\n")
    assert info.value.problem == ("invalid YAML: expected a single document in the stream, but found another "
                                  "document") and info.value.line == 2
    with pytest.raises(YamlError) as info:
        parse("a: 1\nb: \x00\n")
    assert info.value.line == 2 and "unacceptable character #x0000" in info.value.problem
    with pytest.raises(YamlError, match="an integer of more than 100 digits"):
        parse("seed: " + "9" * 5000)


@pytest.mark.parametrize("original", [
    "1e-3", "1_000", "yes", "on", "2024-01-01", "010", "true", "null", "", "a: b", "#1", "x", "é", 0.001, 1e-05,
    3e-4, 1000, -2.5, math.inf, True, False, None, [1, "1e3"], {"a": "1e3", "b": [0.5]}])
def test_dump_scalar_is_read_back_as_the_same_value(original):
    text = dump_scalar(original)
    assert "\n" not in text
    assert value(text) == original and type(value(text)) is type(original), text


def test_dump_quotes_strings_yaml_1_1_would_misread():
    assert dump_scalar("yes") == "'yes'" and dump_scalar("1e3") == "'1e3'" and dump_scalar("relu") == "relu"
    assert dump({"b": "1e-3", "a": [1, "on"]}) == "b: '1e-3'\na:\n- 1\n- 'on'\n"  # in the order given


# --- hostile files ---------------------------------------------------------------------------------------


def bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each line a list of `width` aliases of the line before; ~width**levels values."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def refused(text: str) -> tuple[YamlError, float]:
    started = time.perf_counter()
    with pytest.raises(YamlError) as info:
        parse(text)
    return info.value, time.perf_counter() - started


def test_an_alias_bomb_is_refused_before_it_expands():
    problem, seconds = refused(bomb())
    assert problem.problem == (f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (limit "
                               f"{MAX_ALIAS_VALUES:,}); a config needs no YAML anchors at this scale")
    assert problem.line == 5  # 9 + 90 + 819 + 7,380 values so far, then 9 * 7,381 more
    assert seconds < 5  # ~1 ms; generous for a loaded machine


def test_many_small_aliases_are_refused():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    problem, _ = refused(text)
    assert problem.problem.startswith(f"too many aliases (limit {MAX_ALIASES})") and problem.line == 2
    assert value("a: &a 1\nb: [" + ", ".join(["*a"] * MAX_ALIASES) + "]\n")["b"] == [1] * MAX_ALIASES


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000, "a: " + "{a: " * 5000 + "}" * 5000,
                                  "".join(" " * i + "a:\n" for i in range(500)),
                                  "a:\n" + "".join(" " * i + "- \n" for i in range(1, 500))])
def test_deep_nesting_is_refused_quickly(text):
    problem, seconds = refused(text)
    assert problem.problem.startswith(f"nested more than {MAX_DEPTH} levels deep (limit {MAX_DEPTH})")
    assert problem.line is not None and problem.line <= MAX_DEPTH + 1
    assert seconds < 5  # ~1 ms (flow) to ~0.1 s (block)


def test_depth_through_an_alias_counts():
    deep = "[" * 40 + "1" + "]" * 40
    problem, _ = refused(f"a: &a {deep}\nb: {'[' * 30}*a{']' * 30}\n")
    assert problem.problem.startswith("nested more than 64 levels deep through the alias *a") and problem.line == 2
    assert value(f"a: &a {deep}\nb: [*a]\n")["b"]


def test_a_recursive_alias_is_refused():
    problem, _ = refused("a: &a [1, *a]\n")
    assert problem.problem.startswith("the alias *a is inside the collection it refers to") and problem.line == 1


def test_too_many_values_or_characters():
    problem, seconds = refused("x: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]")
    assert problem.problem.startswith(f"more than {MAX_VALUES:,} values (limit {MAX_VALUES:,})")
    assert seconds < 5
    problem, _ = refused("# " + "x" * MAX_BYTES)
    assert problem.problem.startswith(f"{MAX_BYTES + 2:,} characters (limit {MAX_BYTES:,})")
