"""Unknown faces beside an embeddings file: the folder `<embeddings file>.unknowns/` (e.g.
output/embeddings.pickle.unknowns/), made on the first track kept.

    unknowns.json   the groups, tracks and faces, the faces' vectors as one base64 block of float32 (little-endian);
                    no pickle: a planted file can only be refused, never run. Read with a size bound
                    (MAX_INDEX_BYTES) and every field checked.
    <face id>.jpg   one face crop (MAX_CROP_BYTES at most), named by its face's id

A change is one transaction: under the folder's lock (folderlock: one writer at a time, let go by the kernel
if the writer dies) the index is read, changed, and written to a temporary name renamed into place; new
crops are written (the same way) before the index that names them, crops the index no longer names are
deleted after it. A crash leaves the previous index or the new one, whole; a crop no index names is
deleted by the next change. Readers read the index without the lock (it is only ever replaced whole).

Layout of unknowns.json:
    {"format": "facerec-unknowns", "version": 1, "profile": "sface", "dimension": 128,
     "next": [next group id, next track id, next face id],
     "retention_days": the retention kept with the faces (--unknowns-days of the last writer that gave one) or null,
     "groups": [[id, "open" | "ignored" | "named", name or null], ...],
     "tracks": [[id, group, camera, track, first_seen, last_seen(, [file, first, last])], ...],
                the last item only for a track of a video file: its name and the positions (seconds from its
                start) of the track's first and last frames (store.VideoSpan); an index written before it has none
     "faces":  [[id, track, quality, seen, has a crop (bool)], ...],
     "vectors": "base64 of the faces' vectors, one row of `dimension` numbers per face, in their order"}
"""

from __future__ import annotations

import base64
import dataclasses
import contextlib
import json
import math
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, TypeVar

import numpy as np

from ..errors import FacerecError, record_kept
from ..fileio import NotRegularFile, atomic_writer, file_kind, read_inside, read_regular_file
from ..stores.folderlock import FolderLock
from ..stores.picklefile import PickleStore
from ..text import printable
from .aging import NegativesAging
from .grouping import regroup as regroup_tracks
from .rules import (DAY_SECONDS, Placement, Settings, faces_to_drop, place_track, retention_fits, stable_ids,
                    text_problem, track_faces, video_problem, video_spans)
from .store import FACES_PER_TRACK, KeptFace, KeptTrack, NoSuchGroup, UnknownGroup, UnknownStore, VideoSpan

FOLDER_SUFFIX = ".unknowns"
INDEX = "unknowns.json"
FORMAT, VERSION = "facerec-unknowns", 1
MAX_INDEX_BYTES = 256 * 2**20  # 20,000 faces of 512 numbers are about 60 MB of JSON
MAX_CROP_BYTES = 4 * 2**20
MAX_DIMENSION = 4096
STATES = ("open", "ignored", "named")
_T = TypeVar("_T")


def unknowns_folder(gallery: str | os.PathLike) -> Path:
    """Where the unknowns of the embeddings file `gallery` live: a folder beside it, named after it."""
    path = Path(gallery)
    return path.with_name(path.name + FOLDER_SUFFIX)


@dataclass
class _Face:
    id: int
    track: int
    quality: float
    seen: float
    crop: bool  # False once the group is ignored: the vector stays as a negative, the crop goes
    vector: np.ndarray


@dataclass
class _Track:
    id: int
    group: int
    camera: str
    track: int
    first_seen: float
    last_seen: float
    video: VideoSpan | None = None


