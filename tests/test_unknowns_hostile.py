"""The unknown faces' stores and unknowns.py under hostile input and careless use (issue 31): naming and forgetting
at once, fields too long for the index, a store path that is no gallery. Real scripts, real SFace crops
(tests/unknown_faces.py), a real PostgreSQL (tests/postgres_server.py)."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure, device_node
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_unknowns_cli import gallery, listed, model_args, unknowns  # noqa: F401 (gallery is a fixture)
from unknown_faces import PHOTOS, jpeg_files, sface, track
from web_server import Server, enrolled

from facerec.stores import open_store
from facerec.unknowns import open_unknowns
from facerec.unknowns.filestore import INDEX, unknowns_folder

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


def test_a_camera_name_the_index_could_not_read_back_is_refused_at_the_door_and_on_writing(tmp_path):
    """Issue 31 items 3 and 14: --camera over 200 characters, with a newline or a byte that is not UTF-8 is one
    `error:` line before anything runs; the store itself refuses a camera it could not read back (over 1,024
    characters, not UTF-8), and stays readable."""
    dataset, embeddings = enrolled(tmp_path)
    for camera, fragment in [("x" * 1100, "longer than 200 characters"), ("cam\nera", "a control character"),
                             ("cam" + os.fsdecode(b"\xff"), "a byte that is not UTF-8"), ("", "it is empty")]:
        for script in ("recognize_video.py", "serve.py"):
            result = run_script(script, "--embeddings", str(embeddings), "--camera", camera, "--keep-unknowns")
            assert_clean_failure(result, "cannot name a camera", fragment)
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    location = str(tmp_path / "embeddings.pickle")
    with open_unknowns(location, "sface") as store:
        for camera in ("x" * 1025, "cam" + os.fsdecode(b"\xff")):
            with pytest.raises(ValueError, match="camera name"):
                store.add(track(PHOTOS["kit"][:1], 1, time.time(), camera=camera))
        store.add(track(PHOTOS["kit"][:1], 2, time.time(), camera="y" * 1024))
    [row] = listed(location)
    assert row["cameras"] == ["y" * 1024]


def test_a_page_is_kept_under_its_own_address_whatever_x_forwarded_for_says(tmp_path):
    """Issue 31 item 3: a loopback page's camera is "page" and the peer's address, never a request header's."""
    from websockets.sync.client import connect

    from facerec.web.protocol import pack_frame

    dataset, embeddings = enrolled(tmp_path)
    server = Server(dataset, embeddings, "--keep-unknowns")
    try:
        forged = {"X-Forwarded-For": "1" * 1100, "X-Real-IP": "2" * 1100, "Forwarded": "for=" + "3" * 1100}
        with connect(server.ws_url(), max_size=None, additional_headers=forged) as ws:
            for number in range(3):
                ws.send(pack_frame(number, shared_path("faces/probe/lin-manuel-miranda.png").read_bytes()))
                assert [face["name"] for face in json.loads(ws.recv(timeout=WAIT_SECONDS))["faces"]] == ["Unknown"]
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # kept off the loop once the page closed
            status, answer, _ = server.request("GET", "/api/unknowns")
            assert status == 200, answer
            if answer["groups"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [group["cameras"] for group in answer["groups"]] == [["page 127.0.0.1"]]
    finally:
        server.stop()
    assert [row["cameras"] for row in listed(str(embeddings))] == [["page 127.0.0.1"]]


def plant_damaged_index(folder) -> None:
    (folder / INDEX).write_text('{"format": "facerec-unknowns", "version": 1, "profile": "sface", "dimension": 128, '
                                '"next": [2, 2, 1], "groups": [[1, "open", null]], "tracks": [[1, 1, "' + "c" * 1100
                                + '", 1, 0, 0]], "faces": []}')


def test_forget_all_works_on_any_state_of_the_folder(tmp_path):
    """Issue 31 item 3: an index refused on reading (a camera over 1,024 characters, as the code before wrote it;
    a planted 1 GB file; a FIFO; another model's), with crops beside it: forget --all deletes every crop and
    leaves an empty index that `list` reads."""
    location = str(tmp_path / "embeddings.pickle")
    folder = unknowns_folder(location)
    folder.mkdir()

    def planted_fifo(folder):
        os.mkfifo(folder / INDEX)

    def planted_huge(folder):
        with open(folder / INDEX, "wb") as planted:
            planted.truncate(2**30)  # sparse: no disk used

    for plant in (plant_damaged_index, planted_fifo, planted_huge):
        for name in ("7.jpg", "8.jpg", ".unknowns.json.1234.tmp"):
            (folder / name).write_bytes(b"\xff\xd8 crop")
        plant(folder)
        assert unknowns(location, "list").returncode == 2
        forgot = unknowns(location, "forget", "--all")
        assert forgot.returncode == 0 and "2 faces deleted for good" in forgot.stdout, forgot.stderr
        assert sorted(path.name for path in folder.iterdir()) == [INDEX]
        assert listed(location) == []
        (folder / INDEX).unlink()
    with open_unknowns(location, "sface") as store:
        store.add(track(PHOTOS["kit"], 1, time.time()))
    forgot = unknowns(location, "--model", "openface", "forget", "--all")  # the model the faces are not of
    assert forgot.returncode == 0 and "2 faces deleted for good" in forgot.stdout, forgot.stderr
    assert jpeg_files(folder) == [] and listed(location) == []


def test_a_store_path_that_is_no_gallery_is_an_error(tmp_path):
    """Issue 31 items 17 and 18: --embeddings / and /dev/null (here a private node like it) are refused in one
    line, and nothing is made beside them."""
    node = device_node(tmp_path, "null", 1, 3)
    for location, fragment in [(str(node), "is a character device, not an embeddings file"),
                               ("/", "is a folder, not an embeddings file"),
                               (str(tmp_path), "is a folder, not an embeddings file")]:
        for args in (["forget", "--all"], ["list"]):
            assert_clean_failure(unknowns(location, *args), fragment)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["null"]


def test_unknown_is_nobodys_name_wherever_a_name_enters(tmp_path):
    """Issue 31 item 8 (and 17: a deeply nested JSON body is 400): `Unknown` (in any case) is refused by
    unknowns.py name, the page's naming and enrolment, imagecapture.py, and skipped as a dataset folder."""
    dataset, embeddings = enrolled(tmp_path)
    with open_unknowns(embeddings, "sface") as store:
        group = store.add(track(PHOTOS["kit"], 1, time.time()))
    for name in ("Unknown", "UNKNOWN"):
        assert_clean_failure(unknowns(str(embeddings), "name", str(group), name, "--dataset", str(dataset)),
                             "Unknown is what a face that matches nobody is called")
        assert_clean_failure(run_script("imagecapture.py", "--name", name, "--dataset", str(dataset)),
                             "Unknown is what a face that matches nobody is called")
    server = Server(dataset, embeddings, "--keep-unknowns")
    try:
        for name in ("Unknown", "unknown"):
            status, answer = server.json("POST", f"/api/unknowns/{group}/name", {"person": name})
            assert status == 400 and "matches nobody" in answer["error"], answer
            status, answer = server.json("POST", "/api/enrolment", {"name": name})
            assert status == 400 and "matches nobody" in answer["error"], answer
        for path in (f"/api/unknowns/{group}/name", "/api/enrolment", "/api/negatives"):
            status, answer, _ = server.request("POST", path, b"[" * 100_000 + b"]" * 100_000,
                                               headers={"Content-Type": "application/json"})
            assert status == 400 and "nested too deeply" in answer["error"], answer
        assert server.alive()
    finally:
        log = server.stop()
    assert "Traceback" not in log and "RecursionError" not in log
    assert [row["group"] for row in listed(str(embeddings))] == [group]
    assert sorted(path.name for path in dataset.iterdir()) == ["biden", "obama"]
    shutil.copytree(dataset / "biden", dataset / "Unknown")
    run = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings),
                     *model_args())
    assert run.returncode == 0 and "Unknown is what a face that matches nobody is called" in run.stdout, run.stdout
    with open_store(str(embeddings)) as store:
        assert set(store.load().names) == {"biden", "obama"}


