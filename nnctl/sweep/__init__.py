"""Hyperparameter sweeps: many runs of one config. Imports training and below; Dask (the `sweep` extra) only when a
sweep runs.

    plan      the sweep file, validated, and its planned trials
    results   the trials' records, the best one, results.csv / results.json / best.npz, `SweepCallback`
    trials    running the trials on Dask distributed, and the one trial a worker runs
"""
