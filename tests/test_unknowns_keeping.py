"""Keeping unknown faces (--keep-unknowns): the keeper over real frames of the clip with the real sface models.

The store here is a small UnknownStore that records what it is given (the real stores have their own
tests); the recogniser, the tracker, the quality stage and the crops are the real ones.
"""

import json
import shutil
import threading

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from postgres_server import database_url, postgres_server  # noqa: F401  (fixtures: a real PostgreSQL on loopback)
from helpers import CLIP, CLIP_FRAMES, assert_clean_failure
from shared_faces import clip_face_identity
from test_sface import CLIP_CONFIDENCE, enrol, enrol_with_lin, linked_dataset, models, run_clip, sface_model_args  # noqa: F401

from facerec.catalogue import PROFILES, YUNET
from facerec.detection import load_detector
from facerec.matching import UNKNOWN, make_matcher
from facerec.recognition import FacePipeline
from facerec.running import run_recognition
from facerec.stores import load_store
from facerec.tracking import Tracker
from facerec.unknowns.keeping import KeptTracks, UnknownKeeper
from facerec.unknowns import FACES_PER_TRACK, KeptTrack, UnknownStore, open_unknowns

SFACE_THRESHOLD = PROFILES["sface"].threshold
LIN_FRAMES = range(82, 142)  # the first two seconds of the shot where Lin-Manuel Miranda is on stage alone
WAIT_SECONDS = 30


class RecordingStore(UnknownStore):
    """Keeps what it is given, in order; `gate` (if set) holds every add until it is opened."""

    def __init__(self, gate: threading.Event | None = None):
        self.added: list[KeptTrack] = []
        self.gate = gate

    def add(self, track):
        if self.gate is not None:
            self.gate.wait(WAIT_SECONDS)
        self.added.append(track)
        return len(self.added)

    def groups(self):
        return []

    def best_faces(self, group, limit=FACES_PER_TRACK):
        return []

    def ignore(self, group):
        pass

    def merge(self, into, other):
        pass

    def named(self, group, person):
        pass

    def forget(self, group):
        return 0

    def regroup(self):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module")
def without_lin(tmp_path_factory):
    """faces/known (no Lin-Manuel Miranda) enrolled with the sface profile."""
    root = tmp_path_factory.mktemp("keeping_known")
    enrol(linked_dataset(root / "dataset"), root / "embeddings.pickle", *sface_model_args())
    return root / "embeddings.pickle"


def pipeline(models, embeddings):  # noqa: F811  (models: the fixture's value)
    _, embedder = models
    detector = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], float(CLIP_CONFIDENCE))
    gallery = load_store(embeddings)
    return FacePipeline(detector, embedder, make_matcher("nearest", gallery.vectors, gallery.names, SFACE_THRESHOLD),
                        Tracker())


def clip_frames(frames):
    """The clip's frames whose indices are in `frames`, in order."""
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    try:
        for index in range(max(frames) + 1):
            ok, frame = capture.read()
            assert ok
            if index in frames:
                yield frame
    finally:
        capture.release()


def keep_over(models, embeddings, frames):  # noqa: F811
    """Run the keeper over `frames` of the clip: (tracks handed over, every face seen per track id)."""
    recogniser = pipeline(models, embeddings)
    handed: list[KeptTrack] = []
    keeper = UnknownKeeper(handed.append, "stage")
    seen: dict[int, list] = {}
    for frame in clip_frames(frames):
        faces = recogniser.recognise(frame)
        for face in faces:
            seen.setdefault(face.track, []).append(face)
        keeper.saw(frame, faces, recogniser.tracker.tracks)
    keeper.end()
    return handed, seen


@pytest.fixture(scope="module")
def kept_without_lin(models, without_lin):  # noqa: F811
    return keep_over(models, without_lin, LIN_FRAMES)


def lin_track(seen):
    """The id of the track that holds most faces (Lin's, alone on stage)."""
    return max(seen, key=lambda track: len(seen[track]))


