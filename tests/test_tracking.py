"""Tracks: faces followed from frame to frame, embedded when it matters, named from their evidence.

Real models (YuNet + SFace from ../shared/models), real videos: the clip, and
videos written here with cv2.VideoWriter of face photos pasted at known
positions on a canvas, so where each face is in each frame is known exactly.
"""

import functools
import json
from collections import Counter

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import CLIP, CLIP_FRAMES
from shared_faces import AUDIENCE_SHOT, KNOWN_PEOPLE, NOT_IN_CLIP, OBAMA_SEAT_X, named_rightly
from test_modelfiles import http_folder  # noqa: F401  (a fixture: a real HTTP server on 127.0.0.1)
from test_sface import CLIP_CONFIDENCE, enrol_with_lin, models, sface_model_args  # noqa: F401  (models: a fixture)

from facerec.catalogue import PROFILES, YUNET
from facerec.detection import DetectedFace, load_detector
from facerec.matching import UNKNOWN, make_matcher
from facerec.recognition import FacePipeline
from facerec.stores import load_store
from facerec.tracking import DEFAULT_EVERY, DOUBT_MARGIN, MAX_MISSED, SETTLED_AFTER, Tracker

SFACE_THRESHOLD = PROFILES["sface"].threshold
CANVAS = (640, 360)
FACE_WIDTH = 110
LIN_SHOT = range(82, 211)  # frames of the clip between two cuts where Lin-Manuel Miranda is on stage alone


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """faces/known + lin-manuel-miranda.png as "lin", enrolled with extract_embeddings.py --model sface."""
    return enrol_with_lin(tmp_path_factory.mktemp("tracks_gallery"))


def recognise_video(embeddings, source, *extra):
    """recognize_video.py --json on `source`: (JSON records, the run)."""
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(source),
                     "--no-display", "--json", *sface_model_args(), *extra)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()], run


@pytest.fixture(scope="module")
def clip_runs(gallery):
    """The clip with tracking (the default --every) and with --every 1, at the confidence the README describes."""
    return {every: recognise_video(gallery, shared_path(CLIP), "--confidence", CLIP_CONFIDENCE, "--every", str(every))
            for every in (DEFAULT_EVERY, 1)}


def names_by_face(records):
    """{(frame, box): name}: the detector is the same in every run, so boxes identify faces across runs."""
    return {(record["frame"], tuple(face["box"])): face["name"] for record in records for face in record["faces"]}


def frames_named(records, name):
    return [record["frame"] for record in records if any(face["name"] == name for face in record["faces"])]


# the clip ----------------------------------------------------------------------------------

def test_json_gives_every_face_an_int_track_and_the_source_frame_index(clip_runs):
    for records, _ in clip_runs.values():
        assert [record["frame"] for record in records] == list(range(CLIP_FRAMES))
        for record in records:
            for face in record["faces"]:
                assert set(face) >= {"box", "confidence", "name", "distance", "track"}
                assert type(face["track"]) is int and face["track"] >= 1
                assert (face["name"] == UNKNOWN) == (face["distance"] >= SFACE_THRESHOLD)
            tracks = [face["track"] for face in record["faces"]]
            assert len(set(tracks)) == len(tracks)  # two faces of one frame never share a track


def test_lin_keeps_one_track_while_he_is_on_stage_alone(clip_runs):
    records, _ = clip_runs[DEFAULT_EVERY]
    lin = {record["frame"]: face["track"] for record in records if record["frame"] in LIN_SHOT
           for face in record["faces"] if face["name"] == "lin"}
    assert len(lin) >= 120  # 129 measured: he is named in every frame of the shot
    assert len(set(lin.values())) == 1, sorted(set(lin.values()))


