"""The face record: one face of an image and what every stage of the pipeline writes into it.

The detector gives `detected`, each per-face stage (stages/) a value in `values`, the embedder a
`vector` (in the frames that embedded it), the matcher or the track a `match`, the tracker a `track`
id. Everything that reads a face imports it from here: the pipeline (recognition.py), the video loop
(running.py), the drawing, the keeper of unknowns, the JSON line and the web protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .detection import DetectedFace
from .matching import UNKNOWN, Match
from .text import printable


@dataclass(eq=False)
class Face:
    """One face of an image: where the detector found it, who it is and, in a video, the id of its track.

    `detected` is the detector's finding (box, confidence, landmarks); `match` the name the gallery gave
    (None until it is matched); `values` what each per-face stage found, by the stage's name, also read
    as attributes (`face.quality`). Everything that shows a face (the JSON line, the web page, the
    drawing) reads it from here.
    """

    detected: DetectedFace
    match: Match | None = None
    track: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    vector: np.ndarray | None = None  # the embedder's vector of this face, when this frame embedded it (unknowns/keeping.py)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in pixels, inside the image."""
        return self.detected.box

    @property
    def confidence(self) -> float:
        return self.detected.confidence

    @property
    def landmarks(self) -> np.ndarray | None:
        return self.detected.landmarks

    @property
    def width(self) -> int:
        return self.detected.width

    @property
    def height(self) -> int:
        return self.detected.height

    @property
    def name(self) -> str:
        """The person's name, or Unknown."""
        return UNKNOWN if self.match is None else self.match.name

    @property
    def distance(self) -> float | None:
        """The L2 distance to the gallery's evidence for the name (None: nothing to compare with)."""
        return None if self.match is None else self.match.distance

    @property
    def photo(self) -> str | None:
        """The gallery image the face matched, where the matching strategy names one."""
        return None if self.match is None else self.match.photo

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    @property
    def label(self) -> str:
        """`#track name: distance` as drawn on the frame (no `#track` outside a video)."""
        text = self.name if self.distance is None else f"{self.name}: {self.distance:.2f}"
        return text if self.track is None else f"#{self.track} {text}"

    def __repr__(self) -> str:  # short: not the landmarks nor the vector's numbers
        distance = "" if self.distance is None else f", distance={self.distance:.4f}"
        track = "" if self.track is None else f", track={self.track}"
        return f"Face(box={self.box}, confidence={self.confidence:.3f}, name={self.name!r}{distance}{track})"

    def as_json(self) -> dict:
        """The face as recognize_video.py --json gives it: box, confidence, name, distance, match (the photo),
        then each stage's value, then "track" for a face followed by a tracker.

        The name and the photo are escaped as the terminal shows them (`text.printable`): a file name that is not
        UTF-8 would otherwise put a lone surrogate in the JSON, which no UTF-8 consumer can decode.
        """
        record = {"box": list(self.box), "confidence": round(self.confidence, 4), "name": printable(self.name),
                  "distance": _rounded(self.distance), "match": None if self.photo is None else printable(self.photo)}
        record.update((name, _rounded(value)) for name, value in self.values.items())
        if self.track is not None:
            record["track"] = self.track
        return record


RecognisedFace = Face  # its name before issue 20


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
