"""verify.py on real photos with the sface profile: one pair, and a labelled pairs file.

Expected distances are measured here with the detector and embedder directly
(most confident face, as ../shared/README.md's photos are described in
bench/shared_faces.py), not taken from the script's output.
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PROJECT_ROOT, run_script, shared_path
from helpers import assert_clean_failure, device_node
from shared_faces import PROBE_FACES, SAME_PICTURE_AS_KNOWN, left_to_right
from test_sface import SFACE_THRESHOLD, models, sface_model_args  # noqa: F401  (models: a fixture)

from facerec.images import read_image

TWO_PEOPLE = "faces/probe/two_people.jpg"
BIDEN = "faces/known/biden/biden.jpg"


def verify(*args):
    return run_script("verify.py", *args, *sface_model_args(), timeout=300)


def face_and_vector(detector, embedder, path):
    """The most confident face of the photo and its vector, measured here."""
    image = read_image(path)
    face = detector.detect(image)[0]
    return face, embedder.embed(image, [face])[0].astype(np.float64)


@pytest.fixture(scope="module")
def biden_of_two_people(tmp_path_factory):
    """The right half of two_people.jpg (obama left, biden right): biden's face, cut from the picture of biden.jpg."""
    image = read_image(shared_path(TWO_PEOPLE))
    path = tmp_path_factory.mktemp("photos") / "two_people_right.png"
    cv2.imwrite(str(path), image[:, image.shape[1] // 2 :])
    return path


@pytest.fixture(scope="module")
def faceless_photo(tmp_path_factory):
    """The lower part of two_people.jpg: shoulders and suits, no face."""
    image = read_image(shared_path(TWO_PEOPLE))
    path = tmp_path_factory.mktemp("photos") / "no_face.png"
    cv2.imwrite(str(path), image[300:])
    return path


def test_biden_in_two_people_and_biden_jpg_are_the_same_person(models, biden_of_two_people):
    result = verify(str(biden_of_two_people), str(shared_path(BIDEN)))
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("same person: distance ")
    (face_a, vector_a), (face_b, vector_b) = (face_and_vector(*models, path)
                                              for path in (biden_of_two_people, shared_path(BIDEN)))
    distance = np.linalg.norm(vector_a - vector_b)
    assert distance < 0.4  # one picture at two sizes: far under the threshold (0.316 measured)
    assert line == (f"same person: distance {distance:.4f}, threshold {SFACE_THRESHOLD:g}; "
                    f"{biden_of_two_people} {list(face_a.box)}, {shared_path(BIDEN)} {list(face_b.box)}")


@pytest.mark.parametrize("obama, biden", [("faces/known/obama/obama.jpg", "faces/known/biden/biden.jpg"),
                                          ("faces/known/obama/obama2.jpg", "faces/known/biden/biden2.jpg"),
                                          ("faces/probe/obama1.jpg", BIDEN)])
def test_obama_and_biden_are_different_people(obama, biden):
    result = verify(str(shared_path(obama)), str(shared_path(biden)))
    assert result.returncode == 0, result.stderr  # a verdict either way is a success
    assert result.stdout.startswith("different people: distance ")
    distance = float(result.stdout.split()[3].rstrip(","))
    assert distance >= SFACE_THRESHOLD


def test_json_is_one_object_with_the_verdict_distance_threshold_and_both_faces(models, biden_of_two_people):
    photos = [shared_path("faces/probe/obama1.jpg"), biden_of_two_people]
    result = verify("--json", *map(str, photos))
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert set(record) == {"verdict", "same", "distance", "threshold", "faces"}
    (face_a, vector_a), (face_b, vector_b) = (face_and_vector(*models, path) for path in photos)
    assert record["verdict"] == "different people" and record["same"] is False
    assert record["distance"] == pytest.approx(np.linalg.norm(vector_a - vector_b), abs=1e-4)
    assert record["threshold"] == SFACE_THRESHOLD
    assert [set(face) for face in record["faces"]] == [{"photo", "box", "confidence"}] * 2
    assert [face["photo"] for face in record["faces"]] == list(map(str, photos))
    assert [face["box"] for face in record["faces"]] == [list(face_a.box), list(face_b.box)]
    assert record["faces"][0]["confidence"] == pytest.approx(face_a.confidence, abs=1e-4)
    # --threshold moves the verdict, not the distance
    above = json.loads(verify("--json", "--threshold", str(record["distance"] + 0.01), *map(str, photos)).stdout)
    assert (above["verdict"], above["same"], above["distance"]) == ("same person", True, record["distance"])


def test_a_photo_without_a_usable_face_is_exit_2_naming_it(faceless_photo, tmp_path):
    biden = str(shared_path(BIDEN))
    assert_clean_failure(verify(biden, str(faceless_photo)), f"error: {faceless_photo}: no face found")
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    assert_clean_failure(verify(str(not_an_image), biden), f"error: {not_an_image}: not a readable image")
    assert_clean_failure(verify(biden, str(tmp_path / "gone.jpg")), f"error: {tmp_path / 'gone.jpg'}: no such file")
    for result in (verify(biden), verify(biden, biden, "--pairs", str(not_an_image))):
        assert_clean_failure(result, "give two photos")


def labelled_photos():
    """(photo under faces/, person) for the photos whose one face is known: faces/known and one-face probes."""
    known = [(path.relative_to(shared_path("faces")).as_posix(), path.parent.name)
             for path in sorted(shared_path("faces/known").glob("*/*"))]
    probes = [(f"probe/{name}", people[0]) for name, people in sorted(PROBE_FACES.items()) if len(people) == 1]
    return known + probes + [(f"probe/{name}", "obama") for name in sorted(SAME_PICTURE_AS_KNOWN)]


LABEL_WORDS = {True: ("Yes", "1", "same", "SAME"), False: ("No", "0", "different", "Different")}


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory, faceless_photo):
    """Every two labelled photos (labels spelled every allowed way), a header, and two pairs with an unusable photo.

    Returns (pairs file, [(photo_x, photo_y, same?)] of the usable pairs, in file order).
    """
    folder = tmp_path_factory.mktemp("pairs")  # the images folder: photos are read only inside it
    for part in ("known", "probe"):
        shutil.copytree(shared_path(f"faces/{part}"), folder / part)
    shutil.copy(faceless_photo, folder / faceless_photo.name)
    (folder / "notes.jpg").write_text("not a photo")
    rows, pairs = ["photo_x,photo_y,label"], []
    for index, ((first, person1), (second, person2)) in enumerate(itertools.combinations(labelled_photos(), 2)):
        same = person1 == person2
        rows.append(f"{first},{second},{LABEL_WORDS[same][index % 4]}")
        pairs.append((first, second, same))
    rows += ["", f"{faceless_photo.name},known/obama/obama.jpg,no", "known/biden/biden.jpg,notes.jpg,Yes"]
    path = folder / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, pairs


@pytest.fixture(scope="module")
def pair_distances(models, pairs_file):
    """The distance of each usable pair of the pairs file, measured here."""
    _, pairs = pairs_file
    photos = {photo for first, second, _ in pairs for photo in (first, second)}
    vectors = {photo: face_and_vector(*models, shared_path(f"faces/{photo}"))[1] for photo in photos}
    return [np.linalg.norm(vectors[first] - vectors[second]) for first, second, _ in pairs]


@pytest.mark.parametrize("threshold", [None, 0.7, 1.3])
def test_pairs_file_gives_the_accuracy_errors_and_extreme_distances_measured_here(pairs_file, pair_distances,
                                                                                  faceless_photo, threshold):
    path, pairs = pairs_file
    options = [] if threshold is None else ["--threshold", str(threshold)]
    result = verify("--pairs", str(path), "--json", *options)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    summary = records.pop()["summary"]

    threshold = SFACE_THRESHOLD if threshold is None else threshold
    distances = pair_distances
    labels = [same for _, _, same in pairs]
    false_matches = sum(d < threshold and not same for d, same in zip(distances, labels))
    false_non_matches = sum(d >= threshold and same for d, same in zip(distances, labels))
    assert summary["compared"] == summary["labelled"] == len(pairs) and summary["skipped"] == 2
    assert (summary["false_matches"], summary["false_non_matches"]) == (false_matches, false_non_matches)
    assert summary["correct"] == len(pairs) - false_matches - false_non_matches
    assert summary["accuracy"] == pytest.approx(summary["correct"] / len(pairs))
    assert summary["largest_same"] == pytest.approx(max(d for d, s in zip(distances, labels) if s), abs=1e-4)
    assert summary["smallest_different"] == pytest.approx(min(d for d, s in zip(distances, labels) if not s), abs=1e-4)
    assert summary["unusable"] == {faceless_photo.name: "no face found", "notes.jpg": "not a readable image"}
    if threshold == 0.7:
        assert false_non_matches > 0 and false_matches == 0  # the errors counted are of both kinds across the runs
    if threshold == 1.3:
        assert false_matches > 0

    compared, skipped = records[: len(pairs)], records[len(pairs) :]
    assert [record["photos"] for record in compared] == [[first, second] for first, second, _ in pairs]
    assert [record["label"] for record in compared] == labels
    assert [record["distance"] for record in compared] == pytest.approx(distances, abs=1e-4)
    assert [record["line"] for record in skipped] == [len(pairs) + 3, len(pairs) + 4]  # after the header and a blank line
    assert [bool(record["skipped"]) for record in skipped] == [True, True]


def test_pairs_file_as_text_ends_with_the_summary(pairs_file, faceless_photo):
    path, pairs = pairs_file
    result = verify("--pairs", str(path), "--images", str(path.parent))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("line ")]) == len(pairs) + 2
    assert f"line {len(pairs) + 3}: skipped ({faceless_photo.name}: no face found)" in lines
    summary = lines[len(pairs) + 2 :]
    assert summary[0] == f"{len(pairs)} pairs compared, 2 skipped, at threshold {SFACE_THRESHOLD:g}"
    assert summary[1] == "2 photos without a usable face (their pairs are skipped):"
    assert summary[4].startswith("accuracy ") and summary[5].startswith("errors: ")
    assert summary[6].startswith("largest same-person distance ")


