"""The clip's tracks as recognize_video.py follows them with the sface profile, each with every vector embedded for it
and the person it shows (bench/shared_faces.py's clip_person, checked by eye). Used by bench/unknowns.py and the
tests of grouping (tests/conftest.py puts bench/ on the path)."""

from __future__ import annotations

import functools

import numpy as np

from facerec.catalogue import PROFILES
from facerec.matching import UNKNOWN, make_matcher
from facerec.recognition import FacePipeline
from facerec.tracking import Tracker
from facerec.unknowns.store import FACES_PER_TRACK
from facerec.video import open_source
from sface_threshold import CLIP, photo_faces, sface_models
from shared_faces import clip_person


class EvidenceLog(Tracker):
    """The tracker recognize_video.py runs, also noting each embedding: (track id, frame, box, face quality, vector,
    whether the track carries a name after it)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[tuple[int, int, tuple[int, int, int, int], float, np.ndarray, bool]] = []

    def add_evidence(self, track, vector, verdict, matcher):  # type: ignore[no-untyped-def]
        match = super().add_evidence(track, vector, verdict, matcher)  # may give the track a new id: after it
        self.embedded.append((track.id, track.frame_index, track.box, float(track.quality), np.asarray(vector),
                              match.name != UNKNOWN))
        return match


@functools.cache
def _embedded_faces() -> tuple[tuple[int, int, tuple[int, int, int, int], float, np.ndarray, bool], ...]:
    """Every embedding the tracker made over the clip (run once per process)."""
    profile = PROFILES["sface"]
    detector, embedder = sface_models(profile.confidence)
    known, _ = photo_faces(detector, embedder)
    matcher = make_matcher("nearest", np.array([vector for _, _, vector in known]),
                           [person for person, _, _ in known], profile.threshold)
    tracker = EvidenceLog()
    pipeline = FacePipeline(detector, embedder, matcher, tracker)
    with open_source(str(CLIP)) as source:  # the reader recognize_video.py uses
        for index, frame in source.numbered():
            pipeline.recognise(frame, index)
    return tuple(tracker.embedded)


def clip_tracks_sface(per_track: int | None = FACES_PER_TRACK, unknown_only: bool = False
                      ) -> tuple[list[np.ndarray], list[str]]:
    """Each track's embedded vectors, and its person (bench/shared_faces.py's clip_person, checked by eye).

    The sface profile's models from ../shared/models at its confidence, facerec's Tracker with its defaults and the
    catalogue's per-face stages, a gallery of faces/known (which does not hold Lin-Manuel Miranda).
    `per_track`: a track's best this many vectors by face quality (the quality stage's score), as
    --keep-unknowns keeps them (facerec/unknowns/store.py's FACES_PER_TRACK); None: every vector embedded.
    `unknown_only`: only the tracks that never carried a name, the ones --keep-unknowns keeps.
    """
    vectors: dict[int, list[tuple[float, np.ndarray]]] = {}
    people: dict[int, set[str]] = {}
    named: set[int] = set()
    for track, frame_index, box, quality, vector, carries_a_name in _embedded_faces():
        vectors.setdefault(track, []).append((quality, vector))
        people.setdefault(track, set()).add(clip_person(frame_index, box))
        if carries_a_name:
            named.add(track)
    mixed = {track: who for track, who in people.items() if len(who) > 1}
    if mixed:
        raise SystemExit(f"tracks whose faces are not one person by bench/shared_faces.py's clip_person: {mixed}")
    tracks = [track for track in vectors if not (unknown_only and track in named)]
    kept = [sorted(vectors[track], key=lambda pair: -pair[0])[:per_track] for track in tracks]
    return [np.array([vector for _, vector in best]) for best in kept], [min(people[track]) for track in tracks]
