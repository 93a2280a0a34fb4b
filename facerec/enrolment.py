"""Enrolment: turn a dataset of photos (dataset/<person>/<image>) into a gallery, through a store's writer.

A run only looks at images it has not seen before: an image whose size and
modification time match the previous store's record is reused as it was
(its vector, or the reason it was skipped). Images that are gone are removed.

Nothing in the dataset stops a run: a photo that cannot be used (see
facerec.images for the limits), a person folder that cannot be listed or
whose name cannot be shown as itself, are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from .detection import MIN_FACE_SIZE, DetectedFace, Detector, load_detector
from .embedding import Embedder
from .errors import FacerecError
from .images import UnusablePhoto, load_photo
from .pipelining import computed_ahead
from .models import Models, models_identity  # noqa: F401  (models_identity: where it was before issue 20)
from .names import MAX_NAME_BYTES, UNKNOWN, case_twins, invisible_character, normalise_name, reserved_name
from .stages import Stage, load_stages
from .stores import Gallery, GalleryCounts, Store, StoreWriter, open_store
from .text import plural, printable

# Status recorded for an image that gave a vector; anything else is the reason it was skipped.
USED = "used"
# Files directly in the dataset folder with these endings are photos put in the wrong place.
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jp2", ".ppm",
                  ".pgm", ".pbm", ".pnm", ".avif", ".heic"}


@dataclass
class EnrolmentReport:
    """What one run did: counts, each skipped image or folder with the reason, and warnings."""

    used: int = 0
    reused: int = 0
    processed: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path as printed, reason)
    people: list[str] = field(default_factory=list)
    people_without_photo: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: GalleryCounts | None = None  # what the whole gallery holds afterwards
    gallery: Gallery | None = field(default=None, repr=False)  # the whole gallery afterwards (enrol's load_gallery)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((printable(path), reason))

    def lines(self) -> list[str]:
        out = [f"{plural(self.used, 'image')} used for {plural(len(self.people), 'person', 'people')} "
               f"({self.processed} processed now, {self.reused} unchanged since the last run, {self.removed} removed)"]
        if self.skipped:
            out.append(f"{len(self.skipped)} skipped:")
            out.extend(f"  {path}: {reason}" for path, reason in self.skipped)
        if self.people_without_photo:
            out.append("no usable photo for: " + ", ".join(map(printable, self.people_without_photo)))
        return out


@dataclass
class DatasetListing:
    """What a dataset folder holds: (person, photo path) pairs, folders skipped with the reason, loose photos."""

    images: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    loose_photos: int = 0

    @property
    def people(self) -> list[str]:
        return list(dict.fromkeys(person for person, _ in self.images))


def _check_dataset_folder(dataset: Path) -> None:
    """FacerecError unless `dataset` is a folder that can be opened, saying what it is instead."""
    shown = printable(dataset)
    try:
        mode = os.stat(dataset).st_mode
    except FileNotFoundError:
        raise FacerecError(f"dataset folder {shown} does not exist: put photos in {shown}/<person>/") from None
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            long = next((part for part in dataset.parts if len(os.fsencode(part)) > MAX_NAME_BYTES), "")
            raise FacerecError(f"dataset path {shown}: the name {printable(long)[:40]}... in it is longer than "
                               f"{MAX_NAME_BYTES} bytes, more than a file system takes") from None
        raise FacerecError(f"cannot open the dataset folder {shown}: {error.strerror or error}") from None
    if not stat.S_ISDIR(mode):
        what = "a file" if stat.S_ISREG(mode) else "not a folder"
        raise FacerecError(f"dataset {shown} is {what}, not a folder: give the folder that holds "
                           f"one sub-folder of photos per person (DATASET/<person>/)")


def _visible_entries(folder: str | Path) -> list[os.DirEntry]:
    """The entries of `folder` whose names do not start with a dot, by name; OSError if it cannot be listed."""
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name)


def list_dataset(dataset: Path) -> DatasetListing:
    """Every photo of dataset/<person>/ with its person (the folder name in NFC); what cannot be a person is skipped.

    Skipped with the reason: a person folder that cannot be listed, one whose name has an invisible
    character. Every non-folder entry of a person folder is listed: reading it says why it is no photo.
    """
    _check_dataset_folder(dataset)
    listing = DatasetListing()
    try:
        top = _visible_entries(dataset)
    except OSError as error:
        raise FacerecError(f"cannot list the dataset folder {printable(dataset)}: {error.strerror or error}") from None
    for entry in top:
        folder = dataset / entry.name
        # os.path.isdir/isfile follow links and say False for a link loop or a link to nothing
        if os.path.isfile(folder):
            listing.loose_photos += folder.suffix.lower() in PHOTO_SUFFIXES
            continue
        if not os.path.isdir(folder) and not entry.is_symlink():
            continue  # a FIFO or a device beside the people is nobody's photo
        # a folder, or a broken link to one: listing it says what is wrong
        problem = invisible_character(entry.name)
        if problem:
            listing.skipped.append((folder, f"not a person name: it contains {problem}; rename the folder"))
            continue
        if reserved_name(normalise_name(entry.name)):
            listing.skipped.append((folder, f"not a person name: {UNKNOWN} is what a face that matches nobody is "
                                            "called; rename the folder"))
            continue
        try:
            photos = _visible_entries(folder)
        except OSError as error:
            listing.skipped.append((folder, f"cannot list the folder: {error.strerror or error}"))
            continue
        person = normalise_name(entry.name)
        listing.images.extend((person, folder / photo.name) for photo in photos
                              if not os.path.isdir(folder / photo.name))
    return listing


def file_signature(path: Path) -> dict[str, int]:
    """What tells a changed file from an unchanged one, cheaply."""
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


@dataclass(frozen=True)
class FaceEmbedding:
    """The vector of a photo's face, or None and why (`status` is USED when there is a vector)."""

    vector: np.ndarray | None
    status: str
    faces: int  # faces of at least MIN_FACE_SIZE found in the photo
    problems: tuple[str, ...] = ()  # why the per-face stages call the face a poor photo (enrolment warns)