def test_malformed_rows_are_an_error_naming_the_line(tmp_path):
    photo = shared_path(BIDEN)
    for row, reason in ((f"{photo},{photo},maybe", "label 'maybe' is none of"),
                        (f"{photo}", "1 fields, expected photo_x,photo_y[,label]"),
                        (f"{photo},,yes", "a photo is missing")):
        pairs = tmp_path / "pairs.csv"
        pairs.write_text(f"photo_x,photo_y,label\n{photo},{photo},yes\n\n{row}\n")
        assert_clean_failure(verify("--pairs", str(pairs)), f"error: pairs file {pairs}, line 4: {reason}")


def test_pairs_without_label_or_header_are_relative_to_the_pairs_file_by_default(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(shared_path(BIDEN if name == "a.jpg" else "faces/known/biden/biden2.jpg"), tmp_path / name)
    (tmp_path / "pairs.csv").write_text("a.jpg,b.jpg\nb.jpg,a.jpg\n")
    result = verify("--pairs", str(tmp_path / "pairs.csv"))
    assert result.returncode == 0, result.stderr
    [first, second, summary] = result.stdout.splitlines()
    assert first.startswith("line 1: same person: distance ") and "labelled" not in first
    assert second.startswith("line 2: same person: distance ")
    assert summary == f"2 pairs compared, 0 skipped, at threshold {SFACE_THRESHOLD:g}"
    # read from another folder, no photo is found (the first row is then taken for a header): an error
    result = verify("--pairs", str(tmp_path / "pairs.csv"), "--images", str(tmp_path / "elsewhere"))
    assert_clean_failure(result, "none of the 1 pairs", "--images")
    assert "line 2: skipped (b.jpg: no such file; a.jpg: no such file)" in result.stdout


# issue 19 item 19: a pairs file reads only inside --images, names what is not a file, and is streamed -----

def images_and_outside(tmp_path):
    """tmp/images with a.jpg and b.jpg (biden), tmp/outside/x.jpg (biden too: it would be compared if read)."""
    images, outside = tmp_path / "images", tmp_path / "outside"
    for folder, names in ((images, ("a.jpg", "b.jpg")), (outside, ("x.jpg",))):
        folder.mkdir()
        for name in names:
            shutil.copy(shared_path(BIDEN if name != "b.jpg" else "faces/known/biden/biden2.jpg"), folder / name)
    return images, outside


def test_pairs_photos_outside_images_are_skipped_as_such_and_not_read(tmp_path):
    images, outside = images_and_outside(tmp_path)
    (images / "out_link.jpg").symlink_to(outside / "x.jpg")  # a link out of the folder
    (images / "in_link.jpg").symlink_to("a.jpg")  # a link inside it is the photo it leads to
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"a.jpg,b.jpg,same\na.jpg,../outside/x.jpg,same\na.jpg,out_link.jpg,same\n"
                     f"a.jpg,{outside / 'x.jpg'},same\nb.jpg,in_link.jpg,same\n")
    result = verify("--pairs", str(pairs), "--images", str(images))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("line 1: same person: ") and lines[4].startswith("line 5: same person: ")
    outside_reason = f"outside the --images folder ({images})"
    assert lines[1:4] == [f"line 2: skipped (../outside/x.jpg: {outside_reason})",
                          f"line 3: skipped (out_link.jpg: {outside_reason})",
                          f"line 4: skipped ({outside / 'x.jpg'}: {outside_reason})"]
    assert lines[5] == "2 pairs compared, 3 skipped, at threshold 1.07"
    # a pair whose two photos are outside names both
    pairs.write_text("a.jpg,b.jpg\n../outside/x.jpg,out_link.jpg\n")
    result = verify("--pairs", str(pairs), "--images", str(images))
    assert result.stdout.splitlines()[1] == (f"line 2: skipped (../outside/x.jpg: {outside_reason}; "
                                             f"out_link.jpg: {outside_reason})")


