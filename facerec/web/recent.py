"""The named faces of the last frames, as the server saw them: what "Not PERSON" on the live page refers to.

Each named face of a followed video (a page's WebSocket) gets an id in its answer (`"face"`); the id
stands for the face's track, and holds its latest vector and the name it was given. A page sends the id
back, never a vector or a path: the server corrects only a face it saw itself. At most MAX_FACES are
held, the longest unseen dropped first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..faces import Face
from ..tracking import Tracker

MAX_FACES = 256  # a few seconds of a few pages' named faces: a click on a label finds its face


@dataclass(frozen=True)
class SeenFace:
    """A named face as the server saw it: the name it was given and its vector."""

    name: str
    vector: np.ndarray


class RecentFaces:
    """Ids for the named faces of recent frames (thread-safe)."""

    def __init__(self, limit: int = MAX_FACES) -> None:
        self._limit = limit
        self._faces: OrderedDict[str, SeenFace] = OrderedDict()
        self._ids: dict[tuple[int, int], str] = {}  # (tracker, track) -> id: a track keeps its id
        self._lock = threading.Lock()

    def remember(self, faces: list[Face], tracker: Tracker | None) -> list[str | None]:
        """An id for each face of a frame that `tracker` follows and that carries a name (None for the others)."""
        if tracker is None:
            return [None] * len(faces)
        latest = {track.id: track.vectors[-1] for track in tracker.tracks if track.vectors}
        ids: list[str | None] = []
        with self._lock:
            for face in faces:
                vector = latest.get(face.track) if face.track is not None else None
                if not face.known or vector is None or face.track is None:
                    ids.append(None)
                    continue
                key = (id(tracker), face.track)
                face_id = self._ids.get(key)
                if face_id is None or face_id not in self._faces:
                    face_id = self._ids[key] = secrets.token_urlsafe(12)
                self._faces[face_id] = SeenFace(face.name, np.array(vector, np.float32))
                self._faces.move_to_end(face_id)
                ids.append(face_id)
            while len(self._faces) > self._limit:
                gone, _ = self._faces.popitem(last=False)
                self._ids = {key: value for key, value in self._ids.items() if value != gone}
        return ids

    def take(self, face_id: str) -> SeenFace | None:
        """The face of `face_id`, forgotten (one correction per face); None if it is not held (any more)."""
        with self._lock:
            return self._faces.pop(face_id, None)

    def put_back(self, face_id: str, face: SeenFace) -> None:
        """A face taken whose correction failed: it may be tried again."""
        with self._lock:
            self._faces[face_id] = face
