"""The gallery in PostgreSQL through the real scripts (issue 14): extract_embeddings.py, recognize_video.py,
evaluate.py and serve.py run as processes against tests/postgres_server.py's server, with the sface models.

What the file gives, the database gives: the same names and distances for the clip, the same report and
gallery after adding, changing and deleting photos, the same refusals. What only a database must stand:
two enrolments at once, one killed mid-way, a recogniser following enrolments and deletions made by other
processes and outliving a restart of the server, names made of SQL, a password in the URL, sightings.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import CLIP, assert_clean_failure, stand_in_openface
from postgres_server import PASSWORD, PASSWORD_ROLE, database_url, postgres_server  # noqa: F401 (fixtures)
from paced_camera import LIN_FRAMES, LIN_PHOTO, WITHIN_TWO_SECONDS, PacedCamera, names, y4m_frames
from test_events import Listener, new_broker
from test_postgres_store import INJECTION, readme_sightings_query, rows
from test_sface import CLIP_CONFIDENCE, enrol, linked_dataset, sface_model_args
from web_server import Server, copied_dataset

from facerec.stores import load_store, open_store

REPORT = re.compile(r"(\d+) images? used for (\d+) (?:person|people) \((\d+) processed now, (\d+) unchanged since the "
                    r"last run, (\d+) removed\)")
WEIRD_NAME = "O'Brien \"Zoë\" \\ 李小龍; --"  # quotes, a backslash, unicode, a comment
WRONG_PASSWORD = "wrong-Secret-42"
KILL_AFTER = 20  # images in the database before extract_embeddings.py is killed
MANY_PHOTOS = 150  # links to the known photos: a run long enough to be killed mid-way


def extract(dataset: Path, store, *extra: str) -> subprocess.CompletedProcess:
    return run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(store), "--quiet",
                      *sface_model_args(), *extra)


def start_extract(dataset: Path, url: str, **options) -> subprocess.Popen:
    """extract_embeddings.py running in the background (as on another machine)."""
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset", str(dataset),
                             "--embeddings", url, "--quiet", *sface_model_args()], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def counts(report: str) -> tuple[int, ...]:
    """(used, people, processed, reused, removed) of an extract_embeddings.py report."""
    found = REPORT.search(report)
    assert found, report
    return tuple(int(number) for number in found.groups())


def clip_records(store, *options: str) -> list[dict]:
    run = run_script("recognize_video.py", "--embeddings", str(store), "--source", str(shared_path(CLIP)),
                     "--no-display", "--json", "--confidence", CLIP_CONFIDENCE, *options, *sface_model_args())
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def origin(dataset: Path) -> str:
    """How the database names a dataset folder of this machine in its paths (facerec/stores/postgres/writing.py)."""
    return f"{socket.gethostname()}:{dataset.resolve()}"


def by_photo(gallery, prefix: str = "") -> dict[str, tuple[str, bytes]]:
    """{photo path without `prefix`: (name, vector bytes)} of a loaded gallery."""
    assert all(path.startswith(prefix) for path in gallery.paths)
    return {path[len(prefix):]: (name, vector.astype(np.float32).tobytes())
            for path, name, vector in zip(gallery.paths, gallery.names, gallery.vectors)}


def database_gallery(url: str, dataset: Path) -> dict[str, tuple[str, bytes]]:
    with open_store(url) as store:
        return by_photo(store.load(), origin(dataset) + "/")


@pytest.fixture(scope="module")
def lin_gallery(postgres_server, tmp_path_factory):  # noqa: F811
    """(dataset, file, url, reports): faces/known + "lin" enrolled into a file and into a database."""
    root = tmp_path_factory.mktemp("pg_scripts")
    dataset = linked_dataset(root / "dataset", {"lin": shared_path(LIN_PHOTO)})
    file, url = root / "embeddings.pickle", postgres_server.url(postgres_server.new_database())
    reports = [enrol(dataset, store, *sface_model_args()).stdout for store in (file, url)]
    return dataset, file, url, reports


# --- the same as the file ---

def test_the_clip_is_named_the_same_from_the_file_and_from_the_database(lin_gallery):
    dataset, file, url, reports = lin_gallery
    assert counts(reports[0]) == counts(reports[1]) == (10, 6, 10, 0, 0)
    assert database_gallery(url, dataset) == by_photo(load_store(file))
    from_file, from_database = clip_records(file), clip_records(url)
    assert len(from_file) == len(from_database) == 275
    prefix = origin(dataset) + "/"
    for in_file, in_database in zip(from_file, from_database):
        assert len(in_file["faces"]) == len(in_database["faces"]), in_file["frame"]
        for face, same in zip(in_file["faces"], in_database["faces"]):
            # the database's photo paths name the machine and the dataset folder, the file's are relative
            assert same["match"] == prefix + face["match"]
            assert {**same, "match": face["match"]} == face
    named = {face["name"] for record in from_database for face in record["faces"]}
    assert {"lin", "obama", "Unknown"} <= named


def test_evaluate_gives_the_same_table_from_the_file_and_from_the_database(lin_gallery):
    _, file, url, _ = lin_gallery
    from_file, from_database = (run_script("evaluate.py", "--embeddings", str(store)) for store in (file, url))
    assert from_file.returncode == from_database.returncode == 0, from_database.stderr
    assert from_database.stdout == from_file.stdout and "10 vectors of 6 people" in from_file.stdout
    assert from_database.stderr == from_file.stderr


def test_adding_changing_and_deleting_photos_report_and_store_the_same(database_url, tmp_path):  # noqa: F811
    dataset = copied_dataset(tmp_path, ("obama", "biden"))
    file = tmp_path / "embeddings.pickle"

    def both(expected: tuple[int, ...]) -> None:
        runs = [extract(dataset, store) for store in (file, database_url)]
        assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
        assert counts(runs[0].stdout) == counts(runs[1].stdout) == expected
        assert database_gallery(database_url, dataset) == by_photo(load_store(file))

    both((4, 2, 4, 0, 0))
    shutil.copytree(shared_path("faces/known/kit_harington"), dataset / "kit_harington")  # add a person
    both((6, 3, 2, 4, 0))
    changed = dataset / "obama" / "obama2.jpg"  # another photo under the same name, a later mtime
    before = database_gallery(database_url, dataset)["obama/obama2.jpg"]
    shutil.copyfile(shared_path("faces/probe/obama1.jpg"), changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    both((6, 3, 1, 5, 0))
    assert database_gallery(database_url, dataset)["obama/obama2.jpg"] != before
    (dataset / "biden" / "biden2.jpg").unlink()  # delete a photo
    both((5, 3, 0, 5, 1))
    assert "biden/biden2.jpg" not in database_gallery(database_url, dataset)


def test_a_gallery_of_the_other_profile_is_refused_as_the_file_is(lin_gallery, postgres_server, tmp_path):  # noqa: F811
    dataset, file, url, _ = lin_gallery
    openface_models = ["--detector", str(shared_path("models")),
                       "--embedding-model", str(stand_in_openface(tmp_path / "net"))]
    openface_url = postgres_server.url(postgres_server.new_database())
    openface_file = tmp_path / "openface.pickle"
    for store in (openface_file, openface_url):
        assert run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(store), "--quiet",
                          *openface_models).returncode == 0
    for made_by, used, model_args, stores in (("sface", "openface", openface_models, (file, url)),
                                              ("openface", "sface", sface_model_args()[2:],
                                               (openface_file, openface_url))):
        messages = []
        for store in stores:
            result = run_script("recognize_video.py", "--embeddings", str(store), "--source", str(shared_path(CLIP)),
                                "--no-display", *model_args, "--model", used)
            assert_clean_failure(result, f"made with the '{made_by}' profile", f"--model {made_by}")
            assert result.stdout == ""
            messages.append(result.stderr.replace(str(store), "STORE"))
        assert messages[0] == messages[1]


def test_an_enrolment_with_other_model_files_is_refused_by_the_database_unless_forced(database_url, tmp_path):  # noqa: F811
    """The file is simply redone with the new models; the database holds other machines' photos, so it refuses."""
    dataset = linked_dataset(tmp_path / "dataset")
    detector = ["--detector", str(shared_path("models"))]
    first, second = (["--embedding-model", str(stand_in_openface(tmp_path / "net", seed))] for seed in (0, 1))
    file = tmp_path / "embeddings.pickle"
    for store in (file, database_url):
        assert run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(store), "--quiet",
                          *detector, *first).returncode == 0
    redone = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(file), "--quiet",
                        *detector, *second)
    assert redone.returncode == 0 and counts(redone.stdout) == (9, 5, 9, 0, 0)
    with open_store(database_url) as store:
        before = by_photo(store.load())
    refused = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", database_url, "--quiet",
                         *detector, *second)
    assert_clean_failure(refused, "made with other 'openface' models", "--force")
    with open_store(database_url) as store:
        assert by_photo(store.load()) == before
    forced = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", database_url, "--quiet",
                        *detector, *second, "--force")
    assert forced.returncode == 0 and counts(forced.stdout) == (9, 5, 9, 0, 0)
    assert database_gallery(database_url, dataset) == by_photo(load_store(file))


