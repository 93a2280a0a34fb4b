"""The actions on kept unknown faces that `unknowns.py` and the web page's Unknown tab both take.

    group_json(group)                    what `list --json` prints of a group (and the page shows)
    search_groups(store, vector, threshold)
                                         the groups with a face within `threshold` of a face, nearest first
    looks_like(store, vectors, names, threshold, margin)
                                         per group, the gallery person its faces are near without being named
    show_group(store, group, out)        the group's best crops written to a folder as JPEG files
    name_group(store, group, person, dataset, gallery, models)
                                         the crops become photos of `person` in the dataset, are learned
                                         into the gallery (an incremental enrolment), the group is named

Ignoring, merging, forgetting and regrouping are the store's own methods (store.UnknownStore), one
transaction each.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..enrolment import EnrolmentReport, embed_face, enrol
from ..errors import FacerecError
from ..fileio import atomic_writer, written_temporary
from ..images import UnusablePhoto, decode_photo
from ..models import Models
from ..names import check_person_name
from ..stores import Store, open_store
from ..text import plural, printable
from .store import FACES_PER_TRACK, KeptFace, UnknownGroup, UnknownStore, VideoSpan

# Crops of a group that become photos when it is named: its best, by quality.
PHOTOS_PER_NAME = 2 * FACES_PER_TRACK
# The photos' names in the dataset: unknown-<group>-<n>.jpg, n the first free number (nothing is overwritten).
PHOTO_NAME = "unknown-{group}-{number}.jpg"
MAX_PHOTO_NUMBER = 100_000


def timestamp(seconds: float) -> str:
    """Seconds since the epoch as ISO 8601 in UTC, to the second: 2026-12-03T14:06:35Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def position(seconds: float) -> str:
    """A position in a video file as a player shows it, to the tenth of a second: 0:07.3, 1:02:03.0."""
    tenths = math.floor(seconds * 10 + 0.5)  # halves up, as the page's Math.round
    minutes, tenth_seconds = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    shown = f"{minutes}:{tenth_seconds // 10:02d}.{tenth_seconds % 10}"
    return f"{hours}:{minutes:02d}:{tenth_seconds // 10:02d}.{tenth_seconds % 10}" if hours else shown


def span_text(span: VideoSpan) -> str:
    """`clip.mp4 at 0:07.3`, or `clip.mp4 at 0:03.2 to 0:07.3`."""
    to = f" to {position(span.last)}" if position(span.last) != position(span.first) else ""
    return f"{printable(span.file)} at {position(span.first)}{to}"


def group_json(group: UnknownGroup) -> dict[str, Any]:
    """A group as one JSON object: group, faces, tracks, first_seen, last_seen (ISO 8601, UTC: when seen live,
    when processed for a video file), cameras, videos (per video file its tracks came from: its name and the
    first and last positions in seconds, [] for a live camera's), live (whether some of its tracks are a live
    camera's: only then do its times say when a face was seen)."""
    return {"group": group.group, "faces": group.faces, "tracks": group.tracks,
            "first_seen": timestamp(group.first_seen), "last_seen": timestamp(group.last_seen),
            "cameras": list(group.cameras),
            "videos": [{"file": span.file, "first": span.first, "last": span.last} for span in group.videos],
            "live": group.live}


def group_line(group: UnknownGroup) -> str:
    """A group as one line of `unknowns.py list`: where it was seen in video files, when it was seen live (a group
    of video files alone is not given the times they were processed)."""
    where = f", seen in {', '.join(map(span_text, group.videos))}" if group.videos else ""
    when = f", seen {timestamp(group.first_seen)} to {timestamp(group.last_seen)}" if group.live else ""
    return (f"group {group.group}: {plural(group.faces, 'face')}, {plural(group.tracks, 'track')}{where}{when} by "
            f"{', '.join(map(printable, group.cameras))}")


@dataclass(frozen=True)
class FoundGroup:
    """A kept group a searched face matches: the distance from the face to the group's nearest kept face."""

    group: UnknownGroup
    distance: float

    def json(self) -> dict[str, Any]:
        """group_json's object with "distance" (what `search --json` lists)."""
        return {**group_json(self.group), "distance": round(self.distance, 4)}


