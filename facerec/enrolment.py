"""Enrolment: turn a dataset of photos (dataset/<person>/<image>) into an embeddings store.

A run only looks at images it has not seen before: an image whose size and
modification time match the previous store's record is reused as it was
(its vector, or the reason it was skipped). Images that are gone are dropped.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .detection import MIN_FACE_SIZE, Detector
from .embedding import Embedder
from .errors import FacerecError
from .store import EmbeddingStore

# Status recorded for an image that gave a vector; anything else is the reason it was skipped.
USED = "used"


@dataclass
class EnrolmentReport:
    """What one run did: counts, and each skipped image with the reason."""

    used: int = 0
    reused: int = 0
    processed: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    people_without_photo: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.used} images used for {len(self.people)} people "
               f"({self.processed} processed now, {self.reused} unchanged since the last run, {self.removed} removed)"]
        if self.skipped:
            out.append(f"{len(self.skipped)} images skipped:")
            out.extend(f"  {path}: {reason}" for path, reason in self.skipped)
        if self.people_without_photo:
            out.append("no usable photo for: " + ", ".join(self.people_without_photo))
        return out


def read_image(path: Path) -> np.ndarray | None:
    """The image as 8-bit BGR (grey, 16-bit and alpha images converted), or None if it cannot be decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return image if image is not None and image.size else None


def dataset_images(dataset: Path) -> list[tuple[str, Path]]:
    """(person, image path) for every visible file in each visible folder of the dataset, sorted."""
    if not dataset.is_dir():
        raise FacerecError(f"dataset folder {dataset} does not exist: put photos in {dataset}/<person>/")
    images = []
    for person_dir in sorted(p for p in dataset.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in person_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            images.append((person_dir.name, path))
    return images


def file_signature(path: Path) -> dict[str, int]:
    """What tells a changed file from an unchanged one, cheaply."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def models_identity(profile: str, detector: Detector, embedder: Embedder) -> dict[str, Any]:
    """A record of the models that make the vectors; vectors from other models are never reused."""
    digests = {}
    for path in (*detector.paths, *embedder.paths):
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
        digests[Path(path).name] = hasher.hexdigest()
    return {"profile": profile, "detector": detector.network.name, "embedder": embedder.network.name,
            "confidence": detector.confidence, "sha256": digests}


def embed_image(image: np.ndarray, detector: Detector, embedder: Embedder) -> tuple[np.ndarray | None, str]:
    """The vector of the image's most confident face, or None and the reason there is none."""
    faces = detector.detect(image, min_size=1)
    if not faces:
        return None, "no face found"
    best = faces[0]
    if min(best.width, best.height) < MIN_FACE_SIZE:
        return None, f"face too small ({best.width}x{best.height} px, at least {MIN_FACE_SIZE} needed)"
    return embedder.embed(image, [best])[0], USED


def reusable_store(previous: EmbeddingStore | None, models: dict[str, Any], dimension: int) -> EmbeddingStore | None:
    """The previous run's store if it was made by the same models, else None (everything is redone)."""
    if previous is None or previous.models != models:
        return None
    if dimension and len(previous) and previous.vectors.shape[1] != dimension:
        print(f"warning: the previous embeddings hold {previous.vectors.shape[1]}-d vectors although made by the "
              f"same models, which make {dimension}-d ones: it is damaged; every image is redone", file=sys.stderr)
        return None
    return previous


def enrol(dataset: Path, previous: EmbeddingStore | None, detector: Detector, embedder: Embedder,
          models: dict[str, Any], progress: bool = True) -> tuple[EmbeddingStore, EnrolmentReport]:
    """Build the store for `dataset`, reusing what the `previous` store (from store.open_store_target) already knows."""
    from tqdm import tqdm

    images = dataset_images(dataset)
    if not images:
        raise FacerecError(f"dataset folder {dataset} has no photos: put them in {dataset}/<person>/")
    old = reusable_store(previous, models, embedder.dimension)
    old_vectors = {path: vector for path, vector in zip(old.paths, old.vectors)} if old else {}
    old_files = old.files if old else {}
    report = EnrolmentReport()
    vectors, names, paths, files = [], [], [], {}
    for person, path in tqdm(images, desc="images", unit="img", disable=not progress, file=sys.stderr):
        key = path.relative_to(dataset).as_posix()
        signature = file_signature(path)
        record = old_files.get(key, {})
        unchanged = all(record.get(k) == v for k, v in signature.items())
        if unchanged and (record.get("status") != USED or key in old_vectors):
            status, vector = record["status"], old_vectors.get(key)
            report.reused += 1
        else:
            image = read_image(path)
            vector, status = (None, "not a readable image") if image is None else embed_image(image, detector, embedder)
            report.processed += 1
        files[key] = {**signature, "status": status}
        if vector is None:
            report.skipped.append((str(path), status))
            continue
        vectors.append(vector)
        names.append(person)
        paths.append(key)
    report.removed = len(set(old_files) - set(files))
    report.used = len(vectors)
    report.people = list(dict.fromkeys(names))
    report.people_without_photo = [p for p in dict.fromkeys(person for person, _ in images) if p not in report.people]
    dimension = embedder.dimension or (len(vectors[0]) if vectors else 0)
    store = EmbeddingStore(np.array(vectors, np.float32).reshape(len(vectors), dimension), names, paths,
                           models["profile"], models, files)
    return store, report
