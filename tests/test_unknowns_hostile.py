"""The unknown faces' stores and unknowns.py under hostile input and careless use (issue 31): naming and forgetting
at once, fields too long for the index, a store path that is no gallery. Real scripts, real SFace crops
(tests/unknown_faces.py), a real PostgreSQL (tests/postgres_server.py)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

from conftest import PROJECT_ROOT
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_unknowns_cli import gallery, listed, model_args  # noqa: F401 (gallery is a fixture)
from unknown_faces import jpeg_files, sface

from facerec.stores import open_store

WAIT_SECONDS = 120


class Running:
    """A script started in the background, its standard error read line by line as it comes."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(PROJECT_ROOT / script), *args], cwd=PROJECT_ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, fragment: str) -> None:
        """Until a line of standard error holds `fragment` (AssertionError if the script ends first)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"ended without saying {fragment!r}: {''.join(self.stderr)}"
            self.stderr.append(line)
            if fragment in line:
                return

    def finish(self) -> tuple[int, str, str]:
        """(exit code, standard output, all of standard error)."""
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        code = self.process.wait(WAIT_SECONDS)
        while (line := self.lines.get(timeout=WAIT_SECONDS)) is not None:
            self.stderr.append(line)
        return code, out, "".join(self.stderr)


def unknowns_running(location: str, *args: str) -> Running:
    return Running("unknowns.py", *model_args(), "--embeddings", location, *args)


def test_forget_during_name_waits_for_it_and_says_the_group_was_named(gallery):  # noqa: F811
    """Issue 31 item 2: `forget G` while `name G` enrols G's crops waits for the naming, then refuses: the
    faces were named, never both enrolled and "deleted for good"."""
    location, dataset, groups = gallery
    group = str(groups["kit"])
    models = sface()
    with open_store(location) as store, store.open_writer(dataset, models.identity, models.needs_embedder().dimension):
        # The gallery's writer is held here: `name` reads the group's crops, then waits for it to enrol them.
        naming = unknowns_running(location, "name", group, "kit", "--dataset", str(dataset))
        naming.wait_for("waiting")
        forgetting = unknowns_running(location, "forget", group)
        forgetting.wait_for("waiting")  # for the naming: it holds the unknown faces' lock
    named, forgot = naming.finish(), forgetting.finish()
    assert named[0] == 0, named[2]
    assert forgot[0] == 2 and "Traceback" not in forgot[2], forgot[2]
    assert f"no unknown group {group}" in forgot[2] and "deleted for good" not in forgot[1]
    assert len(jpeg_files(dataset / "kit")) == 2
    with open_store(location) as store:
        assert store.load().names.count("kit") == 2
    assert [row["group"] for row in listed(location)] == [groups["rose"]]
