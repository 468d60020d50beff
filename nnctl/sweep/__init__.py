"""Many runs of one config: hyperparameter sweeps and cross-validation. Imports training, inference and below;
Dask (the `sweep` extra) only when work runs on it.

    plan      the sweep file, validated, and its planned trials
    results   the trials' records, the best one, results.csv / results.json / best.npz, `SweepCallback`
    trials    running the trials on Dask distributed, and the one trial a worker runs
    cluster   the Dask clusters: an existing scheduler or an embedded LocalCluster, logging kept quiet
    cv        cross-validation: each fold trained from scratch and scored on its held-out rows (`nnctl cv`)
"""
