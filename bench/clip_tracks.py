"""The clip's tracks as recognize_video.py follows them with the sface profile, each with every vector embedded for it
and the person it shows (bench/shared_faces.py's clip_person, checked by eye). Used by bench/unknowns.py and the
tests of grouping (tests/conftest.py puts bench/ on the path)."""

from __future__ import annotations

import numpy as np

from facerec.catalogue import PROFILES
from facerec.matching import make_matcher
from facerec.recognition import FacePipeline
from facerec.tracking import Tracker
from facerec.video import open_source
from sface_threshold import CLIP, photo_faces, sface_models
from shared_faces import clip_person


class EvidenceLog(Tracker):
    """The tracker recognize_video.py runs, also noting each embedding: (track id, frame, box, vector)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[tuple[int, int, tuple[int, int, int, int], np.ndarray]] = []

    def add_evidence(self, track, vector, verdict, matcher):  # type: ignore[no-untyped-def]
        match = super().add_evidence(track, vector, verdict, matcher)  # may give the track a new id: after it
        self.embedded.append((track.id, track.frame_index, track.box, np.asarray(vector)))
        return match


def clip_tracks_sface() -> tuple[list[np.ndarray], list[str]]:
    """Each track's embedded vectors, and its person (bench/shared_faces.py's clip_person, checked by eye).

    The sface profile's models from ../shared/models at its confidence, facerec's Tracker with its defaults and the
    catalogue's per-face stages, a gallery of faces/known (which does not hold Lin-Manuel Miranda).
    """
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
    vectors: dict[int, list[np.ndarray]] = {}
    people: dict[int, set[str]] = {}
    for track, frame_index, box, vector in tracker.embedded:
        vectors.setdefault(track, []).append(vector)
        people.setdefault(track, set()).add(clip_person(frame_index, box))
    mixed = {track: who for track, who in people.items() if len(who) > 1}
    if mixed:
        raise SystemExit(f"tracks whose faces are not one person by bench/shared_faces.py's clip_person: {mixed}")
    return [np.array(vectors[track]) for track in vectors], [people[track].pop() for track in vectors]