def test_tracking_names_the_people_of_the_clip_as_every_frame_alone_does(clip_runs):
    records, run = clip_runs[DEFAULT_EVERY]
    per_frame = names_by_face(clip_runs[1][0])
    tracked = names_by_face(records)
    assert tracked.keys() == per_frame.keys()  # the same faces
    agreement = np.mean([tracked[face] == per_frame[face] for face in tracked])
    # 98.5% measured (docs/tracks.md); 96.2% with the former rule (the mean of the last 8 embeddings, tracks near
    # the threshold embedded no more often than others). The faces that still differ are where one frame alone
    # flickers around the threshold and the track waits for a second verdict
    assert agreement >= 0.97, agreement
    assert len(frames_named(records, "lin")) >= 140  # 142 measured
    assert all(frame not in AUDIENCE_SHOT for frame in frames_named(records, "lin"))
    obama = [(record["frame"], face["box"]) for record in records for face in record["faces"] if face["name"] == "obama"]
    assert len(obama) >= 50
    for frame, (x1, _, x2, _) in obama:
        assert frame in AUDIENCE_SHOT and OBAMA_SEAT_X[0] <= (x1 + x2) / 2 <= OBAMA_SEAT_X[1]
    for person in NOT_IN_CLIP:
        assert person not in {name for name in tracked.values()}
    assert f"{len(records)} frames," in run.stderr


def test_tracks_name_more_faces_rightly_than_every_frame_alone(clip_runs):
    """Right by eye (bench/shared_faces.py's clip_person): a gallery person's face named so, anyone else Unknown."""
    enrolled = {*KNOWN_PEOPLE, "lin"}
    tracked, per_frame = named_rightly(clip_runs[DEFAULT_EVERY][0], enrolled), named_rightly(clip_runs[1][0], enrolled)
    # 522 against 514 of 551 measured: named tracks near the threshold settle (tracking.SETTLED_AFTER), which keeps
    # Alex Lacamoire's close-up profile named where fresh verdicts straddle the threshold (514 without settling)
    assert tracked >= per_frame + 5, (tracked, per_frame)


def test_labels_change_less_often_within_a_track_with_tracking(clip_runs):
    def flips(records):
        by_track = {}
        for record in records:
            for face in record["faces"]:
                by_track.setdefault(face["track"], []).append(face["name"])
        return sum(a != b for names in by_track.values() for a, b in zip(names, names[1:]))

    assert flips(clip_runs[1][0]) > 0  # each frame alone: lin is Unknown in the odd frame
    assert flips(clip_runs[DEFAULT_EVERY][0]) < flips(clip_runs[1][0])


def test_the_summary_counts_tracks_per_name(clip_runs):
    for records, run in clip_runs.values():
        tracks = {}
        for record in records:
            for face in record["faces"]:
                tracks.setdefault(face["track"], []).append(face["name"])
        majority = [Counter(names).most_common(1)[0][0] for names in tracks.values()]  # ties: the name seen first
        summary = run.stderr.split(" tracks (", 1)
        assert summary[0].endswith(f", {len(tracks)}")
        listed = dict(item.rsplit(" ", 1) for item in summary[1].split(")", 1)[0].split(", "))
        assert {name: int(count) for name, count in listed.items()} == {name: majority.count(name) for name in set(majority)}
        assert int(listed["obama"]) == 1 and int(listed["lin"]) >= 1


def test_every_1_names_each_face_exactly_as_a_recogniser_without_tracks(clip_runs, gallery, models):
    """--every 1 is the behaviour from before tracks: each face of each frame embedded and named on its own."""
    _, embedder = models
    detector = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], float(CLIP_CONFIDENCE))
    store = load_store(gallery)
    alone = FacePipeline(detector, embedder, make_matcher("nearest", store.vectors, store.names, SFACE_THRESHOLD))
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    expected = {}
    for index in range(CLIP_FRAMES):
        ok, frame = capture.read()
        assert ok
        for item in alone.recognise(frame):
            assert item.track is None
            expected[(index, item.box)] = (item.match.name, round(item.match.distance, 4))
    capture.release()
    given = {(record["frame"], tuple(face["box"])): (face["name"], face["distance"])
             for record in clip_runs[1][0] for face in record["faces"]}
    assert given == expected


# hand-made videos: face photos pasted at known positions -----------------------------------

@functools.lru_cache(maxsize=None)
def face_patch(photo):
    """The face of a probe photo with a margin, FACE_WIDTH pixels wide (found with YuNet)."""
    image = cv2.imread(str(shared_path(f"faces/probe/{photo}")))
    [face] = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], 0.8).detect(image)
    x1, y1, x2, y2 = face.box
    margin = (x2 - x1) // 3
    crop = image[max(y1 - margin, 0): y2 + margin, max(x1 - margin, 0): x2 + margin]
    return cv2.resize(crop, (FACE_WIDTH, round(crop.shape[0] * FACE_WIDTH / crop.shape[1])))


