"""The checks every gallery store shares: whose models made a gallery, whether its vectors are the embedders',
whether it fits the running models, and what an enrolment may reuse of it.

A store (stores/*) only reads and writes its backend; what makes a gallery usable is
decided here, once, for every kind of store. (The in-memory snapshot is
stores.base.Gallery; nothing here needs more of it than its fields.)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import FacerecError

if TYPE_CHECKING:  # only for the annotations: the stores import this module
    from .embedding import Embedder
    from .stores.base import Gallery

# The embedders store unit vectors. float32 rounding moves a length by about 1e-7, float16 by
# less than 5e-4; a vector further than this from length 1 is not one of theirs.
UNIT_LENGTH_TOLERANCE = 1e-3

# Bounds on any gallery, whatever its store: the largest in mind is a few million vectors (a million 128-d
# vectors is a 0.6 GB file); these leave room above that.
MAX_VECTORS = 5_000_000
MAX_DIMENSION = 4096
MAX_VALUES = 1 << 30  # numbers in all vectors together: 4 GiB as float32


class NotUnitVectors(ValueError):
    """A gallery's vectors are not what the embedders make (the store says which file or database)."""


def shown(text: str, limit: int = 100) -> str:
    """Text from a gallery, safe to put in a one-line message: printable and short."""
    text = text[:limit]
    return text if text.isprintable() else repr(text)[1:-1]


def check_unit_vectors(vectors: np.ndarray, names: list[str]) -> None:
    """Raise NotUnitVectors (saying which vector, and whose) unless every row is finite and of length 1, as the
    embedders make them."""
    with np.errstate(over="ignore", invalid="ignore"):
        # float32, no temporary the size of the vectors: a million in a fraction of a second
        lengths = np.sqrt(np.einsum("ij,ij->i", vectors, vectors)).astype(np.float64)
    unsure = np.flatnonzero(~np.isfinite(lengths))  # NaN or infinity in the row, or squares too large for float32
    if len(unsure):
        rows = vectors[unsure].astype(np.float64)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            bad = int(unsure[np.flatnonzero(~finite)[0]])
            raise NotUnitVectors(f"vector {bad} ({shown(names[bad])}) contains NaN or infinity (or a number too large "
                                 "for float32)")
        lengths[unsure] = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    off = np.abs(lengths - 1.0) > UNIT_LENGTH_TOLERANCE
    if len(vectors) and off.any():
        bad = int(np.flatnonzero(off)[0])
        raise NotUnitVectors(f"vector {bad} ({shown(names[bad])}) has length {lengths[bad]:.4g}, but the embedders "
                             f"make vectors of length 1 (within {UNIT_LENGTH_TOLERANCE:g}): it was not made by them")


def check_profile(gallery: Gallery, path: str | os.PathLike, wanted: str) -> None:
    """Raise FacerecError unless the gallery's vectors were made by profile `wanted` (the message says what to do)."""
    if gallery.profile == wanted:
        return
    if gallery.profile_recorded:
        made = f"{path} was made with the {gallery.profile!r} profile"
    else:
        made = f"{path} records no model profile (a classic tutorial file); assumed {gallery.profile}"
    raise FacerecError(f"{made}: recognise with --model {gallery.profile}, or re-run extract_embeddings.py --model {wanted}")


def check_store_fits(gallery: Gallery, path: str | os.PathLike, embedder: Embedder) -> None:
    """Raise FacerecError unless the gallery at `path` holds vectors as long as the embedder's.

    (Its profile is checked with check_profile as soon as it is loaded, before any model is.)"""
    if len(gallery) and gallery.vectors.shape[1] != embedder.dimension:
        raise FacerecError(f"{path} holds {gallery.vectors.shape[1]}-d vectors but the embedder makes "
                           f"{embedder.dimension}-d ones: re-run extract_embeddings.py")


def reusable(previous: Gallery | None, models: dict[str, Any], dimension: int
             ) -> tuple[Gallery | None, str | None]:
    """(what an enrolment may reuse of `previous`, or None: made by other models; a warning for the user, or None).

    Vectors are reused only from the same models (models.models_identity) at the embedder's `dimension`.
    """
    if previous is None or previous.models != models:
        return None, None
    if dimension and len(previous) and previous.vectors.shape[1] != dimension:
        return None, (f"the previous embeddings hold {previous.vectors.shape[1]}-d vectors although made by the "
                      f"same models, which make {dimension}-d ones: it is damaged; every image is redone")
    return previous, None


def check_negative(location: str, person: str, people: Sequence[str], gallery_models: dict[str, Any], dimension: int,
                   vector: np.ndarray, models: dict[str, Any]) -> None:
    """Raise FacerecError unless `vector`, made by `models`, can be kept as a face that is not `person` in the gallery
    at `location`: the person is one of its `people`, and the vector is a unit vector of the gallery's models
    (`gallery_models`) and `dimension` (else no rule could compare it with the person's photos)."""
    if person not in people:
        known = ", ".join(shown(name) for name in people[:10]) or "nobody"
        raise FacerecError(f"{shown(person)} is not in the gallery {location} (it holds {known}"
                           f"{', ...' if len(people) > 10 else ''}): a negative example is of a known person")
    if gallery_models and _vector_makers(gallery_models) != _vector_makers(models):
        raise FacerecError(f"the gallery {location} was made with other models ({gallery_models.get('profile')!r} "
                           f"profile) than this face's vector ({models.get('profile')!r}): give the gallery's --model "
                           "and model files")
    vector = np.asarray(vector, np.float32).reshape(1, -1)
    if vector.shape[1] != dimension:
        raise FacerecError(f"a {vector.shape[1]}-d vector cannot be compared with the {dimension}-d vectors of {location}")
    try:
        check_unit_vectors(vector, [person])
    except NotUnitVectors as error:
        raise FacerecError(f"not kept as a negative example: {error}") from None


def _vector_makers(models: dict[str, Any]) -> dict[str, Any]:
    """What in a models record (models.models_identity) decides the vectors: all but the detector's confidence."""
    return {key: value for key, value in models.items() if key != "confidence"}
