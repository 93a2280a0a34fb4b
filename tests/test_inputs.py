"""What the user hands the scripts: photos, dataset folders, person names and argument values.

Every case runs the real script in a subprocess whose address space is capped
(RLIMIT_AS), so an input that would eat the machine's memory fails the test
instead of the machine.
"""

from __future__ import annotations

import os
import pickle
import re
import resource
import subprocess
import sys
import unicodedata

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure, huge_png, stand_in_openface

MEMORY_CAP = 1536 * 2**20  # bytes of address space a script may use in these tests (a run needs about 600 MB)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return ["--detector", str(shared_path("models")), "--embedding-model", str(stand_in_openface(folder))]


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(script, *args, env=None, timeout=300):
    """Run a script as a user would, with its memory capped; stdout and stderr as bytes."""
    return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *map(os.fsencode, args)],
                          cwd=PROJECT_ROOT, capture_output=True, timeout=timeout, preexec_fn=_cap_memory,
                          env={**os.environ, **(env or {})})


def extract(models, dataset, embeddings, *extra, env=None, timeout=300):
    return run_capped("extract_embeddings.py", "--dataset", dataset, "--embeddings", embeddings, "--quiet",
                      *models, *extra, env=env, timeout=timeout)


def skipped_lines(stdout: bytes) -> dict[str, str]:
    """{path: reason} of the report's skipped images."""
    return dict(re.findall(r"^  (.+?): (.+)$", stdout.decode(), re.MULTILINE))


def load(embeddings):
    with open(embeddings, "rb") as handle:
        return pickle.load(handle)


def photo(name="obama/obama.jpg") -> bytes:
    return shared_path(f"faces/known/{name}").read_bytes()


# issue 16, item 4: images that would eat the memory ---------------------------------------------

@pytest.fixture(scope="module")
def hostile_dataset(tmp_path_factory):
    """One good photo, then a 1 MB PNG of 32000 x 32000 pixels, a 30 GB sparse file and a FIFO named like photos."""
    root = tmp_path_factory.mktemp("hostile") / "dataset"
    person = root / "obama"
    person.mkdir(parents=True)
    (person / "a good one.jpg").write_bytes(photo())
    (person / "bomb.png").write_bytes(huge_png(32000, 32000))
    with open(person / "sparse.jpg", "wb") as handle:
        handle.truncate(30 * 2**30)
    os.mkfifo(person / "pipe.jpg")
    return root


