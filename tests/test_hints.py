"""The "next:" line each script ends with: the command to run next, with the options used, that works when copied."""

import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys

import cv2
import pytest

from conftest import PROJECT_ROOT, shared_path
from test_capture import display, start_capture  # noqa: F401  (fixtures: a real window under Xvfb)

from facerec.catalogue import SFACE


def next_line(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("next: ")]
    return line.removeprefix("next: ")


def run_copied(command: str, *extra: str, env=None, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    """Run a hint as a user who pastes it into a shell in `cwd`, the project folder unless given (python being this
    interpreter)."""
    words = shlex.split(command)
    assert words[0] == "python"
    return subprocess.run([sys.executable, *words[1:], *extra], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def obama_video(path):
    """Three frames of a photo of obama enrolled from faces/known: a video the hint's recogniser must name."""
    frame = cv2.imread(str(shared_path("faces/known/obama/obama.jpg")))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    return path


def test_the_extraction_hint_repeats_the_models_and_runs_as_copied(tmp_path):
    models = shared_path("models")
    dataset = tmp_path / "my dataset"
    dataset.mkdir()
    os.symlink(shared_path("faces/known/obama"), dataset / "obama")
    embeddings = tmp_path / "it's mine" / "sface store.pickle"
    model_args = ["--model", "sface", "--detector", str(models),
                  "--embedding-model", str(models / SFACE.files[0].filename), "--confidence", "0.9"]
    # run as a user does, from the project folder
    result = subprocess.run([sys.executable, "extract_embeddings.py", "--dataset", str(dataset),
                             "--embeddings", str(embeddings), "--quiet", *model_args],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    hint = next_line(result.stdout)
    assert hint == shlex.join(["python", "recognize_video.py", "--embeddings", str(embeddings), *model_args])

    run = run_copied(hint, "--source", str(obama_video(tmp_path / "obama.avi")), "--no-display", "--json")
    assert run.returncode == 0, run.stderr
    names = [face["name"] for line in run.stdout.splitlines() for face in json.loads(line)["faces"]]
    assert names == ["obama"] * 3


def test_the_extraction_hint_leaves_out_what_was_not_given(tmp_path):
    from facerec.cli import add_detector_arguments, add_embedder_arguments, next_command, parser_for

    parser = parser_for("x", "x")
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    args = parser.parse_args([])
    assert next_command("recognize_video.py", args, embeddings=tmp_path / "e.pickle").endswith(
        f"recognize_video.py --embeddings {tmp_path / 'e.pickle'}")


def test_the_capture_hint_repeats_the_detector_options_and_runs_as_copied(start_capture, tmp_path):  # noqa: F811
    models = shared_path("models")
    dataset = tmp_path / "my photos"
    detector_args = ["--model", "sface", "--detector", str(models), "--confidence", "0.7"]
    window = start_capture("--source", str(shared_path("video/short_hamilton_clip.mp4")), "--name", "tester",
                           "--dataset", str(dataset), "--count", "1", *detector_args)
    window.save_one()
    output = window.finish()
    assert window.process.returncode == 0, output
    hint = next_line(output)
    assert hint == shlex.join(["python", str(PROJECT_ROOT / "extract_embeddings.py"), "--dataset", str(dataset),
                               *detector_args])

    # the embedder is not an option of imagecapture.py: the copied command finds SFace in the models folder, here
    # the user's own folder whose models/ holds a copy (never ../shared: a run may write where it finds its models)
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copy(models / SFACE.files[0].filename, work / "models")
    run = run_copied(hint, "--embeddings", str(tmp_path / "e.pickle"), "--quiet",
                     env={"FACEREC_MODELS_DIR": "models"}, cwd=work)
    assert run.returncode == 0, run.stderr
    assert sorted(path.name for path in (work / "models").iterdir()) == [SFACE.files[0].filename]  # nothing else
    with open(tmp_path / "e.pickle", "rb") as handle:
        store = pickle.load(handle)
    assert store["names"] == ["tester"] and store["profile"] == "sface"
