"""The faster embedder runtime (OpenVINO on SFace's derived float32 file) and detection one frame ahead:
the same vectors, the same names on the shared photos and the clip, OpenCV's DNN when the runtime is missing."""

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import threading

import numpy as np
import pytest

from conftest import require, shared_path
from helpers import CLIP
from shared_faces import PROBE_FACES

from facerec import modelfiles
from facerec.catalogue import PROFILES, SFACE, YUNET
from facerec.detection import load_detector
from facerec.embedding import RUNTIME_VARIABLE, OpenVinoSFaceEmbedder, SFaceEmbedder, load_embedder
from facerec.errors import FacerecError
from facerec.images import read_image
from facerec.matching import make_matcher
from facerec.pipelining import detected_ahead
from facerec.plainonnx import fold_block_quantised, plain_model
from facerec.recognition import FacePipeline
from facerec.running import run_recognition
from facerec.tracking import Tracker
from facerec.video import open_source

SFACE_PROFILE = PROFILES["sface"]


def require_runtime() -> None:
    for module in ("openvino", "onnx"):
        require(importlib.util.find_spec(module) is not None,
                f"{module} is not installed (pip install -r requirements.txt)")


@pytest.fixture(scope="module")
def sface_models():
    """(detector, OpenVINO embedder, OpenCV embedder) on ../shared/models."""
    require_runtime()
    models = shared_path("models")
    detector = load_detector(YUNET, [models / YUNET.files[0].filename], SFACE_PROFILE.confidence)
    path = models / SFACE.files[0].filename
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_VARIABLE, "opencv")
        opencv = load_embedder(SFACE, path)
    return detector, load_embedder(SFACE, path), opencv


def photo_faces(detector):
    """(image, faces) of every photo of faces/known and of the probe photos whose people are known."""
    photos = sorted(shared_path("faces/known").glob("*/*")) + [shared_path("faces/probe") / name for name in PROBE_FACES]
    return [(image, detector.detect(image)) for image in map(read_image, photos)]


def test_the_plain_sface_file_derives_to_the_catalogued_checksum():
    require_runtime()
    data = fold_block_quantised(shared_path("models") / SFACE.files[0].filename)
    assert hashlib.sha256(data).hexdigest() == SFACE.plain.sha256
    assert len(data) == SFACE.plain.size


def test_openvino_gives_opencvs_vectors_and_names_on_the_shared_photos(sface_models):
    detector, faster, opencv = sface_models
    assert type(faster) is OpenVinoSFaceEmbedder and type(opencv) is SFaceEmbedder
    pairs = photo_faces(detector)
    assert sum(len(faces) for _, faces in pairs) > 20
    new = np.vstack([faster.embed(image, faces) for image, faces in pairs if faces])
    old = np.vstack([opencv.embed(image, faces) for image, faces in pairs if faces])
    assert np.abs(new - old).max() < 1e-4  # distances then agree within 2e-4, far inside 0.01
    known = [(path.parent.name, read_image(path)) for path in sorted(shared_path("faces/known").glob("*/*"))]

    def names(embedder):
        vectors = [embedder.embed(image, detector.detect(image)[:1])[0] for _, image in known]
        matcher = make_matcher("nearest", np.array(vectors), [name for name, _ in known], SFACE_PROFILE.threshold)
        return [match.name for match in matcher.match(np.vstack([embedder.embed(image, faces)
                                                                 for image, faces in pairs if faces]))]

    assert names(faster) == names(opencv)
    assert len(set(names(faster))) >= 5  # the photos' people, not everyone Unknown


