"""Negative examples (issue 21 item 5, docs/negatives.md): "Not PERSON" kept with the gallery, and the rule every
--match strategy applies: a face is named PERSON only if it is nearer PERSON's nearest photo than PERSON's nearest
negative. The file store here (PostgreSQL: test_negatives_postgres.py, the web page: test_negatives_web.py); the
clip with the real sface models at the end."""

from __future__ import annotations

import json
import pickle
import shutil
import threading

import cv2
import numpy as np
import pytest

from conftest import run_script, shared_path
from helpers import CLIP, assert_clean_failure
from shared_faces import AUDIENCE_SHOT, clip_person
from test_sface import CLIP_CONFIDENCE, enrol, linked_dataset, sface_model_args

from facerec.errors import FacerecError
from facerec.matching import MATCHERS, UNKNOWN, make_matcher
from facerec.stores import Gallery, PickleStore, load_store, save_store
from facerec.stores.base import Negatives

DIMENSION = 16
MODELS = {"profile": "sface", "detector": "yunet", "embedder": "sface", "confidence": 0.8, "sha256": {"a.onnx": "ab"}}


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.atleast_2d(np.asarray(vectors, np.float64))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def at_distance(vector: np.ndarray, distance: float) -> np.ndarray:
    """A unit vector at exactly `distance` (L2) from unit `vector`: along the great circle towards a random direction."""
    vector = np.asarray(vector, np.float64)
    direction = np.random.default_rng(11).normal(size=vector.shape)
    direction -= direction @ vector * vector
    direction /= np.linalg.norm(direction)
    angle = 2 * np.arcsin(distance / 2)
    return (np.cos(angle) * vector + np.sin(angle) * direction)[None].astype(np.float32)


