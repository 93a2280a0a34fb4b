"""Unknown faces kept with the gallery (facerec/unknowns): the file store beside an embeddings file and the
PostgreSQL store in the gallery's database (a real server, tests/postgres_server.py), fed real SFace crops and
vectors of ../shared/faces (tests/unknown_faces.py). Time is an injected clock."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from conftest import REQUIRE_ASSETS, shared_path
from postgres_server import database_url, postgres_server  # noqa: F401 (fixtures)
from unknown_faces import PHOTOS, PROBES, crop, jpeg_files, sface, track

from facerec.catalogue import PROFILES
from facerec.enrolment import embed_photo, enrol
from facerec.errors import FacerecError
from facerec.matching import UNKNOWN, make_matcher
from facerec.stores import Sighting, open_store
from facerec.unknowns import NoSuchGroup, open_unknowns
from facerec.unknowns.filestore import INDEX, unknowns_folder
from facerec.unknowns.review import name_group, show_group

DAY = 86_400.0
START = 1_800_000_000.0


class Clock:
    """The stores' "now", moved by the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["file", "postgresql"])
def location(request, tmp_path):
    """Where the gallery is: an embeddings file path, or the URL of a new database."""
    if request.param == "file":
        return str(tmp_path / "output" / "embeddings.pickle")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if REQUIRE_ASSETS:
            raise
        pytest.skip("psycopg is not installed")
    return request.getfixturevalue("database_url")


def opened(location, clock, **options):
    warnings: list[str] = []
    return open_unknowns(location, "sface", clock=clock, on_warning=warnings.append, **options), warnings


def kept(location) -> dict[str, int]:
    """What is left of the unknowns at `location`: crops, vectors, tracks, groups (and for PostgreSQL the
    sighting rows of unknown tracks are the tracks' rows)."""
    if "://" not in location:
        folder = unknowns_folder(location)
        index = json.loads((folder / INDEX).read_bytes()) if (folder / INDEX).exists() else {}
        return {"crops": len(jpeg_files(folder)), "vectors": len(index.get("faces", [])),
                "tracks": len(index.get("tracks", [])), "groups": len(index.get("groups", []))}
    import psycopg

    with psycopg.connect(location, autocommit=True) as connection:
        def count(sql):
            return connection.execute(sql).fetchone()[0]
        return {"crops": count("SELECT count(*) FROM facerec_unknown_faces WHERE jpeg IS NOT NULL"),
                "vectors": count("SELECT count(*) FROM facerec_unknown_faces"),
                "tracks": count("SELECT count(*) FROM facerec_unknown_tracks"),
                "groups": count("SELECT count(*) FROM facerec_unknown_groups")}


def interleaved() -> list[tuple[str, str]]:
    """(person, photo) for every photo of PHOTOS: each person's first photo, then each person's second."""
    return [(person, PHOTOS[person][index]) for index in range(2) for person in PHOTOS]


# --- grouping ---

def test_tracks_of_one_person_share_a_group_and_different_people_do_not(location):
    clock = Clock()
    door, _ = opened(location, clock)
    garden, _ = opened(location, clock)  # a second camera's process, pooling into the same store
    ids: dict[str, set[int]] = {}
    for index, (person, photo) in enumerate(interleaved()):
        camera, store = ("door", door) if index < len(PHOTOS) else ("garden", garden)
        ids.setdefault(person, set()).add(store.add(track([photo], index, START, camera)))
    assert all(len(group) == 1 for group in ids.values()), ids
    assert len({next(iter(group)) for group in ids.values()}) == len(PHOTOS)
    groups = door.groups()
    assert [(g.faces, g.tracks) for g in groups] == [(2, 2)] * len(PHOTOS)
    assert all(g.cameras == ("door", "garden") for g in groups)
    door.close()
    garden.close()


