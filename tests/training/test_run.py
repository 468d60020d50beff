import numpy as np
import pytest

from nnctl.config.load import load_config
from nnctl.errors import ConfigError, TrainingError
from nnctl.model.model import load_model
from nnctl.training.events import Callback
from nnctl.training.run import train

from conftest import CONFIGS, DATASETS, RESUMABLE, _same_history, iris_config


def test_same_seed_same_weights_byte_for_byte(write_config, tmp_path):
    path = write_config(iris_config(training={"epochs": 10, "batch_size": 8}))
    a = train(load_config(path), output=tmp_path / "a.npz").model
    b = train(load_config(path), output=tmp_path / "b.npz").model
    assert a.network.params.tobytes() == b.network.params.tobytes()
    for key, value in a.arrays().items():
        assert value.tobytes() == b.arrays()[key].tobytes(), key
    c = train(load_config(path, ["seed=1"]), save=False).model
    assert c.network.params.tobytes() != a.network.params.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_follows_the_config(write_config, tmp_path, dtype):
    path = write_config(iris_config(training={"epochs": 2, "dtype": dtype}))
    train(load_config(path), output=tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert all(W.dtype == np.dtype(dtype) for W in loaded.network.W)
    with np.load(tmp_path / "m.npz") as npz:
        assert npz["layers.0.W"].dtype == np.dtype(dtype)


def test_iris_reaches_093_validation_accuracy(tmp_path):
    result = train(load_config(CONFIGS / "iris.yaml"), output=tmp_path / "iris.npz")
    assert result.final["validation"]["accuracy"] >= 0.93
    assert result.model.history[-1]["val_accuracy"] == result.final["validation"]["accuracy"]
    assert result.model.history[-1]["train_loss"] < result.model.history[0]["train_loss"] / 5


def test_auto_mpg_beats_the_mean_by_a_wide_margin(tmp_path):
    result = train(load_config(CONFIGS / "auto_mpg.yaml"), output=tmp_path / "mpg.npz")
    assert result.final["validation"]["r2"] > 0.5
    assert result.final["validation"]["rmse"] < 4.5  # mpg; the target's standard deviation is 7.8


def test_breast_cancer_config_uses_every_control_and_keeps_the_best_epoch(tmp_path):
    """AdamW, dropout, warmup + cosine, clipping, balanced class weights, early stopping on val_f1."""
    out = tmp_path / "bc.npz"
    result = train(load_config(CONFIGS / "breast_cancer.yaml"), output=out)
    history = result.model.history
    assert result.stopped_early and len(history) < 200
    best = max(history, key=lambda row: row["val_f1"])
    assert result.best_epoch == best["epoch"]
    assert result.final["validation"]["f1"] == pytest.approx(best["val_f1"])  # the saved weights are the best's
    assert result.final["validation"]["accuracy"] >= 0.95
    assert [row["learning_rate"] for row in history[:5]] == pytest.approx([0.0005 * k for k in range(1, 6)])
    assert not (tmp_path / "bc.ckpt.npz").exists()
    assert load_model(out).provenance.class_weight["malignant"] > load_model(out).provenance.class_weight["benign"]


def test_binary_classification_with_one_sigmoid_unit(write_config, tmp_path):
    csv = tmp_path / "two.csv"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    csv.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(X, labels, strict=True)))
    config = {"data": {"train": str(csv), "target": "label"},
              "model": {"layers": [{"units": 4, "activation": "tanh"}, {}]},
              "loss": "binary_cross_entropy", "optimizer": {"learning_rate": 0.05},
              "training": {"epochs": 30}}
    result = train(load_config(write_config(config)), output=tmp_path / "b.npz")
    assert result.model.network.sizes[-1] == 1
    assert result.model.network.activation_names[-1] == "sigmoid"
    assert result.final["validation"]["accuracy"] > 0.9


def test_sgd_also_learns(write_config):
    config = iris_config(optimizer={"name": "sgd", "learning_rate": 0.1}, training={"epochs": 30})
    result = train(load_config(write_config(config)), save=False)
    assert result.final["validation"]["accuracy"] > 0.8


