"""The models of a run, loaded at once: a profile's detector and embedder, found, checked and downloaded
as the scripts do (modelfiles), and the record of them a gallery keeps (models_identity)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalogue import DEFAULT_PROFILE, PROFILES, Profile
from .detection import MIN_CONFIDENCE, Detector, load_detector, opencv_version_problem
from .embedding import FLOAT32, Embedder, load_embedder
from .errors import FacerecError
from .modelfiles import file_digests, profile_files


def models_identity(profile: str, detector: Detector, embedder: Embedder) -> dict[str, Any]:
    """A record of the models that make the vectors; vectors from other models are never reused."""
    digests = {Path(path).name: file_digests(Path(path))["sha256"] for path in (*detector.paths, *embedder.paths)}
    return {"profile": profile, "detector": detector.network.name, "embedder": embedder.network.name,
            "confidence": detector.confidence, "sha256": digests}


@dataclass
class Models:
    """A profile's detector and embedder, loaded and checked (`embedder` None: detection only)."""

    profile: Profile
    detector: Detector
    embedder: Embedder | None
    _identity: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def threshold(self) -> float:
        """The profile's L2 distance at which a face is no longer the same person."""
        return self.profile.threshold

    @property
    def identity(self) -> dict[str, Any]:
        """models_identity of these models (the files' checksums, computed once): what a gallery records."""
        if self._identity is None:
            self._identity = models_identity(self.profile.name, self.detector, self.needs_embedder())
        return self._identity

    def needs_embedder(self) -> Embedder:
        """The embedder; FacerecError if these models were loaded for detection only."""
        if self.embedder is None:
            raise FacerecError("these models were loaded without an embedder (load_models(..., with_embedder=False))")
        return self.embedder

    def reloaded(self) -> Models:
        """Networks that may run in another thread at the same time as these: the detector loaded again from the
        same files (OpenCV's networks are not shared between threads), the embedder's Embedder.another (OpenVINO's
        shares the compiled network)."""
        return Models(self.profile,
                      load_detector(self.detector.network, self.detector.paths, self.detector.confidence),
                      self.needs_embedder().another(), self._identity)


def load_models(profile: str = DEFAULT_PROFILE, *, models_dir: str | os.PathLike | None = None,
                detector: str | os.PathLike | None = None, embedder: str | os.PathLike | None = None,
                confidence: float | None = None, with_embedder: bool = True, precision: str = FLOAT32,
                embedder_threads: int | None = None) -> Models:
    """Find every model file of `profile` at once (downloading what is missing), check each and load them.

    `models_dir`: the folder where the files are looked for and missing ones downloaded (default:
    $FACEREC_MODELS_DIR, else the default folder, docs/models.md). `detector`: a folder holding the
    detector's files and `embedder`: the embedder's file, as the scripts' --detector and --embedding-model
    (read only: a missing file there is an error). `confidence`: the detector's minimum (default: the
    profile's). `precision`: what the embedder computes in (embedding.PRECISIONS; anything but float32 needs
    a runtime that offers it). `embedder_threads`: at most this many threads of its runtime (load_embedder). FacerecError for an unknown profile, an OpenCV that cannot load the models, or files that
    cannot be had, with the scripts' messages.
    """
    if profile not in PROFILES:
        raise FacerecError(f"unknown model profile {profile!r}: the profiles are {', '.join(sorted(PROFILES))}")
    if confidence is not None and not MIN_CONFIDENCE <= confidence <= 1:
        raise FacerecError(f"confidence {confidence} is out of range: must be in [{MIN_CONFIDENCE:g}, 1]")
    problem = opencv_version_problem()
    if problem:
        raise FacerecError(problem)
    chosen = PROFILES[profile]
    network, detector_paths, embedder_path = profile_files(
        chosen, None if detector is None else Path(detector), None if embedder is None else Path(embedder),
        with_embedder, None if models_dir is None else Path(models_dir))
    loaded = load_detector(network, detector_paths, chosen.confidence if confidence is None else confidence)
    return Models(chosen, loaded, None if embedder_path is None else load_embedder(chosen.embedder, embedder_path,
                                                                                  precision, embedder_threads))
