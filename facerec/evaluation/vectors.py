"""Reading labelled vectors to evaluate (OpenFace-style CSVs: one vector a row, labels `index,path`) and checking them.

Vectors are refused, with the row named, when a value is not finite or so
large no embedder makes it (beyond MAX_COMPONENT): distances of such vectors
overflow or lose every digit of precision.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from ..errors import FacerecError

# The largest magnitude a vector's value may have: embeddings are unit vectors (values within 1) or, unnormalised,
# values of a few tens; 1e4 leaves a wide margin while squared distances stay exact enough in float64.
MAX_COMPONENT = 1e4


def check_vectors(vectors: np.ndarray, rows: Sequence[str]) -> None:
    """FacerecError unless `vectors` (N, D) has D > 0 and finite values within MAX_COMPONENT.

    `rows` names each vector for the message (e.g. "vectors.csv, line 3"). No vectors pass.
    """
    if len(vectors) == 0:
        return
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise FacerecError(f"{rows[0] if rows else 'the vectors'}: a vector of length 0: there is nothing to compare")
    finite = np.isfinite(vectors)
    bad = np.flatnonzero(~finite.all(axis=1))
    if len(bad):
        raise FacerecError(f"{rows[bad[0]]}: NaN or infinite value")
    too_large = np.flatnonzero((np.abs(vectors) > MAX_COMPONENT).any(axis=1))
    if len(too_large):
        value = vectors[too_large[0]][np.argmax(np.abs(vectors[too_large[0]]))]
        raise FacerecError(f"{rows[too_large[0]]}: the value {value:g} is beyond ±{MAX_COMPONENT:g}: "
                           "not the vector of an embedder")


def _csv_rows(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers; FacerecError if it cannot be read."""
    try:
        # utf-8-sig: a byte-order mark at the start (as some editors save) is not part of the first row
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)
                    if any(field.strip() for field in row)]
    except FileNotFoundError:
        raise FacerecError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FacerecError(f"cannot read {what} file {path}: {error}") from None
    if not rows:
        raise FacerecError(f"{what} file {path} is empty")
    return rows


def load_labelled_vectors(vectors_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read OpenFace-style CSVs: one vector a row (no header), and labels `index,path` a row.

    Row i of the labels describes row i of the vectors; the person is the folder
    of the path (the index column is not used). Returns float32 vectors, as the
    pipeline stores them, and the person names.
    """
    vectors_path, labels_path = Path(vectors_path), Path(labels_path)
    rows, lines = [], []
    for number, row in _csv_rows(vectors_path, "vectors"):
        lines.append(f"vectors file {vectors_path}, line {number}")
        try:
            rows.append([float(field) for field in row])
        except ValueError:
            raise FacerecError(f"vectors file {vectors_path}, line {number}: not a row of numbers") from None
        if len(rows[-1]) != len(rows[0]):
            raise FacerecError(f"vectors file {vectors_path}, line {number}: a row of length {len(rows[-1])}, "
                               f"but the first row has length {len(rows[0])}")
    vectors = np.array(rows, dtype=np.float64)
    check_vectors(vectors, lines)  # in float64: a value too large for float32 is named, not turned into inf
    vectors = vectors.astype(np.float32)
    names = []
    for number, row in _csv_rows(labels_path, "labels"):
        if len(row) != 2:
            raise FacerecError(f"labels file {labels_path}, line {number}: expected 'index,path', got {len(row)} fields")
        person = PurePosixPath(row[1].strip().replace("\\", "/")).parent.name
        if not person:
            raise FacerecError(f"labels file {labels_path}, line {number}: path {row[1]!r} has no folder "
                               "naming the person")
        names.append(person)
    if len(names) != len(vectors):
        raise FacerecError(f"{vectors_path} has {len(vectors)} vectors but {labels_path} has {len(names)} labels")
    return vectors, names
