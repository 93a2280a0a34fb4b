"""Verification: are two photos the same person? One pair, or a file of (labelled) pairs.

Each photo gives its most confident face, chosen and embedded as enrolment
does (`enrolment.best_face`: at least 20 px, any photo `images.load_photo`
accepts). Two faces are the same person when their L2 distance is below the
threshold, the rule by which recognition names a face.

A pairs file is CSV, one pair a row: `photo_x,photo_y[,label]`, the label
`yes`/`no`, `1`/`0` or `same`/`different` (any case). Blank rows are passed
over; a first row that is not a pair (its label is not one of those, or
neither of its photos exists) is a header. Any other row that is not a pair
is an error naming its line, found before a photo is read.

A photo of a pairs file is named relative to the images folder and must lie
inside it once symbolic links are resolved (`../x.jpg`, an absolute path
elsewhere or a link out of the folder is skipped as outside it): a pairs
file and its photos from someone else read nothing else. The file is read
twice, row by row (checked, then compared), never held whole: a million rows
of one photo cost one embedding and a few kilobytes. Every photo name printed
goes through `text.printable`.
"""

from __future__ import annotations

import csv
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .detection import DetectedFace, Detector
from .embedding import Embedder
from .enrolment import best_face, usable_faces
from .errors import FacerecError
from .fileio import file_kind
from .images import UnusablePhoto, load_photo
from .models import Models
from .text import plural, printable

SAME, DIFFERENT = "same person", "different people"
LABELS = {"yes": True, "1": True, "same": True, "no": False, "0": False, "different": False}
MISSING = "no such file"
OUTSIDE = "outside the --images folder"


@dataclass(frozen=True)
class PhotoFace:
    """The face chosen in a photo, and its unit vector; `rank` the face's (1: the most confident) among the
    photo's `faces` usable faces."""

    face: DetectedFace
    vector: np.ndarray = field(repr=False)
    rank: int = 1
    faces: int = 1

    def __repr__(self) -> str:
        return f"PhotoFace(box={self.face.box}, confidence={self.face.confidence:.3f}, face {self.rank} of {self.faces})"

    def as_json(self, photo: str) -> dict:
        """{"photo", "box", "confidence"}: where the face is in `photo`."""
        return {"photo": printable(photo), "box": list(self.face.box), "confidence": round(self.face.confidence, 4)}


def embed_photo(path: Path, detector: Detector, embedder: Embedder) -> tuple[PhotoFace | None, str]:
    """The photo's face and vector, or None and the reason it has none (missing, not a regular file, unreadable,
    no face, too small)."""
    if not os.path.lexists(path):
        return None, MISSING
    try:
        image = load_photo(path)
    except UnusablePhoto as why:
        return None, str(why)
    face, status = best_face(image, detector)
    if face is None:
        return None, status
    return PhotoFace(face, embedder.embed(image, [face])[0]), status


@dataclass(frozen=True)
class Verdict:
    """Two faces compared: their L2 distance, and the threshold it was held against."""

    first: PhotoFace
    second: PhotoFace
    distance: float
    threshold: float

    @property
    def same(self) -> bool:
        return self.distance < self.threshold

    @property
    def words(self) -> str:
        return SAME if self.same else DIFFERENT

    def __repr__(self) -> str:  # not the faces' landmarks and vectors
        return (f"Verdict({self.words}, distance={self.distance:.4f}, threshold={self.threshold:g}, "
                f"boxes={self.first.face.box} {self.second.face.box})")


def compare(first: PhotoFace, second: PhotoFace, threshold: float) -> Verdict:
    """The verdict on two faces (the distance measured in float64)."""
    distance = float(np.linalg.norm(first.vector.astype(np.float64) - second.vector.astype(np.float64)))
    return Verdict(first, second, distance, threshold)


Photo = np.ndarray | str | os.PathLike  # a BGR image (OpenCV's convention) or a photo's path