def test_zero_epochs_saves_the_initial_model(write_config, tmp_path):
    path = write_config(iris_config())
    result = train(load_config(path, ["training.epochs=0"]), output=tmp_path / "init.npz")
    assert result.model.history == []
    assert load_model(tmp_path / "init.npz").network.params.tobytes() == result.model.network.params.tobytes()


def test_callback_sees_every_epoch(write_config):
    seen: list[int] = []

    class Record(Callback):
        def on_epoch(self, stats):
            seen.append(stats.epoch)

    train(load_config(write_config(iris_config())), save=False, callback=Record())
    assert seen == [1, 2, 3, 4, 5]


def test_divergence_exits_cleanly_and_keeps_the_existing_model(write_config, tmp_path):
    from conftest import DATASETS

    out = tmp_path / "mpg.npz"
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg",
                       "features": ["weight", "horsepower"], "scale": "none"},
              "model": {"layers": [{"units": 8}, {}]}, "loss": "mse",
              "optimizer": {"name": "sgd", "learning_rate": 1000}, "training": {"epochs": 5}}
    train(load_config(write_config({**config, "optimizer": {"name": "sgd", "learning_rate": 1e-6}})), output=out)
    previous = out.read_bytes()
    with pytest.raises(TrainingError, match=r"diverged.*lower optimizer.learning_rate \(now 1000"):
        train(load_config(write_config(config)), output=out)
    assert out.read_bytes() == previous


def test_output_layer_must_fit_the_loss_and_data(write_config):
    config = iris_config(model={"layers": [{"units": 4}, {"units": 2, "activation": "softmax"}]})
    with pytest.raises(ConfigError, match=r"model.layers\[1\].units: the data needs 3 output units"):
        train(load_config(write_config(config)), save=False)
    config = iris_config(model={"layers": [{"units": 4}, {"activation": "sigmoid"}]})
    with pytest.raises(ConfigError, match="needs a softmax output layer"):
        train(load_config(write_config(config)), save=False)


# --- issue 3: training users can trust --------------------------------------------------------------------


def test_interrupted_run_resumes_bit_exactly(write_config, tmp_path):
    """Shuffling, dropout, AdamW, cosine warmup, clipping, early stopping: 3 epochs + resume == 6 straight."""
    config = load_config(write_config(iris_config(**RESUMABLE)))
    straight = train(config, output=tmp_path / "straight.npz")

    class Interrupt(Callback):
        def on_epoch(self, stats):
            if stats.epoch == 4:
                raise KeyboardInterrupt

    out = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        train(config, output=out, callback=Interrupt())
    ckpt = tmp_path / "run.ckpt.npz"
    assert ckpt.exists() and not out.exists()
    assert len(load_model(ckpt).history) == 4  # the interrupt saved all 4 finished epochs (periodic: 3)
    resumed = train(config, output=out, resume=ckpt)
    assert resumed.model.network.params.tobytes() == straight.model.network.params.tobytes()
    for key, value in straight.model.arrays().items():
        assert resumed.model.arrays()[key].tobytes() == value.tobytes(), key
    _same_history(resumed.model.history, straight.model.history)
    assert not ckpt.exists()  # the finished model replaces the checkpoint


def test_resume_a_finished_shorter_run_to_more_epochs(write_config, tmp_path):
    path = write_config(iris_config(training={"epochs": 6, "batch_size": 16},
                                    model={"layers": [{"units": 8, "dropout": 0.2}, {}]}))
    straight = train(load_config(path), output=tmp_path / "a.npz")
    train(load_config(path, ["training.epochs=3"]), output=tmp_path / "b.npz")
    resumed = train(load_config(path), output=tmp_path / "b.npz", resume=tmp_path / "b.npz")
    assert resumed.model.network.params.tobytes() == straight.model.network.params.tobytes()
    assert [row["epoch"] for row in resumed.model.history] == [1, 2, 3, 4, 5, 6]