def test_a_correction_with_the_persons_own_face_is_refused_unless_forced(tmp_path):
    """Issue 31 item 12: `not obama PHOTO` where PHOTO is obama himself (0.08 from one of his photos) would stop
    him being named: refused in one line, nothing kept; --force keeps it."""
    dataset, embeddings = enrolled(tmp_path)
    before = embeddings.read_bytes()
    own = str(shared_path("faces/probe/32bit.png"))
    refused = unknowns(str(embeddings), "not", "obama", own)
    assert_clean_failure(refused, "looks like obama themself", "--force")
    # the reason with its numbers: the distance to his photo, to anyone else's, and the bound (0.5 x 1.07)
    assert re.search(r"the face is 0\.0\d\d from a photo of obama \(the nearest photo of anyone else, biden's, is "
                     r"1\.\d{3}\), nearer than 0\.5 × the threshold 1\.07 = 0\.535", refused.stderr), refused.stderr
    assert embeddings.read_bytes() == before
    stranger = unknowns(str(embeddings), "not", "obama", str(shared_path("faces/probe/lin-manuel-miranda.png")))
    assert stranger.returncode == 0 and "1 negative example of obama" in stranger.stdout, stranger.stderr
    forced = unknowns(str(embeddings), "not", "obama", own, "--force")
    assert forced.returncode == 0 and "2 negative examples of obama" in forced.stdout, forced.stderr
    with open_store(str(embeddings)) as store:
        assert store.load().negatives.names == ["obama", "obama"]


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KB tmpfs of its own (root only: skipped where it cannot be mounted), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_leaves_no_orphan_crop_warns_once_and_forget_all_still_works(tmp_path, small_disk):
    """Issue 31 items 15 and 21: keeping unknowns on a disk that fills up leaves no crop the index does not
    name, warns once however many tracks fail, says at the end what the store holds, and forget --all works."""
    from test_sface import CLIP_CONFIDENCE, sface_model_args
    from test_unknowns_keeping import write_frames

    _, enrolled_file = enrolled(tmp_path)
    embeddings = small_disk / "embeddings.pickle"
    shutil.copy(enrolled_file, embeddings)
    video = write_frames(tmp_path / "audience.avi", [*range(82, 142), *range(160, 275)])
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(video), "--no-display",
                     "--confidence", CLIP_CONFIDENCE, "--camera", "stage", "--keep-unknowns", "--every", "1",
                     *sface_model_args())
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("told once") == 1, run.stderr
    assert "could not be kept" in run.stderr and "to review now" in run.stderr, run.stderr
    folder = unknowns_folder(embeddings)
    index = json.loads((folder / INDEX).read_text())
    named = {f"{face[0]}.jpg" for face in index["faces"] if face[4]}
    assert {path.name for path in jpeg_files(folder)} == named  # no orphan
    held = sum(group["tracks"] for group in listed(str(embeddings)))
    assert f"holds {held} track" in run.stderr
    forgot = unknowns(str(embeddings), "forget", "--all")
    assert forgot.returncode == 0 and f"{len(index['faces'])} face" in forgot.stdout, forgot.stderr
    assert jpeg_files(folder) == [] and listed(str(embeddings)) == []


