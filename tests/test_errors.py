"""The ground floor: one-line errors that name library arguments (shown as flags by the CLI), and the one
"did you mean" every message uses."""

import pickle

import pytest

from nnctl.cli.app import FLAGS
from nnctl.config.load import load_config
from nnctl.errors import ConfigError, InputError, OverrideError
from nnctl.registry import not_found, unknown_name_message

from conftest import CONFIGS


def test_a_message_names_the_librarys_argument_and_the_cli_renders_its_flag():
    error = InputError("{require} val_r2: not a classification metric", arguments=("require",))
    assert str(error) == "require val_r2: not a classification metric"
    assert error.render(FLAGS) == "--fail-under val_r2: not a classification metric"
    assert error.render({}) == str(error)
    assert InputError("a {literal} brace stays").render(FLAGS) == "a {literal} brace stays"


def test_an_override_error_carries_its_key_and_problem_through_a_process_boundary():
    with pytest.raises(OverrideError) as info:
        load_config(CONFIGS / "iris.yaml", ["training.epochs=x"])
    error = info.value
    assert (error.subject, error.problem) == ("training.epochs", "expected an integer, got str 'x'")
    assert error.render(FLAGS) == "--set training.epochs: expected an integer, got str 'x'"
    again = pickle.loads(pickle.dumps(error))  # as a sweep trial's error comes back from a Dask worker
    assert isinstance(again, ConfigError) and str(again) == str(error) and again.render(FLAGS) == error.render(FLAGS)


def test_did_you_mean_only_when_a_choice_is_close():
    assert not_found("unknown key", "epoch", ["epochs", "batch_size"]) == \
        "unknown key; did you mean 'epochs'? (valid: epochs, batch_size)"
    assert not_found("unknown key", "zzz", ["epochs", "batch_size"]) == "unknown key (valid: epochs, batch_size)"
    assert not_found("x.csv: no feature column 'a'", "b", ["b2"], "columns") == \
        "x.csv: no feature column 'a'; did you mean 'b2'? (columns: b2)"
    assert unknown_name_message("activation", "rleu", {"tanh", "relu"}) == \
        "unknown activation 'rleu'; did you mean 'relu'? (valid: relu, tanh)"