def test_images_too_large_or_not_regular_files_are_skipped_with_the_reason(models, hostile_dataset, tmp_path):
    embeddings = tmp_path / "e.pickle"
    result = extract(models, hostile_dataset, embeddings, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    skipped = skipped_lines(result.stdout)
    person = hostile_dataset / "obama"
    assert skipped[str(person / "bomb.png")] == "1024 MP: more than the 100 MP a photo may have"
    assert skipped[str(person / "sparse.jpg")] == "30 GiB: larger than the 100 MiB a photo may be"
    assert skipped[str(person / "pipe.jpg")] == "not a regular file (a FIFO)"
    assert load(embeddings)["paths"] == ["obama/a good one.jpg"]


# issue 16, item 8: names the terminal cannot print ----------------------------------------------

def test_a_file_name_that_is_not_utf8_is_printed_escaped_on_a_strict_terminal(models, tmp_path):
    dataset = tmp_path / "dataset"
    (dataset / "obama").mkdir(parents=True)
    (dataset / "obama" / "good.jpg").write_bytes(photo())
    with open(os.fsencode(dataset / "obama") + b"/caf\xe9 photo.jpg", "wb") as handle:
        handle.write(photo("obama/obama2.jpg"))
    with open(os.fsencode(dataset / "obama") + b"/not \xff an image.jpg", "wb") as handle:
        handle.write(b"text")
    os.mkdir(os.fsencode(dataset) + b"/Jos\xe9")  # a person folder named in Latin-1
    with open(os.fsencode(dataset) + b"/Jos\xe9/a.jpg", "wb") as handle:
        handle.write(photo())
    embeddings = tmp_path / "e.pickle"
    result = extract(models, dataset, embeddings, env={"PYTHONIOENCODING": "utf-8:strict", "LANG": "C.UTF-8",
                                                       "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    assert f"  {dataset}/obama/not \\xff an image.jpg: not a readable image".encode() in result.stdout
    assert (f"  {dataset}/Jos\\xe9: not a person name: it contains a byte that is not UTF-8 (\\xe9); "
            "rename the folder").encode() in result.stdout
    assert len(load(embeddings)["paths"]) == 2  # the photo with the odd name is used


# issue 16, item 9: files and folders that vanish or cannot be listed --------------------------------

def test_person_folders_that_cannot_be_listed_are_skipped_with_the_reason(models, tmp_path):
    dataset = tmp_path / "dataset"
    (dataset / "obama").mkdir(parents=True)
    (dataset / "obama" / "a.jpg").write_bytes(photo())
    (dataset / "loop").symlink_to("loop")  # listing it fails: too many levels of symbolic links
    (dataset / "gone").symlink_to(tmp_path / "nowhere")  # a person folder whose target was removed
    locked = dataset / "locked"
    locked.mkdir()
    (locked / "a.jpg").write_bytes(photo())
    locked.chmod(0)
    try:
        result = extract(models, dataset, tmp_path / "e.pickle")
    finally:
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr.decode()
    skipped = skipped_lines(result.stdout)
    assert skipped[str(dataset / "loop")].startswith("cannot list the folder: ")
    assert "symbolic links" in skipped[str(dataset / "loop")]
    assert skipped[str(dataset / "gone")] == "cannot list the folder: No such file or directory"
    if os.geteuid() != 0:  # root reads a folder whatever its mode
        assert skipped[str(locked)] == "cannot list the folder: Permission denied"
    assert "obama/a.jpg" in load(tmp_path / "e.pickle")["paths"]


class _DeletingDetector:
    """The real detector, which deletes one photo of the dataset the first time it is asked for faces:
    the photo goes while the run is under way, at a point fixed by the run itself, not by a timer."""

    def __init__(self, detector, doomed):
        self._detector, self._doomed = detector, doomed

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def detect(self, image, **options):
        if self._doomed.exists():
            self._doomed.unlink()
        return self._detector.detect(image, **options)


def test_a_photo_deleted_during_extraction_is_skipped_and_the_run_goes_on(tmp_path):
    from facerec.catalogue import PROFILES
    from facerec.detection import load_detector
    from facerec.embedding import load_embedder
    from facerec.enrolment import enrol_into, models_identity
    from facerec.modelfiles import network_files
    from facerec.stores import PickleStore, load_store

    dataset = tmp_path / "dataset"
    (dataset / "obama").mkdir(parents=True)
    for index in range(20):
        (dataset / "obama" / f"{index:02d}.jpg").write_bytes(photo())
    profile = PROFILES["openface"]
    network, paths = network_files(profile.detectors, shared_path("models"))
    detector = load_detector(network, paths, profile.confidence)
    embedder = load_embedder(profile.embedder, stand_in_openface(tmp_path / "models"))
    doomed = dataset / "obama" / "19.jpg"
    writer = PickleStore(tmp_path / "e.pickle").open_writer(dataset, models_identity("openface", detector, embedder),
                                                            embedder.dimension)
    counts, report = enrol_into(dataset, writer, _DeletingDetector(detector, doomed), embedder, progress=False)
    assert not doomed.exists()
    assert dict(report.skipped) == {str(doomed): "does not exist"}
    store = load_store(tmp_path / "e.pickle")
    assert counts.vectors == len(store.paths) == 19 and "obama/19.jpg" not in store.paths


# issue 16, items 10 and 20: --dataset that is not a folder ---------------------------------------

def test_a_dataset_path_with_a_name_too_long_is_a_clean_error(models, tmp_path):
    long = tmp_path / ("d" * 256) / "dataset"
    result = extract(models, long, tmp_path / "e.pickle")
    assert_clean_failure(_text(result), "longer than 255 bytes")


def test_a_dataset_that_is_a_file_says_so(models, tmp_path):
    path = tmp_path / "photos.zip"
    path.write_bytes(b"PK")
    result = extract(models, path, tmp_path / "e.pickle")
    assert_clean_failure(_text(result), f"dataset {path} is a file, not a folder")


def _text(result):
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


# issue 16, item 12 and issue 10, item 8: argument values -----------------------------------------

@pytest.mark.parametrize("script, args, message", [
    ("recognize_video.py", ["--confidence", "nan"], "--confidence: nan is not a finite number"),
    ("recognize_video.py", ["--threshold", "nan"], "--threshold: nan is not a finite number"),
    ("recognize_video.py", ["--threshold", "inf"], "--threshold: inf is not a finite number"),
    ("extract_embeddings.py", ["--confidence=-inf"], "--confidence: -inf is not a finite number"),
    ("imagecapture.py", ["--name", "a", "--confidence", "nan"], "--confidence: nan is not a finite number"),
    ("evaluate.py", ["--vectors", "v", "--labels", "l", "--target-far", "nan"],
     "--target-far: nan is not a finite number"),
    ("evaluate.py", ["--vectors", "v", "--labels", "l", "--threshold", "inf"], "--threshold: inf is not a finite"),
    ("recognize_video.py", ["--confidence", "0"], "--confidence: 0 is out of range: must be in [0.2, 1]"),
    ("extract_embeddings.py", ["--confidence", "0.1"], "--confidence: 0.1 is out of range: must be in [0.2, 1]"),
    ("recognize_video.py", ["--threshold", "2.5"],
     "--threshold: 2.5 is out of range: must be in [0, 2] (unit vectors are never more than 2 apart)"),
    ("evaluate.py", ["--vectors", "v", "--labels", "l", "--threshold", "3"],
     "--threshold: 3 is out of range: must be in [0, 2]"),
])
def test_argument_values_that_make_no_sense_are_refused_by_the_parser(script, args, message):
    result = run_script(script, *args, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_states_the_confidence_floor_and_the_threshold_ceiling():
    for script in ("recognize_video.py", "extract_embeddings.py", "imagecapture.py"):
        text = " ".join(run_script(script, "--help", timeout=60).stdout.split())
        assert "0.2 to 1" in text, script
    text = " ".join(run_script("recognize_video.py", "--help", timeout=60).stdout.split())
    assert "0 to 2" in text


# issue 16, item 19: person names ---------------------------------------------------------------

@pytest.mark.parametrize("name, what", [
    ("ann\u2028bob", "a line separator (U+2028)"),
    ("ann\u2029", "a paragraph separator (U+2029)"),
    ("\u202eeci", "a format character (U+202E)"),
    ("ann\u200bbob", "a format character (U+200B)"),
    ("ann\ue000", "a private-use character (U+E000)"),
    ("ann\u0378", "an unassigned character (U+0378)"),
    ("ann\x1b[31m", "a control character (U+001B)"),
])
def test_capture_refuses_names_with_invisible_or_reordering_characters(tmp_path, name, what):
    result = run_script("imagecapture.py", "--name", name, "--dataset", str(tmp_path / "d"),
                        "--source", str(tmp_path / "no-video.mp4"), timeout=60)
    assert_clean_failure(result, f"it contains {what}")
    assert not (tmp_path / "d").exists()


def test_capture_warns_of_a_person_whose_name_differs_only_by_case(tmp_path):
    (tmp_path / "d" / "Obama").mkdir(parents=True)
    result = run_script("imagecapture.py", "--name", "obama", "--dataset", str(tmp_path / "d"),
                        "--source", str(tmp_path / "no-video.mp4"), timeout=60)
    assert ("warning: the dataset already has Obama: obama differs only by case and will be another person"
            in result.stderr)


def test_dataset_names_are_nfc_odd_folders_are_skipped_and_case_twins_warned(models, tmp_path):
    dataset = tmp_path / "dataset"
    nfd, nfc = unicodedata.normalize("NFD", "José"), "José"
    for folder, source in ((nfd, "obama/obama.jpg"), (nfc, "obama/obama2.jpg"), ("Biden", "biden/biden.jpg"),
                           ("biden", "biden/biden2.jpg"), ("ann\u202eeci", "obama/obama.jpg")):
        (dataset / folder).mkdir(parents=True)
        (dataset / folder / "a.jpg").write_bytes(photo(source))
    result = extract(models, dataset, tmp_path / "e.pickle")
    assert result.returncode == 0, result.stderr.decode()
    data = load(tmp_path / "e.pickle")
    assert sorted(data["names"]) == ["Biden", "José", "José", "biden"]
    assert all(unicodedata.is_normalized("NFC", name) for name in data["names"])
    assert "wrote 4 embeddings of 3 people" in result.stdout.decode()
    assert "warning: Biden, biden differ only by case: they are enrolled as different people" in result.stderr.decode()
    skipped = skipped_lines(result.stdout)
    # printed escaped: the name cannot reverse the line it is printed on
    assert skipped[f"{dataset}/ann\\u202eeci"] == ("not a person name: it contains a format character (U+202E); "
                                                      "rename the folder")


# issue 10, item 6: dataset mistakes -----------------------------------------------------------

def test_photos_put_directly_in_the_dataset_are_pointed_to_their_folder(models, tmp_path):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "obama.jpg").write_bytes(photo())
    (dataset / "biden.jpg").write_bytes(photo("biden/biden.jpg"))
    (dataset / "linked.png").symlink_to(shared_path("faces/probe/32bit.png"))
    (dataset / "notes.txt").write_text("not a photo")
    result = extract(models, dataset, tmp_path / "e.pickle")
    assert_clean_failure(_text(result), f"{dataset} has 3 photos directly in it but no person folder",
                         f"move each into {dataset}/<person>/")


def test_a_photo_with_several_faces_is_warned_and_plurals_are_right(models, tmp_path):
    dataset = tmp_path / "dataset"
    (dataset / "obama").mkdir(parents=True)
    group = dataset / "obama" / "group.jpg"
    group.write_bytes(shared_path("faces/probe/two_people.jpg").read_bytes())
    (dataset / "stray.jpg").write_bytes(photo())
    result = extract(models, dataset, tmp_path / "e.pickle")
    assert result.returncode == 0, result.stderr.decode()
    assert (f"warning: 1 photo directly in {dataset} not enrolled: move each into {dataset}/<person>/".encode()
            in result.stderr)
    assert f"warning: {group}: 2 faces found, the most confident one is enrolled".encode() in result.stderr
    assert result.stdout.decode().splitlines()[0].startswith("1 image used for 1 person (1 processed now, ")
    assert "wrote 1 embedding of 1 person" in result.stdout.decode()


# issue 10, item 7: a tiny face in the background ---------------------------------------------

def test_a_tiny_confident_face_does_not_hide_the_face_of_the_photo(tmp_path):
    from facerec.catalogue import PROFILES
    from facerec.detection import MIN_FACE_SIZE, load_detector
    from facerec.embedding import load_embedder

    models = shared_path("models")
    profile = PROFILES["sface"]
    detector = load_detector(profile.detectors[0], [models / f.filename for f in profile.detectors[0].files],
                             profile.confidence)
    embedder = load_embedder(profile.embedder, models / profile.embedder.files[0].filename)
    # Biden's portrait, with a 40 px copy of a photo of Obama pasted at its top left corner.
    base = cv2.imread(str(shared_path("faces/known/biden/biden.jpg")))
    base = cv2.resize(base, None, fx=640 / max(base.shape[:2]), fy=640 / max(base.shape[:2]),
                      interpolation=cv2.INTER_AREA)
    source = cv2.imread(str(shared_path("faces/known/obama/obama2.jpg")))
    x1, y1, x2, y2 = detector.detect(source)[0].box
    w, h = x2 - x1, y2 - y1
    crop = source[max(0, y1 - h // 2):y2 + h // 2, max(0, x1 - w // 2):x2 + w // 2]
    tiny = cv2.resize(crop, (40, round(40 * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_AREA)
    base[5:5 + tiny.shape[0], 5:5 + tiny.shape[1]] = tiny
    faces = detector.detect(base, min_size=1)
    assert min(faces[0].width, faces[0].height) < MIN_FACE_SIZE  # the tiny face is the most confident
    large = [face for face in faces if min(face.width, face.height) >= MIN_FACE_SIZE]
    assert large and large[0].box[0] > 100  # and Biden's own face is there
    dataset = tmp_path / "dataset"
    (dataset / "biden").mkdir(parents=True)
    cv2.imwrite(str(dataset / "biden" / "portrait.png"), base)
    result = run_capped("extract_embeddings.py", "--dataset", dataset, "--embeddings", tmp_path / "e.pickle",
                        "--quiet", "--model", "sface", "--detector", models, "--embedding-model",
                        models / profile.embedder.files[0].filename)
    assert result.returncode == 0, result.stderr.decode()
    stored = load(tmp_path / "e.pickle")["embeddings"][0]
    expected = embedder.embed(base, [large[0]])[0]
    assert np.linalg.norm(stored - expected) < 1e-4
