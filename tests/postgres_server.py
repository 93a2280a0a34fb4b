"""A private PostgreSQL server for the tests: initdb + pg_ctl from the Debian packages, in a temporary folder.

The server listens on 127.0.0.1 on a free port (its unix socket in the folder). The
superuser `postgres` is trusted from loopback; the role `facerec_pw` (password
PASSWORD) must give its password (scram-sha-256). PostgreSQL refuses to run as root,
as CI does: the server then runs as the unprivileged user `nobody`.

Used by tests/test_postgres_*.py through the `postgres_server` (session) and
`database_url` (a fresh database per test) fixtures. Run it directly to get a server
for bench/postgres_store.py: `python tests/postgres_server.py` prints its URL and
stops it on Ctrl-C (that server syncs to disk as a real one does; the tests' does not).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import require

PASSWORD_ROLE = "facerec_pw"
PASSWORD = "s3cret-Pa55word"
UNPRIVILEGED_USER = "nobody"


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: $FACEREC_PG_BIN, pg_ctl on PATH, or the newest /usr/lib/postgresql/N/bin."""
    candidates = [os.environ.get("FACEREC_PG_BIN", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for folder in candidates:
        if folder and all(os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One cluster in a temporary folder; `stop()` and `start()` it again (same port, same data)."""

    def __init__(self, bin_folder: Path, durable: bool = False) -> None:
        self.bin = bin_folder
        self.durable = durable  # False: no fsync (the tests' data need not survive a power cut)
        # not under pytest's tmp folder: the unprivileged server user must be able to reach it
        self.folder = Path(tempfile.mkdtemp(prefix="facerec-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.folder, UNPRIVILEGED_USER, _group_of(UNPRIVILEGED_USER))
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                  "--locale=C.UTF-8")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        self.start()
        self.sql("postgres", f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["setpriv", f"--reuid={UNPRIVILEGED_USER}", f"--regid={_group_of(UNPRIVILEGED_USER)}",
                       "--clear-groups", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.folder,
                              env={**os.environ, "HOME": str(self.folder)})
        if done.returncode:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> None:
        # connections for every module of a session: they share the server (postgres_server)
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=100"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, database: str, statement: str, *parameters) -> list[tuple]:
        """Run one statement as the superuser; the rows it returns."""
        import psycopg
        with psycopg.connect(self.url(database), autocommit=True) as connection:
            cursor = connection.execute(statement, parameters or None)
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.sql("postgres", f"CREATE DATABASE {name}")
        self.sql("postgres", f"GRANT ALL ON DATABASE {name} TO {PASSWORD_ROLE}")
        self.sql(name, f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}")
        return name


def _group_of(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_gid


_RUNNING: list[PostgresServer] = []  # the session's one server, whichever module asked first


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The tests' PostgreSQL server; skips (or fails with FACEREC_REQUIRE_ASSETS=1) without the binaries or psycopg.

    One for the whole session: each module that imports this fixture gets an instance of it of its own (pytest
    keeps a session fixture per module that defines it), and all of them hand out the first one's server, which
    that one removes at the session's end. Each test has its databases of its own (database_url)."""
    folder = postgres_bin()
    require(folder is not None, "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql-15 "
                                "(or set FACEREC_PG_BIN)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        require(False, "psycopg is not installed: pip install -r requirements.txt")
    if _RUNNING:
        yield _RUNNING[0]
        return
    server = PostgresServer(folder)
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.clear()
        server.remove()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the tests' server (as the superuser)."""
    return postgres_server.url(postgres_server.new_database())


if __name__ == "__main__":
    import signal
    import sys
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    found = postgres_bin()
    if found is None:
        raise SystemExit("error: PostgreSQL server binaries not found")
    served = PostgresServer(found, durable=True)
    print(served.url(served.new_database()), flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        served.remove()