def test_an_unknown_track_is_kept_with_its_best_faces_each_with_the_vector_embedded_from_that_face(kept_without_lin):
    handed, seen = kept_without_lin
    lin = lin_track(seen)
    [kept] = [track for track in handed if track.track == lin]
    assert kept.camera == "stage" and kept.first_seen <= kept.last_seen
    embedded = [face for face in seen[lin] if face.vector is not None]
    assert len(embedded) > FACES_PER_TRACK  # the test chooses among more than it keeps
    assert len(kept.faces) == FACES_PER_TRACK
    best = sorted((face.quality for face in embedded), reverse=True)[:FACES_PER_TRACK]
    assert [face.quality for face in kept.faces] == pytest.approx(best)  # best first
    for face in kept.faces:
        [source] = [seen_face for seen_face in embedded if np.array_equal(seen_face.vector, face.vector)]
        assert source.quality == pytest.approx(face.quality)  # the vector of the very face chosen for its quality
        assert face.vector.dtype == np.float32 and abs(float(np.linalg.norm(face.vector)) - 1) < 1e-4


def test_a_kept_crop_shows_the_face_its_vector_was_made_from(kept_without_lin, models):  # noqa: F811
    handed, seen = kept_without_lin
    _, embedder = models
    detector = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], 0.5)
    [kept] = [track for track in handed if track.track == lin_track(seen)]
    for face in kept.faces:
        crop = cv2.imdecode(np.frombuffer(face.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and face.jpeg[:2] == b"\xff\xd8"
        [found] = detector.detect(crop)  # the margin leaves the detector enough to find it again (enrolment does)
        again = embedder.embed(crop, [found])[0]
        assert float(np.linalg.norm(again - face.vector)) < 0.5 * SFACE_THRESHOLD


def test_a_track_that_carried_a_name_is_not_kept(models, tmp_path):  # noqa: F811
    handed, seen = keep_over(models, enrol_with_lin(tmp_path), LIN_FRAMES)
    lin = lin_track(seen)
    assert any(face.name == "lin" for face in seen[lin])
    named = {track for track, faces in seen.items() if any(face.known for face in faces)}
    assert lin in named and not named & {track.track for track in handed}
    for track in handed:  # what is kept is what stayed Unknown in every frame
        assert all(not face.known for face in seen[track.track])


def test_the_video_loop_feeds_the_keeper_and_its_end_ends_the_tracks(models, without_lin):  # noqa: F811
    handed: list[KeptTrack] = []
    summary = run_recognition(clip_frames(range(82, 90)), pipeline(models, without_lin),
                              unknowns=UnknownKeeper(handed.append, "stage"))
    assert summary.frames == 8
    [kept] = handed  # Lin, still on stage when the frames end
    assert 1 <= len(kept.faces) <= FACES_PER_TRACK and kept.camera == "stage"


def test_a_slow_store_never_holds_the_video_and_keeps_everything_by_close(kept_without_lin):
    handed, _ = kept_without_lin
    gate = threading.Event()
    store = RecordingStore(gate)
    queue = KeptTracks(store, print)
    for track in handed * 3:
        queue.add(track)  # returns at once although the store is held
    assert store.added == []
    gate.set()
    queue.close()
    assert store.added == handed * 3 and queue.kept == len(handed) * 3


def test_a_store_that_cannot_keep_up_loses_the_oldest_tracks_with_one_warning(kept_without_lin):
    handed, _ = kept_without_lin
    gate = threading.Event()
    store = RecordingStore(gate)
    warnings: list[str] = []
    queue = KeptTracks(store, warnings.append, limit=2)
    tracks = [KeptTrack("stage", number, 0.0, 1.0, handed[0].faces) for number in range(6)]
    for track in tracks:
        queue.add(track)
    gate.set()
    queue.close()
    assert len(warnings) == 1 and "unknown tracks wait" in warnings[0]
    assert [track.track for track in store.added][-2:] == [4, 5] and len(store.added) < 6


# recognize_video.py --keep-unknowns, as a user runs it ----------------------------------------------------------

def run_clip_keeping(embeddings, source, *options):
    """recognize_video.py --json over `source` (the clip's confidence, camera "stage"): (JSON records, the run)."""
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(source), "--no-display",
                     "--json", "--confidence", CLIP_CONFIDENCE, "--camera", "stage", *options, *sface_model_args())
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()], run


