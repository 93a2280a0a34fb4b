"""Recognising faces: the per-frame pipeline (detect, per-face stages, track, embed, match) and the public `Recogniser`.

A frame in, its Face records (faces.py) out. The video loop that shows, saves or hands them on is running.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .detection import DetectedFace, Detector
from .embedding import Embedder
from .errors import FacerecError
from .faces import Face
from .follower import GalleryFollower, Naming
from .gallery import check_profile, check_store_fits
from .images import bgr_image
from .matching import DEFAULT_MIN_PROBABILITY, MATCHERS, Match, Matcher
from .models import Models
from .stages import Stage, load_stages
from .stores import Gallery, StoredGallery, open_gallery
from .tracking import DEFAULT_EVERY, Tracker
from .video import numbered_frames, open_source


def run_stages(stages: Sequence[Stage], image: np.ndarray, detected: Sequence[DetectedFace]) -> list[Face]:
    """A Face record for each detected face of `image`, filled by every per-face stage."""
    faces = [Face(face) for face in detected]
    for stage in stages:
        for face, value in zip(faces, stage.run(image, detected)):
            face.values[stage.name] = value
    return faces


class FacePipeline:
    """Detect, the per-face stages, embed, match and track: a frame in, its named faces out.

    Without a tracker every face is embedded and named on its own (a photo). With one (a video),
    faces keep track ids, only the faces the tracker asks for are embedded, and each face
    carries its track's name. `matcher` may be replaced at any time from another thread (a new
    gallery): each frame is named by the matcher it started with.
    """

    def __init__(self, detector: Detector, embedder: Embedder, matcher: Matcher,
                 tracker: Tracker | None = None, stages: Sequence[Stage] | None = None) -> None:
        self.detector = detector
        self.embedder = embedder
        self.matcher = matcher
        self.tracker = tracker
        self.stages = load_stages() if stages is None else list(stages)  # default: the catalogue's
        self.embedded = 0  # faces embedded so far

    def recognise(self, frame: np.ndarray, frame_index: int | None = None,
                  tracker: Tracker | None = None, faces: list[DetectedFace] | None = None,
                  matcher: Matcher | None = None) -> list[Face]:
        """The faces of `frame`; `frame_index` (the source's, for a tracker) defaults to frames seen.

        `tracker` (default: the recogniser's own) follows one video: a server that recognises several
        videos at once with one set of networks gives each its own tracker. `faces`: the detector's
        faces of `frame`, when they were found already (detected_ahead). `matcher`: one camera's own (its
        threshold) instead of `self.matcher`.
        """
        tracker = self.tracker if tracker is None else tracker
        matcher = self.matcher if matcher is None else matcher  # one gallery for the whole frame
        records = run_stages(self.stages, frame, self.detector.detect(frame) if faces is None else faces)
        if tracker is None:
            for record, vector, match in zip(records, *self._embed(frame, records, matcher)):
                record.match, record.vector = match, vector
            return records
        tracks = tracker.update(records, frame_index, frame)
        due = [i for i, track in enumerate(tracks) if tracker.needs_embedding(track)]
        vectors, verdicts = self._embed(frame, [records[i] for i in due], matcher)
        for i, vector, verdict in zip(due, vectors, verdicts):
            tracker.add_evidence(tracks[i], vector, verdict, matcher)
            records[i].vector = vector
        for record, track in zip(records, tracks):
            record.match, record.track = track.match, track.id
        return records

    def _embed(self, frame: np.ndarray, faces: list[Face], matcher: Matcher) -> tuple[np.ndarray, list[Match]]:
        """The faces' vectors and their own verdicts (none for no face)."""
        if not faces:
            return np.empty((0, self.embedder.dimension), np.float32), []
        self.embedded += len(faces)
        vectors = self.embedder.embed(frame, [face.detected for face in faces])
        return vectors, matcher.match(vectors)


class Recogniser(FacePipeline):
    """A model profile's networks naming faces with a gallery: `recognise` a photo, `follow` a video.

    `gallery`: an open gallery (stores.open_gallery), or its location (an embeddings file or a
    postgresql:// URL, opened here and closed by `close`); a gallery with none yet names everyone
    Unknown. `threshold` (default: the profile's), `match` (matching.MATCHERS) and `min_probability`
    (--match svm) and `margin` (look-alikes, matching.py; default: the profile's) as the scripts' options; `every` as recognize_video.py --every. Inside
    `watching_gallery()` the gallery's changes by other processes are used from the next frame on;
    a change that cannot be used goes to `on_problem` (default: the "facerec" logger's warnings).
    FacerecError, with the scripts' messages, for a gallery of another profile or vector length.
    """

    def __init__(self, models: Models, gallery: StoredGallery | str | os.PathLike | None = None, *,
                 threshold: float | None = None, match: str = "nearest",
                 min_probability: float = DEFAULT_MIN_PROBABILITY, every: int = DEFAULT_EVERY,
                 on_problem: Callable[[str], None] | None = None, margin: float | None = None) -> None:
        embedder = models.needs_embedder()
        if match not in MATCHERS:
            raise FacerecError(f"unknown matching strategy {match!r}: the strategies are {', '.join(sorted(MATCHERS))}")
        self._owned = not isinstance(gallery, StoredGallery)
        if isinstance(gallery, StoredGallery):
            opened = gallery
        else:
            opened = open_gallery(gallery, profile=models.profile.name)
        try:
            snapshot = opened.snapshot
            if snapshot is None:
                snapshot = Gallery.empty(models.profile.name, models.identity, embedder.dimension)
            check_profile(snapshot, opened.location, models.profile.name)
            check_store_fits(snapshot, opened.location, embedder)
            self.naming = Naming(match, models.threshold if threshold is None else threshold, min_probability,
                                 models.profile.margin if margin is None else margin)
            super().__init__(models.detector, embedder, self.naming.matcher(snapshot))
        except BaseException:
            if self._owned:
                opened.close()
            raise
        self.models, self.stored, self.every = models, opened, every
        self.follower = GalleryFollower(opened.store, self, self.naming, models.profile.name, snapshot,
                                        warn=on_problem or logging.getLogger("facerec").warning)

    @property
    def gallery(self) -> Gallery:
        """The gallery faces are named with now."""
        return self.follower.gallery

    @property
    def threshold(self) -> float:
        return self.naming.threshold

    def recognise(self, image: np.ndarray, frame_index: int | None = None,
                  tracker: Tracker | None = None, faces: list[DetectedFace] | None = None,
                  matcher: Matcher | None = None) -> list[Face]:
        """The faces of one BGR image (OpenCV's convention), most confident first, each named on its own.

        (`frame_index` and `tracker`: a frame of a video followed by that tracker, as `follow` does;
        `faces`: the detector's faces of `image` when they were found already; `matcher`: another threshold's.)
        """
        return super().recognise(bgr_image(image), frame_index, tracker, faces, matcher)  # FacerecError if none

    def new_tracker(self) -> Tracker:
        """A tracker for one more video, embedding a followed face again at least every `every` frames."""
        return Tracker(self.every)

    def follow(self, source: str | int | os.PathLike | Iterable[np.ndarray]) -> Iterator[tuple[int, list[Face]]]:
        """(frame index, faces) for each frame of a video, its faces followed as tracks (`face.track`).

        `source`: a webcam index, a video file or a stream URL (opened and closed here, FacerecError if it
        cannot be), or any iterable of BGR frames.
        """
        tracker = self.new_tracker()
        with contextlib.ExitStack() as cleanup:
            if isinstance(source, (str, int, os.PathLike)):
                source = cleanup.enter_context(open_source(os.fspath(source) if not isinstance(source, int)
                                                           else str(source)))
            elif not isinstance(source, Iterable):
                raise FacerecError(f"a video to follow is a webcam index, a file, a URL or frames, not "
                                   f"{type(source).__name__}")
            for index, frame in numbered_frames(source):
                yield index, self.recognise(frame, index, tracker)

    @contextlib.contextmanager
    def watching_gallery(self) -> Iterator[Recogniser]:
        """Use the gallery's changes (another process enrolled or deleted) inside the block."""
        with self.follower.following():
            yield self

    def close(self) -> None:
        """Close the gallery's store if this recogniser opened it."""
        if self._owned:
            self.stored.close()

    def __enter__(self) -> Recogniser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
