"""A video file's unknown tracks carry their place in the file (store.VideoSpan), in both stores (the file index
and a real PostgreSQL server, tests/postgres_server.py), read back with the bounds they were written with; a
store written before the field still reads. The clip's run is in test_unknowns_keeping.py, the tab's in
test_web_unknowns.py."""

from __future__ import annotations

import dataclasses
import json

import pytest

from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from test_unknowns_store import START, Clock, location, opened  # noqa: F401 (location: a fixture)
from unknown_faces import PHOTOS, track

from facerec.errors import FacerecError
from facerec.unknowns.filestore import INDEX, unknowns_folder
from facerec.unknowns.review import group_json, group_line
from facerec.unknowns.store import VideoSpan


def from_file(photos, number, seen, span, camera="door"):
    return dataclasses.replace(track(photos, number, seen, camera), video=span)


def test_a_groups_video_tracks_give_its_place_in_each_file_and_only_live_tracks_give_times(location):  # noqa: F811
    store, _ = opened(location, Clock())
    kit = store.add(from_file(PHOTOS["kit"][:1], 1, START, VideoSpan("clip.mp4", 3.2, 4.0)))
    assert store.add(from_file(PHOTOS["kit"][1:], 2, START + 5, VideoSpan("clip.mp4", 7.0, 7.3))) == kit
    [group] = store.groups()
    assert group.videos == (VideoSpan("clip.mp4", 3.2, 7.3),) and not group.live
    assert group_json(group)["videos"] == [{"file": "clip.mp4", "first": 3.2, "last": 7.3}]
    line = group_line(group)
    assert "seen in clip.mp4 at 0:03.2 to 0:07.3" in line and "Z" not in line  # no processing time shown
    assert store.add(track(PHOTOS["kit"][:1], 3, START + 9)) == kit  # the same face, live this time
    [group] = store.groups()
    assert group.live and group.videos == (VideoSpan("clip.mp4", 3.2, 7.3),)
    reader, _ = opened(location, Clock())  # another process: it reads what was written
    assert reader.groups() == [group]
    reader.close()
    assert "seen in clip.mp4 at 0:03.2 to 0:07.3, seen 2027-01-15T07:59:59Z to 2027-01-15T08:00:09Z" in group_line(group)
    store.close()


@pytest.mark.parametrize("span", [VideoSpan("clip.mp4", -1.0, 2.0), VideoSpan("clip.mp4", 3.0, 2.0),
                                  VideoSpan("clip.mp4", 0.0, float("inf")), VideoSpan("x" * 1025, 0.0, 1.0)])
def test_a_position_out_of_bounds_is_refused_before_anything_is_written(location, span):  # noqa: F811
    store, _ = opened(location, Clock())
    with pytest.raises(ValueError, match="video position"):
        store.add(from_file(PHOTOS["kit"][:1], 1, START, span))
    assert store.groups() == []
    store.close()


def test_an_index_written_before_positions_still_reads_and_one_out_of_bounds_is_refused(tmp_path):
    location = str(tmp_path / "embeddings.pickle")
    store, _ = opened(location, Clock())
    store.add(from_file(PHOTOS["kit"][:1], 1, START, VideoSpan("clip.mp4", 3.2, 4.0)))
    index = unknowns_folder(location) / INDEX
    content = json.loads(index.read_bytes())
    assert content["tracks"][0][6] == ["clip.mp4", 3.2, 4.0]
    old = {**content, "tracks": [row[:6] for row in content["tracks"]]}  # as facerec wrote it before
    index.write_text(json.dumps(old))
    [group] = store.groups()
    assert group.videos == () and group.live and group.tracks == 1
    store.add(from_file(PHOTOS["kit"][1:], 2, START, VideoSpan("clip.mp4", 9.0, 9.5)))  # an old index is written on
    assert store.groups()[0].videos == (VideoSpan("clip.mp4", 9.0, 9.5),)
    for bad in (["clip.mp4", -1, 2], ["clip.mp4", 2], "clip.mp4", ["x" * 1025, 0, 1]):
        index.write_text(json.dumps({**content, "tracks": [[*content["tracks"][0][:6], bad]]}))
        with pytest.raises(FacerecError, match="index .* is damaged .*a track is not"):
            store.groups()
    store.close()


def test_a_database_made_before_positions_reads_and_gets_the_column_from_its_next_change(database_url):  # noqa: F811
    import psycopg

    store, _ = opened(database_url, Clock())
    store.add(track(PHOTOS["kit"][:1], 1, START))  # makes the tables; then they are made as before the column
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE facerec_unknown_tracks DROP COLUMN video")
    [group] = store.groups()
    assert group.videos == () and group.live and group.tracks == 1
    store.add(from_file(PHOTOS["kit"][1:], 2, START, VideoSpan("clip.mp4", 9.0, 9.5)))
    [group] = store.groups()
    assert group.videos == (VideoSpan("clip.mp4", 9.0, 9.5),) and group.live and group.tracks == 2
    with psycopg.connect(database_url, autocommit=True) as connection:
        assert connection.execute("SELECT video FROM facerec_unknown_tracks WHERE video IS NOT NULL").fetchall() == [
            ({"file": "clip.mp4", "first": 9.0, "last": 9.5},)]
    store.close()
