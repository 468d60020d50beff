"""A trained model: network, preprocessing and target encoding, saved to and loaded from one .npz file.

File layout (SPEC.md): `layers.{i}.W`, `layers.{i}.b`, `meta` (0-d str array holding JSON) and the training
state's arrays (`optimizer.*`, `early_stopping.best`, `resume.params`) for an exact resume. Loading never
unpickles, and checks every array against the metadata and its checksum.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnctl._types import Array
from nnctl._version import __version__
from nnctl.engine.losses import Loss, build_loss
from nnctl.engine.metrics import Scores, batched_output
from nnctl.engine.network import Network
from nnctl.errors import ModelFileError, OutputError
from nnctl.files import replace_on_success
from nnctl.model.diagnostics import Diagnostics
from nnctl.model.preprocessing import Preprocessor, TargetEncoder
from nnctl.model.state import Provenance, TrainingState

# Rows of preprocessed data: X (m, n_inputs), the loss's target Y (m, n_outputs), y (m,) class indices or values,
# and r (m,) the rows' weights in the metrics (data.weight's values), or None: every row weighs 1.
Chunk = tuple[Array, Array, np.ndarray, np.ndarray | None]

FORMAT = "nnctl-model"
FORMAT_VERSION = 2  # the newest this nnctl reads and writes
# version 2 adds `temperature` and `threshold`, which change predictions: a file holding either is written as 2, so
# an older nnctl refuses it rather than predicting without them; any other file is still written as 1
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: same arrays, same bytes


@dataclass
class Model:
    """Everything `predict` needs, plus the config and history of the run that made it."""

    network: Network
    preprocessor: Preprocessor
    target: TargetEncoder
    loss: str
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config it was trained with (JSON)
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per epoch
    training: TrainingState | None = None  # where its run stands; None before training (and in `nnctl check`)
    provenance: Provenance = field(default_factory=Provenance)
    loss_options: dict[str, float] = field(default_factory=dict)  # the loss's parameters (huber: delta)
    temperature: float | None = None  # training.calibrate: the output layer's Z is divided by it; None: not calibrated
    threshold: float | None = None  # training.threshold: the second class when its probability is at least this
    diagnostics: Diagnostics | None = None  # training.diagnostics: what the run recorded for `nnctl doctor`

    @cached_property
    def loss_function(self) -> Loss:
        """The loss it is trained and scored with: `loss`, built with `loss_options`."""
        return build_loss(self.loss, **self.loss_options)

    @property
    def task(self) -> str:
        return self.target.task

    def setting(self, *keys: str) -> Any:
        """A value of the resolved config the model was trained with, by its config keys (`"training", "epochs"`),
        or None when absent (a section may be null: off)."""
        value: Any = self.config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def output(self, X: Array) -> Array:
        """Network outputs (n, n_outputs) for preprocessed inputs X (n, n_inputs), with the model's temperature."""
        if self.temperature is None:
            return batched_output(self.network.forward, X)
        T = self.temperature
        return batched_output(lambda rows: self.network.forward(rows, T), X)

    def class_indices(self, A: Array, threshold: float | None = None) -> np.ndarray:
        """Predicted class index (n,) per row of outputs A (n, n_outputs): with two classes and a `threshold` (else
        the model's own), the second class when its probability is at least that; else the most probable class."""
        threshold = self.threshold if threshold is None else threshold
        if threshold is None:
            return self.target.class_indices(A)
        return (self.target.probabilities(A)[:, 1] >= threshold).astype(np.int64)

    def score(self, chunks: Iterable[Chunk], every_row: bool = True) -> dict[str, float]:
        """Loss and metrics on rows in chunks (one chunk: the whole-data formulas); regression metrics on the
        target's scale; weighted by the chunks' r, when they have it. Without `every_row`, the metrics that keep every
        row's output (`EVERY_ROW`: ROC AUC, PR AUC, median AE) are left out, so memory does not grow with the rows."""
        scores = Scores(self.task, len(self.target.classes), every_row)
        for X, Y, y, r in chunks:
            self._add(scores, self.output(X), Y, y, r)
        return scores.result()

    def scores(self, A: Array, Y: Array, y: np.ndarray, r: np.ndarray | None = None) -> dict[str, float]:
        """`score` of one chunk whose outputs A (n, n_outputs) are already computed (rows weighted by r (n,))."""
        scores = Scores(self.task, len(self.target.classes))
        self._add(scores, A, Y, y, r)
        return scores.result()

    def add_scores(self, scores: Scores, A: Array, Y: Array, y: np.ndarray, r: np.ndarray | None = None) -> None:
        """Add one chunk whose outputs A (n, n_outputs) are computed to `scores` (a `Scores` of this model's task and
        classes), as `score` does: its loss, classes at the model's threshold, or values on the target's scale."""
        self._add(scores, A, Y, y, r)

    def _add(self, scores: Scores, A: Array, Y: Array, y: np.ndarray, r: np.ndarray | None) -> None:
        value = self.loss_function.value(A, Y, np.empty_like(A), None if r is None else r.astype(A.dtype))
        if r is not None:  # Σ r·l / m, as the loss gives it, to the weighted mean Σ r·l / Σ r
            total = float(r.sum())
            value = value * len(r) / total if total > 0 else float("nan")
        if self.task == "classification":
            scores.add(value, y, self.class_indices(A), self.target.probabilities(A), w=r)
        else:
            scores.add(value, y, self.target.values(A), w=r)

    # --- files -------------------------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array the file holds: the layers' W and b, then the training state's."""
        out: dict[str, np.ndarray] = {}
        for i, (W, b) in enumerate(zip(self.network.W, self.network.b, strict=True)):
            out[f"layers.{i}.W"], out[f"layers.{i}.b"] = W, b
        if self.training is not None:
            out.update(self.training.arrays())
        return out

    def meta(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """The file's `meta` JSON (its `checksum` covers `arrays`)."""
        return {
            "format": FORMAT,
            "format_version": 1 if self.temperature is None and self.threshold is None else FORMAT_VERSION,
            "nnctl_version": __version__,
            "task": self.task,
            "loss": self.loss,
            **({"loss_options": self.loss_options} if self.loss_options else {}),
            "network": {
                "sizes": self.network.sizes,
                "activations": self.network.activation_names,
                "dtype": self.network.dtype.name,
                "dropout": self.network.dropout,
            },
            "features": [spec.name for spec in self.preprocessor.features],
            "inputs": self.preprocessor.input_names,
            "preprocessing": self.preprocessor.to_dict(),
            "target": self.target.to_dict(),
            **({"temperature": self.temperature} if self.temperature is not None else {}),
            **({"threshold": self.threshold} if self.threshold is not None else {}),
            "config": self.config,
            "history": self.history,
            **({"diagnostics": self.diagnostics.to_json()} if self.diagnostics is not None else {}),
            "state": self.provenance.to_json(self.training),
            "checksum": _checksum(arrays),
        }

    def entries(self) -> dict[str, np.ndarray]:
        """What the .npz holds: the arrays and the `meta` JSON."""
        arrays = self.arrays()
        return {**arrays, "meta": np.array(json.dumps(self.meta(arrays), separators=(",", ":")))}

    def save(self, path: str | Path) -> None:
        """Write the model atomically: a temp file in the same folder, fsync, then rename over `path`."""
        write_npz_atomic(Path(path), self.entries())

    def to_bytes(self) -> bytes:
        """The model file's bytes, as `save` writes them (for a model that travels, e.g. from a sweep worker)."""
        buffer = io.BytesIO()
        _write_npz(buffer, self.entries())
        return buffer.getvalue()


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def write_npz_atomic(path: Path, entries: dict[str, np.ndarray]) -> None:
    """Write an .npz readable by `np.load(allow_pickle=False)`; the target is replaced only when complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the model file ({exc.strerror})") from None
    with replace_on_success(path, "wb", what="the model file") as handle:
        _write_npz(handle, entries)


def _write_npz(handle: IO[bytes], entries: dict[str, np.ndarray]) -> None:
    """The .npz archive (uncompressed, fixed timestamps: the same model gives the same bytes) into `handle`."""
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for key, value in entries.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def load_model(path: str | Path) -> Model:
    """Load and check a model file; anything wrong is a ModelFileError saying what."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{source}: model file not found") from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read model file ({exc.strerror})") from None
    if not raw.startswith(b"PK"):
        raise ModelFileError(f"{source}: not an nnctl model file (not a NumPy .npz archive)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            entries = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        reason = "it holds object arrays" if "pickle" in str(exc) else "not a NumPy .npz archive, or truncated"
        raise ModelFileError(f"{source}: not a valid nnctl model file ({reason})") from None
    if "meta" not in entries or entries["meta"].dtype.kind != "U" or entries["meta"].ndim != 0:
        raise ModelFileError(f"{source}: not an nnctl model file (no 'meta' entry)")
    try:
        meta = json.loads(str(entries.pop("meta")[()]))
    except json.JSONDecodeError:
        raise ModelFileError(f"{source}: the model's metadata is not valid JSON; the file is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{source}: not an nnctl model file (unknown format)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{source}: model format version {version} is newer than this nnctl reads "
                             f"({FORMAT_VERSION}); upgrade nnctl")
    try:
        return _from_parts(meta, entries, source)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: the model's metadata is incomplete or inconsistent ({exc})") from None


def _from_parts(meta: dict[str, Any], entries: dict[str, np.ndarray], source: str) -> Model:
    spec = meta["network"]
    network = Network(spec["sizes"], spec["activations"], spec["dtype"], spec.get("dropout"))
    for i in range(network.n_layers):
        for name, view in (("W", network.W[i]), ("b", network.b[i])):
            key = f"layers.{i}.{name}"
            array = entries.get(key)
            if array is None:
                raise ModelFileError(f"{source}: missing array '{key}'")
            if array.shape != view.shape or array.dtype != network.dtype:
                raise ModelFileError(f"{source}: array '{key}' is {array.dtype}{list(array.shape)}, the metadata "
                                     f"says {network.dtype}{list(view.shape)}")
            view[...] = array
    if _checksum(entries) != meta.get("checksum"):
        raise ModelFileError(f"{source}: checksum mismatch; the weights were changed or damaged after saving")
    state = meta.get("state", {})
    arrays = {key: value for key, value in entries.items() if not key.startswith("layers.")}
    return Model(
        network=network,
        preprocessor=Preprocessor.from_dict(meta["preprocessing"]),
        target=TargetEncoder.from_dict(meta["target"]),
        loss=meta["loss"],
        loss_options=meta.get("loss_options", {}),
        config=meta.get("config", {}),
        history=meta.get("history", []),
        training=TrainingState.from_file(state, arrays),
        provenance=Provenance.from_json(state),
        temperature=_positive(meta.get("temperature"), "temperature"),
        threshold=_probability(meta.get("threshold")),
        diagnostics=Diagnostics.from_json(meta["diagnostics"]) if meta.get("diagnostics") else None,
    )


def _positive(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"'{key}' must be a number > 0, got {value!r}")
    return float(value)


def _probability(value: Any) -> float | None:
    if value is not None and _positive(value, "threshold") is not None and not value < 1:
        raise ValueError(f"'threshold' must be between 0 and 1, got {value!r}")
    return None if value is None else float(value)
