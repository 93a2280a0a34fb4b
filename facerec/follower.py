"""Live galleries: a running recogniser follows its store, naming faces with the gallery as it is now.

Used by recognize_video.py and the web server. A new gallery's matcher is built in the
store's watch thread (an SVM trains there), then swapped into the Recogniser in one
assignment: recognition never waits for it, and each frame is named by one gallery.
A gallery that does not fit the running models, or a store that cannot be read, is
reported as a warning; recognition goes on with the gallery it has.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from .embedding import Embedder
from .errors import FacerecError
from .gallery import check_profile, check_store_fits
from .matching import Matcher, make_matcher
from .stores import Gallery, Store, Watch


class Named(Protocol):
    """What a follower keeps up to date: whatever names faces with `matcher` (recognition.FacePipeline) by
    `embedder`'s vectors. A protocol, so that the follower sits below the recogniser that builds it."""

    embedder: Embedder
    matcher: Matcher


def print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Naming:
    """How a gallery names faces: the matching strategy (matching.MATCHERS) and its settings."""

    strategy: str
    threshold: float
    min_probability: float | None = None  # for the svm strategy
    margin: float = 0.0  # look-alikes (matching.py): the profile's

    def matcher(self, gallery: Gallery) -> Matcher:
        return make_matcher(self.strategy, gallery.vectors, gallery.names, self.threshold, gallery.paths,
                            self.min_probability, (gallery.negatives.vectors, gallery.negatives.names), self.margin)


class GalleryFollower:
    """Keeps `recogniser` naming with the latest gallery of `store`; `gallery` is the one in use.

    `profile` is the running models' profile: a gallery made by another is not used. Start
    following with `following()` (a context manager: the watch stops at its end); `use` swaps
    in a gallery at once (the web server, just after it learned).
    """

    def __init__(self, store: Store, recogniser: Named, naming: Naming, profile: str,
                 gallery: Gallery, warn: Callable[[str], None] = print_warning) -> None:
        self.store, self.recogniser, self.naming, self.profile = store, recogniser, naming, profile
        self.gallery = gallery
        self.reloads = 0  # galleries swapped in since the start
        self._warn = warn
        self._swapping = threading.Lock()  # one swap at a time: the newest gallery is the last one in

    def use(self, gallery: Gallery) -> None:
        """Name faces with `gallery` from the next frame on; FacerecError (and no change) if it does not fit."""
        with self._swapping:
            if len(gallery):
                check_profile(gallery, self.store.location, self.profile)
                check_store_fits(gallery, self.store.location, self.recogniser.embedder)
            matcher = self.naming.matcher(gallery)
            self.recogniser.matcher = matcher
            self.gallery = gallery
            self.reloads += 1

    def _changed(self, gallery: Gallery) -> None:
        if gallery is self.gallery:  # what this process wrote and already uses (the web page's Learn or delete)
            return
        try:
            self.use(gallery)
        except FacerecError as error:
            self._warn(f"the new gallery is not used: {error}; recognition goes on with the gallery it has")

    @contextlib.contextmanager
    def following(self) -> Iterator[GalleryFollower]:
        """Follow the store's changes inside the block (its watch stops at the end)."""
        watch: Watch = self.store.watch(self._changed, self._warn)
        try:
            yield self
        finally:
            watch.stop()