def test_resume_warns_about_a_changed_config(write_config, tmp_path):
    path = write_config(iris_config())
    train(load_config(path, ["training.epochs=2"]), output=tmp_path / "m.npz")
    warnings: list[str] = []

    class Record(Callback):
        def on_warning(self, message):
            warnings.append(message)

    train(load_config(path, ["optimizer.learning_rate=0.5"]), save=False, resume=tmp_path / "m.npz",
          callback=Record())
    assert any("optimizer.learning_rate" in w and "differ" in w for w in warnings)


def test_init_fine_tunes_from_a_trained_model(write_config, tmp_path):
    base = train(load_config(write_config(iris_config(training={"epochs": 60}))), output=tmp_path / "base.npz")
    subset = tmp_path / "new.csv"
    lines = (DATASETS / "iris.csv").read_text().splitlines()
    subset.write_text("\n".join([lines[0], *lines[1:150:5]]) + "\n")  # 30 rows, all three species
    config = iris_config(training={"epochs": 1, "batch_size": 8})
    config["data"]["train"] = str(subset)
    tuned = train(load_config(write_config(config, "tune.yaml")), save=False, init=tmp_path / "base.npz")
    fresh = train(load_config(write_config(config, "fresh.yaml")), save=False)
    assert tuned.model.preprocessor == base.model.preprocessor  # kept, not refitted on the 30 rows
    assert tuned.model.target.classes == base.model.target.classes
    assert tuned.model.history[0]["train_loss"] < fresh.model.history[0]["train_loss"] / 2
    assert tuned.model.provenance.init_from == str(tmp_path / "base.npz")


def test_init_rejects_a_different_architecture_or_features(write_config, tmp_path):
    from nnctl.errors import DataError, InputError

    train(load_config(write_config(iris_config())), output=tmp_path / "base.npz")
    wider = iris_config(model={"layers": [{"units": 16, "activation": "tanh"}, {"activation": "softmax"}]})
    with pytest.raises(InputError, match=r"network 4 → 8 → 3 \(tanh, softmax\) differs from the config's 4 → 16 → 3"):
        train(load_config(write_config(wider, "w.yaml")), save=False, init=tmp_path / "base.npz")
    fewer = iris_config()
    fewer["data"]["features"] = ["sepal_length", "sepal_width"]
    with pytest.raises(DataError, match="differ from the model's features"):
        train(load_config(write_config(fewer, "f.yaml")), save=False, init=tmp_path / "base.npz")
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("".join(",".join(line.split(",")[:3] + line.split(",")[4:]) + "\n"
                              for line in (DATASETS / "iris.csv").read_text().splitlines()))
    config = iris_config()
    config["data"]["train"] = str(narrow)
    with pytest.raises(DataError, match=r"lacks 1 of the model's 4 feature columns \(petal_width\)"):
        train(load_config(write_config(config, "n.yaml")), save=False, init=tmp_path / "base.npz")
    config["data"]["target"] = "sepal_length"
    with pytest.raises(DataError, match=r"data\.target 'sepal_length' differs from the model's target 'species'"):
        train(load_config(write_config(config, "t.yaml")), save=False, init=tmp_path / "base.npz")


