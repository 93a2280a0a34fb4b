"""End to end, as a user runs it: extract_embeddings.py on real photos, then recognize_video.py on the real clip.

The embedder is a small Torch7 network with OpenFace's contract and random weights: these tests
check the plumbing (files, JSON, video, reuse), not recognition; tests/test_sface.py checks that.
"""

import json
import os
import pickle

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import CLIP, CLIP_FRAMES, CLIP_SIZE, clip_frame, count_frames, stand_in_openface

ENROLLED_FRAME = 120  # a frame of the clip with exactly one face


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """dataset/ = the 5 people of faces/known (linked in place) + one frame of the clip as 'clipface'."""
    root = tmp_path_factory.mktemp("pipeline")
    dataset = root / "dataset"
    dataset.mkdir()
    for person in sorted(shared_path("faces/known").iterdir()):
        if person.is_dir():
            os.symlink(person, dataset / person.name)
    (dataset / "clipface").mkdir()
    cv2.imwrite(str(dataset / "clipface" / "frame120.png"), clip_frame(shared_path(CLIP), ENROLLED_FRAME))
    return {"root": root, "dataset": dataset, "embedder": stand_in_openface(root / "net"),
            "detector": shared_path("models"), "embeddings": root / "output" / "embeddings.pickle"}


def model_args(ws):
    return ["--detector", str(ws["detector"]), "--embedding-model", str(ws["embedder"])]


def extract(ws, dataset=None, embeddings=None):
    return run_script("extract_embeddings.py", "--dataset", str(dataset or ws["dataset"]),
                      "--embeddings", str(embeddings or ws["embeddings"]), "--quiet", *model_args(ws))


@pytest.fixture(scope="module")
def pipeline_runs(workspace):
    result = extract(workspace)
    assert result.returncode == 0, result.stderr
    output = workspace["root"] / "annotated.mp4"
    run = run_script("recognize_video.py", "--embeddings", str(workspace["embeddings"]),
                     "--source", str(shared_path(CLIP)), "--no-display", "--json", "--output", str(output),
                     "--every", "1", *model_args(workspace))  # each frame named on its own: the enrolled frame's own distance
    return result, run, output


def test_extraction_uses_every_photo_and_records_the_models(workspace, pipeline_runs):
    extraction, _, _ = pipeline_runs
    assert "10 images used for 6 people" in extraction.stdout
    with open(workspace["embeddings"], "rb") as handle:
        data = pickle.load(handle)
    assert sorted(set(data["names"])) == ["alex_lacamoire", "biden", "clipface", "kit_harington", "obama", "rose_leslie"]
    assert len(data["embeddings"]) == len(data["names"]) == len(data["paths"]) == 10
    assert all(np.asarray(v).shape == (128,) for v in data["embeddings"])
    assert np.allclose([np.linalg.norm(v) for v in data["embeddings"]], 1.0, atol=1e-5)
    assert data["profile"] == "openface"
    assert data["models"]["embedder"].startswith("OpenFace")
    assert set(data["files"]["keys"]) == set(data["paths"])  # a record for every image (format 2: in columns)
    assert "clipface/frame120.png" in data["paths"]


def test_recognition_prints_one_json_line_per_frame_and_nothing_else(pipeline_runs):
    _, run, _ = pipeline_runs
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(CLIP_FRAMES))
    for record in records:
        for face in record["faces"]:
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= CLIP_SIZE[0] and 0 <= y1 < y2 <= CLIP_SIZE[1]
            assert 0.5 < face["confidence"] <= 1
            assert face["distance"] >= 0
            assert (face["name"] == "Unknown") == (face["distance"] >= 0.55)


def test_the_enrolled_frame_read_back_from_the_video_gives_its_own_vector(pipeline_runs):
    # the frame's PNG and the same frame decoded from the video give one face and the same vector
    _, run, _ = pipeline_runs
    record = json.loads(run.stdout.splitlines()[ENROLLED_FRAME])
    [face] = record["faces"]
    assert face["name"] == "clipface"
    assert face["distance"] < 0.01
    assert face["match"] == "clipface/frame120.png"  # the stored photo it matched, as the embeddings file names it


def test_output_video_has_every_frame_at_the_clip_size(pipeline_runs):
    _, _, output = pipeline_runs
    assert count_frames(output) == (CLIP_FRAMES, CLIP_SIZE)
    assert not list(output.parent.glob(".*partial*"))


def test_summary_counts_frames_and_faces(pipeline_runs):
    _, run, _ = pipeline_runs
    records = [json.loads(line) for line in run.stdout.splitlines()]
    faces = sum(len(r["faces"]) for r in records)
    assert f"{CLIP_FRAMES} frames, {faces} faces (" in run.stderr
    assert "clipface" in run.stderr and "frames/s" in run.stderr and "end of video" in run.stderr


def test_second_run_reuses_everything_and_follows_changes(workspace, pipeline_runs):
    again = extract(workspace)
    assert "(0 processed now, 10 unchanged since the last run, 0 removed)" in again.stdout
    extra = workspace["dataset"] / "clipface" / "frame200.png"
    cv2.imwrite(str(extra), clip_frame(shared_path(CLIP), 200))
    added = extract(workspace)
    assert "11 images used for 6 people (1 processed now, 10 unchanged since the last run, 0 removed)" in added.stdout
    extra.unlink()
    removed = extract(workspace)
    assert "10 images used for 6 people (0 processed now, 10 unchanged since the last run, 1 removed)" in removed.stdout


def test_unusable_images_are_skipped_with_the_reason(workspace, tmp_path):
    dataset = tmp_path / "dataset"
    (dataset / "ann").mkdir(parents=True)
    cv2.imwrite(str(dataset / "ann" / "face.png"), clip_frame(shared_path(CLIP), ENROLLED_FRAME))
    cv2.imwrite(str(dataset / "ann" / "blank.png"), np.full((300, 300, 3), 200, np.uint8))
    (dataset / "ann" / "notes.jpg").write_text("not an image")
    (dataset / "ann" / "empty.jpg").write_bytes(b"")
    (dataset / "bob").mkdir()
    (dataset / "bob" / "blank.png").write_bytes((dataset / "ann" / "blank.png").read_bytes())
    result = extract(workspace, dataset, tmp_path / "e.pickle")
    assert result.returncode == 0, result.stderr
    assert "1 image used for 1 person" in result.stdout
    assert f"{dataset / 'ann' / 'blank.png'}: no face found" in result.stdout
    assert f"{dataset / 'ann' / 'notes.jpg'}: not a readable image" in result.stdout
    assert f"{dataset / 'ann' / 'empty.jpg'}: not a readable image" in result.stdout
    assert "no usable photo for: bob" in result.stdout


def test_no_usable_face_is_an_error_and_keeps_the_previous_file(workspace, tmp_path):
    dataset = tmp_path / "dataset"
    (dataset / "ann").mkdir(parents=True)
    cv2.imwrite(str(dataset / "ann" / "blank.png"), np.zeros((100, 100, 3), np.uint8))
    previous = tmp_path / "e.pickle"
    previous.write_bytes(workspace["embeddings"].read_bytes())
    result = extract(workspace, dataset, previous)
    assert result.returncode == 2
    assert "no usable face" in result.stderr and "Traceback" not in result.stderr
    assert previous.read_bytes() == workspace["embeddings"].read_bytes()


def test_empty_dataset_is_a_clear_error(workspace, tmp_path):
    (tmp_path / "dataset").mkdir()
    result = extract(workspace, tmp_path / "dataset", tmp_path / "e.pickle")
    assert result.returncode == 2
    assert "has no photos" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "e.pickle").exists()
