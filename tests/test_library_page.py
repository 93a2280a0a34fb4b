"""docs/library.md's programs, each run as written in a fresh Python process, in the page's order, in a folder
laid out as the page says (models/, dataset/, group.jpg, photo.jpg, other.jpg); and the library's downloads,
which it logs and never prints.

The camera of the last program is tests/paced_camera.py's FIFO, fed the clip's frames of Lin-Manuel Miranda:
another process enrols him while the program runs, and the program names him without a restart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from paced_camera import LIN_FRAMES, LIN_PHOTO, names, y4m_frames
from test_modelfiles import SFACE_DOWNLOADS, serving
from test_sface import linked_dataset, sface_model_args

import fifo_camera

PAGE = PROJECT_ROOT / "docs" / "library.md"
# what tells each program of the page apart, in the page's order
PROGRAMS = {"enrol": "facerec.enrol(", "photo": "recogniser.recognise(", "verify": "facerec.verify(",
            "follow": "recogniser.watching_gallery()"}


def page_programs() -> dict[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == len(PROGRAMS), f"docs/library.md has {len(blocks)} Python blocks"
    for (name, marker), block in zip(PROGRAMS.items(), blocks):
        assert marker in block, f"the page's program {name!r} (with {marker}) is not where it was"
    return dict(zip(PROGRAMS, blocks))


def run(code: str, folder, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=folder, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})})


@pytest.fixture(scope="module")
def programs():
    return page_programs()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("library_page")
    (folder / "models").symlink_to(shared_path("models"))
    linked_dataset(folder / "dataset")
    (folder / "group.jpg").symlink_to(shared_path("faces/probe/obama_and_biden.jpg"))
    (folder / "photo.jpg").symlink_to(shared_path("faces/probe/obama1.jpg"))
    (folder / "other.jpg").symlink_to(shared_path("faces/probe/obama3.jpg"))
    return folder


@pytest.fixture(scope="module")
def enrolled(programs, folder):
    """The first program's two runs: the first enrolment, then the incremental one."""
    return run(programs["enrol"], folder), run(programs["enrol"], folder)


def test_the_enrolment_program_prints_the_report_and_one_error_line(programs, folder, enrolled, tmp_path):
    first, again = enrolled
    assert (first.returncode, first.stderr) == (0, "") and (again.returncode, again.stderr) == (0, "")
    assert first.stdout == "9 photos of 5 people (9 new, 0 reused)\n"
    assert again.stdout == "9 photos of 5 people (0 new, 9 reused)\n"
    assert (folder / "output" / "embeddings.pickle").is_file()
    (tmp_path / "models").symlink_to(shared_path("models"))  # but no dataset/
    failed = run(programs["enrol"], tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert re.fullmatch(r"error: [^\n]*dataset[^\n]*\n", failed.stderr), failed.stderr


def test_the_photo_program_names_each_face_and_draws_it(programs, folder, enrolled):
    result = run(programs["photo"], folder)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    lines = result.stdout.splitlines()
    assert {"biden", "obama"} <= {line.split()[0] for line in lines}
    drawn, photo = cv2.imread(str(folder / "group-named.jpg")), cv2.imread(str(folder / "group.jpg"))
    assert drawn.shape == photo.shape
    for line in lines:  # each face's box drawn on its left edge: green when named, red when Unknown
        x1, y1, x2, y2 = map(int, re.search(r"\((\d+), (\d+), (\d+), (\d+)\)", line).groups())
        colour = (0, 0, 230) if line.startswith("Unknown ") else (0, 200, 0)
        edge = drawn[y1 + 1:y2 - 1, x1].astype(int)  # JPEG moves the colour a little
        assert np.abs(edge - colour).max(axis=1).mean() < 60, line
        assert np.abs(photo[y1 + 1:y2 - 1, x1].astype(int) - colour).max(axis=1).mean() >= 60, line


def test_the_verify_program_says_two_photos_of_obama_are_one_person(programs, folder):
    result = run(programs["verify"], folder)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert re.fullmatch(r"same person \(distance 0\.\d\d, threshold \d\.\d\d\)\n", result.stdout), result.stdout


def test_the_camera_program_names_a_person_another_process_enrols_meanwhile(programs, folder, enrolled,
                                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(folder)  # the program's relative paths (the camera below starts it here)
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    fifo = tmp_path / "camera.y4m"
    camera = fifo_camera.PacedCamera(fifo, [sys.executable, "-c", programs["follow"], str(fifo)],
                                     y4m_frames(LIN_FRAMES))
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the first frames")
        before = len(camera.records)
        enrolment = run_script("extract_embeddings.py", "--dataset",
                               str(linked_dataset(tmp_path / "with_lin", {"lin": shared_path(LIN_PHOTO)})),
                               "--embeddings", str(folder / "output" / "embeddings.pickle"), "--quiet",
                               *sface_model_args())
        assert enrolment.returncode == 0, enrolment.stderr
        camera.wait_for(lambda: any("lin" in names(record) for record in camera.records), "lin named")
        assert all(record["faces"] for record in camera.records[:before])  # his face was there, Unknown
        assert not any("lin" in names(record) for record in camera.records[:before])
        assert all(isinstance(face["track"], int) for record in camera.records for face in record["faces"])
    finally:
        returncode = camera.stop()
    assert returncode == 0 and "".join(camera.stderr) == ""


LOAD = "import sys\nimport facerec\nfacerec.load_models('sface', models_dir=sys.argv[1])\n"
KEEP_RECORDS = ("import logging\nrecords = []\nhandler = logging.Handler()\nhandler.emit = records.append\n"
                "logging.getLogger('facerec').addHandler(handler)\nlogging.getLogger('facerec').setLevel(logging.INFO)\n")


def test_the_library_logs_its_downloads_and_prints_nothing_while_a_script_shows_them(tmp_path):
    with serving(tmp_path / "mirror") as mirror:
        for model_file in SFACE_DOWNLOADS:
            (tmp_path / "mirror" / model_file.filename).symlink_to(shared_path(f"models/{model_file.filename}"))
        env = {"FACEREC_MODEL_MIRROR": mirror}
        quiet = run(LOAD, tmp_path, str(tmp_path / "quiet"), env=env)
        logged = run(KEEP_RECORDS + LOAD + "print('\\n'.join(record.getMessage() for record in records))", tmp_path,
                     str(tmp_path / "logged"), env=env)
        person = tmp_path / "dataset" / "obama"
        person.mkdir(parents=True)
        (person / "obama.jpg").symlink_to(shared_path("faces/known/obama/obama.jpg"))
        script = run_script("extract_embeddings.py", "--model", "sface", "--dataset", str(tmp_path / "dataset"),
                            "--embeddings", str(tmp_path / "e.pickle"), "--quiet",
                            env={**env, "FACEREC_MODELS_DIR": str(tmp_path / "script")})
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert all((tmp_path / "quiet" / model_file.filename).is_file() for model_file in SFACE_DOWNLOADS)
    assert logged.returncode == 0, logged.stderr
    assert logged.stdout.splitlines() == [f"downloading {model_file.filename} to {tmp_path / 'logged'}/"
                                          for model_file in SFACE_DOWNLOADS]
    assert script.returncode == 0, script.stderr
    assert [line for line in script.stderr.splitlines() if line.startswith("downloading ")] == [
        f"downloading {model_file.filename} to {tmp_path / 'script'}/" for model_file in SFACE_DOWNLOADS]
