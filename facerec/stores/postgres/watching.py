"""Watching the gallery: a thread with its own connection LISTENs for the NOTIFY every committed change sends,
waits for a burst of changes (an enrolment's images) to settle, and hands the new gallery on; a lost database
is told once and tried again every second."""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

import psycopg

from ...errors import FacerecError
from ..base import Gallery, ToldOnce, Watch
from .database import CONNECT_TIMEOUT, RETRY_SECONDS, Damaged
from .schema import CHANNEL

POLL_SECONDS = 0.25  # how long a watcher waits for a notification before checking whether to stop
SETTLE_SECONDS = 0.2  # an enrolment notifies once per image: reload when they pause this long...
MAX_DELAY_SECONDS = 1.0  # ...or after this long at most


class Watched(Protocol):
    """What a watch reads through: the store (PostgresStore), named here so that this module sits below it."""

    location: str
    _loaded: tuple[int | None, Gallery] | None  # the gallery the store loaded last, and its generation

    def _connect(self, application_name: str = ...) -> psycopg.Connection: ...

    def _reason(self, error: BaseException) -> str: ...

    def _read(self, connection: psycopg.Connection, origin: str | None) -> tuple[Gallery, int | None]: ...

    def _generation_of(self, connection: psycopg.Connection) -> int | None: ...


class GalleryWatch(Watch):
    """A thread with its own connection, LISTENing on CHANNEL; reloads the gallery when it changed."""

    def __init__(self, store: Watched, on_change: Callable[[Gallery], None],
                 on_problem: Callable[[str], None], generation: int | None) -> None:
        self._store = store
        self._on_change = on_change
        self._on_problem = on_problem
        self._generation = generation  # of the gallery the caller holds (None: unknown, load at once)
        self._unusable = ToldOnce(on_problem)  # the last gallery read could not be used
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facerec-gallery-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=CONNECT_TIMEOUT + 2 * POLL_SECONDS)

    def _run(self) -> None:
        lost = ToldOnce(self._on_problem)
        while not self._stopping.is_set():
            connection = None
            try:
                connection = self._store._connect()
                connection.execute(f"LISTEN {CHANNEL}")
                lost.over(f"reconnected to the gallery database {self._store.location}: the gallery is reloaded if it "
                          "changed meanwhile")
                self._deliver(connection)  # what changed before LISTEN, or while the database was lost
                while not self._stopping.is_set():
                    if self._notified(connection):
                        self._deliver(connection)
            except (psycopg.Error, FacerecError) as error:
                if self._stopping.is_set():
                    break
                reason = str(error) if isinstance(error, FacerecError) else self._store._reason(error)
                lost.trouble(f"the gallery database {self._store.location} is unreachable ({reason}): keeping the "
                             "gallery already loaded, trying again every second")
                self._stopping.wait(RETRY_SECONDS)
            finally:
                if connection is not None:
                    connection.close()

    def _notified(self, connection: psycopg.Connection) -> bool:
        """Whether a notification came within POLL_SECONDS; if so, waits for the burst it starts to settle."""
        if not list(connection.notifies(timeout=POLL_SECONDS, stop_after=1)):
            return False
        first = time.monotonic()
        while time.monotonic() - first < MAX_DELAY_SECONDS and not self._stopping.is_set():
            if not list(connection.notifies(timeout=SETTLE_SECONDS, stop_after=1)):
                break
        return True

    def _deliver(self, connection: psycopg.Connection) -> None:
        """Load the gallery and hand it over, unless it is the one the caller already has.

        A gallery that cannot be used (damaged, none yet, a newer schema) is told once, until a usable one
        comes; the caller keeps the one it has, and the watch goes on. One that this store loaded already (the
        web page's Learn) is handed over as it is, not read again.
        """
        current = None
        generation: int | None  # of the gallery handed over
        try:
            current = self._store._generation_of(connection)
            if self._generation is not None and current == self._generation:
                return
            loaded = self._store._loaded
            if loaded is not None and loaded[0] is not None and loaded[0] == current:
                gallery, generation = loaded[1], current
            else:
                gallery, generation = self._store._read(connection, None)
        except (FacerecError, Damaged) as error:
            problem = str(error) if isinstance(error, FacerecError) else \
                f"the gallery in {self._store.location} is damaged: {error}"
            self._unusable.trouble(f"{problem}; keeping the gallery already loaded")
            self._generation = current  # read again at the next change
            return
        self._unusable.over(f"the gallery in {self._store.location} is usable again")
        self._generation = generation
        self._hand_over(gallery)

    def _hand_over(self, gallery: Gallery) -> None:
        try:
            self._on_change(gallery)
        except FacerecError as error:  # the caller cannot use it (another profile since a --force enrolment...)
            self._on_problem(str(error))