@dataclass
class _State:
    """The whole index in memory."""

    profile: str | None = None
    dimension: int | None = None
    next: list[int] = field(default_factory=lambda: [1, 1, 1])  # group, track, face: ids are never reused
    groups: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> (state, name)
    tracks: dict[int, _Track] = field(default_factory=dict)
    faces: dict[int, _Face] = field(default_factory=dict)
    retention_days: float | None = None  # kept with the faces (Settings.kept_retention); None: none kept yet

    def copy(self, deep: bool) -> _State:
        """Another state with dicts of its own; `deep`: and faces and tracks of its own (a change changes them)."""
        tracks, faces = self.tracks, self.faces
        if deep:
            tracks = {key: dataclasses.replace(t) for key, t in tracks.items()}
            faces = {key: _Face(f.id, f.track, f.quality, f.seen, f.crop, f.vector) for key, f in faces.items()}
        return _State(self.profile, self.dimension, list(self.next), dict(self.groups), dict(tracks), dict(faces),
                      self.retention_days)

    def new_id(self, kind: int) -> int:
        self.next[kind] += 1
        return self.next[kind] - 1

    def group_of(self, face: _Face) -> int:
        return self.tracks[face.track].group

    def open_group(self, group: int) -> None:
        """NoSuchGroup unless `group` is one to review."""
        if self.groups.get(group, ("",))[0] != "open":
            raise NoSuchGroup(group)

    def drop_faces(self, ids: list[int]) -> None:
        """Forget these faces, then the tracks left without a face (a named group's tracks stay: they are its
        sightings) and the groups left without a track."""
        for face in ids:
            del self.faces[face]
        with_faces = {face.track for face in self.faces.values()}
        for track in [t.id for t in self.tracks.values() if t.id not in with_faces
                      and self.groups[t.group][0] != "named"]:
            del self.tracks[track]
        with_tracks = {track.group for track in self.tracks.values()}
        for group in [group for group in self.groups if group not in with_tracks]:
            del self.groups[group]

    def bound(self, settings: Settings) -> int:
        """Apply the retention (to faces by when they were seen, to tracks by when they were last seen) and the
        maximum; how many faces went for the maximum."""
        now = settings.clock()
        faces = list(self.faces.values())
        drop, excess = faces_to_drop(np.array([f.seen for f in faces]), np.array([f.id for f in faces]), now,
                                     settings.max_faces, settings.retention_days)
        expired = {t.id for t in self.tracks.values() if t.last_seen < now - settings.retention_days * DAY_SECONDS}
        for track in expired:
            del self.tracks[track]
        self.drop_faces([face.id for face, gone in zip(faces, drop) if gone or face.track in expired])
        return excess


class _Damaged(ValueError):
    pass


def _check(condition: bool, what: str | Callable[[], str]) -> None:
    """_Damaged(what) unless `condition`; `what` may be a function, called only then (rows are many)."""
    if not condition:
        raise _Damaged(what if isinstance(what, str) else what())


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**62


def _text(value: Any) -> bool:
    return text_problem(value) is None  # the bounds every write is checked with (rules.text_problem)


def _shown(row: Any) -> str:
    return printable(str(row)[:80])