def usable_faces(image: np.ndarray, detector: Detector) -> tuple[list[DetectedFace], str]:
    """The faces of at least MIN_FACE_SIZE px, most confident first, and USED; or [] and why none is usable.

    A tiny confident face in the background never hides the face of the photo:
    "too small" only when every face found is.
    """
    faces = detector.detect(image, min_size=1)
    if not faces:
        return [], "no face found"
    usable = [face for face in faces if min(face.width, face.height) >= MIN_FACE_SIZE]
    if not usable:
        largest = max(faces, key=lambda face: min(face.width, face.height))
        return [], f"face too small ({largest.width}x{largest.height} px, at least {MIN_FACE_SIZE} needed)"
    return usable, USED


def best_face(image: np.ndarray, detector: Detector) -> tuple[DetectedFace | None, str]:
    """The image's most confident usable face (USED), or None and the reason it has none."""
    faces, status = usable_faces(image, detector)
    return (faces[0] if faces else None), status


@dataclass(frozen=True)
class FoundFaces:
    """A photo's usable faces, before embedding: the image, its faces (most confident first), USED or why none."""

    image: np.ndarray | None
    faces: list[DetectedFace]
    status: str
    problems: tuple[str, ...] = ()  # what the per-face stages find poor about the first face


def find_faces(image: np.ndarray, detector: Detector, stages: Sequence[Stage] = ()) -> FoundFaces:
    """The usable faces of `image`, and what `stages` find poor about the most confident one."""
    faces, status = usable_faces(image, detector)
    problems = (stage.problem(image, faces[0]) for stage in stages) if faces else ()
    return FoundFaces(image, faces, status, tuple(filter(None, problems)))


def find_photo_faces(path: Path, detector: Detector, stages: Sequence[Stage] = ()) -> FoundFaces:
    """find_faces of the photo at `path`; a photo that cannot be used has no face and the reason."""
    try:
        return find_faces(load_photo(path), detector, stages)
    except UnusablePhoto as why:
        return FoundFaces(None, [], str(why))


def embed_found(found: FoundFaces, embedder: Embedder) -> FaceEmbedding:
    """The vector of the most confident usable face found, with the number of usable faces, or None and why."""
    if found.image is None or not found.faces:
        return FaceEmbedding(None, found.status, 0)
    return FaceEmbedding(embedder.embed(found.image, found.faces[:1])[0], USED, len(found.faces), found.problems)


def embed_face(image: np.ndarray, detector: Detector, embedder: Embedder,
               stages: Sequence[Stage] = ()) -> FaceEmbedding:
    """The vector of the most confident usable face, with the number of usable faces in the photo, and what
    `stages` find poor about it."""
    return embed_found(find_faces(image, detector, stages), embedder)


def embed_photo(path: Path, detector: Detector, embedder: Embedder, stages: Sequence[Stage] = ()) -> FaceEmbedding:
    """embed_face of the photo at `path`; a photo that cannot be used gives no vector and the reason."""
    return embed_found(find_photo_faces(path, detector, stages), embedder)


# --- embedding photos on every core -------------------------------------------------------------