def search_groups(store: UnknownStore, vector: np.ndarray, threshold: float) -> list[FoundGroup]:
    """"Have I seen this face before?": every kept group with a face nearer `vector` than `threshold` (the face is
    that person's, as naming decides), nearest first. Reads every kept face of every group: as fast as the store."""
    query = np.asarray(vector, np.float64).reshape(-1)
    found = []
    for group in store.groups():
        faces = store.best_faces(group.group, max(group.faces, 1))
        if not faces:
            continue
        vectors = np.array([np.asarray(face.vector, np.float64).reshape(-1) for face in faces])
        if vectors.shape[1] != len(query):
            raise FacerecError(f"the unknown faces have vectors of {vectors.shape[1]} numbers, the photo's face "
                               f"{len(query)}: search with the model that kept them")
        distance = float(np.linalg.norm(vectors - query, axis=1).min())
        if distance < threshold:
            found.append(FoundGroup(group, distance))
    return sorted(found, key=lambda item: (item.distance, item.group.group))


# A group "looks like" a gallery person whose nearest photo is within this factor of the threshold (and the next
# person at least the profile's look-alike margin further). On the clip with faces/known (sface, 1.07): Alex
# Lacamoire at the piano, never named, is 1.144 from his photo (the next person 1.284); every other kept group
# is 1.215 or more from anyone. 1.1 x 1.07 = 1.177 lies between.
LOOKS_LIKE_FACTOR = 1.1


def looks_like(store: UnknownStore, vectors: np.ndarray, names: list[str], threshold: float,
               margin: float) -> dict[int, dict[str, Any] | None]:
    """For each group: {"name": PERSON, "distance": d} when its nearest kept face is within LOOKS_LIKE_FACTOR x
    `threshold` of PERSON's nearest photo (d) and every other person is at least `margin` further; else None."""
    gallery = np.asarray(vectors, np.float64).reshape(len(names), -1)
    people = np.array(names, dtype=object)
    found: dict[int, dict[str, Any] | None] = {}
    for group in store.groups():
        faces = store.best_faces(group.group, max(group.faces, 1))
        found[group.group] = None
        if not faces or not len(people):
            continue
        kept = np.array([np.asarray(face.vector, np.float64).reshape(-1) for face in faces])
        if kept.shape[1] != gallery.shape[1]:
            continue
        nearest = np.linalg.norm(kept[:, None, :] - gallery[None, :, :], axis=2).min(axis=0)
        by_person = sorted((float(nearest[people == person].min()), person) for person in dict.fromkeys(names))
        distance, person = by_person[0]
        if distance < LOOKS_LIKE_FACTOR * threshold and (len(by_person) == 1 or by_person[1][0] - distance >= margin):
            found[group.group] = {"name": person, "distance": round(distance, 4)}
    return found


def _best(store: UnknownStore, group: int, limit: int) -> list[KeptFace]:
    faces = store.best_faces(group, limit)
    if not faces:
        raise FacerecError(f"unknown group {group} has no face crop left (dropped by the bounds meanwhile?)")
    return faces


def show_group(store: UnknownStore, group: int, out: str | os.PathLike, limit: int = PHOTOS_PER_NAME) -> list[Path]:
    """Write the group's best crops (at most `limit`) to the folder `out` (made if missing) as
    group-<group>-<n>.jpg, n from 1 (best first), each written atomically (one of the same name is replaced:
    showing a group again refreshes its files). The paths written."""
    faces = _best(store, group, limit)
    folder = Path(out)
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for number, face in enumerate(faces, start=1):
            path = folder / f"group-{group}-{number}.jpg"
            with atomic_writer(path) as handle:
                handle.write(face.jpeg)
            written.append(path)
    except OSError as error:
        raise FacerecError(f"cannot write the crops to {printable(folder)}: {error.strerror or error}") from None
    return written


@dataclass
class Naming:
    """What name_group did: the photos added to the dataset and the enrolment's report."""

    person: str
    photos: list[Path]
    report: EnrolmentReport


