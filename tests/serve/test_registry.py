"""Served models by file stem; a replaced file is loaded whole and swapped in; one that does not load is not."""

from __future__ import annotations

import os
import time

import pytest

from nnctl.errors import InputError
from nnctl.serve.registry import Slot, Watcher, open_slots

from serve_models import iris


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    return iris(folder, epochs=2, seed=0), iris(folder, epochs=2, seed=1)


def _replace(path, model) -> None:
    """As `nnctl train` writes: a temp file, then a rename over the old one."""
    model.save(path.with_suffix(".tmp.npz"))
    os.replace(path.with_suffix(".tmp.npz"), path)


def test_a_replaced_file_is_swapped_in_whole(tmp_path, two_models):
    old, new = two_models
    path = tmp_path / "m.npz"
    old.save(path)
    slot = Slot(path)
    before = slot.current
    assert slot.refresh() is None  # unchanged: nothing loaded
    _replace(path, new)
    assert slot.refresh() == f"reloaded m from {path}"
    assert slot.current is not before and slot.reloads == 1
    assert (slot.current.model.network.W[0] == new.network.W[0]).all()


def test_a_file_that_does_not_load_keeps_the_old_model(tmp_path, two_models):
    path = tmp_path / "m.npz"
    two_models[0].save(path)
    slot = Slot(path)
    before = slot.current
    path.write_bytes(b"PK not really")
    message = slot.refresh()
    assert message is not None and message.startswith(f"warning: {path}: not a valid nnctl model file")
    assert "still serving the model loaded at" in message
    assert slot.current is before and slot.failures == 1
    assert slot.refresh() is None  # the same broken file is not tried again
    path.unlink()
    assert slot.refresh() is None  # gone (mid-rename): wait for it


def test_the_watcher_reports_swaps(tmp_path, two_models):
    path = tmp_path / "m.npz"
    two_models[0].save(path)
    slots = open_slots([path])
    lines: list[str] = []
    watcher = Watcher(slots, lines.append, interval=0.02)
    watcher.start()
    try:
        _replace(path, two_models[1])
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert lines == [f"reloaded m from {path}"]


def test_models_are_named_by_stem_once(tmp_path, two_models):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        two_models[0].save(tmp_path / folder / "iris.npz")
    assert list(open_slots([tmp_path / "a" / "iris.npz"])) == ["iris"]
    with pytest.raises(InputError, match="another model is also named 'iris'"):
        open_slots([tmp_path / "a" / "iris.npz", tmp_path / "b" / "iris.npz"])
