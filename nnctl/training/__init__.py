"""Training: a run from a config. Imports data, model, config and engine; never prints.

    events   `Callback`, `StartInfo`, `EpochStats` (plain Python, no NumPy: the CLI subclasses them)
    loop     the epochs: batches, the divergence guard, clipping, early stopping, the state of a run
    setup    the layers, the checks, the loop, and `describe` (a run built but not trained)
    run      `train()`: train, resume or fine-tune, checkpoints, saving
    lr_find  `lr_find()`: the learning-rate range test on a config's run, and the rate it suggests
    diagnostics  what a run records for `nnctl doctor`: the data checks, and the loop's `Recorder`
    doctor   the diagnoses (`Diagnosis`: code, message, evidence) of a model, or of a config trained for them
    tracking  `tracking`: the metrics CSV and the MLflow run, as one callback (`Tracking`); sweeps' and cv's nesting
    mlflow_run  one MLflow run through MlflowClient (mlflow imported only here); a failure is one warning
"""
