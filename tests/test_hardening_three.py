"""Issue 19, the critical items, through the real serve.py on loopback, the real scripts and a real PostgreSQL:
nothing outside the dataset folder is served, written, renamed or removed through a symbolic link; a name is
compared in NFC; a page's delete during an extract_embeddings.py run is not undone when the run finishes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_sface import enrol, sface_model_args
from web_server import Server, copied_dataset, enrolled

from facerec.stores import load_store, open_store

OBAMA = "faces/probe/obama1.jpg"
LIN = "faces/probe/lin-manuel-miranda.png"


def hidden_entries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


# 1. the start-up clean-up and deletes never follow a link ---------------------------------------

def test_the_start_up_clean_up_never_follows_a_linked_person_folder_or_a_linked_trash_entry(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    outside = tmp_path / "outside"
    (outside / ".deleted-d").mkdir(parents=True)
    (outside / ".deleted-d" / "keep.txt").write_text("keep")
    (outside / ".deleted-f").write_text("hi")
    os.symlink(outside, dataset / "evil")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("precious")
    os.symlink(elsewhere, dataset / ".deleted-evil-1234abcd")  # what main's delete of a linked person left
    (dataset / "obama" / ".deleted-old.jpg-1234abcd").write_bytes(b"half-deleted")  # a killed server's leftover
    server = Server(dataset, embeddings)  # the clean-up runs before the URL is printed
    try:
        assert server.json("GET", "/api/info")[0] == 200
    finally:
        server.stop()
    assert (outside / ".deleted-f").read_text() == "hi"
    assert (outside / ".deleted-d" / "keep.txt").read_text() == "keep"
    assert (elsewhere / "precious.txt").read_text() == "precious"
    assert not os.path.lexists(dataset / ".deleted-evil-1234abcd")  # the link itself is finished off
    assert hidden_entries(dataset / "obama") == []


def test_a_linked_person_folder_is_listed_never_written_through_and_its_delete_removes_only_the_link(tmp_path):
    dataset = copied_dataset(tmp_path, ("obama",))
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(shared_path(LIN), outside / "lin.png")
    os.symlink(outside, dataset / "evil")
    embeddings = tmp_path / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())  # the scripts read through a linked folder
    assert load_store(embeddings).names.count("evil") == 1
    photo = (outside / "lin.png").read_bytes()
    server = Server(dataset, embeddings)
    try:
        status, answer = server.json("POST", "/api/enrolment", {"name": "evil"})
        assert status == 409 and "symbolic link" in answer["error"], answer
        status, answer = server.json("DELETE", "/api/people/evil/photos/lin.png")
        assert status == 409 and "symbolic link" in answer["error"], answer
        assert (outside / "lin.png").read_bytes() == photo
        assert server.request("GET", "/api/people/evil/photos/lin.png")[0] == 404
        people = {person["name"]: person for person in server.json("GET", "/api/people")[1]["people"]}
        assert people["evil"]["link"] is True and people["evil"]["photos"] == [] and people["evil"]["vectors"] == 1
        assert people["obama"]["link"] is False

        status, answer = server.json("DELETE", "/api/people/evil")
        assert status == 200, answer
        assert not os.path.lexists(dataset / "evil")
        assert hidden_entries(dataset) == []  # no .deleted-evil-XXXX left behind
        assert "evil" not in load_store(embeddings).names
        assert server.request("POST", "/api/recognize", photo)[1]["faces"][0]["name"] == "Unknown"
    finally:
        server.stop()
    assert os.listdir(outside) == ["lin.png"] and (outside / "lin.png").read_bytes() == photo


# 2. only regular files that really lie in the dataset are served ----------------------------------

def test_planted_links_fifos_and_linked_folders_are_never_served(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff secret bytes outside the dataset")
    os.symlink(secret, dataset / "obama" / "l.jpg")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(secret.read_bytes())
    os.symlink(outside, dataset / "evil")
    os.mkfifo(dataset / "obama" / "pipe.jpg")
    server = Server(dataset, embeddings)
    try:
        status, body, _ = server.request("GET", "/api/people/obama/photos/obama.jpg")
        assert status == 200 and body == (dataset / "obama" / "obama.jpg").read_bytes()
        for path in ("/api/people/obama/photos/l.jpg", "/api/people/evil/photos/x.jpg",
                     "/api/people/obama/photos/pipe.jpg", "/api/people/obama/photos/..%2F..%2Fsecret.jpg"):
            status, body, _ = server.request("GET", path, raw=True)
            assert status in (400, 404) and b"secret bytes" not in body, (path, status, body)
        photos = {photo["file"]: photo for person in server.json("GET", "/api/people")[1]["people"]
                  for photo in person["photos"]}
        assert photos["l.jpg"]["link"] is True and photos["obama.jpg"]["link"] is False
        # a planted link is deleted as a link: its target stays
        assert server.json("DELETE", "/api/people/obama/photos/l.jpg")[0] == 200
        assert not os.path.lexists(dataset / "obama" / "l.jpg")
    finally:
        server.stop()
    assert secret.read_bytes().startswith(b"\xff\xd8\xff secret") and (outside / "x.jpg").exists()


# 3. one Unicode spelling per name --------------------------------------------------------------------

def test_deleting_by_another_unicode_spelling_removes_the_vectors_with_the_photos(tmp_path):
    nfc = "Jos\u00e9"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    dataset = copied_dataset(tmp_path, ("obama",))
    (dataset / nfc).mkdir()
    for photo in ("1.png", "2.png"):
        shutil.copy(shared_path(LIN), dataset / nfc / photo)
    embeddings = tmp_path / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    assert load_store(embeddings).names.count(nfc) == 2
    lin = shared_path(LIN).read_bytes()
    server = Server(dataset, embeddings)
    try:
        status, answer = server.json("DELETE", f"/api/people/{quote(nfd)}/photos/1.png")
        assert status == 200, answer
        store = load_store(embeddings)
        assert f"{nfc}/1.png" not in store.paths and f"{nfc}/1.png" not in store.files
        assert store.names.count(nfc) == 1 and os.listdir(dataset / nfc) == ["2.png"]

        status, answer = server.json("DELETE", f"/api/people/{quote(nfd)}")
        assert status == 200, answer
        assert not (dataset / nfc).exists() and nfc not in load_store(embeddings).names
        face = server.request("POST", "/api/recognize", lin)[1]["faces"][0]
        assert face["name"] == "Unknown", face
    finally:
        server.stop()


# 4. two writers of one gallery ------------------------------------------------------------------------

class Extraction:
    """extract_embeddings.py running in the background, its progress bar read as it goes."""

    def __init__(self, dataset: Path, embeddings: str, out: Path) -> None:
        self._out = out.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset", str(dataset),
             "--embeddings", embeddings, *sface_model_args()], cwd=PROJECT_ROOT, stdout=self._out,
            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.process.stderr.fileno(), 4096):
            self.stderr += chunk

    def stop_after(self, images: int) -> None:
        """Wait until the progress bar shows `images` done, then stop the process (SIGSTOP) mid-run."""
        deadline = time.monotonic() + 300
        while not any(int(done) >= images for done in re.findall(rb"(\d+)/\d+ \[", self.stderr)):
            assert self.process.poll() is None, self.stderr.decode(errors="replace")
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.02)
        self.process.send_signal(signal.SIGSTOP)

    def finish(self) -> str:
        """Let it go on (SIGCONT, if stopped) to its end; its standard error."""
        self.process.send_signal(signal.SIGCONT)
        self.process.wait(timeout=600)
        self._reader.join(timeout=30)
        self._out.close()
        return self.stderr.decode(errors="replace")


def people_of(location: str) -> list[str]:
    with open_store(location) as store:
        return sorted(store.load().people)


def gallery_with_new_photos(kind: str, tmp_path: Path, request) -> tuple[Path, str]:
    """(dataset, store location): obama enrolled into a file or a database, then 24 new photos of biden."""
    dataset = copied_dataset(tmp_path, ("obama",))
    location = (request.getfixturevalue("database_url") if kind == "postgresql"
                else str(tmp_path / "embeddings.pickle"))
    enrol(dataset, location, *sface_model_args())
    (dataset / "biden").mkdir()
    for number in range(12):  # enough new photos that a run is stopped among them
        for photo in sorted((shared_path("faces/known") / "biden").iterdir()):
            shutil.copy(photo, dataset / "biden" / f"{number:02d}-{photo.name}")
    return dataset, location


@pytest.mark.parametrize("kind", ["file", "postgresql"])
def test_a_page_delete_during_an_extraction_is_refused_and_not_undone(kind, tmp_path, request):
    """Biden's photos are being enrolled when the page deletes him: the page is told to wait (409, naming
    extract_embeddings.py) rather than see its delete undone when the run finishes; afterwards it deletes him
    for good. (On main: 200, and the run wrote biden's vectors back with no photo left.)"""
    dataset, location = gallery_with_new_photos(kind, tmp_path, request)
    server = Server(dataset, location)
    run = Extraction(dataset, location, tmp_path / "extract.out")
    try:
        run.stop_after(4)  # obama's 2 photos unchanged, biden's being embedded
        status, answer = server.json("DELETE", "/api/people/biden")
        stderr = run.finish()
        assert run.process.returncode == 0, stderr
        # whatever the page was told, the gallery names biden exactly when his photos are there
        assert ("biden" in people_of(location)) == (dataset / "biden").is_dir(), (status, answer)
        assert status == 409, answer
        assert "extract_embeddings.py" in answer["error"] and "one writer at a time" in answer["error"]
        assert people_of(location) == ["biden", "obama"] and hidden_entries(dataset) == []  # as it was

        status, answer = server.json("DELETE", "/api/people/biden")  # the run is over: the delete goes through
        assert status == 200, answer
    finally:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGCONT)
            run.process.kill()
        server.stop()
    assert not (dataset / "biden").exists() and people_of(location) == ["obama"]
    again = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", location, "--quiet",
                       *sface_model_args())
    assert again.returncode == 0, again.stderr
    assert people_of(location) == ["obama"]