def test_a_device_or_fifo_is_named_as_such_not_as_missing(tmp_path):
    images, _ = images_and_outside(tmp_path)
    os.mkfifo(images / "fifo.jpg")
    device_node(images, "zero.jpg", 1, 5)  # a private /dev/zero
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a.jpg,b.jpg\na.jpg,fifo.jpg\na.jpg,zero.jpg\n")
    result = verify("--pairs", str(pairs), "--images", str(images))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "line 2: skipped (fifo.jpg: not a regular file (a FIFO))"
    assert lines[2] == "line 3: skipped (zero.jpg: not a regular file (a character device))"
    # two photos on the command line: the user's own paths, read wherever they are, and named as well
    assert_clean_failure(verify(str(images / "a.jpg"), "/dev/zero"), "error: /dev/zero: not a regular file (a character device)")
    assert_clean_failure(verify("--pairs", str(images / "fifo.jpg")), "is a FIFO, not a regular file")


def peak_rss_kb(*args: str, out: Path) -> int:
    """Run verify.py (stdout to `out`) and give its peak resident memory, from the kernel's accounting of that child."""
    with open(out, "w") as stdout, open(out.with_suffix(".err"), "w+") as stderr:
        process = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "verify.py"), *args, *sface_model_args()],
                                   stdout=stdout, stderr=stderr, cwd=PROJECT_ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        assert process.returncode == 0, stderr.read()
    return usage.ru_maxrss


