"""Streaming's pass 2: the preprocessed rows written to spill files, which epochs then read (`SpilledRows`).

Pass 2 reads the training CSV again, replays pass 1's cleaning and split (its draws, from a copy of the
generator's starting state), transforms each chunk with the fitted preprocessing and appends its rows to two spill
files, training and validation, in a private folder under the cache folder (`spill/<host>-<pid>-<random>/`).
The folder is deleted when the dataset is closed; folders of processes that died without cleaning up are removed
by the next run. Categorical columns are read as text, as `predict` reads them.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from nnctl.config.schema import Config
from nnctl.data.cache import spill_root
from nnctl.data.chunks import Splitter, key_label, read_with_status, target_codes
from nnctl.data.dialects import config_dialect
from nnctl.data.fit import encode_target, transform
from nnctl.data.reader import read_csv_chunks
from nnctl.data.rows import Layout, SpilledRows
from nnctl.data.rules import clean, report_dropped, row_weights
from nnctl.errors import DataError, OutputError
from nnctl.model.preprocessing import Preprocessor, TargetEncoder


@dataclass(eq=False)
class SpillJob:
    """What pass 1 found that pass 2 needs to write the spill files, and the rows it fills."""

    train: SpilledRows
    validation: SpilledRows | None
    config: Config
    train_path: str
    validation_path: str | None
    dtypes: dict[str, Any]  # columns pass 2 reads with a fixed type (text)
    fraction: float  # validation_split (0 with a validation file)
    start: dict[str, Any]  # the generator's state when pass 1 began: pass 2 replays the split from it
    preprocessor: Preprocessor
    target: TargetEncoder
    weights: np.ndarray | None  # loss weight per class index
    warn: Callable[[str], None]
    status: Callable[[str], None]  # progress of the long passes, every few seconds
    weight_scale: float = 1.0  # data.weight: scales row times class weights to average 1 over the training rows

    @property
    def bytes(self) -> int:
        """The size of the spill files: every training and validation row, preprocessed."""
        return sum(len(rows) * rows.layout.row_bytes for rows in (self.train, self.validation) if rows is not None)


def spill_folder() -> Path:
    """A new, private folder for a streaming run's temporary files; the caller deletes it when done.

    Folders left behind by processes of this host that no longer run (killed with SIGKILL, say) go first."""
    root = spill_root()
    host = socket.gethostname().replace("-", "_")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for folder in root.glob(f"{host}-*-*"):
            pid = folder.name.split("-")[1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{host}-{os.getpid()}-", dir=root))
    except OSError as exc:
        raise OutputError(f"{root}: cannot create a folder for streaming's temporary files ({exc.strerror}); "
                          "set NNCTL_CACHE_DIR to a writable folder") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, but belongs to someone else
    return True


class SpillWriter:
    """Appends preprocessed rows to a new spill file, one block of `layout.chunk_rows` rows at a time."""

    def __init__(self, path: Path, layout: Layout) -> None:
        self.path, self.layout = path, layout
        self.stage = layout.buffers(layout.chunk_rows)
        self.staged = 0
        self.rows = 0
        self._file: IO[bytes] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()

    def append(self, parts: list[np.ndarray]) -> None:
        """Add rows: [X (m, n_inputs), Y (m, n_outputs), y (m,), w (m,)?] as `layout` describes."""
        m, done, size = len(parts[0]), 0, self.layout.chunk_rows
        while done < m:
            take = min(m - done, size - self.staged)
            for buffer, part in zip(self.stage, parts, strict=True):
                buffer[self.staged : self.staged + take] = part[done : done + take]
            self.staged += take
            done += take
            if self.staged == size:
                self._flush()
        self.rows += m

    def _flush(self) -> None:
        try:
            for buffer in self.stage:
                _write_all(self._file, buffer[: self.staged])
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write streaming's temporary file ({exc.strerror}); set "
                              "NNCTL_CACHE_DIR to a folder with more free space") from None
        self.staged = 0

    def close(self) -> int:
        """Write the last, shorter block and close the file; returns the number of rows written."""
        if self.staged:
            self._flush()
        self._file.close()
        return self.rows

    def abandon(self) -> None:
        self._file.close()


def _write_all(file: IO[bytes], array: np.ndarray) -> None:
    view = memoryview(array.data).cast("B")
    while view:
        written = file.write(view)
        view = view[written or 0 :]


def write(job: SpillJob) -> Path:
    """Pass 2: write the preprocessed training and validation rows to spill files in a new folder, and attach
    them to the job's rows; returns the folder, which the caller deletes when done. Fails before writing when the
    disk has too little space for them, and leaves no file behind when it fails."""
    train, validation = job.train, job.validation
    folder = spill_folder()
    writers: list[SpillWriter] = []
    try:
        need, free = job.bytes, shutil.disk_usage(folder).free
        if need > free:
            raise OutputError(f"{folder}: streaming needs {need / 2**30:.2f} GiB for the preprocessed rows and "
                              f"{free / 2**30:.2f} GiB are free; set NNCTL_CACHE_DIR to a folder on a bigger disk")
        writers.append(SpillWriter(folder / "train.bin", train.layout))
        if validation is not None:
            writers.append(SpillWriter(folder / "validation.bin", validation.layout))
        _write(job, writers)
        if job.validation_path is not None:
            validation_rows(job, writers[1])
        counts = [writer.close() for writer in writers]
        if counts[0] != len(train) or (job.validation_path is None and validation is not None
                                       and counts[1] != len(validation)):
            raise DataError(f"{job.train_path}: changed while training read it (pass 1 counted {len(train)} "
                            f"training rows, pass 2 {counts[0]})")
        for rows, writer, split in zip(counts, writers, (train, validation), strict=False):
            assert split is not None
            split.attach(writer.path, rows)
    except BaseException:
        for writer in writers:
            writer.abandon()
        for split in (train, validation):
            if split is not None:
                split.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def _write(job: SpillJob, writers: list[SpillWriter]) -> None:
    """Pass 2 over the training CSV: the same cleaning and split as pass 1 (its draws replayed), then transform."""
    data = job.config.data
    replay = np.random.default_rng()
    replay.bit_generator.state = job.start
    splitter = Splitter(job.fraction, replay, data.group)
    features = job.preprocessor.names
    stratified = job.target.task == "classification"
    dialect = config_dialect(job.config, job.train_path)
    for frame in read_with_status(job.train_path, data.chunk_rows, job.dtypes, job.status,
                                  "pass 2 of 2 (writing the preprocessed rows)", dialect):
        frame = clean(frame, data.target, features, data.missing, job.train_path)[0]
        if not len(frame):
            continue
        codes, keys = target_codes(frame[data.target]) if stratified else (None, [])
        held = splitter.held_out(frame, codes, keys)
        train = frame[~held] if held.any() else frame
        if len(train):
            writers[0].append(encode(job, train, writers[0].layout, job.train_path))
        if held.any():
            writers[1].append(encode(job, frame[held], writers[1].layout, job.train_path))


def encode(job: SpillJob, part: pd.DataFrame, layout: Layout, source: str) -> list[np.ndarray]:
    """[X (m, n_inputs), Y (m, n_outputs), y (m,), w (m,)?, r (m,)?] of a chunk's usable rows, as `layout` holds
    them: w the loss weights (class weights times data.weight's values r, scaled by the job's weight_scale)."""
    dtype = np.dtype(job.config.training.dtype)
    X = transform(job.preprocessor, part, dtype, source)
    target = job.target
    series = part[target.name]
    if target.task == "regression":
        y, Y = encode_target(target, series, dtype, source)
    else:
        # the chunk's distinct labels are looked up once, not every row's
        codes, keys = target_codes(series)
        integral = all(isinstance(c, int) for c in target.classes)
        y = target.indices([key_label(key, integral) for key in keys], source)[codes]
        Y = target.loss_targets(y, dtype)
    parts = [X, Y, y]
    r = row_weights(str(job.config.data.weight), part, source, None) if layout.row_weights else None
    if layout.weights:
        w = np.ones(len(part)) if job.weights is None else job.weights[y]
        if r is not None:
            w = w * r * job.weight_scale
        parts.append(w.astype(dtype))
    if r is not None:
        parts.append(r)
    return parts


def validation_rows(job: SpillJob, writer: SpillWriter | None) -> int:
    """Clean, check and encode the rows of `data.validation` (and write them, with a writer); returns how many."""
    path = job.validation_path
    assert path is not None
    data = job.config.data
    features = job.preprocessor.names
    rows = unlabelled = incomplete = usable = 0
    for frame in read_csv_chunks(path, data.chunk_rows, job.dtypes, config_dialect(job.config, path)):
        rows += len(frame)
        frame, dropped, gaps = clean(frame, data.target, features, data.missing, path)
        unlabelled, incomplete, usable = unlabelled + dropped, incomplete + gaps, usable + len(frame)
        if len(frame):
            assert job.validation is not None
            parts = encode(job, frame, job.validation.layout, path)
            if writer is not None:
                writer.append(parts)
    report_dropped(job.warn, path, data.target, rows, unlabelled, incomplete, usable)
    return usable