def test_init_reports_unseen_labels_and_categories(write_config, tmp_path):
    from nnctl.errors import DataError

    csv = tmp_path / "cars.csv"
    csv.write_text("weight,origin,kind\n1,USA,a\n2,Japan,b\n3,USA,a\n4,Japan,b\n5,USA,a\n6,Japan,b\n")
    config = {"data": {"train": str(csv), "target": "kind", "validation_split": 0},
              "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 2}}
    train(load_config(write_config(config)), output=tmp_path / "base.npz")
    csv.write_text("weight,origin,kind\n1,Mars,a\n2,Japan,b\n3,USA,a\n")
    warnings: list[str] = []

    class Record(Callback):
        def on_warning(self, message):
            warnings.append(message)

    train(load_config(write_config(config)), save=False, init=tmp_path / "base.npz", callback=Record())
    assert any("column 'origin' has 1 rows with categories the model has never seen ('Mars')" in w
               for w in warnings)
    csv.write_text("weight,origin,kind\n1,USA,a\n2,Japan,c\n")
    with pytest.raises(DataError, match="label 'c', which is not one of the model's classes"):
        train(load_config(write_config(config)), save=False, init=tmp_path / "base.npz")


def test_schedule_rates_go_into_the_history(write_config):
    config = iris_config(schedule={"name": "step", "step_size": 2, "gamma": 0.5})
    history = train(load_config(write_config(config)), save=False).model.history
    assert [row["learning_rate"] for row in history] == [0.01, 0.01, 0.005, 0.005, 0.0025]


def test_plateau_schedule_cuts_the_rate(write_config):
    config = iris_config(schedule={"name": "plateau", "monitor": "train_loss", "patience": 0, "factor": 0.5,
                                   "min_delta": 10.0}, training={"epochs": 4})
    history = train(load_config(write_config(config)), save=False).model.history
    # epoch 1 sets the best; every later epoch fails to improve by 10 and, with patience 0, halves the rate
    assert [row["learning_rate"] for row in history] == [0.01, 0.01, 0.005, 0.0025]


def test_early_stopping_restores_the_best_epoch(write_config, tmp_path):
    config = iris_config(optimizer={"name": "adam", "learning_rate": 0.05},
                         model={"layers": [{"units": 64}, {"units": 64}, {}]},
                         training={"epochs": 200, "batch_size": 8,
                                   "early_stopping": {"monitor": "val_loss", "patience": 5}})
    result = train(load_config(write_config(config)), output=tmp_path / "m.npz")
    history = result.model.history
    assert result.stopped_early and len(history) < 200
    best = result.best_epoch
    assert best == min(history, key=lambda row: row["val_loss"])["epoch"]
    assert len(history) == best + 5
    assert result.final["validation"]["loss"] == pytest.approx(history[best - 1]["val_loss"], rel=1e-6)
    assert load_model(tmp_path / "m.npz").provenance.restored_best_epoch == best


def test_early_stopping_on_validation_roc_auc_and_log_loss(write_config):
    """A ranking metric (maximised) and a probability loss (minimised) are monitors; the best epoch is theirs."""
    for monitor, sign in (("val_roc_auc", -1), ("val_log_loss", 1)):
        config = iris_config(optimizer={"name": "adam", "learning_rate": 0.05}, training={
            "epochs": 60, "batch_size": 8, "early_stopping": {"monitor": monitor, "patience": 3}})
        result = train(load_config(write_config(config)), save=False)
        history = result.model.history
        best = min(history, key=lambda row: (sign * row[monitor], row["epoch"]))  # the first best epoch
        assert result.best_epoch == best["epoch"]
        assert result.final["validation"][monitor.removeprefix("val_")] == pytest.approx(
            history[result.best_epoch - 1][monitor], rel=1e-6)


def test_history_keeps_train_and_validation_metrics(write_config):
    row = train(load_config(write_config(iris_config())), save=False).model.history[-1]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1",
            "val_balanced_accuracy", "val_mcc", "val_log_loss", "val_roc_auc", "val_pr_auc", "val_brier", "val_ece",
            "learning_rate", "seconds"} <= set(row)


def test_class_weight_balanced_lifts_the_minority_class(write_config, tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.standard_normal((n, 2))
    label = np.where(x[:, 0] + 0.8 * rng.standard_normal(n) > 1.6, "rare", "common")  # about 6% rare
    csv = tmp_path / "imb.csv"
    csv.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(x, label, strict=True)))
    config = {"data": {"train": str(csv), "target": "label", "validation_split": 0.3},
              "model": {"layers": [{"units": 8, "activation": "tanh"}, {}]}, "loss": "binary_cross_entropy",
              "optimizer": {"learning_rate": 0.01}, "training": {"epochs": 20}}
    plain = train(load_config(write_config(config, "plain.yaml")), save=False)
    config["data"]["class_weight"] = "balanced"
    weighted = train(load_config(write_config(config, "w.yaml")), save=False)
    assert weighted.model.provenance.class_weight["rare"] > 5 * weighted.model.provenance.class_weight["common"]
    assert weighted.final["validation"]["recall"] > plain.final["validation"]["recall"] + 0.05