def write_video(path, placements, frames, fps=30):
    """A video of `frames` frames on a grey canvas; placements(index) -> [(photo, (x, y))] top-left corners.

    Each frame also carries its own index in two grey 40x40 squares at the top right (index % 32 * 8
    and index // 32 * 8: grey survives JPEG well), so a frame read back tells which source frame it is.
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, CANVAS)
    for index in range(frames):
        canvas = np.full((CANVAS[1], CANVAS[0], 3), 120, np.uint8)
        for photo, (x, y) in placements(index):
            patch = face_patch(photo)
            canvas[y: y + patch.shape[0], x: x + patch.shape[1]] = patch
        canvas[:40, -40:] = index % 32 * 8
        canvas[:40, -80:-40] = index // 32 * 8
        writer.write(canvas)
    writer.release()
    return path


def frame_number(frame):
    low, high = frame[5:35, -35:-5].mean(), frame[5:35, -75:-45].mean()
    return int(round(high / 8)) * 32 + int(round(low / 8))


def centre(placement):
    photo, (x, y) = placement
    height, width = face_patch(photo).shape[:2]
    return np.array([x + width / 2, y + height / 2])


def tracks_of_pasted_faces(records, placements):
    """For each pasted face (by its position in the placements list): the track ids of the detections on it."""
    found = {}
    for record in records:
        pasted = placements(record["frame"])
        for face in record["faces"]:
            x1, y1, x2, y2 = face["box"]
            distances = [np.linalg.norm(centre(p) - [(x1 + x2) / 2, (y1 + y2) / 2]) for p in pasted]
            nearest = int(np.argmin(distances))
            assert distances[nearest] < FACE_WIDTH / 2, (record["frame"], face["box"])  # no face where none was pasted
            found.setdefault(nearest, []).append((record["frame"], face["track"]))
    return found


def test_a_moving_face_keeps_its_track(gallery, tmp_path):
    def placements(index):
        return [("obama1.jpg", (20 + 12 * index, 60 + 3 * index))]

    records, _ = recognise_video(gallery, write_video(tmp_path / "moving.avi", placements, 40))
    [seen] = tracks_of_pasted_faces(records, placements).values()
    assert len(seen) >= 36  # detected in (nearly) every frame
    assert len({track for _, track in seen}) == 1
    assert {face["name"] for record in records for face in record["faces"]} == {"obama"}


def test_two_faces_that_cross_keep_their_own_tracks(gallery, tmp_path):
    """obama goes right, alex_lacamoire left, half a face lower: at the crossing one covers part of the other."""
    def placements(index):
        return [("obama1.jpg", (20 + 14 * index, 40)), ("alex_lacamoire1.jpg", (510 - 14 * index, 110))]

    records, _ = recognise_video(gallery, write_video(tmp_path / "crossing.avi", placements, 36))
    seen = tracks_of_pasted_faces(records, placements)
    assert sorted(seen) == [0, 1]
    tracks = [{track for _, track in seen[face]} for face in (0, 1)]
    assert all(len(ids) == 1 for ids in tracks) and tracks[0] != tracks[1], seen
    for face in (0, 1):  # both are seen before and after they cross
        frames = [frame for frame, _ in seen[face]]
        assert min(frames) < 10 and max(frames) > 26
    names = {face["track"]: face["name"] for record in records for face in record["faces"]}
    assert names[tracks[0].pop()] == "obama" and names[tracks[1].pop()] == "alex_lacamoire"


@pytest.mark.parametrize("hidden, same_track", [(4, True), (MAX_MISSED + 8, False)])
def test_a_face_hidden_a_few_frames_keeps_its_track_and_one_gone_longer_gets_a_new_one(gallery, tmp_path, hidden, same_track):
    def placements(index):
        shown = index < 15 or index >= 15 + hidden
        return [("obama1.jpg", (100 + 6 * index, 80))] if shown else []

    frames = 30 + hidden
    records, _ = recognise_video(gallery, write_video(tmp_path / "hidden.avi", placements, frames))
    [seen] = tracks_of_pasted_faces(records, placements).values()
    before = {track for frame, track in seen if frame < 15}
    after = {track for frame, track in seen if frame >= 15 + hidden}
    assert len(before) == 1 and len(after) == 1
    assert (before == after) == same_track
    assert not any(record["faces"] for record in records if 15 <= record["frame"] < 15 + hidden)


def test_a_slow_consumer_of_a_live_stream_reports_source_frame_indices_and_records_at_the_source_pace(gallery, http_folder, tmp_path):
    """A real HTTP server on 127.0.0.1 serves the video; recognition is slower than decoding, so frames are dropped."""
    frames = 240

    def placements(index):
        return [("obama1.jpg", (40 + 2 * index, 120))]

    served, base = http_folder
    write_video(served / "live.avi", placements, frames)
    output = tmp_path / "recorded.avi"
    records, run = recognise_video(gallery, f"{base}/live.avi", "--every", "1", "--output", str(output))
    indices = [record["frame"] for record in records]
    assert indices == sorted(set(indices)) and indices[0] == 0
    assert len(indices) < indices[-1] + 1  # frames were dropped: the indices have gaps
    for record in records:  # each face is where it was pasted in the source frame of that index
        [face] = record["faces"]
        x1, _, x2, _ = face["box"]
        assert abs((x1 + x2) / 2 - centre(placements(record["frame"])[0])[0]) < 6, (record["frame"], face["box"])
    capture = cv2.VideoCapture(str(output))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30)
    recorded = []
    while (read := capture.read())[0]:
        recorded.append(read[1])
    capture.release()
    assert len(recorded) == indices[-1] + 1  # one recorded frame per source frame: it plays at the source's pace
    for index in indices:  # the JSON frame finds the face in the recorded file
        assert frame_number(recorded[index]) == index
    assert f"({len(recorded)} frames)" in run.stderr


# the tracker alone: what it asks to embed, and how it names a track --------------------------

def moving_face(index, x=100, step=2):
    return DetectedFace((x + step * index, 50, x + step * index + 80, 150), 0.9)


def test_a_track_is_embedded_when_new_then_every_n_frames_or_when_its_box_moved_far():
    matcher = make_matcher("nearest", np.eye(4), list("abcd"), 1.0)
    vector = np.eye(4)[0]
    tracker = Tracker(every=5)
    due = []
    for index in range(12):
        [track] = tracker.update([moving_face(index)], index)
        due.append(tracker.needs_embedding(track))
        if due[-1]:
            tracker.add_evidence(track, vector, matcher.match(vector)[0], matcher)
    assert due == [True, False, False, False, False, True, False, False, False, False, True, False]
    [track] = tracker.update([moving_face(12, step=2, x=160)], 12)  # 60 px (0.75 face widths) further: a jump
    assert tracker.needs_embedding(track)


def seen_at(distance):
    """A unit vector at `distance` from ann's photo (e0 in GALLERY), turned towards e5."""
    angle = 2 * np.arcsin(distance / 2)
    return np.cos(angle) * np.eye(128, dtype=np.float32)[0] + np.sin(angle) * np.eye(128, dtype=np.float32)[5]