def test_another_openvino_embedder_shares_the_compiled_network_and_two_embed_at_once_as_one_alone(sface_models):
    # serve.py's sets of networks (Models.reloaded): one compilation, an inference request each
    detector, faster, opencv = sface_models
    other = faster.another()
    assert type(other) is OpenVinoSFaceEmbedder and other.threads == faster.threads
    assert other.compiled is faster.compiled and other._request is not faster._request
    assert other.sface is faster.sface  # only its alignCrop runs (const, on local values)
    cv_other = opencv.another()  # OpenCV's DNN: a network of its own (not shared between threads)
    assert type(cv_other) is SFaceEmbedder and cv_other.sface is not opencv.sface
    pairs = [(image, faces) for image, faces in photo_faces(detector) if faces]
    alone = [faster.embed(image, faces) for image, faces in pairs]
    start, got, failed = threading.Barrier(2), {}, []

    def embed_all(embedder) -> None:
        try:
            start.wait(timeout=60)
            got[id(embedder)] = [[embedder.embed(image, faces) for image, faces in pairs] for _ in range(3)]
        except Exception as error:  # a request used by two threads at once says it is busy
            failed.append(error)

    threads = [threading.Thread(target=embed_all, args=(embedder,)) for embedder in (faster, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failed and len(got) == 2
    for rounds in got.values():
        for vectors in rounds:
            for vector, expected in zip(vectors, alone):
                np.testing.assert_allclose(vector, expected, atol=1e-6)


def test_every_runtime_runs_sface_in_float32_unless_asked_and_says_what_ran(sface_models):
    # issue 30 item 1: on a processor with bf16 OpenVINO picks it unless told; the thresholds were measured in float32
    import openvino

    detector, faster, opencv = sface_models
    assert (faster.precision, opencv.precision) == ("float32", "float32")
    threads = f"{faster.threads} thread{'s' * (faster.threads > 1)}"
    assert faster.description() == f"SFace on OpenVINO, {threads}, float32"
    assert re.fullmatch(r"SFace on OpenCV's DNN, \d+ threads?, float32", opencv.description())
    path = shared_path("models") / SFACE.files[0].filename
    asked = load_embedder(SFACE, path, "bfloat16")  # only when asked for
    image = read_image(shared_path("faces/probe/obama_and_biden.jpg"))
    faces = detector.detect(image)
    moved = np.abs(asked.embed(image, faces) - opencv.embed(image, faces)).max()
    if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert asked.precision == "bfloat16" and asked.description().endswith(", bfloat16")
        assert 1e-4 < moved < 2e-2  # what float32 by default avoids, and still the same person
    else:  # OpenVINO runs float32 here, and says so
        assert asked.precision == "float32" and moved < 1e-4
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_VARIABLE, "opencv")
        with pytest.raises(FacerecError, match="precision bfloat16 needs OpenVINO"):
            load_embedder(SFACE, path, "bfloat16")
    with pytest.raises(FacerecError, match="unknown precision 'float16'"):
        load_embedder(SFACE, path, "float16")


def clip_names(detector, embedder, ahead: bool) -> list[list[str]]:
    lin = read_image(shared_path("faces/probe/lin-manuel-miranda.png"))
    photos = [(path.parent.name, read_image(path)) for path in sorted(shared_path("faces/known").glob("*/*"))]
    photos.append(("lin", lin))
    vectors = [embedder.embed(image, detector.detect(image)[:1])[0] for _, image in photos]
    matcher = make_matcher("nearest", np.array(vectors), [name for name, _ in photos], SFACE_PROFILE.threshold)
    lines = io.StringIO()
    with open_source(str(shared_path(CLIP))) as source:
        run_recognition(source, FacePipeline(detector, embedder, matcher, Tracker()), json_lines=lines, ahead=ahead)
    return [[face["name"] for face in json.loads(line)["faces"]] for line in lines.getvalue().splitlines()]


def test_the_clip_gets_the_same_names_with_openvino_and_detection_ahead(sface_models):
    detector, faster, opencv = sface_models
    before = clip_names(detector, opencv, ahead=False)  # the path before: OpenCV's DNN, one step at a time
    after = clip_names(detector, faster, ahead=True)  # as shipped
    assert len(after) == 275
    assert after == before
    named = {name for frame in after for name in frame}
    assert {"lin", "obama"} <= named


def test_opencvs_dnn_runs_sface_without_openvino_with_the_variable_or_for_a_users_own_file(monkeypatch, tmp_path):
    path = shared_path("models") / SFACE.files[0].filename
    monkeypatch.setitem(__import__("sys").modules, "openvino", None)  # as if not installed: import fails
    assert type(load_embedder(SFACE, path)) is SFaceEmbedder
    monkeypatch.undo()
    monkeypatch.setenv(RUNTIME_VARIABLE, "opencv")
    assert type(load_embedder(SFACE, path)) is SFaceEmbedder
    monkeypatch.delenv(RUNTIME_VARIABLE)
    own = tmp_path / "my_sface.onnx"  # not the catalogued name: never checked, so never derived from
    shutil.copy(path, own)
    assert type(load_embedder(SFACE, own)) is SFaceEmbedder


def test_a_damaged_kept_plain_file_is_derived_again(tmp_path):
    require_runtime()
    source = shared_path("models") / SFACE.files[0].filename
    kept = tmp_path / SFACE.plain.filename
    kept.write_bytes(b"not an onnx file")
    data = plain_model(source, SFACE.plain, tmp_path)
    assert hashlib.sha256(data).hexdigest() == SFACE.plain.sha256
    assert kept.read_bytes() == data
    assert plain_model(source, SFACE.plain, tmp_path) == data  # now from the kept copy


def test_the_kept_plain_file_is_hashed_once_and_derived_again_when_damaged(tmp_path, monkeypatch):
    require_runtime()
    monkeypatch.setenv("FACEREC_CACHE_DIR", str(tmp_path))  # where checksums are remembered
    source = shared_path("models") / SFACE.files[0].filename
    kept = tmp_path / SFACE.plain.filename
    data = plain_model(source, SFACE.plain, tmp_path)  # derived and kept
    assert plain_model(source, SFACE.plain, tmp_path) == data  # hashed once, checksum remembered
    remembered = json.loads((tmp_path / modelfiles.CHECKSUM_CACHE).read_text())
    assert remembered[str(kept.resolve())]["digests"]["sha256"] == SFACE.plain.sha256

    monkeypatch.setattr(modelfiles, "_remembered", {})  # a later run: only the cache file remembers
    with monkeypatch.context() as hashing:
        hashing.setattr(modelfiles.hashlib, "new", lambda *_: pytest.fail("an unchanged kept file was hashed again"))
        assert plain_model(source, SFACE.plain, tmp_path) == data

    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF  # same size, same modification time: still seen as changed
    stamp = kept.stat()
    kept.write_bytes(bytes(damaged))
    os.utime(kept, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert plain_model(source, SFACE.plain, tmp_path) == data  # derived again, not the damaged copy
    assert kept.read_bytes() == data


def test_detection_ahead_gives_each_frame_its_own_faces_in_order_and_errors_at_their_frame():
    models = shared_path("models")
    detector = load_detector(YUNET, [models / YUNET.files[0].filename], SFACE_PROFILE.confidence)
    with open_source(str(shared_path(CLIP))) as source:
        frames = [frame for _, frame in zip(range(12), source)]
    ahead = list(detected_ahead(enumerate(frames), detector))
    assert [index for index, _, _ in ahead] == list(range(12))
    assert all(frame is frames[index] for index, frame, _ in ahead)
    assert [[face.box for face in faces] for _, _, faces in ahead] == [
        [face.box for face in detector.detect(frame)] for frame in frames]

    class Failing:
        def detect(self, frame):
            if frame is frames[5]:
                raise RuntimeError("frame 5")
            return []

    seen = []
    with pytest.raises(RuntimeError, match="frame 5"):
        for index, _, _ in detected_ahead(enumerate(frames), Failing()):
            seen.append(index)
    assert seen == [0, 1, 2, 3, 4]


def test_a_file_is_detected_ahead_on_another_thread_and_a_live_source_is_not():
    import threading
    from types import SimpleNamespace

    from facerec.matching import VectorIndex, NearestMatcher

    class Recording:
        """A detector that notes the thread it is called on and finds nothing: which thread runs detection is
        the subject here. Real detection ahead, with the real networks on the clip, is covered by
        test_detection_ahead_gives_each_frame_its_own_faces_in_order_and_errors_at_their_frame and
        test_the_clip_gets_the_same_names_with_openvino_and_detection_ahead."""

        def __init__(self):
            self.threads = []

        def detect(self, frame):
            self.threads.append(threading.current_thread().name)
            return []

    class Frames(list):
        spec = SimpleNamespace(is_live=True)

    frames = [np.zeros((8, 8, 3), np.uint8) for _ in range(4)]
    matcher = NearestMatcher(VectorIndex(np.eye(1, 128, dtype=np.float32), ["someone"]), 1.0)
    here = threading.current_thread().name
    one_thread, two_threads = SimpleNamespace(dimension=128, threads=1), SimpleNamespace(dimension=128, threads=2)
    # a file is detected ahead, whatever threads its embedder runs on; a live source never is
    for source, embedder, thread in ((frames, one_thread, "detect-ahead"), (Frames(frames), one_thread, here),
                                     (frames, two_threads, "detect-ahead"), (Frames(frames), two_threads, here)):
        detector = Recording()
        summary = run_recognition(source, FacePipeline(detector, embedder, matcher, Tracker()))
        assert summary.frames == 4
        assert len(detector.threads) == 4 and all(name.startswith(thread) for name in detector.threads)


def test_openvino_embeds_on_two_threads_and_on_one_when_the_process_has_one_core():
    require_runtime()
    path = shared_path("models") / SFACE.files[0].filename
    cores = os.sched_getaffinity(0)
    require(len(cores) >= 2, "this machine gives the tests one core")
    embedder = load_embedder(SFACE, path)
    assert type(embedder) is OpenVinoSFaceEmbedder and embedder.threads == 2
    # extraction's embedder, beside the threads that find faces: one thread, the same vectors
    single = embedder.on_one_thread()
    assert single.threads == 1 and embedder.threads == 2 and single.on_one_thread() is single
    # or made on one thread at once (extract_embeddings.py --jobs 2): the same, compiled once
    at_once = load_embedder(SFACE, path, threads=1)
    assert at_once.threads == 1 and at_once.on_one_thread() is at_once and load_embedder(SFACE, path, threads=5).threads == 2
    detector = load_detector(YUNET, [shared_path("models") / YUNET.files[0].filename], SFACE_PROFILE.confidence)
    for image, faces in photo_faces(detector)[:4]:
        np.testing.assert_allclose(single.embed(image, faces), embedder.embed(image, faces), atol=1e-6)
        np.testing.assert_array_equal(at_once.embed(image, faces), single.embed(image, faces))
    try:
        os.sched_setaffinity(0, {min(cores)})  # as bench/benchmark.py's one-core extraction runs
        assert load_embedder(SFACE, path).threads == 1
    finally:
        os.sched_setaffinity(0, cores)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_VARIABLE, "opencv")
        assert load_embedder(SFACE, path).threads == 1  # OpenCV's DNN: OpenCV's own threads, counted as one


def test_extraction_with_two_jobs_makes_its_embedder_once_on_one_thread(monkeypatch, tmp_path):
    """extract_embeddings.py --jobs 2: the embedder beside the two threads finding faces is compiled once, on one
    thread (not on two at load and again on one); --jobs 1 keeps two."""
    require_runtime()
    require(len(os.sched_getaffinity(0)) >= 2, "this machine gives the tests one core")
    from facerec.commands.extract import main

    compiled = []
    original = OpenVinoSFaceEmbedder._compiled
    monkeypatch.setattr(OpenVinoSFaceEmbedder, "_compiled",
                        lambda self, threads, model=None: compiled.append(threads) or original(self, threads, model))
    (tmp_path / "obama").mkdir()
    for photo in shared_path("faces/known/obama").iterdir():
        os.symlink(photo, tmp_path / "obama" / photo.name)
    models = shared_path("models")
    for jobs, threads in (("2", [1]), ("1", [2])):
        compiled.clear()
        assert main(["--dataset", str(tmp_path), "--embeddings", str(tmp_path / f"e{jobs}.pickle"), "--quiet",
                     "--jobs", jobs, "--model", "sface", "--detector", str(models),
                     "--embedding-model", str(models / SFACE.files[0].filename)]) == 0
        assert compiled == threads
