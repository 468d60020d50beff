"""Prediction: a trained model applied to rows. Imports model and engine (and data, for `evaluate`, `explain` and
`importance` only, which read a labelled CSV with pandas); a small input never imports pandas.

    reader      CSV or JSON-lines rows in chunks, handed on as soon as a pipe runs dry
    predict     `predict` (a streaming pipeline stage) and `evaluate` (metrics on a labelled CSV)
    explain     one row's journey through a model: its columns, inputs, layers, output and gradients
    importance  permutation importance of each raw column on a labelled CSV, read in chunks
"""
