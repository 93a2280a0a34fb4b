"""Correct a wrong name: keep a face as a negative example of the person it was wrongly named (docs/negatives.md).

`unknowns.py not PERSON PHOTO` and the live page's "Not PERSON" both end in `keep_negative`: the face's vector
goes into the gallery's store beside PERSON's photos (stores.Store.add_negative), every running recogniser
reloads it, and from then on a face is named PERSON only if it is nearer PERSON's photos than PERSON's
negatives (the rule in matching.Matcher, for every --match strategy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..detection import Detector
from ..embedding import Embedder
from ..enrolment import usable_faces
from ..errors import FacerecError
from ..images import UnusablePhoto, load_photo
from ..names import normalise_name
from ..stores import Gallery, Store
from ..text import printable


@dataclass(frozen=True)
class NegativeKept:
    """What keeping a negative did: whose, how many that person now has, and the gallery as it now is."""

    person: str
    negatives: int  # the person's negative examples, this one included
    gallery: Gallery


def face_vector(image: np.ndarray, detector: Detector, embedder: Embedder, what: str) -> np.ndarray:
    """The vector of the one usable face of `image` (`what` names it in messages); FacerecError when it shows
    none or more than one: a negative example must be the face that was named wrongly, not a guess."""
    faces, status = usable_faces(image, detector)
    if not faces:
        raise FacerecError(f"{what}: {status}: give a photo or crop of the face that was named wrongly")
    if len(faces) > 1:
        raise FacerecError(f"{what}: {len(faces)} faces found, not one: crop it to the face that was named wrongly")
    return embedder.embed(image, faces)[0]


def photo_face_vector(path: str | os.PathLike, detector: Detector, embedder: Embedder) -> np.ndarray:
    """face_vector of the photo at `path` (FacerecError if it cannot be read)."""
    try:
        image = load_photo(path)
    except UnusablePhoto as why:
        raise FacerecError(f"{printable(os.fspath(path))}: {why}") from None
    return face_vector(image, detector, embedder, printable(os.fspath(path)))


def keep_negative(store: Store, person: str, vector: np.ndarray, models: dict) -> NegativeKept:
    """Keep `vector` (made by `models`: models.Models.identity) as a face that is not `person` (a name of the
    gallery, compared in NFC). FacerecError if the person is not in the gallery or the vector does not fit it."""
    person = normalise_name(person)
    gallery = store.add_negative(person, vector, models)
    return NegativeKept(person, gallery.negatives.names.count(person), gallery)
