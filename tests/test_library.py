"""The package as a library (issue 20): README's example runs as written, the API's errors, and no
module of facerec/ but the scripts' own code (facerec/commands/) imports facerec.cli.

The example runs in a fresh Python process from a project folder (a copy of this checkout, as README says:
"from the project folder") holding what it names: dataset/ (faces/known), photo.jpg and other.jpg (two photos
of Obama) and clip.mp4 (the first frames of the test clip). Its models/ starts as a fresh clone's, without the
model files: they are downloaded, as README says, from a mirror on 127.0.0.1 serving ../shared/models.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, shared_path
from helpers import CLIP, checkout_copy
from test_modelfiles import serving
from test_sface import sface_model_args

import facerec
from facerec.catalogue import PROFILES, SFACE
from facerec.faces import Face

CLIP_FRAMES_USED = 40


def readme_example() -> str:
    """The Python block of README's "Use it from Python" section, as written."""
    section = (PROJECT_ROOT / "README.md").read_text().split("## Use it from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def first_frames(source, target, count):
    capture = cv2.VideoCapture(str(source))
    writer = None
    for _ in range(count):
        ok, frame = capture.read()
        assert ok
        writer = writer or cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), 30,
                                           (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    capture.release()
    writer.release()


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory):
    folder = checkout_copy(tmp_path_factory.mktemp("library_example") / "project")
    for person in sorted(shared_path("faces/known").iterdir()):  # beside the checkout's dataset/README.md
        (folder / "dataset" / person.name).symlink_to(person)
    (folder / "photo.jpg").symlink_to(shared_path("faces/probe/obama1.jpg"))
    (folder / "other.jpg").symlink_to(shared_path("faces/probe/obama3.jpg"))
    first_frames(shared_path(CLIP), folder / "clip.mp4", CLIP_FRAMES_USED)
    return folder


def test_the_readme_example_runs_as_written(example_folder, tmp_path):
    code = readme_example()
    assert "facerec.load_models(" in code and "recogniser.follow(" in code  # the block found is the example
    files = (SFACE.files[0], PROFILES["sface"].detectors[0].files[0])
    assert not any((example_folder / "models" / model_file.filename).exists() for model_file in files)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_") and key != "PYTHONPATH"}
    with serving(tmp_path / "mirror") as mirror:
        for model_file in files:
            (tmp_path / "mirror" / model_file.filename).symlink_to(shared_path(f"models/{model_file.filename}"))
        run = subprocess.run([sys.executable, "-c", code], cwd=example_folder, capture_output=True, text=True,
                             timeout=600, env={**env, "FACEREC_MODEL_MIRROR": mirror,
                                               "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr
    assert all((example_folder / "models" / model_file.filename).is_file() for model_file in files)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("obama ")  # photo.jpg: its one face is named
    frames = [line for line in lines[1:-1]]
    assert [int(line.split(" ", 1)[0]) for line in frames] == list(range(CLIP_FRAMES_USED))
    assert any("'lin'" not in line and "Unknown" in line for line in frames)  # lin is not enrolled: Unknown
    assert re.search(r"\(\d+, 'Unknown'\)", frames[0])  # faces carry int track ids
    assert lines[-1] == "True"  # two photos of obama
    assert (example_folder / "output" / "embeddings.pickle").is_file()
    # the library prints nothing of its own but the downloads it makes
    assert [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("downloading ")
            and not any(model_file.filename in line for model_file in files)] == [], run.stderr


@pytest.fixture(scope="module")
def sface(example_folder):
    return facerec.load_models("sface", models_dir=shared_path("models"))  # read only: every file is there


def test_the_api_names_verifies_and_refuses_with_the_scripts_messages(sface, example_folder, tmp_path):
    photo = cv2.imread(str(example_folder / "photo.jpg"))
    with facerec.Recogniser(sface, example_folder / "output" / "embeddings.pickle") as recogniser:
        [face] = recogniser.recognise(photo)
    assert isinstance(face, Face) and face.name == "obama" and face.distance < sface.threshold
    assert face.track is None and face.photo.startswith("obama/") and face.box == face.detected.box
    verdict = facerec.verify(photo, example_folder / "other.jpg", sface)
    assert verdict.same and verdict.threshold == sface.threshold
    blank = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(facerec.FacerecError, match="^the second image: no face found$"):
        facerec.verify(photo, blank, sface)
    with pytest.raises(facerec.FacerecError, match="does not exist: run extract_embeddings.py first"):
        facerec.Recogniser(sface, tmp_path / "none.pickle")
    openface_gallery = tmp_path / "openface.pickle"
    with pytest.raises(facerec.FacerecError, match="unknown model profile 'nope'"):
        facerec.load_models("nope")
    # the script's refusal of a gallery made by another profile, word for word
    from facerec.stores import Gallery, save_store

    save_store(Gallery.empty("openface", {}, 128), openface_gallery)
    with pytest.raises(facerec.FacerecError) as refused:
        facerec.Recogniser(sface, facerec.open_gallery(openface_gallery))
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings",
                          str(openface_gallery), "--no-display", *sface_model_args()],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and run.stderr == f"error: {refused.value}\n"


def test_enrol_returns_the_report_and_the_gallery(sface, example_folder, tmp_path):
    report = facerec.enrol(example_folder / "dataset", tmp_path / "e.pickle", sface)
    assert report.used == 9 and sorted(report.people) == ["alex_lacamoire", "biden", "kit_harington", "obama",
                                                          "rose_leslie"]
    assert report.gallery is not None and len(report.gallery) == 9
    again = facerec.enrol(example_folder / "dataset", tmp_path / "e.pickle", sface)
    assert again.reused == 9 and again.processed == 0  # incremental


def test_no_module_of_the_package_imports_the_scripts_cli():
    """facerec.cli is argparse for the scripts: only their code (facerec/commands/) uses it (DESIGN.md)."""
    commands = PROJECT_ROOT / "facerec" / "commands"
    offenders = []
    for path in sorted((PROJECT_ROOT / "facerec").rglob("*.py")):
        if path == PROJECT_ROOT / "facerec" / "cli.py" or commands in path.parents:
            continue
        package = ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            if any(name == "facerec.cli" for name in names):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_importing_the_package_loads_no_opencv():
    """`from facerec.errors import ...`, each script's first line, stays quick: the API is imported when used."""
    run = subprocess.run([sys.executable, "-c", "import facerec.errors, sys; print('cv2' in sys.modules)"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert run.stdout.strip() == "False", run.stderr