def clusters(seed: int = 0):
    """Three people, five photos each, around well-separated centres; (vectors, names, centres)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(3, DIMENSION)))
    vectors = unit(np.repeat(centres, 5, axis=0) + 0.08 * rng.normal(size=(15, DIMENSION)))
    return vectors, [name for name in ("ann", "bob", "cy") for _ in range(5)], centres


def gallery_file(path, negatives: Negatives | None = None):
    vectors, names, _ = clusters()
    save_store(Gallery(vectors, names, [f"{name}/{i}.jpg" for i, name in enumerate(names)], "sface", MODELS,
                       {}, negatives=negatives or Negatives.none(DIMENSION)), path)
    return path


# --- the rule, for every strategy ---

@pytest.mark.parametrize("strategy", sorted(MATCHERS))
def test_every_strategy_names_a_face_only_if_it_is_nearer_the_persons_photos_than_their_negatives(strategy):
    vectors, names, centres = clusters()
    stranger = unit(centres[0] + 0.25 * np.random.default_rng(5).normal(size=DIMENSION))[0]
    own = unit(centres[0] + 0.05 * np.random.default_rng(6).normal(size=DIMENSION))[0]  # one of ann's faces
    plain = make_matcher(strategy, vectors, names, 1.2)
    assert [match.name for match in plain.match(np.stack([stranger, own]))] == ["ann", "ann"]  # the wrong name

    negative = unit(stranger + 0.05 * np.random.default_rng(7).normal(size=DIMENSION))  # another crop of the stranger
    corrected = make_matcher(strategy, vectors, names, 1.2, negatives=(negative, ["ann"]))
    stranger_match, own_match = corrected.match(np.stack([stranger, own]))
    assert stranger_match.name == UNKNOWN and own_match.name == "ann"
    before = plain.match(stranger[None])[0]
    assert (stranger_match.distance, stranger_match.photo) == (before.distance, before.photo)  # the same evidence

    # the rule's boundary: the person's nearest photo against the nearest negative, measured from the face
    nearest_photo = vectors[:5][np.argmin(np.linalg.norm(vectors[:5] - stranger, axis=1))]
    to_photo = float(np.linalg.norm(nearest_photo.astype(np.float64) - stranger))
    for share, name in ((1.02, "ann"), (0.98, UNKNOWN)):  # a negative a little farther, a little nearer
        negative = at_distance(stranger, share * to_photo)
        assert make_matcher(strategy, vectors, names, 1.2, negatives=(negative, ["ann"])).match(stranger[None])[0].name == name
    exactly = make_matcher(strategy, vectors, names, 1.2, negatives=(nearest_photo[None], ["ann"]))
    assert exactly.match(stranger[None])[0].name == UNKNOWN  # as near as the photo is not nearer the photo


@pytest.mark.parametrize("strategy", sorted(MATCHERS))
def test_a_negative_of_one_person_never_changes_the_name_of_another(strategy):
    vectors, names, centres = clusters()
    bob_face = unit(centres[1] + 0.05 * np.random.default_rng(9).normal(size=DIMENSION))
    matcher = make_matcher(strategy, vectors, names, 1.2, negatives=(bob_face, ["ann"]))  # right on bob's face
    assert matcher.match(bob_face)[0].name == "bob"


# --- the embeddings file ---

def test_the_file_keeps_negatives_beside_the_gallery_and_the_seeds_reader_still_reads_it(tmp_path):
    path = gallery_file(tmp_path / "embeddings.pickle")
    store = PickleStore(path)
    vector = unit(np.random.default_rng(1).normal(size=DIMENSION))[0]
    kept = store.add_negative("ann", vector, {**MODELS, "confidence": 0.6})  # the confidence makes no other vector
    assert kept.negatives.names == ["ann"] and np.array_equal(kept.negatives.vectors, vector[None])
    again = load_store(path)
    assert again.negatives.names == ["ann"] and np.array_equal(again.negatives.vectors, vector[None])
    assert again.names == kept.names and np.array_equal(again.vectors, kept.vectors)
    with open(path, "rb") as handle:  # the classic tutorial's reader: pickle.loads, then these two keys
        data = pickle.load(handle)
    assert len(data["embeddings"]) == len(data["names"]) == 15
    assert list(data["negatives"]["names"]) == ["ann"]


def test_a_file_without_negatives_is_written_as_before(tmp_path):
    path = gallery_file(tmp_path / "embeddings.pickle")
    with open(path, "rb") as handle:
        assert "negatives" not in pickle.load(handle)
    assert len(load_store(path).negatives) == 0


@pytest.mark.parametrize("person, models, message", [
    ("nobody", MODELS, "nobody is not in the gallery"),
    ("ann", {**MODELS, "profile": "openface"}, "other models"),
])
def test_a_negative_the_gallery_cannot_use_is_refused_and_the_file_is_unchanged(tmp_path, person, models, message):
    path = gallery_file(tmp_path / "embeddings.pickle")
    before = path.read_bytes()
    with pytest.raises(FacerecError, match=message):
        PickleStore(path).add_negative(person, unit(np.ones(DIMENSION))[0], models)
    with pytest.raises(FacerecError, match="has length"):
        PickleStore(path).add_negative("ann", np.ones(DIMENSION, np.float32), MODELS)
    assert path.read_bytes() == before


def test_damaged_negatives_make_the_file_unusable_with_the_reason(tmp_path):
    path = tmp_path / "embeddings.pickle"
    vectors, names, _ = clusters()
    with open(path, "wb") as handle:
        pickle.dump({"embeddings": vectors, "names": names, "profile": "sface",
                     "negatives": {"embeddings": np.ones((1, DIMENSION), np.float32), "names": ["ann"]}}, handle)
    with pytest.raises(FacerecError, match="has length"):
        load_store(path)


def test_a_watcher_is_given_the_gallery_with_the_new_negative(tmp_path):
    path = gallery_file(tmp_path / "embeddings.pickle")
    follower = PickleStore(path)
    follower.load()
    seen, changed = [], threading.Event()
    watch = follower.watch(lambda gallery: (seen.append(gallery), changed.set()), lambda message: None)
    try:
        PickleStore(path).add_negative("bob", unit(np.ones(DIMENSION))[0], MODELS)
        assert changed.wait(30), "the watcher was not told"
    finally:
        watch.stop()
    assert seen[-1].negatives.names == ["bob"]


# --- unknowns.py not, and extraction keeping them (real sface models) ---

@pytest.fixture(scope="module")
def sface_gallery(tmp_path_factory):
    """faces/known enrolled with the sface profile by extract_embeddings.py: (dataset, embeddings)."""
    root = tmp_path_factory.mktemp("negatives")
    dataset = linked_dataset(root / "dataset")
    embeddings = root / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    return dataset, embeddings


def not_person(embeddings, *words):
    return run_script("unknowns.py", "--embeddings", str(embeddings), *sface_model_args(), "not", *words)


def test_unknowns_not_keeps_the_photos_face_and_extraction_keeps_it(sface_gallery, tmp_path):
    dataset, original = sface_gallery
    embeddings = tmp_path / "embeddings.pickle"
    shutil.copy(original, embeddings)
    lin = shared_path("faces/probe/lin-manuel-miranda.png")
    result = not_person(embeddings, "obama", str(lin))
    assert result.returncode == 0, result.stderr
    assert "as not obama (1 negative example of obama" in result.stdout
    gallery = load_store(embeddings)
    assert gallery.negatives.names == ["obama"] and gallery.negatives.vectors.shape == (1, 128)
    assert np.isclose(np.linalg.norm(gallery.negatives.vectors[0]), 1.0, atol=1e-3)

    (dataset / "obama").unlink()  # a person gone and the photos re-read: the file is rewritten, the negative stays
    result = run_script("extract_embeddings.py", "--dataset", str(dataset), "--embeddings", str(embeddings), "--quiet",
                        *sface_model_args())
    assert result.returncode == 0, result.stderr
    rewritten = load_store(embeddings)
    assert "obama" not in rewritten.names and len(rewritten) < len(gallery)
    assert rewritten.negatives.names == ["obama"]
    assert np.array_equal(rewritten.negatives.vectors, gallery.negatives.vectors)


def test_unknowns_not_refuses_what_it_cannot_keep_with_one_error_line(sface_gallery, tmp_path):
    _, embeddings = sface_gallery
    before = embeddings.read_bytes()
    two = shared_path("faces/probe/two_people.jpg")
    empty = tmp_path / "wall.png"
    cv2.imwrite(str(empty), np.full((200, 200, 3), 128, np.uint8))
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    lin = str(shared_path("faces/probe/lin-manuel-miranda.png"))
    for words, fragments in [
        (("obama", str(two)), ("2 faces found, not one", "crop it")),
        (("obama", str(empty)), ("no face found",)),
        (("obama", str(text)), ("notes.txt",)),
        (("obama", str(tmp_path / "missing.jpg")), ("missing.jpg",)),
        (("lin", lin), ("lin is not in the gallery", "obama")),
    ]:
        result = not_person(embeddings, *words)
        assert_clean_failure(result, *fragments)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert_clean_failure(not_person(tmp_path / "none.pickle", "obama", lin), "none.pickle", "extract_embeddings.py")
    openface = run_script("unknowns.py", "--embeddings", str(embeddings), "--model", "openface", "not", "obama", lin)
    assert_clean_failure(openface, "--model sface")
    assert embeddings.read_bytes() == before


# --- the clip: one correction from one crop ---

# Loose on purpose: at 1.25 (beyond the closest different people, docs/thresholds.md) the clip names Lin-Manuel
# Miranda on stage obama, the wrong name one correction must stop; which faces are his and which obama's comes
# from the by-eye truth (bench/shared_faces.py's clip_person), not from a run.
THRESHOLD = "1.25"


def clip_faces(embeddings) -> list[dict]:
    """recognize_video.py --json over the clip at THRESHOLD: every face, with its "frame"."""
    # --margin 0: the look-alike margin alone leaves Unknown most of the faces this test needs wrongly named
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(shared_path(CLIP)),
                     "--no-display", "--json", "--confidence", CLIP_CONFIDENCE, "--threshold", THRESHOLD,
                     "--margin", "0", *sface_model_args())
    assert run.returncode == 0, run.stderr
    return [{**face, "frame": record["frame"]} for record in map(json.loads, run.stdout.splitlines())
            for face in record["faces"]]


def crop_of(frame_index: int, box, path):
    """The face at `box` of the clip's frame, with half a face of margin on each side, saved as a PNG."""
    capture = cv2.VideoCapture(str(shared_path(CLIP)))
    for _ in range(frame_index + 1):
        ok, frame = capture.read()
        assert ok
    capture.release()
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    cv2.imwrite(str(path), frame[max(0, y1 - height // 2):y2 + height // 2, max(0, x1 - width // 2):x2 + width // 2])
    return path


def test_one_correction_from_one_crop_stops_a_strangers_name_on_the_clip_and_obama_keeps_his(sface_gallery, tmp_path):
    _, original = sface_gallery
    embeddings = tmp_path / "embeddings.pickle"
    shutil.copy(original, embeddings)
    before = clip_faces(embeddings)
    # Lin-Manuel Miranda (by eye) named obama: the first such face, and his track, every face of it him
    wrongly_obama = [face for face in before if face["name"] == "obama"
                     and clip_person(face["frame"], face["box"]) == "lin"]
    first = wrongly_obama[0]
    track = [(face["frame"], face["box"]) for face in before if face["track"] == first["track"]]
    assert {clip_person(frame, box) for frame, box in track} == {"lin"}
    assert sum(face["name"] == "obama" for face in before if face["track"] == first["track"]) >= 10
    own = [(face["frame"], face["box"]) for face in before if clip_person(face["frame"], face["box"]) == "obama"]
    assert len(own) >= len(AUDIENCE_SHOT) - 4 and all(face["name"] == "obama" for face in before
                                                      if clip_person(face["frame"], face["box"]) == "obama")

    crop = crop_of(first["frame"], first["box"], tmp_path / "stranger.png")
    result = not_person(embeddings, "obama", str(crop))
    assert result.returncode == 0, result.stderr

    after = {(face["frame"], tuple(face["box"])): face["name"] for face in clip_faces(embeddings)}
    assert [after[frame, tuple(box)] for frame, box in track if after[frame, tuple(box)] == "obama"] == []
    assert [after[frame, tuple(box)] for frame, box in own] == ["obama"] * len(own)


def test_a_running_follower_names_with_the_negative_another_process_kept(tmp_path):
    """follower.GalleryFollower (recognize_video.py's and the server's live gallery) swaps in the gallery with the
    negative, and its matcher applies the rule from then on."""
    import time
    from types import SimpleNamespace

    from facerec.follower import GalleryFollower, Naming

    path = gallery_file(tmp_path / "embeddings.pickle")
    store = PickleStore(path)
    gallery = store.load()
    naming = Naming("nearest", 1.2)
    recogniser = SimpleNamespace(embedder=SimpleNamespace(dimension=DIMENSION), matcher=naming.matcher(gallery))
    face = gallery.vectors[2]
    assert recogniser.matcher.match(face)[0].name == "ann"
    follower = GalleryFollower(store, recogniser, naming, "sface", gallery, warn=pytest.fail)
    with follower.following():
        PickleStore(path).add_negative("ann", face, MODELS)  # another process's store
        deadline = time.monotonic() + 30
        while recogniser.matcher.match(face)[0].name == "ann" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert recogniser.matcher.match(face)[0].name == UNKNOWN and follower.gallery.negatives.names == ["ann"]