def chosen_face(photo: Photo, detector: Detector, embedder: Embedder, which: str = "an image",
                rank: int = 1) -> PhotoFace:
    """The photo's `rank`th most confident usable face (1: the most confident) and its vector; FacerecError
    naming the photo (`which` for an image) if it has no usable face, or fewer than `rank`."""
    status = MISSING
    image = None
    if isinstance(photo, np.ndarray):
        image = photo
    elif os.path.lexists(photo):
        which = str(photo)
        try:
            image = load_photo(photo)
        except UnusablePhoto as why:
            status = str(why)
    else:
        which = str(photo)
    if image is not None:
        faces, status = usable_faces(image, detector)
        if len(faces) >= rank:
            face = faces[rank - 1]
            return PhotoFace(face, embedder.embed(image, [face])[0], rank, len(faces))
        if faces:
            status = f"it holds {plural(len(faces), 'usable face')}, not {rank}"
    raise FacerecError(f"{printable(which)}: {status}")


def verify_photos(first: Photo, second: Photo, detector: Detector, embedder: Embedder, threshold: float,
                  ranks: tuple[int, int] = (1, 1)) -> Verdict:
    """The verdict on two photos (on each one's face of rank `ranks`, 1 the most confident); a photo without
    that usable face is a FacerecError naming it."""
    return compare(chosen_face(first, detector, embedder, "the first image", ranks[0]),
                   chosen_face(second, detector, embedder, "the second image", ranks[1]), threshold)


def verify(image_a: Photo, image_b: Photo, models: Models, threshold: float | None = None,
           ranks: tuple[int, int] = (1, 1)) -> Verdict:
    """Are two photos the same person? The verdict (`same`, `distance`, `threshold`) on their most confident faces
    (or, with `ranks`, each photo's face of that rank by confidence: (1, 2) the second photo's next one).

    Each is a BGR array (OpenCV's convention) or a photo's path. `threshold`: the L2 distance at
    which they stop being the same person (default: the profile's). FacerecError naming the photo
    without a usable face, with verify.py's messages. `verdict.first.faces` says how many usable
    faces the first photo holds (verify.py warns when more than one).
    """
    return verify_photos(image_a, image_b, models.detector, models.needs_embedder(),
                         models.threshold if threshold is None else threshold, ranks)


def verdict_line(verdict: Verdict, first: str, second: str) -> str:
    """`same person: distance 0.2174, threshold 1.07; A [x1, y1, x2, y2], B [...]`."""
    return (f"{verdict.words}: distance {verdict.distance:.4f}, threshold {verdict.threshold:g}; "
            f"{printable(first)} {list(verdict.first.face.box)}, {printable(second)} {list(verdict.second.face.box)}")


def verdict_json(verdict: Verdict, first: str, second: str) -> dict:
    """{"verdict", "same", "distance", "threshold", "faces"}: what verdict_line says, as JSON."""
    return {"verdict": verdict.words, "same": verdict.same, "distance": round(verdict.distance, 4),
            "threshold": verdict.threshold, "faces": [verdict.first.as_json(first), verdict.second.as_json(second)]}


@dataclass(frozen=True)
class Pair:
    """One row of a pairs file: its line number, the two photos as written, and the label (None: unlabelled)."""

    line: int
    first: str
    second: str
    label: bool | None


def _parse_row(fields: list[str], line: int) -> Pair | str:
    """The pair a row holds, or why it holds none."""
    fields = [text.strip() for text in fields]
    if len(fields) not in (2, 3):
        return f"{len(fields)} fields, expected photo_x,photo_y[,label]"
    if not fields[0] or not fields[1]:
        return "a photo is missing"
    if len(fields) == 2:
        return Pair(line, fields[0], fields[1], None)
    label = LABELS.get(fields[2].lower())
    if label is None:
        return f"label {fields[2]!r} is none of " + "/".join(LABELS)
    return Pair(line, fields[0], fields[1], label)


