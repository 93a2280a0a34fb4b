"""Negative examples age with the unknown faces (issue 31 item 12): the retention kept with the unknowns
(--unknowns-days, Settings) also drops the gallery's negatives kept longer ago than it. Both are faces of
people who agreed to nothing (a negative is usually a stranger named wrongly), so neither outlives the other.

Each kind of unknown store applies it (`NegativesAging.apply`) when a run opens it (unknowns.py, a writer
with --keep-unknowns) and, in a long run, after its changes at most once every CHECK_SECONDS (checking
an embeddings file reads all of it). A negative whose time is not known (an embeddings file written
before times were kept) is counted as kept at the first apply: it expires one retention later, never
at the upgrade (Store.expire_negatives).
"""

from __future__ import annotations

from typing import Callable, ContextManager

from ..errors import FacerecError
from ..stores.base import Store
from ..text import plural
from .rules import DAY_SECONDS, Settings

CHECK_SECONDS = 3600.0  # a long run checks the negatives again at most this often (the retention is in days)


class NegativesAging:
    """The retention applied to the negatives of the gallery `gallery()` opens (the file's: a store made for
    each apply, so that the file read to check it is not held in memory meanwhile). `retention()` adopts the
    retention kept with the unknowns into `settings` (as reading them does)."""

    def __init__(self, gallery: Callable[[], ContextManager[Store]], settings: Settings,
                 retention: Callable[[], object]) -> None:
        self._gallery, self._settings, self._retention = gallery, settings, retention
        self._checked: float | None = None
        self._warned = False

    def apply(self, always: bool = True) -> int:
        """Drop the negatives past the retention; how many were dropped, told as one warning (a face they kept
        from being named may be named so again). `always` False: only if the last check is CHECK_SECONDS old.
        A failure (the gallery busy, unreadable, not writable by this user) is one warning per store opened,
        not an error: the unknown faces are still kept and reviewed, and the next run tries again."""
        now = self._settings.clock()
        if not always and self._checked is not None and now - self._checked < CHECK_SECONDS:
            return 0
        self._checked = now
        try:
            self._retention()
            days = self._settings.retention_days
            with self._gallery() as gallery:
                dropped = gallery.expire_negatives(now - days * DAY_SECONDS, now)
                where = gallery.location
        except FacerecError as error:
            if not self._warned:
                self._warned = True
                self._settings.on_warning(f"the negative examples were not checked against the unknowns' retention "
                                          f"(the next run tries again): {error}")
            return 0
        if dropped:
            self._settings.on_warning(f"{plural(dropped, 'negative example')} kept more than {days:g} days ago (the "
                                      f"unknowns' retention) dropped from {where}: a face {'they' if dropped > 1 else 'it'}"
                                      " kept from being named may be named so again")
        return dropped
