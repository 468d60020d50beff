"""The trained artifact: everything `predict` needs, and nothing that needs pandas. Imports the engine.

    model           `Model` (network + preprocessing + target + loss + history) and its .npz file
    preprocessing   the fitted scaling, one-hot encoding and target encoding, applied with NumPy
    state           where a run stands (`TrainingState`, for an exact resume) and where a model came from
    diagnostics     what a run recorded for `nnctl doctor` (`Diagnostics`: data checks, one `EpochRecord` an epoch)
"""