# Photos read and detected ahead of the one being embedded, per job: enough to keep every thread busy while
# bounding the decoded photos held in memory.
PHOTOS_AHEAD_PER_JOB = 2


@contextlib.contextmanager
def photo_embeddings(paths: list[Path], detector: Detector, embedder: Embedder, jobs: int = 1,
                     stages: Sequence[Stage] = ()) -> Iterator[Iterator[FaceEmbedding]]:
    """embed_photo of each of `paths`, in their order; with `jobs` > 1 the photos are read and their faces found
    by `jobs` threads, each with its own copy of the detector, while this thread embeds them one after the other.

    Threads, not processes: a process would import and load (and for OpenVINO compile) every model again,
    seconds a worker, more than half of what it saves on the 153-photo bench set; a copy of the detector takes
    milliseconds. The readers and the networks release Python's lock, so the threads use every core; the
    embedder computes on one thread of its own (Embedder.on_one_thread) and OpenCV's own thread pool is off
    meanwhile (opencv_on_one_thread). Leaving the block waits only for the photos under way.
    """
    jobs = min(jobs, len(paths))
    if jobs <= 1:
        yield (embed_photo(path, detector, embedder, stages) for path in paths)
        return
    spare = [detector]  # the first thread uses this one; the others load a copy
    local = threading.local()

    def find(path: Path) -> FoundFaces:
        if not hasattr(local, "detector"):
            try:
                local.detector = spare.pop()
            except IndexError:
                local.detector = load_detector(detector.network, detector.paths, detector.confidence)
        return find_photo_faces(path, local.detector, stages)

    def embedded(single: Future) -> Iterator[FaceEmbedding]:
        for _, found in computed_ahead(paths, find, pool, PHOTOS_AHEAD_PER_JOB * jobs):
            yield embed_found(found, single.result())

    with opencv_on_one_thread(), ThreadPoolExecutor(jobs, thread_name_prefix="enrol-find") as pool:
        try:
            # the finders take the other cores: the embedder on one thread, made (compiled) while they start
            yield embedded(pool.submit(embedder.on_one_thread))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def opencv_on_one_thread() -> Iterator[None]:
    """OpenCV's own thread pool off (one thread, process-wide) inside the block, as it was afterwards.

    While the jobs threads keep every core busy, OpenCV's pool only adds threads that wait and wake: it serves
    one caller at a time (the others run alone anyway), and its worker competes with the finders and the
    embedder for the same cores (the same vectors either way)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class NothingEnrolled(FacerecError):
    """No image of the dataset gave a face: nothing was written."""


def _signature_or_error(path: Path) -> dict[str, int] | OSError:
    try:
        return file_signature(path)
    except OSError as error:
        return error


def enrol_into(dataset: Path, writer: StoreWriter, detector: Detector, embedder: Embedder, progress: bool = True,
          on_image: Callable[[int, int], None] | None = None,
          on_report: Callable[[EnrolmentReport], None] | None = None,
          jobs: int = 1) -> tuple[GalleryCounts, EnrolmentReport]:
    """Enrol `dataset` through `writer` (Store.open_writer), reusing what its `previous` knows; finish it.

    The photos to embed are read and their faces found by `jobs` threads (see photo_embeddings); their
    outcomes are recorded here, one image at a time, in the dataset's order.

    Returns what the whole gallery now holds (writer.finish: counts), and what the run did. FacerecError before
    anything is written when the dataset has no photos; NothingEnrolled when none gave a face.
    `on_image(done, total)`, if given, is called after each image (the web page's progress bar);
    `on_report(report)` once every image is done, before the writer finishes (and before NothingEnrolled).
    """
    from tqdm import tqdm

    listing = list_dataset(dataset)
    images = listing.images
    shown = printable(dataset)
    if not images and listing.loose_photos:
        raise FacerecError(f"{shown} has {plural(listing.loose_photos, 'photo')} directly in it but no person "
                           f"folder: move each into {shown}/<person>/, one folder per person")
    if not images:
        reasons = "".join(f"; {printable(path)}: {reason}" for path, reason in listing.skipped)
        raise FacerecError(f"dataset folder {shown} has no photos: put them in {shown}/<person>/{reasons}")
    old = writer.previous
    old_vectors = {path: vector for path, vector in zip(old.paths, old.vectors)} if old else {}
    old_files = old.files if old else {}
    report = EnrolmentReport()
    if listing.loose_photos:
        report.warnings.append(f"{plural(listing.loose_photos, 'photo')} directly in {shown} not enrolled: "
                               f"move each into {shown}/<person>/")
    report.warnings.extend(f"{', '.join(map(printable, twins))} differ only by case: they are enrolled as "
                           "different people" for twins in case_twins(listing.people))
    for path, reason in listing.skipped:
        report.skip(path, reason)
    def unchanged(key: str, signature: dict[str, int]) -> bool:
        record = old_files.get(key, {})
        return (all(record.get(k) == v for k, v in signature.items())
                and (record.get("status") != USED or key in old_vectors))

    checked = [(person, path, path.relative_to(dataset).as_posix(), _signature_or_error(path))
               for person, path in images]
    to_embed = [path for _, path, key, signature in checked
                if not isinstance(signature, OSError) and not unchanged(key, signature)]
    seen, names = set(), []
    with photo_embeddings(to_embed, detector, embedder, jobs, load_stages()) as embedded_photos:
        for done, (person, path, key, signature) in enumerate(tqdm(checked, desc="images", unit="img",
                                                                   disable=not progress, file=sys.stderr), start=1):
            if isinstance(signature, OSError):
                report.skip(path, "does not exist" if isinstance(signature, FileNotFoundError)
                            else f"cannot be read: {signature.strerror or signature}")
                continue
            seen.add(key)
            if unchanged(key, signature):
                status, vector = old_files[key]["status"], old_vectors.get(key)  # the writer keeps it as it was
                report.reused += 1
            else:
                embedded = next(embedded_photos)
                if embedded.faces > 1:
                    report.warnings.append(f"{printable(path)}: {embedded.faces} faces found, "
                                           "the most confident one is enrolled")
                report.warnings.extend(f"{printable(path)}: {problem}" for problem in embedded.problems)
                vector, status = embedded.vector, embedded.status
                writer.record(key, signature, status, person, vector)
                report.processed += 1
            if on_image is not None:
                on_image(done, len(images))
            if vector is None:
                report.skip(path, status)
                continue
            names.append(person)
    gone = sorted((set(old_files) | set(old_vectors)) - seen)
    report.removed = len(set(old_files) - seen)
    report.used = len(names)
    report.people = list(dict.fromkeys(names))
    report.people_without_photo = [p for p in dict.fromkeys(person for person, _ in images) if p not in report.people]
    if on_report is not None:
        on_report(report)
    if not names:
        raise NothingEnrolled(f"no usable face in {shown}: nothing written")
    writer.remove(gone)
    return writer.finish(), report


def enrol(dataset: str | os.PathLike, gallery: str | os.PathLike | Store | None, models: Models, *,
          force: bool = False, progress: bool = False, on_warning: Callable[[str], None] | None = None,
          on_image: Callable[[int, int], None] | None = None,
          on_report: Callable[[EnrolmentReport], None] | None = None, jobs: int = 1,
          wait: float | None = None, load_gallery: bool = True) -> EnrolmentReport:
    """Enrol the photos of `dataset` (one folder of photos per person) into a gallery, as extract_embeddings.py does.

    `gallery`: an embeddings file path, a postgresql:// URL (None: $FACEREC_EMBEDDINGS, else
    output/embeddings.pickle) or an open Store. Incremental: images unchanged since the last run with
    the same models are reused. `force` replaces a file that is not an embeddings file. What would be
    replaced or not reused goes to `on_warning` (else into the report's warnings); `on_image` and
    `on_report` as enrol_into; `jobs` threads find the faces of the photos. Another writer of the same gallery
    is waited for (`wait` seconds at most; None: as long as it takes), never undone. Returns the
    report: its `counts`, and its `gallery` the whole gallery written (unless `load_gallery` is False:
    a large database gallery is not read again only to be counted). FacerecError (NothingEnrolled if
    no photo gave a face) with the script's messages.
    """
    embedder = models.needs_embedder()
    with contextlib.ExitStack() as cleanup:
        store = gallery if isinstance(gallery, Store) else cleanup.enter_context(open_store(gallery))
        writer = cleanup.enter_context(store.open_writer(Path(dataset), models.identity, embedder.dimension,
                                                         force=force, wait=wait))
        if writer.warning and on_warning is not None:
            on_warning(writer.warning)
        try:
            counts, report = enrol_into(Path(dataset), writer, models.detector, embedder, progress=progress,
                                        on_image=on_image, on_report=on_report, jobs=jobs)
        except NothingEnrolled as error:
            raise NothingEnrolled(f"{error} to {store.location}") from None
        if load_gallery:
            report.gallery = store.load()  # the pickle store has the gallery it just wrote at hand
    if writer.warning and on_warning is None:
        report.warnings.insert(0, writer.warning)
    report.counts = counts
    return report
