"""The faces of an open-set folder (lfw-dev's layout), detected and embedded once, and cached.

A folder holds `people.csv` (file,person,role; role `known` or `stranger`) and `photos/<file>`. Each photo is
read, its face found with the profile's detector (the face nearest the photo's centre: LFW's photos are
centred on their person), embedded, and its quality scored (stages/quality.py). The vectors go to
`<cache>/<key>.npz`, the key a digest of the folder's people.csv, the models' checksums and the runtime and
precision that embedded, so a sweep is instant and another runtime or model set never reads them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.embedding import RUNTIME_VARIABLE
from facerec.errors import FacerecError
from facerec.fileio import atomic_writer
from facerec.images import read_image
from facerec.models import Models, load_models
from facerec.stages.quality import factors, score

ROLES = ("known", "stranger")


@dataclass
class OpenSetFaces:
    """One row a photo: its person, role, whether a face was found, the face's vector and quality."""

    files: list[str]
    people: list[str]
    roles: list[str]
    found: np.ndarray  # bool, (N,)
    vectors: np.ndarray  # float32 (N, D); zeros where no face was found
    quality: np.ndarray  # float64 (N,); 0 where no face was found
    runtime: str  # what embedded (Embedder.description: "SFace on OpenVINO, 2 threads, float32")


def read_people(folder: Path) -> list[tuple[str, str, str]]:
    """(file, person, role) of each row of folder/people.csv, checked."""
    listing = folder / "people.csv"
    try:
        with open(listing, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise FacerecError(f"cannot read {listing}: {error.strerror or error}") from None
    people = []
    for number, row in enumerate(rows, start=2):
        file, person, role = (row.get(key) or "" for key in ("file", "person", "role"))
        if not file or not person or role not in ROLES:
            raise FacerecError(f"{listing}, line {number}: needs file, person and role (known or stranger)")
        people.append((file, person, role))
    return people


def runtime_of(models: Models) -> str:
    """What embedded, as the scripts print it: `SFace on OpenVINO, 2 threads, float32`."""
    return models.needs_embedder().description()


def load_faces(folder: Path, cache: Path, models_dir: Path, profile: str = "sface") -> OpenSetFaces:
    """The folder's faces, from the cache when it holds them for these models and this runtime."""
    rows = read_people(folder)
    models = load_models(profile, models_dir=models_dir)
    runtime = runtime_of(models)
    embedder = models.needs_embedder()
    # the vectors depend on the files, the runtime and its precision (not on its threads)
    key = hashlib.sha256(json.dumps([(folder / "people.csv").read_text(encoding="utf-8"), models.identity,
                                     type(embedder).__name__, embedder.precision, os.environ.get(RUNTIME_VARIABLE, "")],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cached = cache / f"openset-{folder.name}-{key}.npz"
    if cached.exists():
        data = np.load(cached)
        return OpenSetFaces([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], data["found"],
                            data["vectors"], data["quality"], runtime)
    found = np.zeros(len(rows), bool)
    vectors = np.zeros((len(rows), embedder.dimension), np.float32)
    quality = np.zeros(len(rows))
    for i, (file, _, _) in enumerate(rows):
        image = read_image(folder / "photos" / file)
        if image is None:
            raise FacerecError(f"cannot read {folder / 'photos' / file}")
        faces = models.detector.detect(image)
        if not faces:
            continue
        centre = np.array(image.shape[1::-1]) / 2
        face = min(faces, key=lambda f: np.hypot(*(np.array([(f.box[0] + f.box[2]) / 2,
                                                              (f.box[1] + f.box[3]) / 2]) - centre)))
        found[i] = True
        vectors[i] = embedder.embed(image, [face])[0]
        quality[i] = score(factors(image, face))
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_writer(cached) as handle:
        np.savez(handle, found=found, vectors=vectors, quality=quality)
    return OpenSetFaces([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], found, vectors, quality,
                        runtime)
