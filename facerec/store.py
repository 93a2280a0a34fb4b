"""The embeddings file: one pickle of what extract_embeddings.py learned from the dataset.

Format (a dict, readable by the classic tutorial scripts):
    "embeddings": list of 1-D float32 arrays (one per face image)
    "names":      list of str, the person of each vector
    "paths":      list of str, the image each vector came from
    "profile":    name of the model profile that made the vectors
    "models":     dict describing the model files used
    "files":      {path: {"size", "mtime_ns", "status"}} for every image seen,
                  so a later run can skip what it already did
    "format":     version number of this layout

Loading never trusts the file: a restricted unpickler admits only plain
containers, numbers, strings and numeric numpy arrays.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FacerecError
from .fileio import atomic_writer

FORMAT_VERSION = 1
# A file written by the seed scripts records no profile; they used OpenFace.
LEGACY_PROFILE = "openface"

# The only globals a legitimate embeddings pickle refers to (numpy's array reconstruction).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


@dataclass
class EmbeddingStore:
    """Vectors with their person names and source images, and the model profile that made them."""

    vectors: np.ndarray
    names: list[str]
    paths: list[str]
    profile: str = LEGACY_PROFILE
    models: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls, profile: str, models: dict[str, Any], dimension: int) -> "EmbeddingStore":
        return cls(np.zeros((0, dimension), np.float32), [], [], profile, dict(models), {})

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> list[str]:
        """Each person's name once, in order of first appearance."""
        return list(dict.fromkeys(self.names))


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names something outside the embeddings format (a way to run code)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise _ForbiddenGlobal(f"it refers to {module}.{name}, which an embeddings file never contains")


def _restricted_loads(data: bytes) -> Any:
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def load_store(path: str | os.PathLike) -> EmbeddingStore:
    """Read and check an embeddings file; raise FacerecError naming the file and the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FacerecError(f"embeddings file {path} does not exist: run extract_embeddings.py first") from None
    except OSError as error:
        raise FacerecError(f"cannot read embeddings file {path}: {error.strerror}") from None
    if not data:
        raise FacerecError(f"embeddings file {path} is empty")
    try:
        content = _restricted_loads(data)
    except _ForbiddenGlobal as error:
        raise FacerecError(f"embeddings file {path} was refused: {error}") from None
    except Exception as error:  # truncated or garbage bytes raise many different types
        raise FacerecError(f"embeddings file {path} is not a readable embeddings pickle ({error or type(error).__name__})") from None
    try:
        return _store_from_dict(content)
    except ValueError as error:
        raise FacerecError(f"embeddings file {path} is malformed: {error}") from None


def _store_from_dict(content: Any) -> EmbeddingStore:
    if not isinstance(content, dict) or "embeddings" not in content or "names" not in content:
        raise ValueError('expected a dict with "embeddings" and "names"')
    raw_vectors, names = content["embeddings"], content["names"]
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise ValueError('"names" must be a list of strings')
    try:
        rows = [np.asarray(vector, dtype=np.float64).ravel() for vector in raw_vectors]
    except (TypeError, ValueError):
        raise ValueError('"embeddings" must be a list of numeric vectors') from None
    if len(rows) != len(names):
        raise ValueError(f"{len(rows)} embeddings but {len(names)} names")
    dimensions = {len(row) for row in rows}
    if len(dimensions) > 1:
        raise ValueError(f"vectors of different lengths {sorted(dimensions)}")
    dimension = dimensions.pop() if dimensions else 0
    vectors = np.array(rows, dtype=np.float32).reshape(len(rows), dimension)
    if not np.all(np.isfinite(vectors)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(vectors), axis=1))[0])
        raise ValueError(f"vector {bad} ({names[bad]}) contains NaN or infinity")
    paths = content.get("paths", [""] * len(names))
    if not isinstance(paths, list) or len(paths) != len(names) or not all(isinstance(p, str) for p in paths):
        raise ValueError('"paths" must be a list of strings, one per embedding')
    profile = content.get("profile", LEGACY_PROFILE)
    models = content.get("models", {})
    files = content.get("files", {})
    if not isinstance(profile, str) or not isinstance(models, dict) or not isinstance(files, dict):
        raise ValueError('"profile", "models" or "files" has the wrong type')
    return EmbeddingStore(vectors, list(names), list(paths), profile, models, files)


def save_store(store: EmbeddingStore, path: str | os.PathLike) -> None:
    """Write the store atomically: the previous file stays intact until the new one is complete."""
    content = {
        "embeddings": [np.asarray(row, dtype=np.float32) for row in store.vectors],
        "names": list(store.names),
        "paths": list(store.paths),
        "profile": store.profile,
        "models": dict(store.models),
        "files": dict(store.files),
        "format": FORMAT_VERSION,
    }
    with atomic_writer(path) as handle:
        pickle.dump(content, handle, protocol=pickle.HIGHEST_PROTOCOL)
