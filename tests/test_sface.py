"""The sface profile (YuNet + SFace, OpenCV Zoo's int8 files in ../shared/models): real recognition.

Enrolment and the clip go through the scripts as a user runs them; the probe
photos go through the package (recognize_video.py reads videos, not photos).
Who is who: bench/shared_faces.py, from ../shared/README.md and checked by eye.
"""

import copy
import dataclasses
import importlib.util
import json
import os
import pickle
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import CLIP, CLIP_FRAMES, stand_in_openface
from shared_faces import AUDIENCE_SHOT, NOT_IN_CLIP, OBAMA_SEAT_X, PROBE_FACES, clip_person, left_to_right
from test_modelfiles import http_folder  # noqa: F401  (a fixture: a real HTTP server on 127.0.0.1)

from facerec.catalogue import PROFILES, SFACE, YUNET
from facerec.detection import DetectedFace, load_detector
from facerec.embedding import load_embedder
from facerec.images import read_image
from facerec.errors import FacerecError
from facerec.matching import UNKNOWN, make_matcher
from facerec.modelfiles import model_path, network_files, verify_model_file
from facerec.recognition import FacePipeline
from facerec.stores import load_store

SFACE_THRESHOLD = PROFILES["sface"].threshold
# The clip is read at the detection confidence at which ../shared/README.md describes it
# ("0 to 6 faces a frame, one face in 167 frames, none in 3"); at the default 0.5 YuNet also
# finds some 250 hands and blurred heads, all Unknown, and the run takes half as long again.
CLIP_CONFIDENCE = "0.8"


def sface_model_args():
    models = shared_path("models")
    return ["--model", "sface", "--detector", str(models),
            "--embedding-model", str(models / SFACE.files[0].filename)]


def linked_dataset(root, extra=None):
    """root/<person> linked to each person of faces/known, plus {name: photo} as one-photo people."""
    root.mkdir(parents=True)
    for person in sorted(shared_path("faces/known").iterdir()):
        if person.is_dir():
            os.symlink(person, root / person.name)
    for name, photo in (extra or {}).items():
        (root / name).mkdir()
        os.symlink(photo, root / name / photo.name)
    return root


# (people -> the shared folders they link to, model arguments) -> (the run, the embeddings file it wrote)
_ENROLLED: dict[tuple, tuple[subprocess.CompletedProcess, bytes]] = {}


def enrol(dataset, embeddings, *model_args):
    """extract_embeddings.py on `dataset` into a new `embeddings` file. A dataset of links into ../shared (as
    linked_dataset makes) is enrolled once a session: the same links give the same file, which a later call
    gets a copy of (its own file, as if it had run the script)."""
    target = Path(embeddings)  # or a database URL, which is never a copy
    people = sorted(Path(dataset).iterdir()) if Path(dataset).is_dir() else []
    linked = bool(people) and str(embeddings).endswith(".pickle") and not target.exists() and all(
        person.is_symlink() or (person.is_dir() and all(photo.is_symlink() for photo in person.iterdir()))
        for person in people)
    key = (tuple((person.name, os.readlink(person) if person.is_symlink()
                  else tuple((photo.name, os.readlink(photo)) for photo in sorted(person.iterdir())))
                 for person in people), model_args) if linked else None
    if key in _ENROLLED:
        result, data = _ENROLLED[key]
        target.write_bytes(data)
        return result
    result = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings),
                        "--quiet", *model_args)
    assert result.returncode == 0, result.stderr
    if key is not None:
        _ENROLLED[key] = (result, target.read_bytes())
    return result


@pytest.fixture(scope="module")
def models():
    """The sface detector and embedder, loaded from ../shared/models (checked against the catalogue)."""
    profile = PROFILES["sface"]
    network, paths = network_files(profile.detectors, shared_path("models"))
    embedder = load_embedder(profile.embedder,
                             model_path(profile.embedder.files[0], shared_path("models") / SFACE.files[0].filename))
    return load_detector(network, paths), embedder


