"""Strangers seen before: which kept group of unknown faces an Unknown track falls in, for the events.

events.Presence asks once per new Unknown track (on the video loop: one read of the store, cached for
REFRESH_SECONDS); the answer is the group's id and its visits (its kept tracks, this one included). A
group named, ignored or forgotten is no longer one to review, so its faces are no longer reported as it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import FacerecError
from .store import UnknownStore

REFRESH_SECONDS = 10.0  # the groups' track counts are read again after this long


class KeptStrangers:
    """events.Strangers backed by an unknown store; a store that cannot be read costs one warning, not the video."""

    def __init__(self, store: UnknownStore, warn: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self._warn, self._clock = store, warn, clock
        self._tracks: dict[int, int] = {}
        self._read_at: float | None = None
        self._warned = False

    def recognise(self, vectors: np.ndarray) -> tuple[int, int] | None:
        try:
            group = self.store.group_of(vectors)
            if group is None:
                return None
            if self._read_at is None or self._clock() - self._read_at > REFRESH_SECONDS or group not in self._tracks:
                self._tracks = {found.group: found.tracks for found in self.store.groups()}
                self._read_at = self._clock()
        except (FacerecError, OSError, ValueError) as error:
            if not self._warned:
                self._warned = True
                self._warn(f"the unknown faces {self.store.location} cannot be read for the events ({error}): "
                           "strangers are reported without their group")
            return None
        tracks = self._tracks.get(group)
        return None if tracks is None else (group, tracks + 1)