# --- two machines, a killed run ---

def many_photos(root: Path, count: int) -> tuple[Path, dict[str, str]]:
    """root with `count` links to the photos of faces/known (person/NNN-photo); {key: the known photo's key}."""
    known = sorted(shared_path("faces/known").glob("*/*"))
    sources = {}
    for number in range(count):
        photo = known[number % len(known)]
        key = f"{photo.parent.name}/{number:03d}-{photo.name}"
        (root / photo.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(photo, root / key)
        sources[key] = f"{photo.parent.name}/{photo.name}"
    return root, sources


@pytest.fixture(scope="module")
def known_vectors(tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    """The sface vector of each photo of faces/known, from an enrolment into a file."""
    root = tmp_path_factory.mktemp("known_vectors")
    enrol(linked_dataset(root / "dataset"), root / "embeddings.pickle", *sface_model_args())
    return by_photo(load_store(root / "embeddings.pickle"))


def check_whole_images(url: str, datasets: dict[Path, dict[str, str]], known_vectors) -> int:
    """Each image row is one photo of those datasets, once, used, with its photo's vector; how many rows."""
    origins = {origin(dataset): sources for dataset, sources in datasets.items()}
    found = rows(url, "SELECT origin, key, person, status, vector FROM facerec_images")
    assert len({(where, key) for where, key, *_ in found}) == len(found)  # no image twice
    for where, key, person, status, vector in found:
        name, expected = known_vectors[origins[where][key]]
        assert (person, status) == (name, "used"), key
        assert np.frombuffer(vector, "<f4").astype(np.float32).tobytes() == expected, key
    return len(found)


def test_two_enrolments_at_once_neither_duplicate_nor_lose(database_url, tmp_path, known_vectors):  # noqa: F811
    door, door_sources = many_photos(tmp_path / "door", 40)  # two machines' folders
    hall, hall_sources = many_photos(tmp_path / "hall", 30)
    runs = [start_extract(door, database_url), start_extract(hall, database_url)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert check_whole_images(database_url, {door: door_sources, hall: hall_sources}, known_vectors) == 70
    with open_store(database_url) as store:
        assert len(store.load()) == 70

    # twice the same folder at once, into a database that already holds it: the same rows, once each
    again = [start_extract(door, database_url) for _ in range(2)]
    shutil.rmtree(hall)
    many_photos(hall, 35)  # meanwhile the hall's folder changed: 5 more
    outputs = [run.communicate(timeout=600) for run in again]
    assert [run.returncode for run in again] == [0, 0], outputs
    assert all(counts(out)[:2] == (40, 5) for out, _ in outputs)
    assert check_whole_images(database_url, {door: door_sources, hall: hall_sources}, known_vectors) == 70


def test_twice_the_same_new_folder_at_once_records_each_photo_once(database_url, tmp_path, known_vectors):  # noqa: F811
    door, door_sources = many_photos(tmp_path / "door", 40)
    runs = [start_extract(door, database_url) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all(counts(out)[:2] == (40, 5) for out, _ in outputs)
    assert check_whole_images(database_url, {door: door_sources}, known_vectors) == 40
    again = extract(door, database_url)
    assert again.returncode == 0 and counts(again.stdout) == (40, 5, 0, 40, 0)


@pytest.mark.parametrize("interruption", ["SIGKILL", "Ctrl-C", "database stopped"])
def test_an_interrupted_enrolment_leaves_whole_images_and_the_next_run_does_the_rest(postgres_server, tmp_path,  # noqa: F811
                                                                                      known_vectors, interruption):
    url = postgres_server.url(postgres_server.new_database())
    dataset, sources = many_photos(tmp_path / "dataset", MANY_PHOTOS)
    run = start_extract(dataset, url)
    deadline = time.monotonic() + 300
    while not rows(url, "SELECT to_regclass('facerec_images')")[0][0] or \
            rows(url, "SELECT count(*) FROM facerec_images")[0][0] < KILL_AFTER:
        assert run.poll() is None and time.monotonic() < deadline, "extract_embeddings.py ended before its kill"
        time.sleep(0.05)
    if interruption == "SIGKILL":
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
    elif interruption == "Ctrl-C":  # says truthfully what it leaves: the images it recorded, each whole
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
        recorded = rows(url, "SELECT count(*) FROM facerec_images")[0][0]
        assert run.returncode == 130 and out == ""
        assert err == f"interrupted: kept {recorded} images recorded in {url} (the next run does the rest)\n"
    else:  # the database lost mid-run: one clean error naming the server
        postgres_server.stop()
        try:
            out, err = run.communicate(timeout=120)
        finally:
            postgres_server.start()
        assert_clean_failure(subprocess.CompletedProcess(run.args, run.returncode, out, err),
                             f"the gallery database at 127.0.0.1:{postgres_server.port}")  # cannot connect, or record
    recorded = check_whole_images(url, {dataset: sources}, known_vectors)
    assert KILL_AFTER <= recorded < MANY_PHOTOS
    with open_store(url) as store:
        assert len(store.load()) == recorded  # the gallery is exactly the whole images

    rest = extract(dataset, url)
    assert rest.returncode == 0, rest.stderr
    assert counts(rest.stdout) == (MANY_PHOTOS, 5, MANY_PHOTOS - recorded, recorded, 0)
    assert check_whole_images(url, {dataset: sources}, known_vectors) == MANY_PHOTOS


# --- a running recogniser ---

def test_a_running_recogniser_names_a_person_enrolled_elsewhere_and_forgets_one_deleted(database_url, tmp_path):  # noqa: F811
    enrol(linked_dataset(tmp_path / "door"), database_url, *sface_model_args())
    camera = PacedCamera(tmp_path / "camera.y4m", database_url, y4m_frames(LIN_FRAMES))
    hall = linked_dataset(tmp_path / "hall", {"lin": shared_path(LIN_PHOTO)})  # another machine's folder
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the first frames")
        before = len(camera.records)
        enrol(hall, database_url, *sface_model_args())  # another process enrols Lin-Manuel Miranda
        enrolled = len(camera.records)  # committed by now
        camera.wait_for(lambda: any("lin" in names(record) for record in camera.records[enrolled:]), "lin named")
        first = next(number for number, record in enumerate(camera.records) if "lin" in names(record))
        assert all(record["faces"] for record in camera.records[:before])  # his face was there, not named lin
        assert first - enrolled <= WITHIN_TWO_SECONDS, (first, enrolled)

        shutil.rmtree(hall / "lin")  # deleted there, and enrolled again
        enrol(hall, database_url, *sface_model_args())
        deleted = len(camera.records)
        camera.wait_for(lambda: len(camera.records) >= deleted + WITHIN_TWO_SECONDS + 10, "frames after the deletion")
        last = max(number for number, record in enumerate(camera.records) if "lin" in names(record))
        assert last - deleted <= WITHIN_TWO_SECONDS, (last, deleted)
        assert all(record["faces"] for record in camera.records[last + 1:])  # his face is there, no longer lin
    finally:
        returncode = camera.stop()
    stderr = "".join(camera.stderr)
    assert returncode == 0 and "warning" not in stderr and "Traceback" not in stderr, stderr
    # reloaded at the changes, never a frame at a time: each enrolment is at least one reload, and its
    # commits (model record, image, deletion) are one reload or a few, as they fall in time (a loaded machine)
    reloads = int(re.search(r"gallery reloaded (\d+) times?", stderr).group(1))
    assert 2 <= reloads <= len(camera.records) // 4, stderr


def test_a_running_recogniser_outlives_a_restart_of_the_database(postgres_server, tmp_path):  # noqa: F811
    url = postgres_server.url(postgres_server.new_database())
    dataset = linked_dataset(tmp_path / "dataset", {"lin": shared_path(LIN_PHOTO)})
    enrol(dataset, url, *sface_model_args())
    camera = PacedCamera(tmp_path / "camera.y4m", url, y4m_frames(LIN_FRAMES), "--log-sightings", "--camera", "door")
    try:
        camera.wait_for(lambda: sum("lin" in names(record) for record in camera.records) >= 5, "lin named")
        postgres_server.stop()
        try:
            camera.wait_for(lambda: "is unreachable" in "".join(camera.stderr), "the warning")
            lost = len(camera.records)
            camera.wait_for(lambda: len(camera.records) >= lost + 30, "frames while the database is down")
            # named with the gallery it has (over a second of frames: the watcher has tried again meanwhile)
            assert all(names(record) == {"lin"} for record in camera.records[lost:])
        finally:
            postgres_server.start()
        camera.wait_for(lambda: "reconnected" in "".join(camera.stderr), "the reconnection")
        os.rename(dataset / "lin", dataset / "miranda")  # a new enrolment after the restart
        enrol(dataset, url, *sface_model_args())
        enrolled = len(camera.records)
        camera.wait_for(lambda: any("miranda" in names(record) for record in camera.records[enrolled:]),
                        "miranda named")
    finally:
        returncode = camera.stop()
    stderr = "".join(camera.stderr)
    assert returncode == 0 and "Traceback" not in stderr, stderr
    assert stderr.count("is unreachable") == 1 and stderr.count("reconnected to the gallery database") == 1, stderr
    # the sightings waited in memory while the database was down: none lost
    assert stderr.count("sightings cannot be written now") == 1 and stderr.count("sightings are written again") == 1
    assert stderr.count("warning: ") == 4  # the gallery's loss and reconnection, the sightings' likewise
    # one visit each, lin's and (once enrolled under that name) miranda's, every visit ended with the run
    named = {face["name"] for record in camera.records for face in record["faces"]} - {"Unknown"}
    visits = rows(url, 'SELECT name, "left" IS NOT NULL FROM facerec_visits WHERE name <> %s ORDER BY visit', "Unknown")
    assert named == {"lin", "miranda"} and visits == [("lin", True), ("miranda", True)]


def seconds(stamp: str) -> float:
    """An event's ISO 8601 time as seconds since the epoch."""
    return datetime.datetime.fromisoformat(stamp).timestamp()


def in_order(visit: tuple) -> tuple:
    """(name, unknown_group, arrived, ...) sorted by name, group (none first) and arrival."""
    return visit[0], -1 if visit[1] is None else visit[1], visit[2]


def test_the_sightings_log_holds_the_visits_mqtt_is_told_over_the_clip(lin_gallery, tmp_path):
    _, _, url, _ = lin_gallery
    camera = "visits-stage"
    broker = new_broker(tmp_path / "broker")
    listener = Listener(broker.port)
    try:
        run = run_script("recognize_video.py", "--embeddings", url, "--source", str(shared_path(CLIP)), "--no-display",
                         "--confidence", CLIP_CONFIDENCE, "--camera", camera, "--mqtt", broker.url(), "--log-sightings",
                         *sface_model_args())
        assert run.returncode == 0 and "warning" not in run.stderr, run.stderr
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{camera}/status"), "no offline status")
        events = [json.loads(payload) for payload in listener.payloads(f"facerec/{camera}/events")]
    finally:
        listener.close()
        broker.stop()
    # the visits the events tell: a person's by name, a stranger's by group, else by its track
    told, arrivals = [], {}
    for event in events:
        key = (event["name"] if event["name"] != "Unknown" else None, event.get("unknown_group"),
               event["track"] if event["name"] == "Unknown" and event.get("unknown_group") is None else None)
        if event["type"] == "arrived":
            arrivals[key] = event
        else:
            arrival = arrivals.pop(key)
            told.append((arrival["name"], arrival.get("unknown_group"), seconds(arrival["time"]), seconds(event["time"]),
                         arrival["distance"]))
    assert not arrivals and told
    logged = sorted(((name, group, arrived.timestamp(), left and left.timestamp(), distance)
                     for name, group, arrived, left, distance
                     in rows(url, 'SELECT name, unknown_group, arrived, "left", distance FROM facerec_visits '
                                  "WHERE camera = %s", camera)), key=in_order)
    assert len(logged) == len(told) and all(row[3] is not None for row in logged), logged  # every visit ended
    for row, visit in zip(logged, sorted(told, key=in_order)):  # the same visits, to the millisecond the events carry
        assert row[:2] == visit[:2] and row[2:4] == pytest.approx(visit[2:4], abs=0.0011), (row, visit)
        assert row[4] == pytest.approx(visit[4], abs=0.0001)
    names = [name for name, *_ in logged]
    assert names.count("lin") == 1 and names.count("obama") == 1


# --- names and passwords ---

def test_names_made_of_sql_quotes_and_unicode_are_just_names(database_url, tmp_path):  # noqa: F811
    dataset = tmp_path / "dataset"
    renamed = {"obama": WEIRD_NAME}
    for person in sorted(shared_path("faces/known").iterdir()):
        (dataset / renamed.get(person.name, person.name)).mkdir(parents=True)
        for photo in person.iterdir():
            os.symlink(photo, dataset / renamed.get(person.name, person.name) / photo.name)
    (dataset / INJECTION).mkdir()
    os.symlink(shared_path(LIN_PHOTO), dataset / INJECTION / "lin.png")
    enrol(dataset, database_url, *sface_model_args())
    named = {face["name"] for record in clip_records(database_url) for face in record["faces"]}
    assert {INJECTION, WEIRD_NAME} <= named and "obama" not in named
    assert {person for (person,) in rows(database_url, "SELECT DISTINCT person FROM facerec_images")} == {
        "alex_lacamoire", "biden", "kit_harington", "rose_leslie", WEIRD_NAME, INJECTION}
    tables = rows(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    assert tables == [("facerec_images",), ("facerec_meta",), ("facerec_negatives",), ("facerec_sightings",),
                      ("facerec_visits",)]
    assert rows(database_url, "SELECT count(*) FROM facerec_images") == [(10,)]


def assert_no_password(result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, (result.stdout, result.stderr)


def test_a_password_never_appears_in_any_output(postgres_server, tmp_path):  # noqa: F811
    database = postgres_server.new_database()
    right = postgres_server.url(database, PASSWORD_ROLE, PASSWORD)
    wrong = postgres_server.url(database, PASSWORD_ROLE, WRONG_PASSWORD)
    secrets = (PASSWORD, WRONG_PASSWORD)
    where = f"127.0.0.1:{postgres_server.port}"
    dataset = copied_dataset(tmp_path, ("obama", "biden"))
    clip = ["--source", str(shared_path(CLIP)), "--no-display", "--json", "--confidence", CLIP_CONFIDENCE,
            *sface_model_args()]

    def scripts(url: str) -> list[subprocess.CompletedProcess]:
        return [extract(dataset, url), run_script("recognize_video.py", "--embeddings", url, *clip),
                run_script("evaluate.py", "--embeddings", url)]

    def serve(url: str) -> subprocess.CompletedProcess:  # only when it fails to start: it serves until stopped
        return run_script("serve.py", *sface_model_args(), "--dataset", str(dataset), "--embeddings", url,
                          "--port", "0", timeout=120)

    # on success (serve.py is started and stopped below, as a server runs)
    enrolled, recognised, evaluated = scripts(right)
    for result in (enrolled, recognised, evaluated):
        assert result.returncode == 0, result.stderr
        assert_no_password(result, *secrets)
    assert f"{PASSWORD_ROLE}@{where}" in enrolled.stdout
    assert any(face["name"] == "obama" for line in recognised.stdout.splitlines() for face in json.loads(line)["faces"])
    server = Server(dataset, right)
    try:
        assert server.json("GET", "/api/info")[1]["people"] == 2
    finally:
        served = server.stop()
    assert "Traceback" not in served and PASSWORD not in served

    # a wrong password, then the database down at start: one clean error naming the server, no password
    for url, reason in ((wrong, "password authentication failed"), (right, "cannot connect")):
        if url is right:
            postgres_server.stop()
        try:
            for result in [*scripts(url), serve(url)]:
                assert_clean_failure(result, where, reason)
                assert_no_password(result, *secrets)
                assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
        finally:
            if url is right:
                postgres_server.start()


def test_a_role_that_may_only_read_recognises_but_may_not_enrol_or_log_sightings(postgres_server, tmp_path):  # noqa: F811
    database = postgres_server.new_database()
    dataset = linked_dataset(tmp_path / "dataset")
    enrol(dataset, postgres_server.url(database), *sface_model_args())
    reader = f"reader_{database}"
    postgres_server.sql(database, f"CREATE ROLE {reader} LOGIN PASSWORD '{PASSWORD}'")
    postgres_server.sql(database, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
    url = postgres_server.url(database, reader, PASSWORD)
    evaluated = run_script("evaluate.py", "--embeddings", url)
    assert evaluated.returncode == 0 and "9 vectors of 5 people" in evaluated.stdout, evaluated.stderr
    for result, doing in ((extract(dataset, url), "cannot enrol into"),
                          (run_script("recognize_video.py", "--embeddings", url, "--log-sightings", "--camera", "door",
                                      "--source", str(shared_path(CLIP)), "--no-display", *sface_model_args()),
                           "cannot keep sightings in")):
        assert_clean_failure(result, f"{doing} the gallery database at 127.0.0.1:{postgres_server.port}",
                             "permission denied")
        assert_no_password(result, PASSWORD)
    assert rows(postgres_server.url(database), "SELECT count(*) FROM facerec_images") == [(9,)]


def test_a_camera_role_that_may_only_add_sightings_logs_them(postgres_server, tmp_path):  # noqa: F811
    # what a careful administrator gives a camera: read the gallery, write sightings, nothing else
    database = postgres_server.new_database()
    dataset = linked_dataset(tmp_path / "dataset", {"lin": shared_path(LIN_PHOTO)})
    enrol(dataset, postgres_server.url(database), *sface_model_args())
    camera = f"camera_{database}"
    for statement in (f"CREATE ROLE {camera} LOGIN PASSWORD '{PASSWORD}'",
                      f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {camera}",
                      f"GRANT INSERT, UPDATE ON facerec_visits TO {camera}",
                      f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {camera}"):
        postgres_server.sql(database, statement)
    url = postgres_server.url(database, camera, PASSWORD)
    result = run_script("recognize_video.py", "--embeddings", url, "--log-sightings", "--camera", "door",
                        "--source", str(shared_path(CLIP)), "--no-display", "--json", *sface_model_args())
    assert result.returncode == 0, result.stderr
    assert_no_password(result, PASSWORD)
    logged = rows(postgres_server.url(database), "SELECT DISTINCT name FROM facerec_visits WHERE camera = 'door'")
    assert "lin" in {name for (name,) in logged}


# --- sightings and the web server ---

def test_sightings_of_the_clip_are_one_row_per_visit_and_the_docs_query_reads_them(lin_gallery):
    _, _, url, _ = lin_gallery
    records = clip_records(url, "--log-sightings", "--camera", "door")
    named = {face["name"] for record in records for face in record["faces"] if face["name"] != "Unknown"}
    assert named >= {"lin", "obama"}
    logged = rows(url, 'SELECT name, "left" FROM facerec_visits WHERE camera = \'door\'')
    # the clip lasts 9 s, less than --away-seconds: each person named in it is one visit, ended with the run
    visits = collections.Counter(name for name, _ in logged if name != "Unknown")
    assert visits == {name: 1 for name in named}
    assert all(left is not None for _, left in logged)
    answer = rows(url, readme_sightings_query())
    assert sorted(name for name, camera, *_ in answer if camera == "door") == sorted({name for name, _ in logged})


def test_the_web_server_learns_and_deletes_in_the_database_and_a_running_recogniser_follows(database_url,  # noqa: F811
                                                                                              tmp_path):
    dataset = copied_dataset(tmp_path, ("obama", "biden"))
    enrol(dataset, database_url, *sface_model_args())
    lin = shared_path(LIN_PHOTO).read_bytes()
    server = Server(dataset, database_url)
    camera = PacedCamera(tmp_path / "camera.y4m", database_url, y4m_frames(LIN_FRAMES))  # another camera, same gallery
    try:
        assert server.request("POST", "/api/recognize", lin)[1]["faces"][0]["name"] == "Unknown"
        status, held = server.json("POST", "/api/enrolment", {"name": "lin"})
        assert status == 201
        assert server.request("POST", "/api/enrolment/photos", lin, {"X-Enrolment": held["key"]})[0] == 201
        progress = server.learned(held["key"])
        assert progress["state"] == "done", progress
        assert server.request("POST", "/api/recognize", lin)[1]["faces"][0]["name"] == "lin"
        assert database_gallery(database_url, dataset)["lin/0001.png"][0] == "lin"
        camera.wait_for(lambda: any("lin" in names(record) for record in camera.records), "lin named by the camera")

        assert server.json("DELETE", "/api/people/obama/photos/obama2.jpg")[0] == 200
        gallery = database_gallery(database_url, dataset)
        assert "obama/obama2.jpg" not in gallery and "obama/obama.jpg" in gallery
        assert rows(database_url, "SELECT count(*) FROM facerec_images WHERE key = 'obama/obama2.jpg'") == [(0,)]
        # another process reading the database sees what the server learned and deleted
        again = extract(dataset, database_url)
        assert again.returncode == 0 and counts(again.stdout) == (4, 3, 0, 4, 0)

        assert server.json("DELETE", "/api/people/lin")[0] == 200
        assert "lin" not in {name for name, _ in database_gallery(database_url, dataset).values()}
        deleted = len(camera.records)
        camera.wait_for(lambda: len(camera.records) >= deleted + WITHIN_TWO_SECONDS + 10, "frames after the deletion")
        assert not any("lin" in names(record) for record in camera.records[deleted + WITHIN_TWO_SECONDS:])
    finally:
        stderr, returncode = server.stop(), camera.stop()
    assert returncode == 0 and "Traceback" not in "".join(camera.stderr), "".join(camera.stderr)
    assert "Traceback" not in stderr