@pytest.mark.parametrize("kind", ["file", "postgresql"])
def test_a_second_extraction_of_a_gallery_being_written_waits_for_the_first_and_does_only_the_rest(kind, tmp_path,
                                                                                                 request):
    """(On main the two runs embed every new photo each, and the file's last rename wins.)"""
    dataset, location = gallery_with_new_photos(kind, tmp_path, request)
    first = Extraction(dataset, location, tmp_path / "first.out")
    second = None
    try:
        first.stop_after(3)
        second = Extraction(dataset, location, tmp_path / "second.out")
        deadline = time.monotonic() + 300
        while b"waiting until it has finished" not in second.stderr:
            assert second.process.poll() is None, second.stderr.decode(errors="replace")
            assert time.monotonic() < deadline, "the second run did not say it waits"
            time.sleep(0.05)
        assert second.process.poll() is None  # it waits while the first is stopped
        first.finish()
        assert first.process.returncode == 0
        stderr = second.finish()
        assert second.process.returncode == 0, stderr
    finally:
        for run in (first, second):
            if run is not None and run.process.poll() is None:
                run.process.send_signal(signal.SIGCONT)
                run.process.kill()
    holder = (f"(extract_embeddings.py, pid {first.process.pid})" if kind == "file"
              else f"(facerec writer: extract_embeddings.py pid {first.process.pid})")
    assert stderr.count("note: ") == 1 and f"is being written by another process {holder}" in stderr, stderr
    assert "Traceback" not in stderr
    report = (tmp_path / "second.out").read_text()
    assert "26 images used for 2 people (0 processed now, 26 unchanged since the last run, 0 removed)" in report, report
    assert people_of(location) == ["biden", "obama"]
