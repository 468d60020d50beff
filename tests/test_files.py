import pytest

from nnctl.errors import InputError, OutputError
from nnctl.files import replace_on_success


def test_the_target_changes_only_when_the_body_finishes(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), replace_on_success(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    with replace_on_success(target, "w") as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_a_missing_folder_raises_the_callers_error(tmp_path):
    with pytest.raises(InputError, match=r"cannot write the predictions"), \
            replace_on_success(tmp_path / "no" / "p.csv", "w", what="the predictions", cannot_open=InputError):
        pass
    with pytest.raises(OutputError, match=r"cannot write the file"), replace_on_success(tmp_path / "no" / "p.csv"):
        pass
