"""The config's `tracking` section: where a run's record goes besides the model file — a per-epoch CSV, and an
MLflow tracking server or store.
"""

from __future__ import annotations

from pydantic import Field

from nnctl.config.sections import Section


class MlflowConfig(Section):
    tracking_uri: str | None = Field(
        None, description="the MLflow tracking server or store: http(s)://HOST:PORT, file:///abs/path, or a folder "
        "(relative to the config's folder) for a local file store; default: MLflow's own (MLFLOW_TRACKING_URI)")
    experiment: str | None = Field(None, description="the experiment's name, created when missing; default: "
                                   "MLflow's default experiment")
    run_name: str | None = Field(None, description="the run's name; default: the config file's name")
    tags: dict[str, str] = Field(default_factory=dict, description="tags set on the run (text values)")


class TrackingConfig(Section):
    metrics_csv: str | None = Field(
        None, description="a CSV with one row per epoch (epoch, every history column, learning_rate, seconds), "
        "flushed every epoch; a new run replaces the file, a resumed run continues it (relative to the config's "
        "folder)")
    mlflow: MlflowConfig | None = Field(None, description="log the run to MLflow: the resolved config as params, "
                                        "each epoch's metrics, the summary, the model and config as artifacts "
                                        "(the `mlflow` extra)")