def _parse(data: bytes) -> _State:
    """The index's content, every field checked (_Damaged saying what is wrong)."""
    try:
        content = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise _Damaged(f"not JSON ({type(error).__name__})") from None
    _check(isinstance(content, dict) and content.get("format") == FORMAT, f'not a "{FORMAT}" file')
    _check(content.get("version") == VERSION, f"of version {content.get('version')!r}, not {VERSION}")
    state = _State(profile=content.get("profile"), dimension=content.get("dimension"),
                   retention_days=content.get("retention_days"))
    _check(_text(state.profile) and (state.dimension is None or _whole(state.dimension)
                                     and 0 < state.dimension <= MAX_DIMENSION),  # type: ignore[operator]
           "its profile or dimension is not a name and a number")
    _check(state.retention_days is None or retention_fits(state.retention_days), '"retention_days" is not a number '
           "of days above 0, at most 36,500")
    nexts = content.get("next")
    _check(isinstance(nexts, list) and len(nexts) == 3 and all(map(_whole, nexts)), '"next" is not three ids')
    state.next = list(nexts)
    lists = [content.get(key) for key in ("groups", "tracks", "faces")]
    _check(all(isinstance(rows, list) and all(isinstance(row, list) for row in rows) for rows in lists),
           "groups, tracks and faces must be lists of lists")
    groups, tracks, faces = lists
    for row in groups:  # type: ignore[union-attr]
        _check(len(row) == 3 and _whole(row[0]) and row[0] < state.next[0] and row[1] in STATES
               and (row[2] is None or _text(row[2])), lambda: f"a group is not [id, state, name]: {_shown(row)}")
        state.groups[row[0]] = (row[1], row[2])
    for row in tracks:  # type: ignore[union-attr]
        video = _video(row[6]) if len(row) == 7 else None
        _check(len(row) in (6, 7) and _whole(row[0]) and row[0] < state.next[1] and row[1] in state.groups
               and _text(row[2]) and _whole(row[3]) and _number(row[4]) and _number(row[5])
               and (len(row) == 6 or video is not None),
               lambda: f"a track is not [id, group, camera, track, first, last(, [file, first, last])]: {_shown(row)}")
        state.tracks[row[0]] = _Track(row[0], row[1], row[2], row[3], row[4], row[5], video)
    _check(state.dimension is not None or not faces, "it has faces but no dimension")
    for row in faces:  # type: ignore[union-attr]
        _check(len(row) == 5 and _whole(row[0]) and row[0] < state.next[2] and row[1] in state.tracks
               and _number(row[2]) and _number(row[3]) and type(row[4]) is bool,
               lambda: f"a face is not [id, track, quality, seen, crop]: {_shown(row)}")
    encoded = content.get("vectors")
    count, dimension = len(faces), state.dimension or 0  # type: ignore[arg-type]
    _check(type(encoded) is str and len(encoded) == (4 * count * dimension + 2) // 3 * 4,
           f'"vectors" is not the base64 of {count} vectors of {dimension} numbers')
    try:
        vectors = np.frombuffer(base64.b64decode(encoded, validate=True), "<f4").astype(np.float32)
    except ValueError:
        raise _Damaged('"vectors" is not base64') from None
    _check(bool(np.isfinite(vectors).all()), "a face's vector holds a number that is not finite")
    for row, vector in zip(faces, vectors.reshape(count, dimension)):  # type: ignore[arg-type]
        state.faces[row[0]] = _Face(row[0], row[1], float(row[2]), float(row[3]), row[4], vector)
    _check(len(set(state.groups)) == len(groups) and len(state.tracks) == len(tracks)  # type: ignore[arg-type]
           and len(state.faces) == len(faces), "an id is used twice")  # type: ignore[arg-type]
    return state


def _video(item: Any) -> VideoSpan | None:
    """A track's [file, first, last] as a VideoSpan, None if it is not one (the bounds every write is checked with)."""
    if not (isinstance(item, list) and len(item) == 3 and all(map(_number, item[1:]))):
        return None
    video = VideoSpan(item[0], item[1], item[2])
    return video if video_problem(video) is None else None


def _track_row(track: _Track) -> list:
    row: list = [track.id, track.group, track.camera, track.track, track.first_seen, track.last_seen]
    if track.video is not None:
        row.append([track.video.file, track.video.first, track.video.last])
    return row


def _serialise(state: _State) -> bytes:
    content = {"format": FORMAT, "version": VERSION, "profile": state.profile, "dimension": state.dimension,
               "next": state.next, "retention_days": state.retention_days,
               "groups": [[group, kind, name] for group, (kind, name) in state.groups.items()],
               "tracks": [_track_row(t) for t in state.tracks.values()],
               "faces": [[f.id, f.track, f.quality, f.seen, f.crop] for f in state.faces.values()],
               "vectors": base64.b64encode(np.array([f.vector for f in state.faces.values()], "<f4").tobytes()
                                           ).decode("ascii")}
    return json.dumps(content, separators=(",", ":")).encode("utf-8")