GALLERY = np.eye(3, 128, dtype=np.float32)  # ann, bob, and a third person


def gallery_matcher():
    return make_matcher("nearest", GALLERY, ["ann", "bob", "cy"], SFACE_THRESHOLD)


def see(tracker, track, matcher, distance):
    """Give the track an embedding at `distance` from ann's photo; return the name it carries then."""
    vector = seen_at(distance)
    return tracker.add_evidence(track, vector, matcher.match(vector)[0], matcher)


def test_one_odd_embedding_does_not_rename_a_track_but_a_different_person_starts_a_new_track():
    """ann's gallery photo is e0; in the video she is seen at 0.9 thresholds from it (named), once at 1.05 (alone: Unknown)."""
    matcher = gallery_matcher()
    tracker = Tracker(every=2)
    [track] = tracker.update([moving_face(0)], 0)
    for _ in range(5):
        see(tracker, track, matcher, 0.9 * SFACE_THRESHOLD)
    assert track.match.name == "ann"
    assert matcher.match(seen_at(1.05 * SFACE_THRESHOLD))[0].name == UNKNOWN  # alone, this frame would say Unknown
    first_id = track.id
    assert see(tracker, track, matcher, 1.05 * SFACE_THRESHOLD).name == "ann"
    assert track.id == first_id
    tracker.add_evidence(track, GALLERY[1], matcher.match(GALLERY[1])[0], matcher)  # bob: someone else entirely
    assert track.id != first_id and track.match.name == "bob"


