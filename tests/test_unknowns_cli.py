"""unknowns.py as a user runs it: the options before the subcommand, on a file gallery and on PostgreSQL, with
unknown tracks of real SFace crops (tests/unknown_faces.py) kept by the library, and its errors."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import REQUIRE_ASSETS, run_script, shared_path
from helpers import assert_clean_failure
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from unknown_faces import PHOTOS, jpeg_files, sface, track

from facerec.catalogue import SFACE
from facerec.enrolment import enrol
from facerec.stores import open_store
from facerec.unknowns import open_unknowns
from facerec.unknowns.filestore import INDEX, unknowns_folder

START = 1_800_000_000.0  # tracks are seen "now": the retention counts from the real clock
FIELDS = {"group", "faces", "tracks", "first_seen", "last_seen", "cameras"}


def model_args() -> list[str]:
    models = shared_path("models")
    return ["--model", "sface", "--detector", str(models), "--embedding-model", str(models / SFACE.files[0].filename)]


def unknowns(location: str, *args: str):
    return run_script("unknowns.py", *model_args(), "--embeddings", location, *args)


@pytest.fixture(params=["file", "postgresql"])
def gallery(request, tmp_path):
    """(location, dataset, {person: group}): a gallery of biden and obama, and kept tracks of kit (two) and rose."""
    if request.param == "file":
        location = str(tmp_path / "output" / "embeddings.pickle")
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            if REQUIRE_ASSETS:
                raise
            pytest.skip("psycopg is not installed")
        location = request.getfixturevalue("database_url")
    dataset = tmp_path / "dataset"
    for person in ("biden", "obama"):
        shutil.copytree(shared_path("faces/known") / person, dataset / person)
    enrol(dataset, location, sface())
    import time
    now = time.time()
    with open_unknowns(location, "sface") as store:
        groups = {"kit": store.add(track(PHOTOS["kit"][:1], 1, now)),
                  "rose": store.add(track(PHOTOS["rose"], 2, now, camera="garden"))}
        assert store.add(track(PHOTOS["kit"][1:], 3, now)) == groups["kit"]
    return location, dataset, groups


def listed(location: str) -> list[dict]:
    result = unknowns(location, "list", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_show_name_forget_as_a_user_runs_them(gallery, tmp_path):
    location, dataset, groups = gallery
    rows = listed(location)
    assert [(row["group"], row["faces"], row["tracks"]) for row in rows] == [(groups["kit"], 2, 2),
                                                                           (groups["rose"], 2, 1)]
    assert all(set(row) >= FIELDS for row in rows) and rows[1]["cameras"] == ["garden"]
    assert rows[0]["first_seen"].endswith("Z") and rows[0]["first_seen"] <= rows[0]["last_seen"]

    shown = unknowns(location, "show", str(groups["kit"]), "--out", str(tmp_path / "crops"))
    assert shown.returncode == 0, shown.stderr
    crops = jpeg_files(tmp_path / "crops")
    assert len(crops) == 2 and all(path.read_bytes()[:2] == b"\xff\xd8" for path in crops)

    named = unknowns(location, "name", str(groups["kit"]), "kit", "--dataset", str(dataset))
    assert named.returncode == 0, named.stderr
    assert len(list((dataset / "kit").iterdir())) == 2
    with open_store(location) as store:
        assert store.load().names.count("kit") == 2
    assert [row["group"] for row in listed(location)] == [groups["rose"]]

    forgot = unknowns(location, "forget", "--all")
    assert forgot.returncode == 0 and "2 faces deleted" in forgot.stdout, forgot.stderr
    assert listed(location) == []


def test_ignore_merge_and_regroup_from_the_terminal(gallery):
    location, _, groups = gallery
    merged = unknowns(location, "merge", str(groups["kit"]), str(groups["rose"]))
    assert merged.returncode == 0, merged.stderr
    assert [(row["group"], row["tracks"]) for row in listed(location)] == [(groups["kit"], 3)]
    regrouped = unknowns(location, "regroup")
    assert regrouped.returncode == 0 and "2 groups" in regrouped.stdout, regrouped.stderr
    rows = listed(location)
    assert groups["kit"] in [row["group"] for row in rows] and len(rows) == 2
    ignored = unknowns(location, "ignore", str(groups["kit"]))
    assert ignored.returncode == 0, ignored.stderr
    assert groups["kit"] not in [row["group"] for row in listed(location)]


def test_errors_are_one_line_exit_2_and_change_nothing(gallery, tmp_path):
    location, dataset, groups = gallery
    before = listed(location)
    photos = sorted(dataset.rglob("*"))
    missing = unknowns(location, "show", "999", "--out", str(tmp_path / "out"))
    assert_clean_failure(missing, "error: there is no unknown group 999")
    assert missing.stderr.count("error:") == 1 and not (tmp_path / "out").exists()
    for args, fragment in [(["name", str(groups["kit"]), "a/kit", "--dataset", str(dataset)], "path separator"),
                           (["name", str(groups["kit"]), " kit", "--dataset", str(dataset)], "space"),
                           (["merge", str(groups["kit"]), str(groups["kit"])], "with itself"),
                           (["forget", "999"], "no unknown group 999"),
                           (["ignore", "0"], "out of range"),
                           (["forget"], "one of the arguments"),
                           (["name", str(groups["kit"])], "PERSON")]:
        assert_clean_failure(unknowns(location, *args), fragment)
    assert sorted(dataset.rglob("*")) == photos and listed(location) == before


def test_a_damaged_or_planted_index_is_refused_in_one_line(tmp_path):
    location = str(tmp_path / "embeddings.pickle")
    folder = unknowns_folder(location)
    folder.mkdir()
    (folder / INDEX).write_text('{"format": "facerec-unknowns", "version": 1, "profile": "sface", "dimension": 128, '
                                '"next": [2, 2, 1], "groups": [[1, "open", null]], "tracks": [[1, 7, "door", 1, 0, 0]], '
                                '"faces": []}')
    assert_clean_failure(unknowns(location, "list"), "is damaged", "a track is not")
    (folder / INDEX).unlink()
    os.mkfifo(folder / INDEX)  # never waited on
    assert_clean_failure(unknowns(location, "list"), "a FIFO")
    (folder / INDEX).unlink()
    with open(folder / INDEX, "wb") as planted:  # larger than any index may be (sparse: no disk used)
        planted.truncate(2**30)
    assert_clean_failure(unknowns(location, "list"), "cannot read")
    assert unknowns(location, "forget", "--all").returncode == 0  # works on any state of the folder (issue 31 item 3)
    assert (folder / INDEX).stat().st_size < 1000 and listed(location) == []
