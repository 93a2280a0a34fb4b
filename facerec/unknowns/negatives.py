"""Correct a wrong name: keep a face as a negative example of the person it was wrongly named (docs/negatives.md).

`unknowns.py not PERSON PHOTO` and the live page's "Not PERSON" both end in `keep_negative`: the face's vector
goes into the gallery's store beside PERSON's photos (stores.Store.add_negative), every running recogniser
reloads it, and from then on a face is named PERSON only if it is nearer PERSON's photos than PERSON's
negatives (the rule in matching.Matcher, for every --match strategy).
"""

from __future__ import annotations

import datetime
import math
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
from ..text import plural, printable
from .rules import DAY_SECONDS


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


# A face nearer one of PERSON's own photos than this fraction of the threshold is taken for PERSON: as a negative
# example it would stop PERSON being named (obama's own probe is 0.08 from his photo, sface's threshold 1.07).
# Not the literal "nearer the person's own photos than any other's": a face is corrected because it was
# named PERSON, that is because it was nearer PERSON's photos than anyone's, so that rule would refuse every
# correction (the stranger named obama on the clip too). Half the threshold is well inside where the matcher is
# sure (Lin-Manuel Miranda's probe photo, kept as not obama by the tests, is 1.26 from obama's nearest photo).
OWN_FACE_FRACTION = 0.5


def _photos_of(gallery: Gallery, person: str) -> np.ndarray:
    """Which of the gallery's photos are `person`'s (a bool per photo)."""
    return np.array([name == person for name in gallery.names], bool)


def own_face_problem(gallery: Gallery, person: str, vector: np.ndarray, threshold: float) -> str | None:
    """Why `vector` looks like `person` themself (nearer one of their photos than OWN_FACE_FRACTION of
    `threshold`), with the distances, or None."""
    row = np.asarray(vector, np.float32).reshape(1, -1)
    own = _photos_of(gallery, person)
    if not own.any() or gallery.vectors.shape[1] != row.shape[1]:
        return None  # add_negative says what is wrong
    distances = np.linalg.norm(gallery.vectors - row, axis=1)
    distance = float(distances[own].min())
    if distance >= OWN_FACE_FRACTION * threshold:
        return None
    others = ""
    if (~own).any():
        other = int(np.flatnonzero(~own)[np.argmin(distances[~own])])
        others = f" (the nearest photo of anyone else, {printable(gallery.names[other])}'s, is {distances[other]:.3f})"
    return (f"the face is {distance:.3f} from a photo of {printable(person)}{others}, nearer than "
            f"{OWN_FACE_FRACTION:g} × the threshold {threshold:g} = {OWN_FACE_FRACTION * threshold:.3f}: it looks "
            f"like {printable(person)} themself, and as a negative example it would stop {printable(person)} being "
            "named")


@dataclass(frozen=True)
class ListedNegative:
    """One negative example as `unknowns.py negatives` lists it: its number (from 1, in the store's order), whose
    it is, its vector, and how far it is from that person's nearest photo (None: they have none now)."""

    number: int
    person: str
    vector: np.ndarray
    to_photo: float | None
    made: float  # when it was kept (seconds since the epoch); NaN: not known yet (Negatives.made)


def listed_negatives(gallery: Gallery, person: str | None = None) -> list[ListedNegative]:
    """The gallery's negative examples (of `person` only, if given), numbered over all of them."""
    listed = []
    negatives = gallery.negatives
    for number, (name, vector, made) in enumerate(zip(negatives.names, negatives.vectors, negatives.made), start=1):
        if person is not None and name != person:
            continue
        own = _photos_of(gallery, name)
        distance = float(np.linalg.norm(gallery.vectors[own] - vector, axis=1).min()) if own.any() else None
        listed.append(ListedNegative(number, name, vector, distance, float(made)))
    return listed


def kept_when(made: float, now: float) -> str:
    """When a negative was kept, for a listing: "kept 2026-12-07 21:49 UTC, 3 days ago" (NaN: not known)."""
    if math.isnan(made):
        return "kept before times were recorded: counted from the next run that applies the retention"
    when = datetime.datetime.fromtimestamp(made, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    days = (now - made) / DAY_SECONDS
    return f"kept {when}, {'today' if days < 1 else plural(int(days), 'day') + ' ago'}"


def remove_negative(store: Store, number: int) -> ListedNegative:
    """Remove the negative example numbered `number` by listed_negatives (FacerecError if there is none, or it
    was removed meanwhile: the store removes exactly that person's that vector)."""
    gallery = store.load()
    listed = listed_negatives(gallery)
    if not 1 <= number <= len(listed):
        raise FacerecError(f"there is no negative example {number} in {store.location} (it holds "
                           f"{len(listed)}): `unknowns.py negatives` lists them")
    store.remove_negative(listed[number - 1].person, listed[number - 1].vector)
    return listed[number - 1]


def keep_negative(store: Store, person: str, vector: np.ndarray, models: dict, threshold: float,
                  force: bool = False) -> NegativeKept:
    """Keep `vector` (made by `models`: models.Models.identity) as a face that is not `person` (a name of the
    gallery, compared in NFC). FacerecError if the person is not in the gallery or the vector does not fit it,
    and, unless `force`, if the face looks like the person themself (own_face_problem, with `threshold`)."""
    person = normalise_name(person)
    if not force:
        problem = own_face_problem(store.load(), person, vector, threshold)
        if problem:
            raise FacerecError(f"{problem}; nothing kept (if that face really is not {printable(person)}: "
                               "unknowns.py not --force, or \"force\": true to /api/negatives)")
    gallery = store.add_negative(person, vector, models)
    return NegativeKept(person, gallery.negatives.names.count(person), gallery)
