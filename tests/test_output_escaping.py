"""Names and photo paths in what the scripts and the web server print (issue 19, items 17 and 18).

A photo name that is not UTF-8 must not put a lone surrogate in JSON (valid JSON text that no UTF-8
consumer can decode), and a gallery name or photo name holding a newline, an escape sequence, a line
separator or NUL must reach the terminal escaped (`text.printable`), never raw. Each case runs the real
scripts (or the real server) in a subprocess.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from test_sface import sface_model_args
# models: res10 from ../shared and a small stand-in OpenFace network: quick, and a face is always embedded
from test_store_target import models  # noqa: F401  (a fixture)
from web_server import Server, copied_dataset

from facerec.images import read_image

OBAMA = "faces/known/obama/obama.jpg"
CAFE = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 file name: not UTF-8, so Python holds a lone surrogate
CAFE_SHOWN = "caf\\xe9.jpg"  # as the scripts print it
# What must never reach a terminal raw: a newline, "clear the screen", a line separator, NUL, "set the title".
HOSTILE = {"new\nline": "new\\nline", "clear\x1b[2J": "clear\\x1b[2J", "sep\u2028arator": "sep\\u2028arator",
           "nul\x00": "nul\\x00", "\x1b]0;PWNED\x07": "\\x1b]0;PWNED\\x07"}
RAW = ("\x1b", "\x07", "\x00", "\u2028")


@pytest.fixture(scope="module")
def photo_video(tmp_path_factory):
    """Three frames of obama.jpg as an MJPG .avi: a face in every frame."""
    image = cv2.resize(read_image(shared_path(OBAMA)), (640, 480))
    path = tmp_path_factory.mktemp("video") / "obama.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(3):
        writer.write(image)
    writer.release()
    return path


def recognise(models, embeddings: Path, video: Path):
    """recognize_video.py --json where every face gets the gallery's nearest name (threshold 2: any distance)."""
    return run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(video), "--no-display",
                      "--json", "--threshold", "2", *models, timeout=300)


def strict_utf8_records(stdout: str) -> list[dict]:
    """Every JSON line, after checking that each string in it encodes as strict UTF-8 (no lone surrogate)."""
    records = [json.loads(line) for line in stdout.splitlines()]
    json.dumps(records, ensure_ascii=False).encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    return records


# item 17: a photo name that is not UTF-8 ------------------------------------------------------

def test_a_photo_name_that_is_not_utf8_is_escaped_in_recognize_video_json(tmp_path, models, photo_video):
    person = tmp_path / "dataset" / "obama"
    person.mkdir(parents=True)
    shutil.copy(shared_path(OBAMA), person / CAFE)
    embeddings = tmp_path / "e.pickle"
    enrolled = run_script("extract_embeddings.py", "--dataset", str(tmp_path / "dataset"), "--embeddings",
                          str(embeddings), "--quiet", *models)
    assert enrolled.returncode == 0, enrolled.stderr
    result = recognise(models, embeddings, photo_video)
    assert result.returncode == 0, result.stderr
    assert "\\udc" not in result.stdout  # json.dumps' escape of a lone surrogate
    faces = [face for record in strict_utf8_records(result.stdout) for face in record["faces"]]
    assert faces and {face["match"] for face in faces} == {f"obama/{CAFE_SHOWN}"}


def test_a_photo_name_that_is_not_utf8_is_escaped_in_the_web_api(tmp_path):
    dataset = copied_dataset(tmp_path, ("obama",))
    for photo in (dataset / "obama").iterdir():  # obama.jpg is the one the upload is nearest to
        photo.rename(photo.with_name(CAFE if photo.name == "obama.jpg" else photo.name))
    embeddings = tmp_path / "e.pickle"
    enrolled = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings),
                          "--quiet", *sface_model_args())
    assert enrolled.returncode == 0, enrolled.stderr
    server = Server(dataset, embeddings)
    try:
        status, body, _ = server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes(), raw=True)
    finally:
        server.stop()
    assert status == 200, body
    text = body.decode("utf-8")  # strict
    assert "\\udc" not in text
    [face] = strict_utf8_records(text)[0]["faces"]
    assert face["name"] == "obama" and face["match"] == f"obama/{CAFE_SHOWN}"


# item 18: names and photos that would drive the terminal -------------------------------------

@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_gallery_name_reaches_the_summary_and_json_escaped(tmp_path, models, photo_video, name):
    vector = np.random.default_rng(0).normal(size=128).astype(np.float32)
    embeddings = tmp_path / "e.pickle"
    embeddings.write_bytes(pickle.dumps({"embeddings": [vector / np.linalg.norm(vector)], "names": [name],
                                         "paths": [f"{name}/{name}.jpg"]}))
    result = recognise(models, embeddings, photo_video)
    assert result.returncode == 0, result.stderr
    for raw in RAW:
        assert raw not in result.stdout + result.stderr
    [summary] = [line for line in result.stderr.splitlines() if " frames, " in line]  # still one line
    assert f"({HOSTILE[name]} " in summary
    faces = [face for record in strict_utf8_records(result.stdout) for face in record["faces"]]
    assert faces and all(face["name"] == HOSTILE[name] for face in faces)
    assert all(face["match"] == f"{HOSTILE[name]}/{HOSTILE[name]}.jpg" for face in faces)


def test_hostile_photo_names_in_a_pairs_file_are_printed_escaped(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    title, multiline = "\x1b]0;PWNED\x07.jpg", "multi\nline.jpg"
    shutil.copy(shared_path("faces/known/biden/biden.jpg"), images / title)
    shutil.copy(shared_path("faces/known/biden/biden2.jpg"), images / multiline)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f'"{title}","{multiline}",same\n"{title}","gone\u2028.jpg",same\n')
    result = run_script("verify.py", "--pairs", str(pairs), "--images", str(images), *sface_model_args(), timeout=300)
    assert result.returncode == 0, result.stderr
    for raw in RAW:
        assert raw not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("line 2: same person: ")  # the row ends on line 2: its second field holds a newline
    assert "\\x1b]0;PWNED\\x07.jpg [" in lines[0] and "multi\\nline.jpg [" in lines[0]
    assert lines[1] == "line 3: skipped (gone\\u2028.jpg: no such file)"
    assert lines[2:] == ["1 pairs compared, 1 skipped, at threshold 1.07", "1 photos without a usable face "
                         "(their pairs are skipped):", "  gone\\u2028.jpg: no such file",
                         "accuracy 100.00% (1 of 1 labelled pairs right)"] + lines[6:]

    as_json = run_script("verify.py", "--pairs", str(pairs), "--images", str(images), "--json", *sface_model_args(),
                         timeout=300)
    assert as_json.returncode == 0, as_json.stderr
    first, second, summary = strict_utf8_records(as_json.stdout)
    assert first["photos"] == ["\\x1b]0;PWNED\\x07.jpg", "multi\\nline.jpg"]
    assert [face["photo"] for face in first["faces"]] == first["photos"]
    assert second["skipped"] == "gone\\u2028.jpg: no such file"
    assert summary["summary"]["unusable"] == {"gone\\u2028.jpg": "no such file"}
