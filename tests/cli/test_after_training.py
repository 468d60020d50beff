"""`training.calibrate` and `training.threshold` at the command line: `check` shows them, and a run that cannot
do them exits 2 with one line naming the key."""

from __future__ import annotations

from test_cli import _assert_one_line_error, nnctl

from conftest import CONFIGS


def test_check_shows_what_happens_after_training():
    result = nnctl("check", str(CONFIGS / "breast_cancer.yaml"), "--set", "training.calibrate=temperature",
                   "--set", "training.threshold=youden")
    assert result.returncode == 0, result.stderr
    assert "after training: calibrate: temperature, threshold: youden (fitted on the validation rows)" in result.stdout
    plain = nnctl("check", str(CONFIGS / "breast_cancer.yaml"))
    assert "after training" not in plain.stdout


def test_a_threshold_for_three_classes_is_one_line_exit_2():
    _assert_one_line_error(nnctl("train", str(CONFIGS / "iris.yaml"), "--set", "training.threshold=f1", "-q"),
                           "training.threshold: f1 needs two classes", "remove training.threshold")
    _assert_one_line_error(nnctl("train", str(CONFIGS / "diabetes.yaml"), "--set", "training.calibrate=temperature",
                                 "-q"), "training.calibrate: temperature is for classifiers")
    _assert_one_line_error(nnctl("train", str(CONFIGS / "iris.yaml"), "--set", "training.calibrate=platt", "-q"),
                           "training.calibrate")