@pytest.fixture(scope="module")
def known_store(tmp_path_factory):
    """extract_embeddings.py --model sface on faces/known."""
    root = tmp_path_factory.mktemp("sface_known")
    embeddings = root / "embeddings.pickle"
    enrol(linked_dataset(root / "dataset"), embeddings, *sface_model_args())
    return embeddings


def enrol_with_lin(root):
    """faces/known + lin-manuel-miranda.png as "lin", enrolled with the sface profile into root/embeddings.pickle."""
    embeddings = root / "embeddings.pickle"
    enrol(linked_dataset(root / "dataset", {"lin": shared_path("faces/probe/lin-manuel-miranda.png")}),
          embeddings, *sface_model_args())
    return embeddings


_CLIP_RUNS: dict[tuple[str, ...], list[dict]] = {}  # options -> the records of that run


def run_clip(root, *options):
    """faces/known + lin-manuel-miranda.png as "lin" enrolled in root, then recognize_video.py --json on the clip.

    Once a session for each set of options: the tests that check the same run (in any module) share its records."""
    embeddings = enrol_with_lin(root)
    if options not in _CLIP_RUNS:
        run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(shared_path(CLIP)),
                         "--no-display", "--json", "--confidence", CLIP_CONFIDENCE, *options, *sface_model_args())
        assert run.returncode == 0, run.stderr
        # the summary says what ran the embedder, and that it ran in float32 (issue 30 item 1)
        runtime = "OpenVINO" if importlib.util.find_spec("openvino") else "OpenCV's DNN"
        assert re.search(rf"; embedder: SFace on {runtime}, \d+ threads?, float32$", run.stderr.strip()), run.stderr
        _CLIP_RUNS[options] = [json.loads(line) for line in run.stdout.splitlines()]
    return copy.deepcopy(_CLIP_RUNS[options])


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """The clip as recognize_video.py names it with the default strategy (run_clip)."""
    return run_clip(tmp_path_factory.mktemp("sface_clip"))


def test_catalogue_rows_are_the_shared_files():
    for network in (YUNET, SFACE):
        [model_file] = network.files
        verify_model_file(shared_path("models") / model_file.filename, model_file)  # size and sha256
        assert model_file.url.startswith("https://github.com/opencv/opencv_zoo/")
    assert PROFILES["sface"].detectors[0] is YUNET and PROFILES["sface"].embedder is SFACE


def test_enrolment_records_the_sface_profile_and_unit_vectors(known_store):
    with open(known_store, "rb") as handle:
        data = pickle.load(handle)
    assert data["profile"] == "sface"
    assert data["models"]["detector"] == YUNET.name and data["models"]["embedder"] == SFACE.name
    assert sorted(set(data["names"])) == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    assert len(data["embeddings"]) == 9  # every photo of faces/known gives its face
    assert all(np.asarray(v).shape == (128,) for v in data["embeddings"])
    assert np.allclose([np.linalg.norm(v) for v in data["embeddings"]], 1.0, atol=1e-5)


@pytest.mark.parametrize("photo", sorted(PROBE_FACES))
def test_probe_photos_name_known_people_and_no_one_else(models, known_store, photo):
    detector, embedder = models
    store = load_store(known_store)
    recogniser = FacePipeline(detector, embedder, make_matcher("nearest", store.vectors, store.names, SFACE_THRESHOLD))
    recognised = recogniser.recognise(read_image(shared_path(f"faces/probe/{photo}")))
    ordered = [recognised[i] for i in left_to_right([item.box for item in recognised])]
    expected = [person if person in store.names else UNKNOWN for person in PROBE_FACES[photo]]
    assert [item.match.name for item in ordered] == expected, [item.label for item in ordered]


def test_clip_faces_per_frame_are_as_the_shared_readme_describes(clip_run):
    assert [record["frame"] for record in clip_run] == list(range(CLIP_FRAMES))
    per_frame = [len(record["faces"]) for record in clip_run]
    assert max(per_frame) == 6
    assert abs(per_frame.count(1) - 167) <= 5 and per_frame.count(0) <= 5