def test_name_never_writes_through_a_linked_person_folder(tmp_path):
    """Issue 31 item 19: dataset/kit is a link to a folder outside the dataset: refused as the page refuses it."""
    dataset, embeddings = enrolled(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (dataset / "kit").symlink_to(outside)
    with open_unknowns(embeddings, "sface") as store:
        group = store.add(track(PHOTOS["kit"], 1, time.time()))
    assert_clean_failure(unknowns(str(embeddings), "name", str(group), "kit", "--dataset", str(dataset)),
                         "symbolic link")
    assert list(outside.iterdir()) == [] and [row["group"] for row in listed(str(embeddings))] == [group]


def test_the_retention_is_kept_with_the_faces_and_every_later_reader_and_writer_applies_it(gallery):  # noqa: F811
    """Issue 31 item 7: a run given --unknowns-days 2 keeps 2 with the faces; a later writer without it (a server,
    a recogniser) drops a face 3 days old, and unknowns.py does not show it."""
    location, _, groups = gallery
    now = time.time()
    with open_unknowns(location, "sface", retention_days=2) as store:
        assert store.add(track(PHOTOS["biden"], 7, now)) is not None  # a change: the retention is kept
    with open_unknowns(location, "sface") as store:  # as serve.py or recognize_video.py without --unknowns-days
        store.add(track(PHOTOS["obama"], 8, now - 3 * 86_400))
        assert store.settings.retention_days == 2
    assert len(listed(location)) == 3  # kit, rose, biden: obama's track of 3 days ago is gone
    with open_unknowns(location, "sface", retention_days=10) as store:
        store.add(track(PHOTOS["obama"], 9, now - 3 * 86_400))
    assert len(listed(location)) == 4  # 10 days now: kept


def test_forgotten_crops_are_gone_from_the_tables_files(postgres_server, database_url):  # noqa: F811
    """Issue 31 item 5: after `unknowns.py forget G` and a CHECKPOINT, no forgotten JPEG crop is left in the
    files of the faces' table or of its TOAST table (dead rows VACUUM only marks free)."""
    from facerec.stores.postgres import PostgresStore  # noqa: F401 (psycopg is needed)

    database = database_url.rsplit("/", 1)[1]
    now = time.time()
    with open_unknowns(database_url, "sface") as store:
        kit = store.add(track(PHOTOS["kit"], 1, now))
        rose = store.add(track(PHOTOS["rose"], 2, now, camera="garden"))
        assert kit != rose
    crops = {photo: crop_of(photo) for photo in PHOTOS["kit"] + PHOTOS["rose"]}
    forgot = unknowns(database_url, "forget", str(kit))
    assert forgot.returncode == 0 and "2 faces deleted" in forgot.stdout, forgot.stderr
    postgres_server.sql(database, "CHECKPOINT")
    files = b""
    for relation in ("facerec_unknown_faces", "(SELECT reltoastrelid FROM pg_class WHERE relname = "
                                              "'facerec_unknown_faces')"):
        [(path,)] = postgres_server.sql(database, f"SELECT pg_relation_filepath({relation if '(' in relation else repr(relation)})")
        for segment in sorted(postgres_server.data.glob(path + "*")):
            files += segment.read_bytes()
    for photo in PHOTOS["kit"]:  # forgotten: not a single 64-byte piece of them is left
        assert not any(crops[photo][at:at + 64] in files for at in range(100, len(crops[photo]) - 64, 997)), photo
    for photo in PHOTOS["rose"]:  # kept: they are there (the search finds what is there)
        assert crops[photo][1000:1064] in files, photo


def crop_of(photo: str) -> bytes:
    from unknown_faces import crop

    return crop(photo)[0]


def test_help_examples_name_the_installed_commands_when_run_as_one(tmp_path):
    """Issue 31 item 23: run as facerec-unknowns (the name pip gives the command), --help's example says
    facerec-unknowns, not `python unknowns.py`; from the checkout it still says `python unknowns.py`."""
    from facerec.commands import COMMANDS

    for script, (module, command) in COMMANDS.items():
        launcher = tmp_path / command  # what pip's entry point does, under the same name
        launcher.write_text(f"from facerec.commands.{module} import main\nraise SystemExit(main())\n")
        installed = subprocess.run([sys.executable, str(launcher), "--help"], capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=120)
        assert installed.returncode == 0, installed.stderr
        example = installed.stdout.split("example:", 1)[1]
        assert f"  {command}" in example and ".py" not in example, (command, example)
        checkout = run_script(script, "--help")
        assert f"python {script}" in checkout.stdout.split("example:", 1)[1], script


def test_many_negatives_of_one_person_are_searched_without_a_copy_of_them_per_face():
    """Issue 31 item 22: 200,000 negatives of one person (128 numbers each) no longer make every face named that
    person allocate a 200,000 x 128 float64 array (205 MB): the negatives are searched as photos are, in blocks.
    The name given is the same either way (the rule of docs/negatives.md)."""
    import tracemalloc

    from facerec.matching import make_matcher

    generator = np.random.default_rng(7)

    def unit(rows):
        vectors = generator.normal(size=(rows, 128)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    photos = unit(4)
    matcher = make_matcher("nearest", photos, ["ann", "ann", "bob", "bob"], 1.5)
    negatives = unit(200_000)
    near_photo = photos[0] + 0.01 * unit(1)[0]
    negatives[123_456] = near_photo  # one negative exactly on the face: it is not ann
    matcher.with_negatives(negatives, ["ann"] * len(negatives))
    tracemalloc.start()
    try:
        named = matcher.match(np.stack([near_photo, photos[1]]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [match.name for match in named] == ["Unknown", "ann"]
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MB at the peak of naming two faces"


def test_an_interruption_after_a_change_of_the_unknowns_says_what_was_done(gallery):  # noqa: F811
    """Issue 31 item 6: once a forget has written (the index emptied, the crops being deleted), a Ctrl-C says the
    unknown faces changed, not "nothing was written" (the message main_guard prints on KeyboardInterrupt)."""
    from facerec import errors

    location, _, groups = gallery
    errors._kept.clear()  # as main_guard starts a run
    assert errors.interrupted_message() == "interrupted: nothing was written"
    with open_unknowns(location, "sface") as store:
        store.forget(groups["kit"])
    assert "the unknown faces in" in errors.interrupted_message() and "changed" in errors.interrupted_message()
    errors._kept.clear()
    with open_unknowns(location, "sface") as store:
        store.forget(None)
    message = errors.interrupted_message()
    assert "unknown faces" in message and "nothing was written" not in message, message


def test_negatives_are_listed_and_one_can_be_removed_again(gallery):  # noqa: F811
    """Issue 31 item 12: `unknowns.py negatives [PERSON]` lists the corrections, `negatives --remove ID` undoes one
    (file and PostgreSQL)."""
    location = gallery[0]
    lin = str(shared_path("faces/probe/lin-manuel-miranda.png"))
    for person in ("obama", "biden"):
        kept = unknowns(location, "not", person, lin)
        assert kept.returncode == 0, kept.stderr
    every = unknowns(location, "negatives")
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["1: not obama", "2: not biden"]
    assert all("from their nearest photo" in line for line in lines)
    assert unknowns(location, "negatives", "biden").stdout.splitlines() == lines[1:]
    removed = unknowns(location, "negatives", "--remove", "1")
    assert removed.returncode == 0 and "negative example 1 removed" in removed.stdout, removed.stderr
    assert unknowns(location, "negatives").stdout.splitlines() == ["1" + lines[1][1:]]
    assert_clean_failure(unknowns(location, "negatives", "--remove", "5"), "no negative example 5", "holds 1")
    with open_store(location) as store:
        assert store.load().negatives.names == ["biden"]