def _place_photo(folder: Path, group: int, jpeg: bytes) -> Path:
    """Write `jpeg` as the first free unknown-<group>-<n>.jpg of `folder`: to a temporary, then linked to its
    name (a link never replaces a file, so nothing is overwritten, even by a photo put there meanwhile)."""
    with written_temporary(folder / f"unknown-{group}.jpg") as (handle, temporary):
        handle.write(jpeg)
    try:
        for number in range(1, MAX_PHOTO_NUMBER):
            path = folder / PHOTO_NAME.format(group=group, number=number)
            try:
                os.link(temporary, path)
                return path
            except FileExistsError:
                continue
        raise FacerecError(f"{printable(folder)} has no free name for another photo of unknown group {group}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def name_group(store: UnknownStore, group: int, person: str, dataset: str | os.PathLike,
               gallery: str | os.PathLike | Store | None, models: Models, *, limit: int = PHOTOS_PER_NAME,
               on_warning: Callable[[str], None] | None = None) -> Naming:
    """Name a group `person`: its best crops (at most `limit`, those in which the detector finds a face)
    become photos dataset/<person>/unknown-<group>-<n>.jpg (the name checked as enrolment checks a folder's;
    nothing is overwritten), the dataset is enrolled into `gallery` incrementally (only those photos are new:
    an existing person gains them, a new person is made), then the store names the group (it leaves the list;
    its tracks become sightings of `person`, see the store).

    FacerecError, with nothing left behind, when the group does not exist, no crop shows a face, or the
    enrolment fails (the photos added are removed again; another writer of the gallery is waited for).
    The store's writers' lock is held throughout (UnknownStore.held): a forget, ignore or merge of another
    process or page waits for the naming, then finds the group named.
    """
    person = check_person_name(person)
    with store.held():  # a forget or ignore meanwhile would see its faces enrolled after all
        return _name_group(store, group, person, Path(dataset), gallery, models, limit, on_warning)


def _name_group(store: UnknownStore, group: int, person: str, dataset: Path, gallery: str | os.PathLike | Store | None,
                models: Models, limit: int, on_warning: Callable[[str], None] | None) -> Naming:
    faces = _best(store, group, limit)
    detector, embedder = models.detector, models.needs_embedder()
    usable = []
    for face in faces:
        try:
            if embed_face(decode_photo(face.jpeg), detector, embedder).vector is not None:
                usable.append(face)
        except UnusablePhoto:
            continue
    if not usable:
        raise FacerecError(f"the detector finds no face in the {plural(len(faces), 'crop')} of unknown group {group}: "
                           "nothing named")
    folder = dataset / person
    if folder.is_symlink():  # as the page refuses it (409): never write through a link, wherever it points
        raise FacerecError(f"the folder of {printable(person)} in {printable(dataset)} is a symbolic link: unknowns.py "
                           "never writes through one; name the group another person, or replace the link by a folder")
    photos: list[Path] = []
    with contextlib.ExitStack() as cleanup:
        into = gallery if isinstance(gallery, Store) else cleanup.enter_context(open_store(gallery))
        _check_dataset(into, dataset)
        try:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for face in usable:
                    photos.append(_place_photo(folder, group, face.jpeg))
            except OSError as error:
                raise FacerecError(f"cannot add photos to {printable(folder)}: {error.strerror or error}") from None
            report = enrol(dataset, into, models, on_warning=on_warning, wait=None, load_gallery=False)
        except BaseException:
            for photo in photos:
                with contextlib.suppress(OSError):
                    photo.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if it was made for these photos (it is empty again)
            raise
    store.named(group, person)
    return Naming(person, photos, report)


def _check_dataset(store: Store, dataset: Path) -> None:
    """Refuse a dataset the gallery was not enrolled from: its enrolment would forget the images it does not
    find there (an embeddings file holds one dataset: every other person would be gone)."""
    known = list(store.known_images(dataset).files)
    if known and not any(os.path.lexists(dataset / key) for key in known):
        raise FacerecError(f"the gallery {store.location} was not enrolled from {printable(dataset)} (none of its "
                           f"{plural(len(known), 'photo')} is there): give --dataset the folder extract_embeddings.py "
                           "enrolled; nothing named")
