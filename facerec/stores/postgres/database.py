"""The gallery database's connections and messages: connecting with a timeout, one retry after a lost
connection, every psycopg error turned into one FacerecError line with every password masked."""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Callable, TypeVar
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ...errors import FacerecError
from ..base import password_spans, starred, unclear_password

CONNECT_TIMEOUT = 5  # seconds to wait for the server before saying it is unreachable
RETRY_SECONDS = 1.0  # a watcher or sighting log whose database is lost tries again this often
_T = TypeVar("_T")

# A URL's password (postgresql://user:PASSWORD@host) and a password parameter (?password=..., password=...).
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^/\s]*@")
_PARAMETER_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")
_QUOTED = re.compile(r'"([^"]*)"')


def one_row(cursor: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a query that always gives one (an aggregate, a SELECT of expressions)."""
    row = cursor.fetchone()
    if row is None:
        raise FacerecError("the gallery database gave no row where a query always gives one")
    return row


def masked_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with every password in it replaced by ***: those of URLs and parameters, and each of `secrets`
    where it stands as a word of its own (a password "e" is not every letter e)."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _PARAMETER_PASSWORD.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", "***", text)
    return text


def _url_problem(url: str, error: psycopg.Error) -> str:
    """libpq's complaint about `url`, on one line, with what it quotes of the URL masked by the URL's structure:
    a quoted piece that is or overlaps a password in the URL shows ***, as starred() would show that piece."""
    spans = password_spans(url)

    def quoted(match: re.Match) -> str:
        piece = match.group(1)
        if len(piece) <= 1:  # libpq's own punctuation ("]", "=")
            return match.group(0)
        at = url.find(piece)
        while at >= 0:
            if any(start < at + len(piece) and at < end for start, end in spans):
                return f'"{starred(url, at, at + len(piece))}"'
            at = url.find(piece, at + 1)
        return match.group(0) if piece in url or not spans else '"..."'  # not the URL's text: may be decoded from it

    return _QUOTED.sub(quoted, " ".join(str(error).split()))


class Damaged(ValueError):
    """What the database holds is not a gallery this code made."""


class Database:
    """The connections to a PostgreSQL database named by a URL (postgresql://user@host:port/dbname).

    Credentials come from the URL, PGPASSFILE / ~/.pgpass or the PG* environment variables
    (libpq reads them); no message ever shows a password. Connecting happens here:
    FacerecError naming the host and port if the server cannot be reached or refuses.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.location = starred(url)
        if unclear_password(url):
            raise FacerecError(f"{self.location}: where its password ends is unclear (an @ or / after the : of "
                               "user:password): write @ as %40 and / as %2F in the user name, password and query, "
                               "or keep the password in ~/.pgpass (PGPASSFILE)")
        try:
            parameters = conninfo_to_dict(url)
        except psycopg.Error as error:
            raise FacerecError(f"{self.location} is not a PostgreSQL URL: {_url_problem(url, error)}") from None
        written = [url[start:end] for start, end in password_spans(url)]
        self._secrets = tuple(dict.fromkeys(str(s) for s in (*written, *map(unquote, written), parameters.get("password"),
                                                        os.environ.get("PGPASSWORD")) if s))
        host = str(parameters.get("host") or os.environ.get("PGHOST") or "localhost")
        port = parameters.get("port") or os.environ.get("PGPORT") or "5432"
        self._server = f"{host}:{port}" if not host.startswith("/") else f"{host} (socket, port {port})"
        self._lock = threading.RLock()
        self._connection: psycopg.Connection | None = self._connect()

    def _reason(self, error: BaseException) -> str:
        """A psycopg error as one line, passwords masked."""
        return masked_text(" ".join(str(error).split()) or type(error).__name__, self._secrets)

    def _connect(self, application_name: str = "facerec") -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   application_name=application_name, keepalives=1, keepalives_idle=5,
                                   keepalives_interval=2, keepalives_count=3)
        except psycopg.Error as error:
            raise FacerecError(f"cannot connect to the gallery database at {self._server} ({self.location}): "
                               f"{self._reason(error)}") from None

    def _using(self, doing: str, work: Callable[[psycopg.Connection], _T], own: psycopg.Connection | None = None
               ) -> _T:
        """`work(connection)` on the store's own connection (or a writer's `own`); errors become FacerecError.

        A connection found lost (the server restarted since it was last used) is replaced and
        the work done once more: every operation here is safe to repeat (upserts, deletes, reads).
        Not a writer's own: its writer lock went with it, the writer fails.
        """
        with self._lock:
            for attempt in (1, 2):
                connection = own
                if connection is None:
                    if self._connection is None or self._connection.closed:
                        self._connection = self._connect()
                    connection = self._connection
                try:
                    return work(connection)
                except psycopg.Error as error:
                    if connection.broken or connection.closed:
                        connection.close()
                        if attempt == 1 and own is None and isinstance(error, psycopg.OperationalError):
                            continue
                    raise FacerecError(f"cannot {doing} the gallery database at {self._server} ({self.location}): "
                                       f"{self._reason(error)}") from None
                except UnicodeError as error:
                    raise FacerecError(f"cannot {doing} the gallery database {self.location}: text that is not "
                                       f"valid UTF-8 ({self._reason(error)})") from None
                except Damaged as error:
                    raise FacerecError(f"the gallery in {self.location} is damaged: {error}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