def test_a_group_keeps_its_id_in_another_process_and_through_a_regroup(location):
    clock = Clock()
    strict, _ = opened(location, clock, margin=0.4)  # kit's two photos are 0.76 apart: two groups at a cut of 0.67
    first = strict.add(track(PHOTOS["kit"][:1], 1, START))
    second = strict.add(track(PHOTOS["kit"][1:], 2, START))
    rose = strict.add(track(PHOTOS["rose"][:1], 3, START))
    strict.close()
    assert len({first, second, rose}) == 3
    store, _ = opened(location, clock)  # the default cut: a new track of kit joins the nearest of the two
    assert store.add(track(PHOTOS["kit"][:1], 4, START)) == first
    store.regroup()
    groups = {g.group: g for g in store.groups()}
    assert set(groups) == {first, rose}  # kit's groups are one, under the id holding most of its tracks
    assert groups[first].tracks == 3 and groups[rose].tracks == 1
    assert store.add(track(PHOTOS["kit"][1:], 5, START)) == first
    store.close()


# --- review actions ---

def test_an_ignored_person_is_not_kept_again_and_their_crops_are_deleted(location):
    clock = Clock()
    store, _ = opened(location, clock)
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    rose = store.add(track(PHOTOS["rose"][:1], 2, START))
    store.ignore(kit)
    assert [g.group for g in store.groups()] == [rose]
    assert store.add(track(PHOTOS["kit"][1:], 3, START)) is None  # a new photo of kit: not kept
    assert store.add(track(PHOTOS["rose"][1:], 4, START)) == rose
    assert kept(location) == {"crops": 2, "vectors": 3, "tracks": 3, "groups": 2}  # kit's vector stays, no crop
    with pytest.raises(NoSuchGroup):
        store.best_faces(kit)
    with pytest.raises(NoSuchGroup):
        store.ignore(kit)
    store.close()


def test_merge_then_forget_one_group(location):
    clock = Clock()
    store, _ = opened(location, clock)
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    rose = store.add(track(PHOTOS["rose"], 2, START))
    store.merge(kit, rose)
    assert [(g.group, g.faces, g.tracks) for g in store.groups()] == [(kit, 3, 2)]
    with pytest.raises(NoSuchGroup):
        store.merge(kit, rose)
    with pytest.raises(FacerecError):
        store.merge(kit, kit)
    assert store.forget(kit) == 3
    assert store.groups() == [] and kept(location) == {"crops": 0, "vectors": 0, "tracks": 0, "groups": 0}
    with pytest.raises(NoSuchGroup):
        store.forget(kit)
    store.close()


def test_best_faces_come_best_first_and_show_writes_them_as_jpeg(location, tmp_path):
    store, _ = opened(location, Clock())
    group = store.add(track(PHOTOS["kit"], 1, START))
    faces = store.best_faces(group)
    assert [face.jpeg for face in faces] == [crop(photo)[0] for photo in PHOTOS["kit"]]
    assert [face.quality for face in faces] == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(faces[0].vector, crop(PHOTOS["kit"][0])[1], atol=1e-6)
    written = show_group(store, group, tmp_path / "out")
    assert [path.read_bytes() for path in written] == [face.jpeg for face in faces]
    assert written[0].name == f"group-{group}-1.jpg"
    store.close()


# --- bounds ---

def test_the_oldest_faces_go_first_beyond_the_maximum_with_one_warning(location):
    clock = Clock()
    store, warnings = opened(location, clock, max_faces=3)
    added = []
    for index, person in enumerate(["kit", "rose", "biden", "obama"]):
        clock.now = START + index
        added.append(store.add(track(PHOTOS[person][:1], index, clock.now)))
    assert sorted(g.group for g in store.groups()) == sorted(added[1:])  # kit, the oldest, went
    clock.now += 1
    store.add(track(PHOTOS["kit"][1:], 9, clock.now))
    assert len(store.groups()) == 3 and kept(location)["vectors"] == 3
    assert len(warnings) == 1 and "at most 3 unknown faces" in warnings[0]
    store.close()