def test_a_cut_to_another_shot_ends_every_track():
    tracker = Tracker()
    dark, bright = np.full((360, 640, 3), 30, np.uint8), np.full((360, 640, 3), 200, np.uint8)
    [first] = tracker.update([moving_face(0)], 0, dark)
    [same] = tracker.update([moving_face(1)], 1, dark)
    [after_cut] = tracker.update([moving_face(2)], 2, bright)
    assert first.id == same.id != after_cut.id


def test_a_name_changes_only_when_two_consecutive_verdicts_agree_on_the_new_one():
    """A stranger seen at 1.3 thresholds from ann is not named by one lucky frame; two in a row name him;
    the distance given is always the one the name was decided on (Unknown exactly at or above the threshold)."""
    matcher = gallery_matcher()
    tracker = Tracker(every=2)
    [track] = tracker.update([moving_face(0)], 0)
    for _ in range(5):
        assert see(tracker, track, matcher, 1.3 * SFACE_THRESHOLD).name == UNKNOWN
    lucky = see(tracker, track, matcher, 0.95 * SFACE_THRESHOLD)
    assert lucky.name == UNKNOWN and lucky.distance == pytest.approx(1.3 * SFACE_THRESHOLD)
    named = see(tracker, track, matcher, 0.95 * SFACE_THRESHOLD)  # the mean of the last 8 would still say Unknown
    assert named.name == "ann" and named.distance == pytest.approx(0.95 * SFACE_THRESHOLD)
    assert see(tracker, track, matcher, 1.3 * SFACE_THRESHOLD).name == "ann"  # one Unknown verdict does not undo it
    back = see(tracker, track, matcher, 1.3 * SFACE_THRESHOLD)
    assert back.name == UNKNOWN and back.distance >= SFACE_THRESHOLD


def test_a_track_whose_verdict_is_near_the_threshold_is_embedded_again_the_next_frame():
    """Where a verdict could have gone either way the track's evidence is renewed every frame; elsewhere every N."""
    matcher = gallery_matcher()
    tracker = Tracker(every=10)
    [track] = tracker.update([moving_face(0)], 0)
    assert tracker.needs_embedding(track)
    for index, distance in enumerate([0.5, (1 - DOUBT_MARGIN / 2), (1 + DOUBT_MARGIN / 2), 0.5], start=1):
        see(tracker, track, matcher, distance * SFACE_THRESHOLD)
        [track] = tracker.update([moving_face(index)], index)
        assert tracker.needs_embedding(track) == (distance != 0.5), distance


def test_a_named_track_whose_recent_verdicts_all_agree_is_settled_but_an_unknown_one_stays_checked():
    """Near the threshold, a named track is checked again every frame only until its last SETTLED_AFTER verdicts
    all gave it its name; then only when due. A track in doubt that is Unknown is checked every frame."""
    matcher = gallery_matcher()
    near_inside, near_outside = (1 - DOUBT_MARGIN / 2) * SFACE_THRESHOLD, (1 + DOUBT_MARGIN / 2) * SFACE_THRESHOLD
    for distance, name in ((near_inside, "ann"), (near_outside, UNKNOWN)):
        tracker = Tracker(every=10)
        [track] = tracker.update([moving_face(0)], 0)
        checked = []
        for index in range(1, 8):
            assert see(tracker, track, matcher, distance).name == name
            [track] = tracker.update([moving_face(index)], index)
            checked.append(tracker.needs_embedding(track))
        if name == UNKNOWN:
            assert checked == [True] * 7
        else:
            assert checked == [True] * (SETTLED_AFTER - 1) + [False] * (8 - SETTLED_AFTER)
    # settled_after=0: the rule before, every frame while in doubt
    tracker = Tracker(every=10, settled_after=0)
    [track] = tracker.update([moving_face(0)], 0)
    for index in range(1, 8):
        see(tracker, track, matcher, near_inside)
        [track] = tracker.update([moving_face(index)], index)
        assert tracker.needs_embedding(track)
