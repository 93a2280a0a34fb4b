"""Issue 31 item 12's last part: negative examples age with the unknown faces. The retention kept with the
unknowns (--unknowns-days, default 30 days) drops the negatives kept longer ago, at every unknowns.py run and
every writer with --keep-unknowns; a store written before negatives had times loads, its negatives counted
from the first run that applies the retention. Through the real scripts, on an embeddings file and on a
real PostgreSQL (the `gallery` fixture of test_unknowns_cli: biden and obama enrolled, unknowns kept)."""

from __future__ import annotations

import dataclasses
import pickle
import time

import cv2
import numpy as np

from conftest import run_script, shared_path
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_sface import CLIP_CONFIDENCE, sface_model_args
from test_unknowns_cli import gallery, unknowns  # noqa: F401 (gallery is a fixture)
from unknown_faces import PHOTOS, track

from facerec.stores import open_store
from facerec.stores.base import Negatives
from facerec.stores.picklefile import load_store, save_store
from facerec.unknowns import open_unknowns

DAY = 86_400.0
LIN = "faces/probe/lin-manuel-miranda.png"  # a stranger: kept as not obama, not biden without --force


def is_database(location: str) -> bool:
    return location.startswith("postgresql")


def sql(location: str, statement: str, *parameters) -> list[tuple]:
    import psycopg

    with psycopg.connect(location, autocommit=True) as connection:
        cursor = connection.execute(statement, parameters or None)
        return cursor.fetchall() if cursor.description else []


def keep_negatives(location: str, *people: str) -> None:
    """`unknowns.py not PERSON lin` for each person, in order."""
    for person in people:
        kept = unknowns(location, "not", person, str(shared_path(LIN)))
        assert kept.returncode == 0, kept.stderr


def age(location: str, days: list[float]) -> None:
    """Make the negatives (in the order kept) look kept these many days ago: the store's own time column."""
    now = time.time()
    if is_database(location):
        ids = [row[0] for row in sql(location, "SELECT id FROM facerec_negatives ORDER BY id")]
        assert len(ids) == len(days)
        for row, ago in zip(ids, days):
            sql(location, "UPDATE facerec_negatives SET made_at = to_timestamp(%s) WHERE id = %s", now - ago * DAY, row)
        return
    gallery = load_store(location)
    assert len(gallery.negatives) == len(days)
    negatives = Negatives(gallery.negatives.vectors, gallery.negatives.names, now - np.array(days) * DAY)
    save_store(dataclasses.replace(gallery, negatives=negatives), location)


def stored(location: str) -> Negatives:
    with open_store(location) as store:
        return store.load().negatives


def keep_retention(location: str, days: float) -> None:
    """A writer given --unknowns-days `days` keeps it with the unknowns (its first change)."""
    with open_unknowns(location, "sface", retention_days=days) as store:
        store.add(track(PHOTOS["kit"][:1], 40, time.time()))


def test_a_negative_older_than_the_kept_retention_is_gone_after_the_next_unknowns_run(gallery):  # noqa: F811
    """The retention kept with the unknowns (10 days, given by an earlier writer) applies to the negatives: one
    kept 11 days ago is dropped by the next `unknowns.py` run (which says so), one kept 9 days ago stays and is
    listed with its date and age."""
    location = gallery[0]
    keep_negatives(location, "obama", "biden")
    keep_retention(location, 10)
    age(location, [11, 9])
    run = unknowns(location, "negatives")  # no --unknowns-days: the kept 10 applies
    assert run.returncode == 0, run.stderr
    assert "1 negative example kept more than 10 days ago (the unknowns' retention) dropped" in run.stderr, run.stderr
    [line] = run.stdout.splitlines()
    assert line.startswith("1: not biden (kept ") and "UTC, 9 days ago" in line, line
    assert stored(location).names == ["biden"]
    again = unknowns(location, "list")  # nothing more to drop: no second warning
    assert again.returncode == 0 and "negative example" not in again.stderr, again.stderr
    assert stored(location).names == ["biden"]


def test_the_default_retention_applies_when_none_is_kept_and_to_every_subcommand(gallery):  # noqa: F811
    """No retention kept with the unknowns: the default, 30 days. `unknowns.py list` (any subcommand) drops a
    negative of 31 days, keeps one of 29."""
    location = gallery[0]
    keep_negatives(location, "obama", "biden")
    age(location, [29, 31])
    run = unknowns(location, "list")
    assert run.returncode == 0, run.stderr
    assert "1 negative example kept more than 30 days ago" in run.stderr, run.stderr
    assert stored(location).names == ["obama"]


