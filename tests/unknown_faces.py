"""Real unknown tracks for the tests of facerec/unknowns: loose face crops of ../shared/faces photos, as JPEG, with
their SFace vectors, made through the real YuNet and SFace networks of ../shared/models."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from conftest import shared_path

from facerec.enrolment import usable_faces
from facerec.images import load_photo
from facerec.models import Models, load_models
from facerec.unknowns.store import KeptFace, KeptTrack

# Photos of ../shared/faces/known by person: two each (alex_lacamoire has one).
PHOTOS = {"kit": ["known/kit_harington/john1.jpeg", "known/kit_harington/john2.jpeg"],
          "rose": ["known/rose_leslie/img1.jpg", "known/rose_leslie/img2.jpg"],
          "biden": ["known/biden/biden.jpg", "known/biden/biden2.jpg"],
          "obama": ["known/obama/obama.jpg", "known/obama/obama2.jpg"]}
PROBES = {"kit": "probe/johnsnow_test1.jpg", "obama": "probe/obama1.jpg"}


@functools.lru_cache(maxsize=1)
def sface() -> Models:
    """The sface profile's networks, from ../shared/models (nothing downloaded)."""
    return load_models("sface", models_dir=shared_path("models"))


@functools.lru_cache(maxsize=None)
def crop(photo: str) -> tuple[bytes, np.ndarray]:
    """The photo's most confident face, cropped loosely (60% of its size around it, as a recogniser keeps it),
    as JPEG, and its SFace vector."""
    models = sface()
    image = load_photo(shared_path("faces") / photo)
    faces, _ = usable_faces(image, models.detector)
    vector = models.needs_embedder().embed(image, faces[:1])[0]
    x0, y0, x1, y1 = faces[0].box
    width, height = x1 - x0, y1 - y0
    box = image[max(0, int(y0 - 0.6 * height)):int(y1 + 0.6 * height), max(0, int(x0 - 0.6 * width)):int(x1 + 0.6 * width)]
    ok, jpeg = cv2.imencode(".jpg", box)
    assert ok
    return jpeg.tobytes(), np.asarray(vector, np.float32)


def track(photos: list[str], number: int, seen: float, camera: str = "door") -> KeptTrack:
    """A finished Unknown track whose faces are the crops of `photos`, seen at `seen`."""
    faces = tuple(KeptFace(*crop(photo), quality=0.9 - 0.1 * index, seen=seen) for index, photo in enumerate(photos))
    return KeptTrack(camera, number, seen - 1.0, seen, faces)


def jpeg_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.jpg")) if folder.exists() else []