def test_a_pairs_file_of_many_rows_of_one_photo_is_streamed(tmp_path):
    images, _ = images_and_outside(tmp_path)
    rss = {}
    for rows in (1_000, 200_000):
        pairs = tmp_path / f"pairs{rows}.csv"
        pairs.write_text("a.jpg,b.jpg,same\n" * rows)
        rss[rows] = peak_rss_kb("--pairs", str(pairs), "--images", str(images), out=tmp_path / "out.txt")
        lines = (tmp_path / "out.txt").read_text().splitlines()
        assert len(lines) == rows + 4 and lines[rows] == f"{rows} pairs compared, 0 skipped, at threshold 1.07"
    # held whole, 200,000 rows took 115 MB more than 1,000 (peak RSS 337 MB against 220 MB); streamed, nothing more
    assert rss[200_000] - rss[1_000] < 30 * 1024, rss


def test_a_photo_of_several_faces_is_announced_and_face_chooses_another(models):  # noqa: F811
    """Issue 36: two_people.jpg (obama and biden) against biden.jpg: verify.py says which face it compared, and
    the option its warning names compares the other (biden: the same person)."""
    detector, _ = models
    faces = detector.detect(read_image(shared_path(TWO_PEOPLE)))
    assert len(faces) == 2
    photos = [str(shared_path(TWO_PEOPLE)), str(shared_path(BIDEN))]
    first = verify("--json", *photos)
    assert first.returncode == 0, first.stderr
    [warning] = first.stderr.splitlines()
    assert warning == (f"warning: {photos[0]} holds 2 faces; compared the most confident, box {faces[0].box}; "
                       "--face 2,1 compares the next")
    assert json.loads(first.stdout)["faces"][0]["box"] == list(faces[0].box)
    second = verify("--json", "--face", "2,1", *photos)
    assert second.returncode == 0, second.stderr
    assert f"compared face 2 by confidence, box {faces[1].box}" in second.stderr
    records = [json.loads(run.stdout) for run in (first, second)]
    assert records[1]["faces"][0]["box"] == list(faces[1].box)
    assert {record["verdict"] for record in records} == {"same person", "different people"}  # one is biden
    assert_clean_failure(verify("--face", "3", *photos), "holds 2 usable faces, not 3")
    single = verify(photos[1], photos[1])
    assert single.returncode == 0 and single.stderr == ""  # one face: nothing to announce


def test_verdict_and_face_reprs_are_short(models):  # noqa: F811
    from facerec.faces import Face
    from facerec.models import load_models
    from facerec.verification import verify as verify_api

    loaded = load_models("sface", detector=shared_path("models"),
                         embedder=shared_path("models") / "face_recognition_sface_2021dec_int8bq.onnx")
    verdict = verify_api(shared_path(BIDEN), shared_path(TWO_PEOPLE), loaded, ranks=(1, 2))
    text = repr(verdict)
    assert text.startswith("Verdict(") and len(text) < 160 and "array" not in text, text
    assert verdict.second.rank == 2 and verdict.second.faces == 2
    face = Face(verdict.first.face)
    assert repr(face).startswith("Face(box=") and len(repr(face)) < 120 and "array" not in repr(face), repr(face)