def test_a_writer_with_keep_unknowns_drops_the_negatives_past_the_retention(gallery, tmp_path):  # noqa: F811
    """recognize_video.py --keep-unknowns (a writer of the unknowns) applies their kept retention to the
    negatives when it starts, and says so; a younger negative stays. (Frames without a face: nothing is kept, so
    only the start applies it.)"""
    location = gallery[0]
    keep_negatives(location, "obama", "biden", "obama")
    keep_retention(location, 5)
    age(location, [6, 4, 7])
    video = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(3):
        writer.write(np.zeros((240, 320, 3), np.uint8))
    writer.release()
    run = run_script("recognize_video.py", "--embeddings", location, "--source", str(video), "--no-display",
                     "--confidence", CLIP_CONFIDENCE, "--camera", "stage", "--keep-unknowns", *sface_model_args())
    assert run.returncode == 0, run.stderr
    assert "2 negative examples kept more than 5 days ago (the unknowns' retention) dropped" in run.stderr, run.stderr
    assert stored(location).names == ["biden"]


def test_a_running_writer_drops_them_at_its_changes(gallery):  # noqa: F811
    """A long run (a server, a recogniser) applies it after its changes too, not only when it starts."""
    location = gallery[0]
    keep_negatives(location, "obama")
    age(location, [31])
    warnings: list[str] = []
    with open_unknowns(location, "sface", on_warning=warnings.append) as store:  # as a writer holds it
        store.add(track(PHOTOS["rose"], 41, time.time()))
    assert stored(location).names == []
    assert [warning for warning in warnings if "1 negative example kept more than 30 days ago" in warning]


def strip_times(location: str) -> None:
    """Make the store as facerec wrote it before negatives had times kept."""
    if is_database(location):
        sql(location, "ALTER TABLE facerec_negatives DROP COLUMN made_at")
        return
    with open(location, "rb") as handle:
        content = pickle.load(handle)  # (this test's own file)
    del content["negatives_made"]
    with open(location, "wb") as handle:
        pickle.dump(content, handle)


def test_a_store_without_times_loads_and_its_negatives_count_from_the_first_run(gallery):  # noqa: F811
    """An embeddings file (or a table) of negatives without times loads; the first unknowns.py run counts them as
    kept then (none is dropped at the upgrade, even with a retention of a day), and they age from there."""
    location = gallery[0]
    keep_negatives(location, "obama", "biden")
    keep_retention(location, 1)
    strip_times(location)
    loaded = stored(location)
    assert loaded.names == ["obama", "biden"]  # loads (the file: no time known yet)
    if not is_database(location):
        assert np.isnan(loaded.made).all()
    before = time.time()
    run = unknowns(location, "negatives")
    assert run.returncode == 0 and "dropped" not in run.stderr, run.stderr
    assert [line.split(" (")[0] for line in run.stdout.splitlines()] == ["1: not obama", "2: not biden"]
    assert all(", today" in line for line in run.stdout.splitlines()), run.stdout
    made = stored(location).made
    assert (made >= before - 5).all() and (made <= time.time() + 5).all(), made  # kept now, written
    age(location, [2, 0.5])  # and they age as any negative
    assert unknowns(location, "list").returncode == 0
    assert stored(location).names == ["biden"]


def test_times_that_are_not_one_number_per_negative_are_refused_as_damage(tmp_path):
    """A planted "negatives_made" of the wrong length, type or an infinite time: the file is refused with the
    reason (as any damaged embeddings file), never taken with times that do not fit."""
    import pytest

    from facerec.errors import FacerecError
    from web_server import enrolled

    _, embeddings = enrolled(tmp_path)
    with open(embeddings, "rb") as handle:
        content = pickle.load(handle)  # (this test's own file)
    vector = content["embeddings"][:1]
    content["negatives"] = {"embeddings": vector, "names": ["obama"]}
    for made, reason in ((np.zeros(2), "one time per negative"), (np.zeros(1, np.int64), "1-D float array"),
                         ([0.0], "1-D float array"), (np.array([np.inf]), "not finite")):
        content["negatives_made"] = made
        with open(embeddings, "wb") as handle:
            pickle.dump(content, handle)
        with pytest.raises(FacerecError, match=reason):
            load_store(embeddings)
    content["negatives_made"] = np.array([np.nan])  # not known: loads, as a file without the key does
    with open(embeddings, "wb") as handle:
        pickle.dump(content, handle)
    assert np.isnan(load_store(embeddings).negatives.made).all()
