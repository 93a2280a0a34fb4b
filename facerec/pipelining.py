"""Detection one frame ahead: the next frame's faces are found on the second core while this frame's are embedded.

Only detection runs ahead, since it needs nothing but the picture; the
tracker, the embedder and the matcher still take the frames one at a time, in
order, so every frame gets the names the one-step-at-a-time loop gives it.
It is for files: a live camera's frame detected ahead waits for the frame
before it, and on two busy cores the time from its capture to its names
drawn grew (bench/live_path.py), so run_recognition leaves live sources alone.

computed_ahead is the ordered, bounded look-ahead under it, also used by
extraction to read photos and find their faces on several threads.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from .detection import DetectedFace, Detector

Item = TypeVar("Item")
Result = TypeVar("Result")


def computed_ahead(items: Iterable[Item], function: Callable[[Item], Result], pool: Executor,
                   depth: int) -> Iterator[tuple[Item, Result]]:
    """(item, function(item)) for each of `items`, in their order, up to `depth` items computed ahead in `pool`.

    At most `depth` + 1 items are taken from `items` before their results are wanted (a bounded memory);
    an error of `function` comes out at its item.
    """
    pending: deque = deque()
    for item in items:
        pending.append((item, pool.submit(function, item)))
        if len(pending) > depth:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def detected_ahead(numbered: Iterable[tuple[int, np.ndarray]],
                   detector: Detector) -> Iterator[tuple[int, np.ndarray, list[DetectedFace]]]:
    """(index, frame, faces) for each (index, frame) of `numbered`, the next frame's detection running meanwhile.

    A detector error comes out at its frame; closing the iterator (a quit key, Ctrl-C) waits only for the
    detection under way.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-ahead") as pool:
        for (index, frame), faces in computed_ahead(numbered, lambda pair: detector.detect(pair[1]), pool, 1):
            yield index, frame, faces