def unknowns_script(embeddings, *words):
    run = run_script("unknowns.py", *sface_model_args(), "--embeddings", str(embeddings), *words)
    assert run.returncode == 0, run.stderr
    return run


def tracks_always_unknown(records):
    names: dict[int, set] = {}
    for record in records:
        for face in record["faces"]:
            names.setdefault(face["track"], set()).add(face["name"])
    return {track for track, seen in names.items() if seen == {UNKNOWN}}


@pytest.fixture(scope="module")
def clip_kept(tmp_path_factory):
    """faces/known (no Lin-Manuel Miranda) enrolled in root, then the clip with --keep-unknowns."""
    root = tmp_path_factory.mktemp("keeping_clip")
    embeddings = root / "embeddings.pickle"
    enrol(linked_dataset(root / "dataset"), embeddings, *sface_model_args())
    records, run = run_clip_keeping(embeddings, shared_path(CLIP), "--keep-unknowns")
    return root, records, run


def probe_vector(models):  # noqa: F811
    detector, embedder = models
    image = cv2.imread(str(shared_path("faces/probe/lin-manuel-miranda.png")))
    [face] = detector.detect(image)
    return embedder.embed(image, [face])[0]


def test_keep_unknowns_over_the_clip_keeps_every_track_that_stayed_unknown_and_groups_lins(clip_kept, models):  # noqa: F811
    root, records, run = clip_kept
    unknown_tracks = tracks_always_unknown(records)
    assert f"{len(unknown_tracks)} unknown tracks kept for review" in run.stderr  # every one, and nothing else
    assert (root / "embeddings.pickle.unknowns").is_dir()
    lin = probe_vector(models)
    with open_unknowns(root / "embeddings.pickle", "sface") as store:
        groups = store.groups()
        assert sum(group.tracks for group in groups) == len(unknown_tracks)
        assert all(group.cameras == ("stage",) for group in groups)
        near = {group.group: [float(np.linalg.norm(face.vector - lin)) for face in store.best_faces(group.group)]
                for group in groups}
    lins = [group for group, distances in near.items() if np.median(distances) < SFACE_THRESHOLD]
    assert lins  # Lin-Manuel Miranda, whom the gallery lacks, is kept
    assert all(max(near[group]) < SFACE_THRESHOLD for group in lins)  # and his group holds no one else