Signature = tuple[int, int, int]  # (inode, size, mtime in ns): each index written is a new inode


def _signature_of(info: os.stat_result) -> Signature:
    return info.st_ino, info.st_size, info.st_mtime_ns


def _signature(path: Path) -> Signature | None:
    try:
        return _signature_of(os.stat(path))
    except OSError:
        return None


def _crop_name(face: int) -> str:
    return f"{face}.jpg"


def _check_gallery_path(path: Path) -> None:
    """FacerecError unless `path` can be an embeddings file (a regular file, or none yet): the unknowns' folder is
    made beside it, never beside a device, a folder or the root (`--embeddings /dev/null` or `/`)."""
    try:
        info = os.stat(path) if path.name else None
    except FileNotFoundError:
        return
    except OSError as error:
        raise FacerecError(f"cannot use {printable(path)} as the gallery: {error.strerror or error}") from None
    if info is None or not stat.S_ISREG(info.st_mode):
        kind = "a folder" if info is None else file_kind(info.st_mode)
        raise FacerecError(f"{printable(path)} is {kind}, not an embeddings file: give --embeddings the gallery's "
                           "file (e.g. output/embeddings.pickle) or its postgresql:// URL")


class FileUnknowns(UnknownStore):
    """The unknowns of one embeddings file (see the top of this module)."""

    def __init__(self, gallery: str | os.PathLike, settings: Settings) -> None:
        _check_gallery_path(Path(gallery))
        self.folder = unknowns_folder(gallery)
        self._negatives = NegativesAging(lambda: PickleStore(gallery), settings, self._read)
        self.location = printable(self.folder)
        self.settings = settings
        # The index as this store last read or wrote it, never changed afterwards (a change works on a copy): a
        # recogniser does not parse again what it just wrote, nor a page an index that has not changed; threads
        # of one process may share the store.
        self._known: tuple[Signature, _State] | None = None
        # The folder's lock is one per process and thread: a thread that holds it (held) takes it again freely,
        # another thread of this process waits here as another process waits on the flock.
        self._turn = threading.RLock()
        self._holding = False

    # --- reading and writing the index ---

    def _read(self) -> _State:
        """The index now, not to be changed: the one this store last read or wrote if the file is still that
        one (same inode, size and time), else read and checked."""
        signature = _signature(self.folder / INDEX)
        known = self._known
        if known is not None and known[0] == signature:
            return known[1]
        try:
            data = read_regular_file(self.folder / INDEX, MAX_INDEX_BYTES)
        except FileNotFoundError:
            return _State(self.settings.profile)
        except NotRegularFile as error:
            raise FacerecError(f"{self.location}/{INDEX} is {error.kind}, not the unknowns' index: move it away") \
                from None
        except OSError as error:
            raise FacerecError(f"cannot read the unknown faces' index {self.location}/{INDEX}: "
                               f"{error.strerror or error}") from None
        try:
            state = _parse(data)
        except _Damaged as error:
            raise FacerecError(f"the unknown faces' index {self.location}/{INDEX} is damaged ({error}): move the "
                               f"folder {self.location} away (or delete it) to start again") from None
        self.settings.kept_retention(state.retention_days)  # FacerecError for one out of bounds
        if state.profile != self.settings.profile and not state.tracks:  # nothing kept: another model may start
            return _State(self.settings.profile, next=state.next, retention_days=state.retention_days)
        if state.profile != self.settings.profile:
            raise FacerecError(f"the unknown faces in {self.location} were kept with the {state.profile} model, not "
                               f"{self.settings.profile}: use --model {state.profile}, or `unknowns.py --model "
                               f"{state.profile} forget --all` first")
        if signature is not None:  # taken before the read: a file replaced meanwhile is read again next time
            self._known = (signature, state)
        return state

    def _view(self) -> _State:
        """The index as a reader sees it: what the bounds drop is not shown, even before a writer drops it."""
        state = self._read().copy(deep=False)
        state.bound(self.settings)  # removes entries of the copied dicts, changes no face or track
        return state

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with self._turn:
            if self._holding:  # this thread holds it already (held)
                yield
                return
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                lock = FolderLock.take(self.folder, f"the unknown faces {self.location}", wait=None)
            except OSError as error:
                raise FacerecError(f"cannot open the unknown faces' folder {self.location}: "
                                   f"{error.strerror or error}") from None
            self._holding = True
            try:
                yield
            finally:
                self._holding = False
                lock.release()

    def held(self) -> ContextManager[None]:
        return self._lock()

    def _change(self, change: Callable[[_State, dict[int, bytes]], _T]) -> _T:
        """One transaction: under the lock, read, `change(state, new_crops)`, bound, write (see the module)."""
        with self._lock():
            state = self._read().copy(deep=True)
            state.retention_days = self.settings.kept_retention(state.retention_days)  # this run's, if it gave one
            crops: dict[int, bytes] = {}
            dropped = state.bound(self.settings)  # the change sees no face past the bounds
            result = change(state, crops)
            self.settings.dropped_oldest(dropped + state.bound(self.settings), self.location)
            placed: list[Path] = []
            try:
                for face, jpeg in crops.items():
                    if face in state.faces:
                        with atomic_writer(self.folder / _crop_name(face)) as handle:
                            handle.write(jpeg)
                        placed.append(self.folder / _crop_name(face))
                with atomic_writer(self.folder / INDEX) as handle:
                    handle.write(_serialise(state))
                    handle.flush()
                    written = _signature_of(os.fstat(handle.fileno()))  # renaming it changes neither
            except OSError as error:
                for path in placed:  # no index names them (a full disk: they are not left behind)
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                raise FacerecError(f"cannot write the unknown faces in {self.location}: {error.strerror or error}; "
                                   "they are as they were") from None
            self._known = (written, state)
            record_kept(f"unknowns {self.folder}", f"the unknown faces in {self.location} changed (crops no longer "
                                                   "kept are deleted by the next change if not now)")
            self._sweep(state)
        self._negatives.apply(always=False)  # after the unknowns' lock is let go: the gallery's is taken then
        return result

    def _sweep(self, state: _State) -> int:
        """Delete the crops the index does not name (dropped, forgotten, or written by a change that did not
        finish), and the temporaries of a writer killed mid-way (under the lock, no other writer is writing).
        How many crops were deleted."""
        kept = {_crop_name(face.id) for face in state.faces.values() if face.crop}
        try:
            with os.scandir(self.folder) as entries:
                names = [entry.name for entry in entries if entry.name not in kept and (
                    entry.name.endswith(".jpg") or entry.name.startswith(".") and entry.name.endswith(".tmp"))]
            deleted = 0
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder / name)
                    deleted += name.endswith(".jpg")
            return deleted
        except OSError as error:
            raise FacerecError(f"the unknown faces in {self.location} were changed, but crops no longer kept could "
                               f"not be deleted ({error.strerror or error}): the next change tries again") from None

    # --- the interface ---

    def add(self, track: KeptTrack) -> int | None:
        faces, vectors = track_faces(track)

        def change(state: _State, crops: dict[int, bytes]) -> int | None:
            if state.dimension is None or not state.faces:
                state.dimension = vectors.shape[1]
            if vectors.shape[1] != state.dimension:
                raise FacerecError(f"a face of {vectors.shape[1]} numbers cannot join the unknown faces of "
                                   f"{state.dimension} in {self.location}")
            placement = self._placement(state, vectors)
            if not placement.kept:
                return None
            group = placement.group
            if group is None:
                group = state.new_id(0)
                state.groups[group] = ("open", None)
            number = state.new_id(1)
            state.tracks[number] = _Track(number, group, track.camera, int(track.track), float(track.first_seen),
                                          float(track.last_seen), track.video)
            for face, vector in zip(faces, vectors):
                face_id = state.new_id(2)
                state.faces[face_id] = _Face(face_id, number, float(face.quality), float(face.seen), True, vector)
                crops[face_id] = face.jpeg
            return group

        return self._change(change)

    def _placement(self, state: _State, vectors: np.ndarray) -> Placement:
        kept = list(state.faces.values())
        return place_track(vectors, np.array([f.vector for f in kept]).reshape(len(kept), vectors.shape[1]),
                           np.array([state.group_of(f) for f in kept], np.int64),
                           np.array([state.groups[state.group_of(f)][0] == "ignored" for f in kept]),
                           self.settings.threshold, self.settings.margin)

    def group_of(self, vectors: np.ndarray) -> int | None:
        state = self._view()
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if not state.faces or vectors.shape[1] != state.dimension:
            return None
        placement = self._placement(state, vectors)
        return placement.group if placement.kept and state.groups.get(placement.group or 0, ("",))[0] == "open" \
            else None

    def groups(self) -> list[UnknownGroup]:
        state = self._view()
        summary: dict[int, dict[str, Any]] = {}
        for group, (kind, _) in state.groups.items():
            if kind == "open":
                summary[group] = {"faces": 0, "tracks": 0, "first": np.inf, "last": -np.inf, "cameras": set(),
                                  "videos": []}
        for face in state.faces.values():
            if state.group_of(face) in summary:
                summary[state.group_of(face)]["faces"] += 1
        for track in state.tracks.values():
            if track.group in summary:
                entry = summary[track.group]
                entry["tracks"] += 1
                entry["first"] = min(entry["first"], track.first_seen)
                entry["last"] = max(entry["last"], track.last_seen)
                entry["cameras"].add(track.camera)
                entry["videos"].append(track.video)
        groups = [UnknownGroup(group, e["faces"], e["tracks"], e["first"], e["last"], tuple(sorted(e["cameras"])),
                               video_spans(e["videos"]), None in e["videos"])
                  for group, e in summary.items()]
        return sorted(groups, key=lambda g: (-g.faces, -g.tracks, -g.last_seen, g.group))

    def best_faces(self, group: int, limit: int = FACES_PER_TRACK) -> list[KeptFace]:
        state = self._view()
        state.open_group(group)
        faces = sorted((face for face in state.faces.values() if face.crop and state.group_of(face) == group),
                       key=lambda face: (-face.quality, -face.seen))
        best: list[KeptFace] = []
        for face in faces:
            if len(best) >= limit:
                break
            try:
                jpeg = read_inside(self.folder, [_crop_name(face.id)], MAX_CROP_BYTES)
            except FileNotFoundError:
                continue  # forgotten by another process since the index was read
            except OSError as error:
                raise FacerecError(f"cannot read the crop {self.location}/{_crop_name(face.id)}: "
                                   f"{error.strerror or error}") from None
            best.append(KeptFace(jpeg, face.vector, face.quality, face.seen))
        return best

    def ignore(self, group: int) -> None:
        def change(state: _State, crops: dict[int, bytes]) -> None:
            state.open_group(group)
            state.groups[group] = ("ignored", None)
            for face in state.faces.values():
                if state.group_of(face) == group:
                    face.crop = False

        self._change(change)

    def merge(self, into: int, other: int) -> None:
        def change(state: _State, crops: dict[int, bytes]) -> None:
            state.open_group(into)
            state.open_group(other)
            if into == other:
                raise FacerecError(f"cannot merge group {into} with itself")
            for track in state.tracks.values():
                if track.group == other:
                    track.group = into
            del state.groups[other]

        self._change(change)

    def named(self, group: int, person: str) -> None:
        if text_problem(person):  # the index could not be read back
            raise FacerecError(f"a person's name kept with the unknown faces {text_problem(person)}")

        def change(state: _State, crops: dict[int, bytes]) -> None:
            state.open_group(group)
            state.groups[group] = ("named", person)
            state.drop_faces([face.id for face in state.faces.values() if state.group_of(face) == group])

        self._change(change)

    def forget(self, group: int | None) -> int:
        if group is None:
            return self._forget_all()

        def change(state: _State, crops: dict[int, bytes]) -> int:
            if group is not None and group not in state.groups:
                raise NoSuchGroup(group, "kept")
            if group is not None and state.groups[group][0] == "named":  # named meanwhile: its crops are photos now
                raise NoSuchGroup(group, f"to forget: it was named {printable(state.groups[group][1] or '')}, its "
                                         "crops are that person's photos now (forget --all deletes its sightings)")
            faces = [face.id for face in state.faces.values() if group is None or state.group_of(face) == group]
            for track in [t.id for t in state.tracks.values() if group is None or t.group == group]:
                del state.tracks[track]
            state.drop_faces(faces)
            for gone in [g for g in state.groups if group is None or g == group]:
                state.groups.pop(gone)
            return len(faces)

        return self._change(change)

    def _forget_all(self) -> int:
        """Every face deleted, whatever state the folder is in (an index damaged, planted, too large or of another
        model; a full disk): the crops go first (freeing space), then the index is replaced by an empty one
        keeping the ids' counters where it can be read (else it is deleted: ids then start again from 1).
        How many faces the index named (the crops deleted, if it could not be read)."""
        with self._lock():
            index = self.folder / INDEX
            try:
                state: _State | None = _parse(read_regular_file(index, MAX_INDEX_BYTES))
            except (OSError, _Damaged):
                state = None
            empty = _State(self.settings.profile, next=state.next if state else [1, 1, 1],
                           retention_days=self.settings.retention_days if self.settings.retention_given
                           else state.retention_days if state else None)
            record_kept(f"unknowns {self.folder}", f"some crops of {self.location} deleted (forget --all again "
                                                   "finishes it)")
            deleted = self._sweep(empty)
            try:
                with atomic_writer(index) as handle:
                    handle.write(_serialise(empty))
                self._known = None
            except OSError:
                try:
                    os.unlink(index)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    raise FacerecError(f"the unknown faces' crops in {self.location} are deleted, but its index "
                                       f"{INDEX} can neither be replaced nor deleted ({error.strerror or error}): "
                                       "delete it by hand") from None
        record_kept(f"unknowns {self.folder}", f"the unknown faces in {self.location} forgotten")
        return len(state.faces) if state else deleted

    def regroup(self) -> None:
        def change(state: _State, crops: dict[int, bytes]) -> None:
            tracks = [t for t in state.tracks.values() if state.groups[t.group][0] == "open"]
            vectors = {t.id: [] for t in tracks}  # type: dict[int, list[np.ndarray]]
            for face in state.faces.values():
                if face.track in vectors:
                    vectors[face.track].append(face.vector)
            labels = regroup_tracks([np.array(vectors[t.id]) for t in tracks], self.settings.threshold,
                                    self.settings.margin)
            ids = stable_ids([t.group for t in tracks], labels, lambda: state.new_id(0))
            for track, group in zip(tracks, ids):
                state.groups.pop(track.group, None)
                track.group = group
            for group in ids:
                state.groups[group] = ("open", None)

        self._change(change)

    def sightings(self) -> list[tuple[str, str, float, float]]:
        """The named groups' tracks: (person, camera, first_seen, last_seen), kept until the retention ends."""
        state = self._view()
        return sorted((state.groups[t.group][1] or "", t.camera, t.first_seen, t.last_seen)
                      for t in state.tracks.values() if state.groups[t.group][0] == "named")

    def expire_negatives(self) -> int:
        return self._negatives.apply()

    def close(self) -> None:
        pass
