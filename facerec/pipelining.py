"""Detection one frame ahead: the next frame's faces are found on the second core while this frame's are embedded.

Only detection runs ahead, since it needs nothing but the picture; the
tracker, the embedder and the matcher still take the frames one at a time, in
order, so every frame gets the names the one-step-at-a-time loop gives it.
It is for files: a live camera's frame detected ahead waits for the frame
before it, and on two busy cores the time from its capture to its names
drawn grew (bench/live_path.py), so run_recognition leaves live sources alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from .detection import DetectedFace, Detector


def detected_ahead(numbered: Iterable[tuple[int, np.ndarray]],
                   detector: Detector) -> Iterator[tuple[int, np.ndarray, list[DetectedFace]]]:
    """(index, frame, faces) for each (index, frame) of `numbered`, the next frame's detection running meanwhile.

    A detector error comes out at its frame; closing the iterator (a quit key, Ctrl-C) waits only for the
    detection under way.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-ahead") as pool:
        pending = None
        for index, frame in numbered:
            detection = pool.submit(detector.detect, frame)
            if pending is not None:
                yield pending[0], pending[1], pending[2].result()
            pending = (index, frame, detection)
        if pending is not None:
            yield pending[0], pending[1], pending[2].result()