def write_frames(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for frame in clip_frames(frames):
        writer.write(frame)
    writer.release()
    return path


def test_nothing_is_kept_unless_asked(tmp_path, without_lin):
    video = write_frames(tmp_path / "lin.avi", range(82, 112))  # Lin alone, Unknown to this gallery
    embeddings = tmp_path / "embeddings.pickle"
    shutil.copy(without_lin, embeddings)
    records, run = run_clip_keeping(embeddings, video)
    assert tracks_always_unknown(records) and "kept" not in run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["embeddings.pickle", "lin.avi"]
    run_clip_keeping(embeddings, video, "--keep-unknowns", "--unknowns-max-faces", "3", "--unknowns-days", "1")
    with open_unknowns(embeddings, "sface") as store:
        assert sum(group.faces for group in store.groups()) == 3  # the bound given


def faces_named(records, name):
    return [(record["frame"], tuple(face["box"])) for record in records for face in record["faces"]
            if face["name"] == name]


def test_the_whole_loop_a_kept_group_named_lin_names_him_in_the_next_run(clip_kept, tmp_path):
    """Issue 21's "Done when": gallery without lin, --keep-unknowns, list, verify, name, run again."""
    root, _, _ = clip_kept
    embeddings = root / "embeddings.pickle"
    listed = [json.loads(line) for line in unknowns_script(embeddings, "list", "--json").stdout.splitlines()]
    assert listed and all({"group", "faces", "tracks", "first_seen", "last_seen", "cameras"} <= set(group)
                          for group in listed)
    probe = str(shared_path("faces/probe/lin-manuel-miranda.png"))
    verdicts = {}
    for group in listed:  # largest first: the first group whose best crop verify.py calls Lin is named
        unknowns_script(embeddings, "show", str(group["group"]), "--out", str(tmp_path / "shown"))
        crop = tmp_path / "shown" / f"group-{group['group']}-1.jpg"
        check = run_script("verify.py", *sface_model_args(), "--json", str(crop), probe)
        verdicts[group["group"]] = check.returncode == 0 and json.loads(check.stdout)["same"]
    lin_groups = [group for group, same in verdicts.items() if same]
    assert lin_groups, verdicts
    unknowns_script(embeddings, "name", str(lin_groups[0]), "lin", "--dataset", str(root / "dataset"))
    still = [json.loads(line)["group"] for line in unknowns_script(embeddings, "list", "--json").stdout.splitlines()]
    assert lin_groups[0] not in still and len(still) == len(listed) - 1

    named_now, _ = run_clip_keeping(embeddings, shared_path(CLIP))
    reference = run_clip(tmp_path / "reference")  # lin enrolled from the probe photo (test_sface.py's run)
    ours, theirs = faces_named(named_now, "lin"), faces_named(reference, "lin")
    print(f"faces named lin: {len(ours)} from the named group, {len(theirs)} from the probe photo")
    assert len(ours) >= 0.9 * len(theirs)
    assert all(clip_face_identity(frame, box) is None for frame, box in ours)  # no one else (obama, alex, audience)


def test_two_cameras_pool_their_unknowns_in_the_gallerys_database(database_url, tmp_path):  # noqa: F811
    """A PostgreSQL gallery keeps the unknowns in its own tables: two cameras that see the same stranger make one
    group of two tracks."""
    enrol(linked_dataset(tmp_path / "dataset"), database_url, *sface_model_args())
    video = write_frames(tmp_path / "lin.avi", range(82, 112))  # Lin alone: one track a run
    for camera in ("door", "hall"):
        run = run_script("recognize_video.py", "--embeddings", database_url, "--source", str(video), "--no-display",
                         "--confidence", CLIP_CONFIDENCE, "--camera", camera, "--keep-unknowns", *sface_model_args())
        assert run.returncode == 0, run.stderr
        assert "1 unknown track kept" in run.stderr
    with open_unknowns(database_url, "sface") as store:
        [group] = store.groups()
    assert group.tracks == 2 and group.cameras == ("door", "hall")
    assert not list(tmp_path.glob("*.unknowns"))  # nothing beside anything: all in the database


def test_unknowns_that_cannot_be_read_are_refused_before_the_video_starts(tmp_path, without_lin):
    embeddings = tmp_path / "embeddings.pickle"
    shutil.copy(without_lin, embeddings)
    (tmp_path / "embeddings.pickle.unknowns").write_bytes(b"not a folder")
    video = write_frames(tmp_path / "lin.avi", range(82, 92))
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(video), "--no-display",
                     "--json", "--keep-unknowns", *sface_model_args())
    assert_clean_failure(run, "error: cannot read the unknown faces' index")
    assert run.stdout == ""  # not one frame


def test_only_crops_the_detector_finds_a_face_in_again_are_kept(models, without_lin):  # noqa: F811
    """Over the whole clip: the dark, blurred audience crops are refused, Lin's track is kept whole."""
    from facerec.unknowns.keeping import KEEP_CONFIDENCE

    handed, seen = keep_over(models, without_lin, range(CLIP_FRAMES))
    yunet = [shared_path("models") / YUNET.files[0].filename]
    store = RecordingStore()
    queue = KeptTracks(store, print, detector=load_detector(YUNET, yunet, float(CLIP_CONFIDENCE)))
    for track in handed:
        queue.add(track)
    queue.close()
    finder = load_detector(YUNET, yunet, KEEP_CONFIDENCE)

    def found(face) -> bool:
        return bool(finder.detect(cv2.imdecode(np.frombuffer(face.jpeg, np.uint8), cv2.IMREAD_COLOR)))

    assert any(not found(face) for track in handed for face in track.faces)  # the clip has crops to refuse
    assert store.added and all(found(face) for track in store.added for face in track.faces)
    assert queue.kept + queue.junk == len(handed)
    [lin] = [track for track in store.added if track.track == lin_track(seen)]
    [lin_handed] = [track for track in handed if track.track == lin.track]
    assert lin.faces == lin_handed.faces
