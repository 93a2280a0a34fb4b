"""The face quality stage (facerec/stages/quality.py) on real photos of ../shared/faces: it orders a face
above the same face blurred or shrunk, rides in the Face record to --json, and enrolment warns of a poor photo."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from test_sface import sface_model_args

import facerec
from facerec.recognition import FacePipeline
from facerec.matching import make_matcher

KNOWN = ["alex_lacamoire/img1.jpg", "biden/biden.jpg", "kit_harington/john2.jpeg", "obama/obama.jpg",
         "rose_leslie/img2.jpg"]


@pytest.fixture(scope="module")
def sface():
    models = shared_path("models")
    return facerec.load_models("sface", detector=models, embedder=models / "face_recognition_sface_2021dec_int8bq.onnx")


@pytest.fixture(scope="module")
def pipeline(sface):
    """The recogniser's own pipeline (its stages from the catalogue) with an empty gallery: everyone Unknown."""
    return FacePipeline(sface.detector, sface.embedder, make_matcher("nearest", np.zeros((0, 128), np.float32), [],
                                                                   sface.threshold))


def quality_of_the_face(pipeline, image):
    [face] = pipeline.recognise(image)  # one face in each of these photos
    assert 0 <= face.quality <= 1 and face.values["quality"] == face.quality
    return face.quality


@pytest.mark.parametrize("photo", KNOWN)
def test_a_sharp_face_scores_above_the_same_face_blurred(pipeline, photo):
    image = cv2.imread(str(shared_path(f"faces/known/{photo}")))
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    assert quality_of_the_face(pipeline, image) > quality_of_the_face(pipeline, blurred)


@pytest.mark.parametrize("photo", KNOWN)
def test_a_large_face_scores_above_the_same_face_shrunk(pipeline, photo):
    image = cv2.imread(str(shared_path(f"faces/known/{photo}")))
    shrunk = cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    assert quality_of_the_face(pipeline, image) > quality_of_the_face(pipeline, shrunk)


def test_json_lines_carry_each_faces_quality(tmp_path):
    video = tmp_path / "photos.avi"
    image = cv2.imread(str(shared_path("faces/probe/two_people.jpg")))
    image = cv2.resize(image, (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (image.shape[1], image.shape[0]))
    for frame in (image, cv2.GaussianBlur(image, (0, 0), 4)):
        writer.write(frame)
    writer.release()
    gallery = tmp_path / "e.pickle"
    from facerec.stores import Gallery, save_store

    save_store(Gallery.empty("sface", {}, 128), gallery)
    run = run_script("recognize_video.py", "--source", str(video), "--embeddings", str(gallery), "--no-display",
                     "--json", "--every", "1", *sface_model_args())
    assert run.returncode == 0, run.stderr
    sharp, blurred = [json.loads(line)["faces"] for line in run.stdout.splitlines()]
    assert [list(face) for face in sharp] == [["box", "confidence", "name", "distance", "match", "quality", "track"]] * 2
    for face in sharp:
        assert 0 < face["quality"] <= 1 and round(face["quality"], 4) == face["quality"]
    by_track = {face["track"]: face["quality"] for face in blurred}
    assert all(face["quality"] > by_track[face["track"]] for face in sharp if face["track"] in by_track)


def test_enrolment_warns_of_a_poor_photo_and_not_of_good_ones(sface, tmp_path):
    dataset = tmp_path / "dataset"
    for person, photo in [("obama", "obama/obama.jpg"), ("biden", "biden/biden.jpg")]:
        (dataset / person).mkdir(parents=True)
        (dataset / person / "good.jpg").write_bytes(shared_path(f"faces/known/{photo}").read_bytes())
    poor = cv2.GaussianBlur(cv2.imread(str(shared_path("faces/probe/obama-240p.jpg"))), (0, 0), 3)
    cv2.imwrite(str(dataset / "obama" / "poor.jpg"), poor)
    report = facerec.enrol(dataset, tmp_path / "e.pickle", sface)
    assert report.used == 3  # a poor photo is still enrolled: the warning says so, the user decides
    poor_warnings = [warning for warning in report.warnings if "a poor photo to enrol" in warning]
    assert len(poor_warnings) == 1 and poor_warnings[0].startswith(str(dataset / "obama" / "poor.jpg"))
    assert "blurred" in poor_warnings[0]
    run = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(tmp_path / "f.pickle"),
                     "--quiet", *sface_model_args())
    assert run.returncode == 0 and f"warning: {poor_warnings[0]}\n" in run.stderr