def test_clip_names_lin_often_and_absent_people_never(clip_run):
    """Against the clip as checked by eye (bench/shared_faces.py's clip_person): no face is given a name not
    its own; Lin-Manuel Miranda (enrolled from one photo, facing the camera on stage) is named in at least 9 of
    10 of his faces; Alex Lacamoire (one photo at the piano, mostly seen in profile in the clip) in at least a
    third of his; the people not in the clip are never named."""
    faces_of, named = {}, {}
    for record in clip_run:
        for face in record["faces"]:
            assert (face["name"] == UNKNOWN) == (face["distance"] >= SFACE_THRESHOLD)
            person = clip_person(record["frame"], face["box"])
            assert face["name"] in (UNKNOWN, person), (record["frame"], face["box"], face["name"], person)
            faces_of[person] = faces_of.get(person, 0) + 1
            named[face["name"]] = named.get(face["name"], 0) + 1
    assert faces_of["lin"] >= 100 and named.get("lin", 0) >= 0.9 * faces_of["lin"], (named, faces_of)
    assert faces_of["alex_lacamoire"] >= 20 and named.get("alex_lacamoire", 0) >= faces_of["alex_lacamoire"] / 3
    for person in NOT_IN_CLIP:
        assert person not in named


def test_clip_names_obama_only_at_his_seat_in_the_audience_shot(clip_run):
    """Barack Obama is in the clip: the audience shot (frames 211-274) shows him laughing, in profile."""
    obama = [(record["frame"], face["box"]) for record in clip_run for face in record["faces"] if face["name"] == "obama"]
    assert len(obama) >= 50  # 64 of the shot's 64 frames measured
    for frame, (x1, _, x2, _) in obama:
        assert frame in AUDIENCE_SHOT and OBAMA_SEAT_X[0] <= (x1 + x2) / 2 <= OBAMA_SEAT_X[1], (frame, x1, x2)


def test_clip_faces_say_which_enrolled_photo_matched(clip_run):
    """"match": the stored photo (relative to the dataset) of the nearest vector; Unknown faces get theirs too."""
    stored = {f"{path.parent.name}/{path.name}" for path in shared_path("faces/known").glob("*/*")}
    stored.add("lin/lin-manuel-miranda.png")
    matches = {}
    for face in (face for record in clip_run for face in record["faces"]):
        assert face["match"] in stored, face
        matches.setdefault(face["name"], set()).add(face["match"])
    assert matches["lin"] == {"lin/lin-manuel-miranda.png"}
    assert matches["obama"] and matches["obama"] <= {"obama/obama.jpg", "obama/obama2.jpg"}
    assert all(photo.startswith(f"{name}/") for name, photos in matches.items() if name != UNKNOWN for photo in photos)
    assert len(matches[UNKNOWN]) > 1  # the unknown faces' nearest photos are of several people


def test_embeddings_file_of_one_profile_is_refused_by_the_other(known_store, tmp_path):
    openface_store = tmp_path / "openface.pickle"
    openface_models = ["--detector", str(shared_path("models")),
                       "--embedding-model", str(stand_in_openface(tmp_path / "net"))]
    enrol(linked_dataset(tmp_path / "dataset"), openface_store, *openface_models)
    for store, used, made_by, model_args in ((known_store, "openface", "sface", openface_models),
                                            (openface_store, "sface", "openface", sface_model_args()[2:])):
        result = run_script("recognize_video.py", "--embeddings", str(store), "--source", str(shared_path(CLIP)),
                            "--no-display", *model_args, "--model", used)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"made with the '{made_by}' profile" in result.stderr and f"--model {made_by}" in result.stderr
        assert result.stdout == ""


