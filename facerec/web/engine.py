"""The server's one engine: the package's Recogniser for every page, and the gallery it learns from.

Recognition, enrolment and the gallery share one store (stores.Store: an
embeddings file or a database). Learning runs in a background thread with its
own detector and embedder (OpenCV networks are not shared between threads),
writes through the store's writer, then swaps the recogniser's matcher: pages
see the new people at their next frame. The GalleryFollower also swaps in
what other processes write to the store.

One enrolment at a time: a page that starts one holds it (until it learns,
cancels, or stays silent for ENROLMENT_IDLE_SECONDS); another page is refused.
Nothing in the dataset or the gallery is ever half-written: photos go through
capture.save_photo, the gallery through the store's writer, and a delete
first renames what goes to a hidden name that enrolment ignores.

Nothing outside the dataset folder is ever served, written, renamed or removed: a
person folder or photo that is a symbolic link is enrolled (read) as the scripts do,
but never served (404) and never written through; deleting it removes the link only.
A name from a request is compared in NFC, as names are stored (names.normalise_name).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..capture import keep_photo, person_folder
from ..enrolment import USED, enrol_into, file_signature
from ..errors import FacerecError
from ..fairlock import FairPool
from ..fileio import read_inside
from ..images import MAX_PHOTO_BYTES
from ..models import Models
from ..names import normalise_name
from ..faces import Face
from ..recognition import FacePipeline, Recogniser
from ..stores import Gallery, GalleryBusy
from ..text import printable
from ..tracking import Tracker
from ..unknowns.keeping import KeptTracks, UnknownKeeper
from ..unknowns.negatives import NegativeKept, face_vector, keep_negative
from ..unknowns.review import group_json, looks_like, name_group, search_groups
from ..unknowns.store import FACES_PER_TRACK, NoSuchGroup, UnknownStore
from .protocol import Refusal, decode_image, image_format
from .recent import RecentFaces

ENROLMENT_IDLE_SECONDS = 120.0
NOT_LEARNED = "not learned yet"
TRASH_PREFIX = ".deleted-"  # hidden: enrolment never reads it
MAX_GROUP = 2**63  # unknown group ids are below it


@dataclass
class LearnProgress:
    """What the last "Learn" did or is doing: state is idle, learning, done or failed."""

    state: str = "idle"
    done: int = 0
    total: int = 0
    message: str = ""

    def as_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Enrolment:
    """The enrolment a page holds: whose photos it is taking."""

    name: str
    key: str
    last_seen: float


def check_photo_name(file: str) -> str:
    """A photo's file name inside a person's folder: plain, visible, no separators."""
    if not file or file.startswith(".") or "/" in file or "\\" in file:
        raise Refusal(400, f"{file!r} is not a photo's file name")
    return file


def shown(name: str) -> str:
    """A person's or photo's name as the API shows it: a byte that is not UTF-8 as \\xff (text.printable)."""
    return printable(name)


def named_entry(folder: Path, name: str) -> str:
    """The name on disk of the entry of `folder` that the API shows as `name` (see shown()); else `name` itself."""
    if "\\" in name and folder.is_dir():  # every escaped name has a backslash
        for entry in folder.iterdir():
            if entry.name != name and not entry.name.startswith(".") and shown(entry.name) == name:
                return entry.name
    return name


def visible_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def person_folders(dataset: Path) -> dict[str, Path]:
    """The visible person folders of `dataset` (symbolic links to folders too), by their name in NFC."""
    if not dataset.is_dir():
        return {}
    return {normalise_name(path.name): path for path in sorted(dataset.iterdir())
            if path.is_dir() and not path.name.startswith(".")}


class Engine:
    """Recognise frames, enrol people and keep the gallery, for any number of pages at once (thread-safe)."""

    def __init__(self, recogniser: Recogniser, learner: Callable[[], Models], dataset: Path,
                 keeping: KeptTracks | None = None) -> None:
        """`recogniser` names the pages' faces with the store's gallery (its follower swaps in new ones);
        `learner` loads the same models' other networks, that enrol (e.g. `models.reloaded`): called at the first
        enrolment, not before; with `keeping` (serve.py --keep-unknowns) each video's Unknown tracks are kept in its
        store, which the Unknown tab reviews."""
        self.follower = recogniser.follower
        self.store = recogniser.follower.store
        self.recogniser = recogniser
        self.dataset = Path(dataset)
        self.models = recogniser.models.identity  # the record of the models (models.models_identity) the gallery keeps
        self._load_learner = learner
        self._learner_models: Models | None = None
        self._learner_loading = threading.Lock()
        self.keeping = keeping
        self.progress = LearnProgress()
        self._enrolment: Enrolment | None = None
        # sets of networks (the recogniser's, and one more a core with add_networks), one frame at a time each,
        # lent in the order asked: no camera or page starves another
        self.networks: FairPool[FacePipeline] = FairPool([recogniser])
        self._gallery = threading.Lock()  # the dataset, the store file and the enrolment
        self._learner: threading.Thread | None = None
        self.recent = RecentFaces()  # the named faces of the last frames: what "Not PERSON" refers to
        self._sweep_trash()

    @property
    def learner(self) -> Models:
        """The networks that enrol (their own: learning runs beside the pages and cameras), loaded when first
        needed: a server that never enrols never holds them (they cost 178 MB before the embedders shared their
        compiled network, bench/service_memory.py)."""
        with self._learner_loading:
            if self._learner_models is None:
                self._learner_models = self._load_learner()
            return self._learner_models

    # recognition

    def add_networks(self, models: Models) -> None:
        """One more set of networks (models.reloaded(): OpenCV's are not shared between threads) recognising in
        parallel with the others; it names faces with the recogniser's gallery, read at each frame."""
        self.networks.add(FacePipeline(models.detector, models.needs_embedder(), self.recogniser.matcher))

    def recognise(self, image: np.ndarray, tracker: Tracker | None = None,
                  frame_index: int | None = None, keeper: UnknownKeeper | None = None) -> list[Face]:
        """The faces of `image`: a photo on its own, or with `tracker` a frame of the video it follows
        (whose Unknown tracks `keeper`, if any, keeps: call it before drawing on `image`)."""
        with self.networks.take() as networks:
            recognised = networks.recognise(image, frame_index, tracker, matcher=self.recogniser.matcher)
        if keeper is not None and tracker is not None:
            keeper.saw(image, recognised, tracker.tracks, frame_index)
        return recognised

    def keeper(self, camera: str, video: tuple[str, float] | None = None) -> UnknownKeeper | None:
        """A keeper of one more video's Unknown tracks, seen by `camera` (`video`: a file's name and frames a
        second, keeping.file_video's); None without --keep-unknowns."""
        return None if self.keeping is None else self.keeping.keeper(camera, video)

    # unknown people (serve.py --keep-unknowns): the review actions of unknowns/review.py and the store

    @property
    def unknowns(self) -> UnknownStore:
        """The unknown store; Refusal (404) when the server keeps none."""
        if self.keeping is None:
            raise Refusal(404, "this server keeps no unknown faces: start serve.py with --keep-unknowns")
        return self.keeping.store

    @contextlib.contextmanager
    def _unknown_group(self, *groups: int) -> Iterator[UnknownStore]:
        """The store, for an action on `groups`: a group that is gone (or never was) is 404, a store that fails 503."""
        store = self.unknowns
        for group in groups:
            if not 0 <= group < MAX_GROUP:  # an id no store gives (a database's are 64-bit)
                raise Refusal(404, str(NoSuchGroup(group)))
        try:
            yield store
        except NoSuchGroup as error:
            raise Refusal(404, str(error)) from None
        except FacerecError as error:
            raise Refusal(503, str(error)) from None

    def unknown_groups(self) -> dict:
        """The groups to review, largest first (unknowns.py list --json's objects, with how many crops each has),
        and the people of the gallery, whom a group may be named."""
        naming, gallery = self.recogniser.naming, self.gallery
        with self._unknown_group() as store:
            suggested = looks_like(store, gallery.vectors, list(gallery.names), naming.threshold, naming.margin) \
                if len(gallery) else {}
            groups = [{**group_json(group), "looks_like": suggested.get(group.group),
                       "crops": min(group.faces, FACES_PER_TRACK)} for group in store.groups()]
        return {"groups": groups, "people": [shown(name) for name in sorted(self.gallery.people)]}

    def search_unknowns(self, image: np.ndarray) -> list[dict]:
        """`unknowns.py search` of a photo's one face: the kept groups it matches, nearest first (list --json's
        objects with "distance"); Refusal 400 for a photo without exactly one face."""
        with self.networks.take() as networks:  # as for a frame
            try:
                vector = face_vector(image, networks.detector, networks.embedder, "the photo")
            except FacerecError as error:
                raise Refusal(400, str(error)) from None
        with self._unknown_group() as store:
            return [found.json() for found in search_groups(store, vector, self.recogniser.naming.threshold)]

    def unknown_crop(self, group: int, number: int) -> bytes:
        """The JPEG of the group's `number`th best face (0: the best), read from the unknown store only."""
        with self._unknown_group(group) as store:
            faces = store.best_faces(group, FACES_PER_TRACK)
        if not 0 <= number < len(faces):
            raise Refusal(404, f"unknown group {group} has no crop {number}")
        return faces[number].jpeg

    def name_unknown(self, group: int, person: str) -> dict:
        """Name the group `person` as `unknowns.py name` does (its crops enrolled into this gallery); the pages
        name them from their next frame. Refusal: 400 for a name that cannot be a folder, 409 while learning or
        enrolling that person, 404 for a group that is gone, 422 when no crop shows a face the detector finds."""
        folder = self._writable_folder(person)  # 400 for a name that cannot be a folder, 409 for a link
        person = normalise_name(person)
        with self._hold_gallery():
            self._refuse_if_enrolling(person)
            with self._unknown_group(group) as store:
                try:
                    naming = name_group(store, group, folder.name, self.dataset, self.store, self.learner)
                except NoSuchGroup:
                    raise
                except GalleryBusy as error:
                    raise Refusal(409, str(error)) from None
                except FacerecError as error:
                    raise Refusal(422, str(error)) from None
            self.follower.use(self.store.load())  # the gallery just written
        return {"named": group, "person": shown(naming.person), "photos": [shown(path.name) for path in naming.photos]}

    def ignore_unknown(self, group: int) -> None:
        with self._unknown_group(group) as store:
            store.ignore(group)

    def merge_unknowns(self, into: int, other: int) -> None:
        if into == other:
            raise Refusal(400, f"a group cannot be merged with itself ({into})")
        with self._unknown_group(into, other) as store:
            store.merge(into, other)

    def forget_unknown(self, group: int) -> int:
        """Delete the group for good; the faces deleted."""
        with self._unknown_group(group) as store:
            return store.forget(group)

    # the gallery

    @property
    def gallery(self) -> Gallery:
        """The gallery faces are named with now."""
        return self.follower.gallery

    @property
    def threshold(self) -> float:
        return self.follower.naming.threshold

    def _known_images(self) -> Gallery:
        """What the store holds of the dataset; Refusal (503) if it cannot be read now."""
        try:
            return self.store.known_images(self.dataset)
        except FacerecError as error:
            raise Refusal(503, str(error)) from None

    def people(self) -> list[dict]:
        """Every person of the dataset or the store: photos with their status, and counts."""
        store = self._known_images()
        vectors = {name: store.names.count(name) for name in store.people}
        folders = person_folders(self.dataset)
        listing = []
        for name in sorted(set(vectors) | set(folders)):
            folder = folders.get(name, self.dataset / name)
            link = folder.is_symlink()  # its photos lie elsewhere: not listed, not served
            photos = []
            for path in visible_files(folder) if folder.is_dir() and not link else []:
                record = store.files.get(path.relative_to(self.dataset).as_posix(), {})
                try:
                    current = all(record.get(key) == value for key, value in file_signature(path).items())
                except FileNotFoundError:  # deleted by another page just now
                    continue
                photos.append({"file": shown(path.name), "status": record["status"] if current else NOT_LEARNED,
                               "link": path.is_symlink()})
            statuses = [photo["status"] for photo in photos]
            listing.append({"name": shown(name), "link": link, "vectors": vectors.get(name, 0), "used": statuses.count(USED),
                            "pending": statuses.count(NOT_LEARNED),
                            "skipped": len(statuses) - statuses.count(USED) - statuses.count(NOT_LEARNED),
                            "photos": photos})
        return listing

    def photo(self, name: str, file: str) -> bytes:
        """The bytes of a photo that really lies in the dataset: a regular file of a person folder, neither of
        them a symbolic link (opened without following one: see fileio.read_inside); else 404."""
        folder = self._person_folder(name)
        try:
            return read_inside(self.dataset, [folder.name, check_photo_name(named_entry(folder, file))], MAX_PHOTO_BYTES)
        except OSError:
            raise Refusal(404, f"{printable(name)} has no photo {printable(file)!r} in the dataset folder") from None

    def _person_folder(self, name: str) -> Path:
        """dataset/<name in NFC>, or the one folder whose name is that name in NFC (made on another system);
        a name the API lists escaped (not UTF-8 on disk) is its folder."""
        real = named_entry(self.dataset, name)
        if real != name:  # a folder the API lists under its escaped name
            return self.dataset / real
        try:
            folder = person_folder(self.dataset, name)
        except FacerecError as error:
            raise Refusal(400, str(error)) from None
        if not os.path.lexists(folder):
            folder = person_folders(self.dataset).get(folder.name, folder)
        return folder

    def _writable_folder(self, name: str) -> Path:
        """The person's folder, refused (409) if it is a symbolic link: the page never writes through one."""
        folder = self._person_folder(name)
        if folder.is_symlink():
            raise Refusal(409, f"the folder of {printable(normalise_name(name))} in the dataset is a symbolic link: "
                               "the page never changes what one points to; delete the person (which removes only "
                               "the link) or change the folder on disk")
        return folder

    # enrolment

    def start_enrolment(self, name: str) -> str:
        """Hold the enrolment for `name`; its key, which the page sends with its photos and "Learn"."""
        self._writable_folder(name)
        with self._hold_gallery():
            self._refuse_if_enrolling()
            self._enrolment = Enrolment(normalise_name(name), secrets.token_urlsafe(16), time.monotonic())
            return self._enrolment.key

    def add_photo(self, key: str, data: bytes) -> tuple[str, int]:
        """Save a photo for the enrolment `key` if it holds exactly one face: (file name, photos of the person)."""
        photo_format = image_format(data)
        decode_image(data)  # refuse what is not an image before looking for faces in it
        with self._hold_gallery():
            enrolment = self._current_enrolment(key)
            folder = self._writable_folder(enrolment.name)
            path, reason = keep_photo(self.learner.detector, folder, data, photo_format)
            if path is None:
                raise Refusal(422, f"not saved: {reason}")
            return path.name, len(visible_files(folder))

    def cancel_enrolment(self, key: str) -> None:
        with self._hold_gallery():
            self._current_enrolment(key)
            self._enrolment = None

    def _current_enrolment(self, key: str) -> Enrolment:
        if not key.isascii():  # no key this server gives (secrets.token_urlsafe) is anything else
            raise Refusal(403, "X-Enrolment is not an enrolment key: start the enrolment again")
        enrolment = self._enrolment
        if enrolment is None or not secrets.compare_digest(enrolment.key.encode(), key.encode()):
            raise Refusal(409, "this enrolment is no longer held by this page (it was finished, cancelled or "
                               f"left idle for {ENROLMENT_IDLE_SECONDS:.0f} s): start it again")
        enrolment.last_seen = time.monotonic()
        return enrolment

    def _refuse_if_enrolling(self, name: str | None = None) -> None:
        enrolment = self._enrolment
        if enrolment is None or time.monotonic() - enrolment.last_seen > ENROLMENT_IDLE_SECONDS:
            self._enrolment = None
            return
        if name is None or name == enrolment.name:
            raise Refusal(409, f"another page is enrolling {enrolment.name!r}: try again when it has learned "
                               "or cancelled")

    @contextlib.contextmanager
    def _hold_gallery(self) -> Iterator[None]:
        """Hold the gallery lock for a short change; Refusal (409) while learning, which holds it for long."""
        if self.progress.state == "learning" or not self._gallery.acquire(timeout=5.0):
            raise Refusal(409, "the gallery is busy learning: try again when it is done")
        try:
            yield
        finally:
            self._gallery.release()

    # learning

    def learn(self, key: str | None = None) -> LearnProgress:
        """Start learning the dataset in the background; `key` ends that page's enrolment. Refusal (409) if busy."""
        with self._hold_gallery():
            if key:
                self._current_enrolment(key)
                self._enrolment = None
            else:
                self._refuse_if_enrolling()
            self.progress = LearnProgress("learning", message="reading the dataset")
            self._learner = threading.Thread(target=self._learn, name="learner", daemon=True)
            self._learner.start()
            return self.progress

    def _learn(self) -> None:
        progress = self.progress
        with self._gallery:
            def on_image(done: int, total: int) -> None:
                progress.done, progress.total = done, total
                progress.message = f"{done} of {total} photos"

            try:
                learner = self.learner
                embedder = learner.needs_embedder()
                with self.store.open_writer(self.dataset, self.models, embedder.dimension) as writer:
                    _, report = enrol_into(self.dataset, writer, learner.detector, embedder,
                                           progress=False, on_image=on_image)
                self.follower.use(self.store.load())  # the gallery just written (the pickle store has it at hand)
            except FacerecError as error:
                progress.state, progress.message = "failed", str(error)
                return
            except Exception as error:  # the server keeps running; the page shows what went wrong
                progress.state, progress.message = "failed", f"{type(error).__name__}: {error}"
                return
            progress.message = " ".join(report.lines()[:1])
            progress.state = "done"

    # correcting a wrong name

    def not_person(self, face_id: str, name: str, force: bool = False) -> NegativeKept:
        """The face `face_id` (RecentFaces) is not `name`, the name the server gave it: keep it as a negative
        example of `name` (unknowns/negatives.py) and name faces with the gallery that has it from the next frame.
        Refusal: 404 a face not held (any more), 409 another name, a busy gallery or one that cannot take it, or a
        face that looks like that person themself (unless `force`: negatives.own_face_problem)."""
        seen = self.recent.take(face_id) if face_id.isascii() else None
        if seen is None:
            raise Refusal(404, "the server no longer holds that face (it keeps the named faces of the last few "
                               "seconds): click the label of a face in view")
        try:
            if normalise_name(name) != seen.name:
                raise Refusal(409, f"the server named that face {printable(seen.name)}, not {printable(name)}")
            with self._hold_gallery():
                try:
                    kept = keep_negative(self.store, seen.name, seen.vector, self.models, self.threshold, force)
                except FacerecError as error:
                    raise Refusal(409, str(error)) from None
                self.follower.use(kept.gallery)
        except BaseException:
            self.recent.put_back(face_id, seen)
            raise
        return kept

    # deleting

    def delete_person(self, name: str) -> None:
        """Remove the person's folder (a symbolic link: the link only) and every vector of their photos."""
        folder = self._person_folder(name)
        name = normalise_name(name)
        with self._hold_gallery():
            self._refuse_if_enrolling(name)
            real = normalise_name(folder.name)  # (the name on disk: not UTF-8, it is listed escaped)
            if not os.path.lexists(folder) and real not in self.gallery.names:
                raise Refusal(404, f"there is no person {printable(name)!r} in the gallery")
            self._delete(folder, lambda key: normalise_name(key.split("/", 1)[0]) == real)

    def delete_photo(self, name: str, file: str) -> None:
        """Remove one photo (a symbolic link: the link only) and its vector; refused in a linked person folder."""
        with self._hold_gallery():
            self._refuse_if_enrolling(normalise_name(name))
            folder = self._writable_folder(name)
            path = folder / check_photo_name(named_entry(folder, file))
            if not os.path.lexists(path) or (path.is_dir() and not path.is_symlink()):
                raise Refusal(404, f"{printable(name)} has no photo {printable(file)!r}")
            key = normalise_name(path.relative_to(self.dataset).as_posix())
            self._delete(path, lambda candidate: normalise_name(candidate) == key)

    def _delete(self, path: Path, gone: Callable[[str], bool]) -> None:
        """Hold the store's writer (409 while another holds it), hide `path` from enrolment, remove its images
        from the store, then remove it."""
        known = self._known_images()
        # written with the models that made what is there: every other image stays as it is
        dimension = known.vectors.shape[1] if len(known) else self.recogniser.models.needs_embedder().dimension
        try:
            writer = self.store.open_writer(self.dataset, known.models or self.models, dimension)
        except GalleryBusy as error:  # an extract_embeddings.py run: this delete would be undone when it finishes
            raise Refusal(409, str(error)) from None
        with writer:
            if writer.previous is None and len(known):  # changed by another process just now
                raise Refusal(409, "the gallery changed meanwhile: try again")
            held = writer.previous or known  # what the store holds now: read under the writer's hold
            trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{secrets.token_hex(4)}")
            if os.path.lexists(path):  # (a person may be only in the store)
                path.rename(trash)  # a symbolic link itself, never what it points to
            try:
                writer.remove([key for key in dict.fromkeys([*held.paths, *held.files]) if gone(key)])
                writer.finish()
            except BaseException:
                if os.path.lexists(trash):
                    trash.rename(path)  # the store is unchanged: so is the dataset
                raise
        _remove(trash)  # the store no longer holds it: the dataset must not either, whatever follows
        self.follower.use(self.store.load())  # the gallery just written (the pickle store has it at hand)

    def _sweep_trash(self) -> None:
        """Finish deletes a killed server left half done: their files are already out of the dataset's sight.

        Only in the dataset folder and its real person folders: a symbolic link is never followed."""
        if not self.dataset.is_dir():
            return
        for folder in [self.dataset, *(p for p in self.dataset.iterdir() if p.is_dir() and not p.is_symlink())]:
            for path in folder.glob(f"{TRASH_PREFIX}*"):
                _remove(path)


def _remove(path: Path) -> None:
    """Remove what a delete renamed out of sight: a symbolic link itself (never its target), a file, a folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # does not follow the links inside either
    else:
        path.unlink(missing_ok=True)