def photo_path(images: Path, photo: str) -> tuple[Path | None, str]:
    """The file a photo name of a pairs file means, with symbolic links resolved, or None and why it has none.

    The name is relative to `images` (an absolute one must lie in it too) and the file it leads to, links
    followed, must lie inside `images`: `../x.jpg` or a link out of the folder is OUTSIDE.
    """
    try:
        folder = images.resolve()
        path = (images / photo).resolve()
    except (OSError, RuntimeError) as error:  # a link loop
        return None, f"cannot be followed: {getattr(error, 'strerror', None) or error}"
    if not path.is_relative_to(folder):
        return None, f"{OUTSIDE} ({printable(images)})"
    return path, ""


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of each non-blank row of a pairs file, read as it goes; FacerecError if it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO does not wait for a writer
    except FileNotFoundError:
        raise FacerecError(f"pairs file {printable(path)} does not exist") from None
    except OSError as error:
        raise FacerecError(f"pairs file {printable(path)} cannot be read: {error.strerror or error}") from None
    # read twice (checked, then compared): only a regular file gives the same rows again
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FacerecError(f"pairs file {printable(path)} is {file_kind(mode)}, not a regular file")
    os.set_blocking(fd, True)
    try:
        with open(fd, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for fields in reader:
                if any(text.strip() for text in fields):
                    yield reader.line_num, fields  # line_num: the line the row ends on
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FacerecError(f"pairs file {printable(path)} cannot be read: {error}") from None


@dataclass
class PairsFile:
    """A checked pairs file: how many pairs it holds and its distinct photos; `pairs()` reads them again."""

    path: Path
    images: Path
    count: int = 0
    photos: dict[str, None] = field(default_factory=dict)  # distinct photo names, in order of first use
    header: int | None = None  # the line of the header row, if there is one

    def pairs(self) -> Iterator[Pair]:
        """The pairs, read from the file again row by row; FacerecError naming the file and line of a bad row."""
        for line, fields in _rows(self.path):
            if line == self.header:
                continue
            parsed = _parse_row(fields, line)
            if isinstance(parsed, str):
                raise FacerecError(f"pairs file {printable(self.path)}, line {line}: {printable(parsed)}")
            yield parsed


def read_pairs(path: Path, images: Path) -> PairsFile:
    """Check every row of a pairs file (see the module's docstring) without keeping the rows;
    FacerecError naming the file and line of a bad row."""
    pairs_file = PairsFile(path, images)
    for index, (line, fields) in enumerate(_rows(path)):
        parsed = _parse_row(fields, line)
        if index == 0 and _is_header(parsed, images):
            pairs_file.header = line
            continue
        if isinstance(parsed, str):
            raise FacerecError(f"pairs file {printable(path)}, line {line}: {printable(parsed)}")
        pairs_file.count += 1
        pairs_file.photos.update(((parsed.first, None), (parsed.second, None)))
    if not pairs_file.count:
        raise FacerecError(f"pairs file {printable(path)} holds no pair: write one photo_x,photo_y[,label] a line")
    return pairs_file


def _is_header(parsed: Pair | str, images: Path) -> bool:
    if isinstance(parsed, str):
        return True
    located = (photo_path(images, photo)[0] for photo in (parsed.first, parsed.second))
    return not any(path is not None and path.exists() for path in located)


@dataclass(frozen=True)
class PairResult:
    """A pair of the file and its verdict, or None and the photo and reason that left it out."""

    pair: Pair
    verdict: Verdict | None
    skipped: str = ""

    @property
    def error(self) -> str:
        """"false match", "false non-match", or "" (right, unlabelled or skipped)."""
        if self.verdict is None or self.pair.label is None or self.verdict.same == self.pair.label:
            return ""
        return "false match" if self.verdict.same else "false non-match"

    def line(self) -> str:
        """`line N: <verdict line>; labelled same: false non-match`, or `line N: skipped (photo: reason)`."""
        where = f"line {self.pair.line}: "
        if self.verdict is None:
            return where + f"skipped ({self.skipped})"  # photo names already printable
        text = where + verdict_line(self.verdict, self.pair.first, self.pair.second)
        if self.pair.label is not None:
            text += f"; labelled {SAME if self.pair.label else DIFFERENT}" + (f": {self.error}" if self.error else "")
        return text

    def as_json(self) -> dict:
        """The pair's line, photos and label, with the verdict_json fields and "error", or "skipped"."""
        record = {"line": self.pair.line, "photos": [printable(self.pair.first), printable(self.pair.second)],
                  "label": self.pair.label}
        if self.verdict is None:
            return {**record, "skipped": self.skipped}
        return {**record, **verdict_json(self.verdict, self.pair.first, self.pair.second), "error": self.error or None}


def embed_pairs_photos(pairs_file: PairsFile, detector: Detector,
                       embedder: Embedder) -> tuple[dict[str, PhotoFace], dict[str, str]]:
    """Each distinct photo of the pairs file embedded once: ({photo: face}, {photo: why it has none})."""
    from tqdm import tqdm

    faces: dict[str, PhotoFace] = {}
    unusable: dict[str, str] = {}
    for photo in tqdm(pairs_file.photos, desc="photos", unit="img", disable=None, file=sys.stderr):
        path, status = photo_path(pairs_file.images, photo)
        found, status = (None, status) if path is None else embed_photo(path, detector, embedder)
        if found is None:
            unusable[photo] = status
        else:
            faces[photo] = found
    return faces, unusable


def verify_pairs(pairs_file: PairsFile, faces: dict[str, PhotoFace], unusable: dict[str, str],
                 threshold: float) -> Iterator[PairResult]:
    """Each pair's result, in file order, as the file is read again (see embed_pairs_photos for `faces`, `unusable`)."""
    for pair in pairs_file.pairs():
        missing = [photo for photo in (pair.first, pair.second) if photo not in faces]
        if missing:
            why = "; ".join(f"{printable(photo)}: {unusable.get(photo, MISSING)}" for photo in missing)
            yield PairResult(pair, None, why)
        else:
            yield PairResult(pair, compare(faces[pair.first], faces[pair.second], threshold))


@dataclass
class PairsSummary:
    """What the compared pairs add up to; the label counts cover the labelled ones."""

    compared: int = 0
    skipped: int = 0
    labelled: int = 0
    correct: int = 0
    false_matches: int = 0
    false_non_matches: int = 0
    largest_same: float | None = None  # among pairs labelled same
    smallest_different: float | None = None  # among pairs labelled different
    threshold: float = 0.0
    unusable: dict[str, str] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def add(self, result: PairResult) -> None:
        """Count one pair's result: compared or skipped, and for a labelled one right or which error."""
        if result.verdict is None:
            self.skipped += 1
            return
        self.compared += 1
        if result.pair.label is None:
            return
        self.labelled += 1
        self.correct += not result.error
        self.false_matches += result.error == "false match"
        self.false_non_matches += result.error == "false non-match"
        distance = result.verdict.distance
        if result.pair.label:
            self.largest_same = distance if self.largest_same is None else max(self.largest_same, distance)
        else:
            self.smallest_different = (distance if self.smallest_different is None
                                       else min(self.smallest_different, distance))

    def lines(self) -> list[str]:
        out = [f"{self.compared} pairs compared, {self.skipped} skipped, at threshold {self.threshold:g}"]
        if self.unusable:
            out.append(f"{len(self.unusable)} photos without a usable face (their pairs are skipped):")
            out.extend(f"  {printable(photo)}: {reason}" for photo, reason in self.unusable.items())
        if self.labelled:
            out.append(f"accuracy {100 * self.correct / self.labelled:.2f}% ({self.correct} of {self.labelled} "
                       "labelled pairs right)")
            out.append(f"errors: {self.false_matches} false matches (different people called the same person), "
                       f"{self.false_non_matches} false non-matches (the same person called different people)")
            out.append(f"largest same-person distance {_distance_text(self.largest_same)}, "
                       f"smallest different-person distance {_distance_text(self.smallest_different)}")
        return out

    def as_json(self) -> dict:
        """Every count of the summary, the accuracy (None without labels) and the unusable photos."""
        rounded = {name: None if value is None else round(value, 4)
                   for name, value in (("largest_same", self.largest_same), ("smallest_different", self.smallest_different))}
        return {"compared": self.compared, "skipped": self.skipped, "threshold": self.threshold,
                "labelled": self.labelled, "correct": self.correct, "accuracy": self.accuracy,
                "false_matches": self.false_matches, "false_non_matches": self.false_non_matches,
                **rounded, "unusable": {printable(photo): reason for photo, reason in self.unusable.items()}}


def _distance_text(distance: float | None) -> str:
    return "none (no such pair)" if distance is None else f"{distance:.4f}"