def test_without_model_options_the_sface_files_are_downloaded_into_the_default_folder(http_folder, tmp_path):
    served, base = http_folder
    for network in (YUNET, SFACE):
        os.symlink(shared_path("models") / network.files[0].filename, served / network.files[0].filename)
    dataset = tmp_path / "dataset"
    (dataset / "obama").mkdir(parents=True)
    os.symlink(shared_path("faces/known/obama/obama.jpg"), dataset / "obama" / "obama.jpg")
    models = tmp_path / "models"
    result = run_script("extract_embeddings.py", "--model", "sface", "--dataset", str(dataset),
                        "--embeddings", str(tmp_path / "e.pickle"), "--quiet",
                        env={"FACEREC_MODELS_DIR": str(models), "FACEREC_MODEL_MIRROR": base})
    assert result.returncode == 0, result.stderr
    kept = [path.name for path in models.iterdir()]  # the downloads only: digests and derived files go to the cache
    assert sorted(kept) == sorted(n.files[0].filename for n in (YUNET, SFACE))
    assert load_store(tmp_path / "e.pickle").profile == "sface"


def test_yunet_finds_a_face_too_large_for_it_by_scaling_the_photo_down():
    """YuNet is trained on faces up to about 300 px: at 8x, alex-lacamoire.png's face is ~1200 px."""
    image = read_image(shared_path("faces/probe/alex-lacamoire.png"))
    paths = [shared_path("models") / YUNET.files[0].filename]
    [small] = load_detector(YUNET, paths).detect(image)
    large = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
    expected = np.array(small.box) * 8
    [found] = load_detector(YUNET, paths).detect(large)
    assert iou(found.box, expected) > 0.7
    assert np.allclose(found.landmarks / 8, small.landmarks, atol=0.06 * small.width)  # in the photo's pixels
    unscaled = load_detector(dataclasses.replace(YUNET, max_side=None), paths).detect(large)
    assert all(iou(face.box, expected) < 0.5 for face in unscaled)


def iou(a, b):
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_landmarks_come_back_in_the_photos_pixels(models):
    detector, _ = models
    image = read_image(shared_path("faces/probe/obama_and_biden.jpg"))  # 2000 px wide, detected at 640
    faces = detector.detect(image)
    assert len(faces) == 3
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert np.all((face.landmarks >= (x1, y1)) & (face.landmarks <= (x2, y2)))
        right_eye, left_eye, nose, mouth_right, mouth_left = face.landmarks
        assert right_eye[0] < left_eye[0] and max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_right[1], mouth_left[1])


def test_sface_vectors_are_face_recognizer_sf_features_of_aligned_faces_normalised(models):
    detector, embedder = models
    image = read_image(shared_path("faces/probe/obama_and_biden.jpg"))
    faces = detector.detect(image)
    together = embedder.embed(image, faces)
    reference = cv2.FaceRecognizerSF.create(str(shared_path("models") / SFACE.files[0].filename), "")
    for face, vector in zip(faces, together):
        x1, y1, x2, y2 = face.box
        row = np.array([[x1, y1, x2 - x1, y2 - y1, *face.landmarks.ravel(), face.confidence]], np.float32)
        feature = reference.feature(reference.alignCrop(image, row)).ravel()
        assert np.allclose(vector, feature / np.linalg.norm(feature), atol=1e-5)
        assert np.allclose(embedder.embed(image, [face])[0], vector, atol=1e-6)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_sface_refuses_a_face_without_landmarks(models):
    _, embedder = models
    with pytest.raises(FacerecError, match="landmarks"):
        embedder.embed(np.zeros((200, 200, 3), np.uint8), [DetectedFace((10, 10, 110, 110), 0.9)])


def test_a_model_file_opencv_cannot_read_is_one_clear_error(tmp_path):
    junk = tmp_path / "mine.onnx"
    junk.write_bytes(b"not a network" * 100)
    with pytest.raises(FacerecError, match="cannot load the YuNet detector"):
        load_detector(YUNET, [junk])
    with pytest.raises(FacerecError, match="cannot load the SFace embedder"):
        load_embedder(SFACE, junk)