def test_class_weight_mapping_must_name_known_classes(write_config):
    config = iris_config()
    config["data"]["class_weight"] = {"setosa": 2.0, "rose": 1.0}
    with pytest.raises(ConfigError, match=r"data\.class_weight: unknown class 'rose'"):
        train(load_config(write_config(config)), save=False)


def test_weight_decay_shrinks_the_weights(write_config):
    def weight_norm(decay: float) -> float:
        config = iris_config(optimizer={"name": "sgd", "learning_rate": 0.1, "weight_decay": decay},
                             training={"epochs": 20})
        net = train(load_config(write_config(config)), save=False).model.network
        return float(np.linalg.norm(net.params[: net.n_weights]))

    assert weight_norm(0.1) < 0.7 * weight_norm(0.0)


def test_dropout_does_not_touch_predictions(write_config, rng):
    config = iris_config(model={"layers": [{"units": 32, "dropout": 0.5}, {}]})
    model = train(load_config(write_config(config)), save=False).model
    X = rng.standard_normal((10, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.output(X), model.output(X))


def test_monitor_needs_what_the_run_computes(write_config):
    config = iris_config(training={"early_stopping": {"monitor": "val_r2"}})
    with pytest.raises(ConfigError, match="cannot monitor 'val_r2': classification does not compute it"):
        train(load_config(write_config(config)), save=False)
    config = iris_config(training={"early_stopping": {"monitor": "val_loss"}})
    config["data"]["validation_split"] = 0
    with pytest.raises(ConfigError, match="there is no validation data"):
        train(load_config(write_config(config)), save=False)


def test_a_non_finite_first_loss_is_reported_as_such(write_config, tmp_path):
    csv = tmp_path / "huge.csv"
    csv.write_text("x,y\n" + "".join(f"{i}e30,{i}e30\n" for i in range(1, 9)))
    config = {"data": {"train": str(csv), "target": "y", "scale": "none", "validation_split": 0},
              "model": {"layers": [{"units": 4}, {}]}, "training": {"epochs": 2}}
    with pytest.raises(TrainingError, match=r"the loss became inf in epoch 1, batch 1"):
        train(load_config(write_config(config)), save=False)


def test_a_finite_blow_up_counts_as_divergence(write_config):
    """Adam's steps are bounded by the rate, so lr 1000 drives the loss to ~1e20 without inf or NaN."""
    config = {"data": {"train": str(DATASETS / "auto_mpg.csv"), "target": "mpg", "target_scale": "standard",
                       "features": ["weight", "horsepower", "origin"]},
              "model": {"layers": [{"units": 16}, {}]}, "loss": "mse",
              "optimizer": {"name": "adam", "learning_rate": 1000}, "training": {"epochs": 5}}
    with pytest.raises(TrainingError, match=r"training diverged: the loss grew from [0-9.]+ to [0-9.e+]+ in epoch 1"):
        train(load_config(write_config(config)), save=False)


def test_an_early_stopped_run_resumes_from_its_last_weights_not_its_best(write_config, tmp_path):
    """Stopped early, the file holds the best epoch's weights; raising patience and resuming continues from
    the last epoch's weights and optimizer state, exactly as if the run had never stopped."""
    layers = {"layers": [{"units": 8, "activation": "relu", "dropout": 0.2}, {}]}
    patient = iris_config(model=layers, optimizer={"name": "adam", "learning_rate": 0.05},
                          training={"epochs": 40, "batch_size": 16,
                                    "early_stopping": {"monitor": "val_loss", "patience": 100}})
    impatient = iris_config(model=layers, optimizer={"name": "adam", "learning_rate": 0.05},
                            training={"epochs": 40, "batch_size": 16,
                                      "early_stopping": {"monitor": "val_loss", "patience": 2}})
    straight = train(load_config(write_config(patient, "p.yaml")), save=False)
    out = tmp_path / "m.npz"
    stopped = train(load_config(write_config(impatient, "i.yaml")), output=out)
    assert stopped.stopped_early and len(stopped.model.history) < 40
    warnings: list[str] = []

    class Record(Callback):
        def on_warning(self, message):
            warnings.append(message)

    again = train(load_config(write_config(impatient, "i.yaml")), save=False, resume=out, callback=Record())
    assert len(again.model.history) == len(stopped.model.history)
    assert any("stopped early" in w and "patience" in w for w in warnings)
    resumed = train(load_config(write_config(patient, "p.yaml")), save=False, resume=out)
    assert resumed.model.network.params.tobytes() == straight.model.network.params.tobytes()
    _same_history(resumed.model.history, straight.model.history)


def test_wide_rows_gathered_per_batch_train_exactly_like_a_shuffled_copy(write_config, monkeypatch):
    import nnctl.training.loop

    config = iris_config(model={"layers": [{"units": 8, "dropout": 0.2}, {}]}, training={"epochs": 3})
    runs = []
    for threshold in (1, 10**9):  # every row "wide" (gathered per batch), then none (one copy per epoch)
        monkeypatch.setattr(nnctl.training.loop, "WIDE_ROW_BYTES", threshold)
        runs.append(train(load_config(write_config(config)), save=False).model.network.params.tobytes())
    assert runs[0] == runs[1]


def test_training_threads_caps_the_blas_pool(write_config):
    from threadpoolctl import threadpool_info

    seen: list[int] = []

    class Watch(Callback):
        def on_epoch(self, stats):
            seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")

    train(load_config(write_config(iris_config(training={"epochs": 2, "threads": 1}))), save=False,
          callback=Watch())
    assert seen and set(seen) == {1}
    with pytest.raises(ConfigError, match=r"training\.threads"):
        load_config(write_config(iris_config(training={"threads": 0})))


def test_a_batch_larger_than_the_data_is_one_step_per_epoch_with_a_warning(write_config):
    warnings: list[str] = []

    class Record(Callback):
        def on_warning(self, message):
            warnings.append(message)

    result = train(load_config(write_config(iris_config(training={"epochs": 2, "batch_size": 1000}))),
                   save=False, callback=Record())
    assert any("training.batch_size 1000 is more than the 120 training rows" in w for w in warnings)
    assert result.model.training.optimizer.values["t"] == 2  # one Adam step per epoch


@pytest.mark.parametrize(("name", "metric", "floor"), [
    ("iris", "accuracy", 0.95), ("wine", "accuracy", 0.95), ("digits", "accuracy", 0.95),
    ("breast_cancer", "accuracy", 0.95), ("auto_mpg", "r2", 0.8), ("diabetes", "r2", 0.35),
    ("doctor_visits", "r2", 0.08),  # a noisy count (val_loss: half the mean Poisson deviance, 1.88)
])
def test_every_shipped_config_trains_as_written(name, metric, floor):
    """The configs the README's results table comes from, with their own seed and epochs (each < 0.5 s)."""
    result = train(load_config(CONFIGS / f"{name}.yaml"), save=False)
    assert result.final["validation"][metric] >= floor


def test_a_layer_may_ask_for_auto_initialisation_itself(write_config):
    """`init: auto` on a layer means what it means for the model: He for relu-like layers, Glorot for the rest."""
    config = iris_config(model={"init": "glorot_normal",
                                "layers": [{"units": 8, "activation": "relu", "init": "auto"},
                                           {"units": 8, "activation": "tanh"}, {"init": "auto"}]})
    result = train(load_config(write_config(config)), save=False)
    assert [layer["init"] for layer in result.model.config["model"]["layers"]] == \
        ["he_normal", "glorot_normal", "glorot_uniform"]
