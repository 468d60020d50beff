"""The training state a model file carries for an exact resume, and where the model came from: typed in memory,
flattened only at the file's edge."""

import numpy as np

from nnctl.model.state import EarlyStoppingState, PartState, Provenance, StreamingInfo, TrainingState


def _state(rng: np.random.Generator) -> TrainingState:
    return TrainingState(
        epochs_done=3, reference_loss=1.25, rng=dict(np.random.default_rng(5).bit_generator.state),
        optimizer=PartState("adam", {"t": 12}, {"m_acc": rng.random(4), "v_acc": rng.random(4)}),
        schedule=PartState("plateau", {"current": 0.1, "best": 0.5, "wait": 1, "cooling": 0}),
        early_stopping=EarlyStoppingState(0.5, 2, 1, rng.random(4)), last_params=rng.random(4))


def test_the_state_round_trips_through_the_files_json_and_arrays(rng):
    state = _state(rng)
    arrays = state.arrays()
    assert sorted(arrays) == ["early_stopping.best", "optimizer.m_acc", "optimizer.v_acc", "resume.params"]
    back = TrainingState.from_file(state.to_json(), arrays)
    assert back is not None and back.to_json() == state.to_json()
    assert all(np.array_equal(back.arrays()[key], value) for key, value in arrays.items())
    assert TrainingState.from_file({}, {}) is None  # a file without training state


def test_a_copy_is_deep_and_reuses_the_previous_copys_buffers(rng):
    state = _state(rng)
    first = state.copy()
    assert first.optimizer.arrays["m_acc"] is not state.optimizer.arrays["m_acc"]
    state.optimizer.arrays["m_acc"][0] = 42.0
    state.rng["state"]["state"] = 7
    second = state.copy(into=first)
    assert second.optimizer.arrays["m_acc"] is first.optimizer.arrays["m_acc"]  # no allocation per epoch
    assert second.optimizer.arrays["m_acc"][0] == 42.0 and second.rng["state"]["state"] == 7
    assert first.rng is not second.rng


def test_provenance_writes_the_files_state_in_its_key_order(rng):
    provenance = Provenance(StreamingInfo(10, 20, ["a"], 0.5, 0.25, 1024), "base.npz", {"x": 2.0}, 3)
    keys = list(provenance.to_json(_state(rng)))
    assert keys == ["streaming", "init_from", "class_weight", "epochs_done", "reference_loss", "rng", "optimizer",
                    "schedule", "early_stopping", "restored_best_epoch"]
    assert Provenance.from_json(provenance.to_json(None)) == provenance
    assert Provenance().to_json(None) == {}
