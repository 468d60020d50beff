import numpy as np

from nnctl.training.loop import EarlyStopping, clip_global_norm


def test_early_stopping_waits_patience_epochs_and_keeps_the_best_weights():
    stopper = EarlyStopping("val_loss", patience=2, min_delta=0.01, restore_best=True)
    params = np.zeros(3)
    losses = [1.0, 0.5, 0.495, 0.6, 0.4]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        params[:] = epoch
        stops.append(stopper.update(epoch, {"val_loss": loss}, params))
        if stops[-1]:
            break
    # 0.495 is not better by more than min_delta: epochs 3 and 4 do not improve -> stop after epoch 4
    assert stops == [False, False, False, True]
    assert stopper.best_epoch == 2 and stopper.best == 0.5
    np.testing.assert_array_equal(stopper.best_params, [2, 2, 2])


def test_early_stopping_maximises_accuracy():
    stopper = EarlyStopping("val_accuracy", patience=1, min_delta=0.0, restore_best=False)
    assert not stopper.update(1, {"val_accuracy": 0.8}, np.zeros(1))
    assert not stopper.update(2, {"val_accuracy": 0.9}, np.zeros(1))
    assert stopper.update(3, {"val_accuracy": 0.85}, np.zeros(1))
    assert stopper.best_epoch == 2 and stopper.best_params is None


def test_state_round_trip():
    a = EarlyStopping("val_loss", 3, 0.0, True)
    a.update(1, {"val_loss": 1.0}, np.ones(2))
    a.update(2, {"val_loss": 2.0}, np.ones(2) * 2)
    b = EarlyStopping("val_loss", 3, 0.0, True)
    b.load_state(a.state())
    assert (b.best, b.best_epoch, b.wait) == (1.0, 1, 1)
    np.testing.assert_array_equal(b.best_params, [1, 1])


def test_clip_global_norm():
    g = np.array([3.0, 4.0])  # norm 5
    clip_global_norm(g, 10.0)
    np.testing.assert_array_equal(g, [3, 4])
    clip_global_norm(g, 1.0)
    np.testing.assert_allclose(g, [0.6, 0.8])