def test_faces_older_than_the_retention_are_forgotten(location):
    clock = Clock()
    store, _ = opened(location, clock, retention_days=30)
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    clock.now = START + 29 * DAY
    assert [g.group for g in store.groups()] == [kit]
    clock.now = START + 31 * DAY
    assert store.groups() == []  # not shown even before a write drops it
    with pytest.raises(NoSuchGroup):
        store.best_faces(kit)
    rose = store.add(track(PHOTOS["rose"][:1], 2, clock.now))
    assert [g.group for g in store.groups()] == [rose]
    assert kept(location) == {"crops": 1, "vectors": 1, "tracks": 1, "groups": 1}  # kit's crop and vector gone
    store.close()


# --- naming, and forgetting everything ---

def copied_dataset(root):
    """A dataset of biden and obama (copies: naming adds photos to it)."""
    for person in ("biden", "obama"):
        shutil.copytree(shared_path("faces/known") / person, root / person)
    return root


def test_naming_a_group_enrols_its_crops_and_its_sightings_carry_the_name(location, tmp_path):
    models = sface()
    dataset = copied_dataset(tmp_path / "dataset")
    enrol(dataset, location, models)
    store, _ = opened(location, Clock())
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    assert store.add(track(PHOTOS["kit"][1:], 2, START)) == kit
    obama = store.add(track(PHOTOS["obama"], 3, START))
    (dataset / "kit").mkdir()
    (dataset / "kit" / f"unknown-{kit}-1.jpg").write_bytes(b"mine")  # a file of that name is never replaced
    if "://" in location:  # --log-sightings logged a visit of each group (strangers seen before)
        with open_store(location) as gallery_store:
            log = gallery_store.sighting_log("door")
            log.log(Sighting(1, UNKNOWN, START, START + 5, unknown_group=kit, distance=0.7))
            log.log(Sighting(2, UNKNOWN, START + 9, START + 12, unknown_group=obama + 1000, distance=0.7))
            log.close()

    naming = name_group(store, kit, "kit", dataset, location, models)
    assert (dataset / "kit" / f"unknown-{kit}-1.jpg").read_bytes() == b"mine"
    assert sorted(path.name for path in naming.photos) == [f"unknown-{kit}-2.jpg", f"unknown-{kit}-3.jpg"]
    assert sorted(path.read_bytes() for path in naming.photos) == sorted(crop(photo)[0] for photo in PHOTOS["kit"])
    name_group(store, obama, "obama", dataset, location, models)  # an existing person gains the photos
    assert len(list((dataset / "obama").iterdir())) == 4
    assert store.groups() == []
    with pytest.raises(NoSuchGroup):
        store.best_faces(kit)

    with open_store(location) as gallery_store:
        gallery = gallery_store.load()
    assert gallery.names.count("kit") == 2 and gallery.names.count("obama") == 4
    matcher = make_matcher("nearest", gallery.vectors, gallery.names, PROFILES["sface"].threshold)
    probe = embed_photo(shared_path("faces") / PROBES["kit"], models.detector, models.needs_embedder()).vector
    assert matcher.match(probe[None])[0].name == "kit"

    if "://" in location:  # the tracks are now sightings of kit in the gallery's sighting table
        import psycopg
        with psycopg.connect(location) as connection:
            rows = connection.execute("SELECT camera, track, name, faces FROM facerec_sightings ORDER BY track").fetchall()
        assert rows == [("door", 1, "kit", 1), ("door", 2, "kit", 1), ("door", 3, "obama", 2)]
        with psycopg.connect(location) as connection:
            visits = connection.execute("SELECT name, unknown_group FROM facerec_visits ORDER BY visit").fetchall()
        assert visits == [("kit", kit), (UNKNOWN, obama + 1000)]  # the named group's visit carries the name
    else:
        assert [(person, camera) for person, camera, *_ in store.sightings()] == [("kit", "door")] * 2 + [("obama", "door")]
    store.close()


def test_forget_all_leaves_no_crop_vector_or_sighting_face_behind(location):
    store, _ = opened(location, Clock())
    groups = sorted({store.add(track([photo], index, START)) for index, (_, photo) in enumerate(interleaved())})
    store.ignore(groups[0])
    store.merge(groups[1], groups[2])
    assert kept(location)["crops"] > 0
    assert store.forget(None) == len(interleaved())
    assert kept(location) == {"crops": 0, "vectors": 0, "tracks": 0, "groups": 0}
    assert store.groups() == []
    if "://" not in location:
        folder = unknowns_folder(location)
        assert os.listdir(folder) == [INDEX]
        assert json.loads((folder / INDEX).read_bytes())["faces"] == []
    store.close()


