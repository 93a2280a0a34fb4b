"""Unknown faces over the clip, kept by recognize_video.py --keep-unknowns with a gallery without Lin-Manuel Miranda:
searched by photo (`unknowns.py search`), told who they look like (`list --json`), and no junk kept."""

import json

import cv2
import pytest

from conftest import run_script, shared_path
from helpers import CLIP
from test_sface import CLIP_CONFIDENCE, enrol, linked_dataset, sface_model_args

from facerec.catalogue import PROFILES, YUNET
from facerec.detection import load_detector
from facerec.unknowns.keeping import KEEP_CONFIDENCE
from facerec.unknowns.review import LOOKS_LIKE_FACTOR

SFACE = PROFILES["sface"]


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """faces/known enrolled (no Lin), the clip run with --keep-unknowns: the embeddings file."""
    root = tmp_path_factory.mktemp("search")
    embeddings = root / "embeddings.pickle"
    enrol(linked_dataset(root / "dataset"), embeddings, *sface_model_args())
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(shared_path(CLIP)),
                     "--no-display", "--confidence", CLIP_CONFIDENCE, "--keep-unknowns", *sface_model_args())
    assert run.returncode == 0, run.stderr
    return embeddings


def unknowns(embeddings, *words):
    run = run_script("unknowns.py", "--embeddings", str(embeddings), *sface_model_args(), *words)
    assert run.returncode == 0, run.stderr
    return run


def test_search_finds_lins_kept_group_from_his_photo_nearest_first(kept):
    groups = [json.loads(line) for line in unknowns(kept, "list", "--json").stdout.splitlines()]
    lin = max(groups, key=lambda group: group["faces"])  # on stage in most frames: the largest group (2 shots)
    found = json.loads(unknowns(kept, "search", str(shared_path("faces/probe/lin-manuel-miranda.png")), "--json").stdout)
    assert found and found[0]["group"] == lin["group"] and found[0]["distance"] < SFACE.threshold
    assert [item["distance"] for item in found] == sorted(item["distance"] for item in found)
    assert {"faces", "first_seen", "last_seen", "cameras"} <= set(found[0])
    text = unknowns(kept, "search", str(shared_path("faces/probe/lin-manuel-miranda.png"))).stdout
    assert text.startswith(f"distance {found[0]['distance']:.3f}: group {lin['group']}: ")


def test_a_face_never_kept_finds_no_group(kept):
    run = unknowns(kept, "search", str(shared_path("faces/probe/obama1.jpg")), "--json")  # obama is named: not kept
    assert json.loads(run.stdout) == []
    assert "no kept group" in unknowns(kept, "search", str(shared_path("faces/probe/obama1.jpg"))).stderr


def test_alex_at_the_piano_is_a_group_that_looks_like_alex_lacamoire(kept):
    groups = [json.loads(line) for line in unknowns(kept, "list", "--json").stdout.splitlines()]
    assert all("looks_like" in group for group in groups)
    suggested = [group for group in groups if group["looks_like"] is not None]
    [alex] = suggested  # Alex Lacamoire at the piano (frames 0-19), never named; nobody else is suggested
    assert alex["looks_like"]["name"] == "alex_lacamoire"
    assert SFACE.threshold <= alex["looks_like"]["distance"] < LOOKS_LIKE_FACTOR * SFACE.threshold


def test_every_kept_groups_best_crop_holds_a_face_yunet_finds_at_0_8(kept, tmp_path):
    finder = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], KEEP_CONFIDENCE)
    groups = [json.loads(line)["group"] for line in unknowns(kept, "list", "--json").stdout.splitlines()]
    assert len(groups) >= 5
    for group in groups:
        [best, *_] = unknowns(kept, "show", str(group), "--out", str(tmp_path / str(group))).stdout.splitlines()
        image = cv2.imread(best)
        assert image is not None and finder.detect(image), f"group {group}'s best crop holds no face at 0.8"