def test_a_store_of_another_model_is_refused_until_forgotten(location):
    store, _ = opened(location, Clock())
    store.add(track(PHOTOS["kit"][:1], 1, START))
    store.close()
    other = open_unknowns(location, "openface", clock=Clock())
    with pytest.raises(FacerecError, match="sface|128"):
        other.add(track(PHOTOS["kit"][:1], 1, START)) if "://" in location else other.groups()
    other.close()


# --- the file store: atomic, bounded reads ---

# A recogniser's process keeping tracks (random vectors: recognition does not matter here) until it is killed.
KEEPER = r"""
import sys
import time
import numpy as np
sys.path.insert(0, sys.argv[1])
from facerec.unknowns import KeptFace, KeptTrack, open_unknowns
store = open_unknowns(sys.argv[2], "sface")
rng = np.random.default_rng(0)
now = time.time()
for number in range(100_000):
    vectors = rng.normal(size=(5, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    faces = tuple(KeptFace(bytes(rng.integers(0, 256, 50_000, dtype=np.uint8)), vector, 0.5, now + number)
                  for vector in vectors)
    store.add(KeptTrack("door", number, now + number, now + number, faces))
    print(number, flush=True)
"""


def test_a_writer_killed_mid_change_leaves_a_whole_index_and_the_next_change_removes_its_leftovers(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import PROJECT_ROOT

    location = str(tmp_path / "embeddings.pickle")
    keeper = subprocess.Popen([sys.executable, "-c", KEEPER, str(PROJECT_ROOT), location], stdout=subprocess.PIPE,
                              text=True)
    for _ in range(30):  # some changes committed, then killed wherever it is
        keeper.stdout.readline()
    keeper.send_signal(signal.SIGKILL)
    keeper.wait()
    keeper.stdout.close()
    folder = unknowns_folder(location)
    clock = Clock(time.time() + 1000)
    store, _ = opened(location, clock)
    groups = store.groups()
    listed = sum(group.faces for group in groups)
    assert listed >= 30 * 5 and listed % 5 == 0  # whole tracks only
    index = json.loads((folder / INDEX).read_bytes())
    named = {f"{face[0]}.jpg" for face in index["faces"]}
    assert named <= {path.name for path in jpeg_files(folder)}  # every crop the index names is there
    store.add(track(PHOTOS["kit"][:1], 1, clock.now))
    index = json.loads((folder / INDEX).read_bytes())
    assert sorted(os.listdir(folder)) == sorted([INDEX] + [f"{face[0]}.jpg" for face in index["faces"]])


def test_a_refused_change_leaves_the_index_as_it_was(tmp_path):
    location = str(tmp_path / "embeddings.pickle")
    store, _ = opened(location, Clock())
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    before = (unknowns_folder(location) / INDEX).read_bytes()
    for change in (lambda: store.merge(kit, kit + 1), lambda: store.ignore(kit + 1), lambda: store.forget(kit + 1)):
        with pytest.raises(NoSuchGroup):
            change()
    assert (unknowns_folder(location) / INDEX).read_bytes() == before


def test_a_crop_swapped_for_a_link_is_not_followed(tmp_path):
    location = str(tmp_path / "embeddings.pickle")
    store, _ = opened(location, Clock())
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    [crop_file] = jpeg_files(unknowns_folder(location))
    secret = tmp_path / "secret.txt"
    secret.write_text("not a face")
    crop_file.unlink()
    crop_file.symlink_to(secret)
    with pytest.raises(FacerecError, match="cannot read the crop"):
        store.best_faces(kit)


def test_a_track_with_numbers_that_are_not_finite_is_refused_before_anything_is_written(location):
    from facerec.unknowns import KeptFace, KeptTrack

    store, _ = opened(location, Clock())
    jpeg, vector = crop(PHOTOS["kit"][0])
    for bad in (KeptTrack("door", 1, float("nan"), START, (KeptFace(jpeg, vector, 0.9, START),)),
                KeptTrack("door", 1, START, START, (KeptFace(jpeg, vector * np.inf, 0.9, START),)),
                KeptTrack("door", 1, START, START, ())):
        with pytest.raises(ValueError):
            store.add(bad)
    assert store.groups() == [] and store.add(track(PHOTOS["kit"][:1], 1, START)) is not None
    store.close()


def test_threads_sharing_a_file_store_see_whole_states(tmp_path):
    """A server's keeper thread adds while its page lists: every list is a state some change committed."""
    import threading

    store, _ = opened(str(tmp_path / "embeddings.pickle"), Clock())
    problems: list[BaseException] = []
    done = threading.Event()

    def keep() -> None:
        try:
            for number in range(40):
                store.add(track([interleaved()[number % 8][1]], number, START))
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            problems.append(error)
        finally:
            done.set()

    keeper = threading.Thread(target=keep)
    keeper.start()
    while not done.is_set():
        try:
            groups = store.groups()
            assert all(group.faces == group.tracks for group in groups)  # one face a track, never half a track
        except BaseException as error:  # noqa: BLE001
            problems.append(error)
            break
    keeper.join()
    assert problems == []
    assert sorted(group.faces for group in store.groups()) == [10] * len(PHOTOS)  # 40 tracks of 4 people


def test_an_ignored_person_is_kept_again_once_their_negatives_are_past_the_retention(location):
    clock = Clock()
    store, _ = opened(location, clock, retention_days=30)
    store.ignore(store.add(track(PHOTOS["kit"][:1], 1, START)))
    clock.now = START + 10 * DAY
    assert store.add(track(PHOTOS["kit"][1:], 2, clock.now)) is None
    clock.now = START + 31 * DAY  # the negative is forgotten with the retention, as every face
    assert store.add(track(PHOTOS["kit"][1:], 3, clock.now)) is not None
    store.close()


def test_naming_into_a_dataset_the_file_gallery_was_not_enrolled_from_is_refused(tmp_path):
    """Its enrolment would forget every person of the embeddings file not in that folder."""
    location = str(tmp_path / "embeddings.pickle")
    enrol(copied_dataset(tmp_path / "dataset"), location, sface())
    before = open(location, "rb").read()
    store, _ = opened(location, Clock())
    kit = store.add(track(PHOTOS["kit"], 1, START))
    with pytest.raises(FacerecError, match="was not enrolled from"):
        name_group(store, kit, "kit", tmp_path / "elsewhere", location, sface())
    assert open(location, "rb").read() == before and not (tmp_path / "elsewhere").exists()
    assert [g.group for g in store.groups()] == [kit]
    store.close()


def test_rows_a_hostile_database_holds_are_not_fetched_whole(database_url):  # noqa: F811 (the fixture)
    """A crop larger than the bound, a vector of another size and a camera name of a megabyte: the crop is not
    fetched, the vector not compared, the name cut."""
    import psycopg

    store, _ = opened(database_url, Clock())
    kit = store.add(track(PHOTOS["kit"][:1], 1, START))
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("UPDATE facerec_unknown_tracks SET camera = repeat('x', 1000000)")
        track_id = connection.execute("SELECT id FROM facerec_unknown_tracks").fetchone()[0]
        connection.execute("INSERT INTO facerec_unknown_faces (track_id, quality, seen, vector, jpeg) "
                           "VALUES (%s, 1, %s, %s, %s), (%s, 1, %s, %s, NULL)",
                           (track_id, START, crop(PHOTOS["kit"][0])[1].tobytes(), b"\xff" * (5 * 2**20),
                            track_id, START, b"\0" * 12))
    [face] = store.best_faces(kit)
    assert face.jpeg == crop(PHOTOS["kit"][0])[0]
    [group] = store.groups()
    assert len(group.cameras[0]) == 1024
    assert store.add(track(PHOTOS["kit"][1:], 2, START)) == kit  # the short vector is left out, not an error
    store.close()
