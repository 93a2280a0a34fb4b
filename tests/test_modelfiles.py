"""Model files: downloads from a real HTTP server on 127.0.0.1, checksums, and user folders left alone."""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from conftest import PROJECT_ROOT, run_script
from facerec import modelfiles
from facerec.catalogue import PROFILES, RES10_CAFFE, Mirror, ModelFile
from facerec.errors import FacerecError
from facerec.modelfiles import CHECKSUM_CACHE, download_model_file, model_path, network_files, verify_model_file

PROTOTXT = RES10_CAFFE.files[0]


@contextlib.contextmanager
def serving(served):
    """A real HTTP server on 127.0.0.1 serving the folder `served` (created); yields its base URL."""
    served.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    with serving(tmp_path / "served") as base:
        yield tmp_path / "served", base


@pytest.fixture
def closed_port():
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_file_for(content: bytes, name="weights.bin", **overrides) -> ModelFile:
    fields = dict(filename=name, url="https://example.invalid/" + name, size=len(content),
                  sha256=hashlib.sha256(content).hexdigest())
    fields.update(overrides)
    return ModelFile(**fields)


def test_good_download_is_accepted_and_complete(http_folder, tmp_path, monkeypatch):
    served, base = http_folder
    content = bytes(range(256)) * 5000
    (served / "weights.bin").write_bytes(content)
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", base)
    destination = tmp_path / "models" / "weights.bin"
    download_model_file(model_file_for(content), destination, quiet=True)
    assert destination.read_bytes() == content
    assert [p.name for p in destination.parent.iterdir()] == ["weights.bin"]


def test_real_catalogue_file_downloads_into_the_default_folder(http_folder, shared, tmp_path, monkeypatch):
    served, base = http_folder
    (served / PROTOTXT.filename).write_bytes(shared("models/deploy.prototxt").read_bytes())
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", base)
    monkeypatch.setenv("FACEREC_MODELS_DIR", str(tmp_path / "models"))
    path = model_path(PROTOTXT, None)
    assert path == tmp_path / "models" / PROTOTXT.filename
    verify_model_file(path, PROTOTXT)


def test_wrong_checksum_is_rejected_and_nothing_is_left(http_folder, tmp_path, monkeypatch):
    served, base = http_folder
    (served / "weights.bin").write_bytes(b"tampered content!")
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", base)
    expected = model_file_for(b"original content!")  # same size, other sha256
    models = tmp_path / "models"
    with pytest.raises(FacerecError) as caught:
        download_model_file(expected, models / "weights.bin", quiet=True)
    message = str(caught.value)
    assert "weights.bin" in message and f"{base}/weights.bin" in message and "sha256" in message
    assert str(models / "weights.bin") in message  # where to put it by hand
    assert list(models.iterdir()) == []


def test_truncated_download_is_rejected_by_size(http_folder, tmp_path, monkeypatch):
    served, base = http_folder
    (served / "weights.bin").write_bytes(b"half")
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", base)
    with pytest.raises(FacerecError, match="4 bytes where 8 are expected"):
        download_model_file(model_file_for(b"complete"), tmp_path / "weights.bin", quiet=True)
    assert list(tmp_path.iterdir()) == [tmp_path / "served"]


def test_http_error_names_the_status(http_folder, tmp_path, monkeypatch):
    _, base = http_folder
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", base)
    with pytest.raises(FacerecError, match="HTTP 404"):
        download_model_file(model_file_for(b"x"), tmp_path / "models" / "weights.bin", quiet=True)
    assert not (tmp_path / "models" / "weights.bin").exists()


def test_user_folder_missing_files_lists_what_was_expected_and_is_not_written(tmp_path, monkeypatch, closed_port):
    monkeypatch.setenv("FACEREC_MODEL_MIRROR", f"http://127.0.0.1:{closed_port}")  # a download would fail loudly
    (tmp_path / "deploy.prototxt").write_text("half of a pair")
    with pytest.raises(FacerecError) as caught:
        network_files(PROFILES["openface"].detectors, tmp_path)
    message = str(caught.value)
    for network in PROFILES["openface"].detectors:
        for model_file in network.files:
            assert model_file.filename in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.prototxt"]


def test_user_embedding_path_missing_is_an_error_not_a_download(tmp_path):
    with pytest.raises(FacerecError, match="does not exist"):
        model_path(PROFILES["openface"].embedder.files[0], tmp_path / "mine.t7")
    assert list(tmp_path.iterdir()) == []


def test_damaged_file_in_a_named_folder_is_caught_before_opencv_reads_it_and_the_right_one_named(tmp_path, shared):
    # a half-finished download of deploy.prototxt beside a (fake) weights file in a user folder
    (tmp_path / "deploy.prototxt").write_bytes(shared("models/deploy.prototxt").read_bytes()[:1000])
    (tmp_path / "res10_300x300_ssd_iter_140000.caffemodel").write_bytes(b"\0" * 100)
    with pytest.raises(FacerecError) as caught:
        network_files(PROFILES["openface"].detectors, tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "deploy.prototxt") in message
    assert "1,000 bytes where 28,092 are expected" in message
    assert PROTOTXT.url in message and PROTOTXT.sha256 in message
    # a folder the user named is never downloaded into: deleting the file would not bring the right one
    assert "delete" not in message.lower() and "run again" not in message


def test_shared_tensorflow_twin_is_found_and_verified(shared):
    network, paths = network_files(PROFILES["openface"].detectors, shared("models"))
    assert network.name.startswith("res10 SSD (TensorFlow")
    assert [p.name for p in paths] == ["opencv_face_detector.pbtxt", "opencv_face_detector_uint8.pb"]


# The first run: every missing file at once, and what to do -----------------------------------

OPENFACE = PROFILES["openface"]
OPENFACE_DOWNLOADS = [*OPENFACE.detectors[0].files, OPENFACE.embedder.files[0]]


def error_text(result) -> str:
    """The error of a script that failed cleanly: exit 2, no traceback, one `error:` (maybe with indented lines)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    starts = [i for i, line in enumerate(result.stderr.splitlines()) if line.startswith("error:")]
    assert len(starts) == 1, result.stderr
    return "\n".join(result.stderr.splitlines()[starts[0]:])


def offline_extract(tmp_path, models, mirror, *extra):
    return run_script("extract_embeddings.py", "--dataset", str(tmp_path), "--embeddings", str(tmp_path / "e.pickle"),
                      "--quiet", *extra, env={"FACEREC_MODELS_DIR": str(models), "FACEREC_MODEL_MIRROR": mirror})


def test_an_offline_first_run_names_every_missing_file_at_once_and_the_ways_out(tmp_path, closed_port):
    models = tmp_path / "models"
    mirror = f"http://127.0.0.1:{closed_port}"
    message = error_text(offline_extract(tmp_path, models, mirror))
    lines = message.splitlines()
    for model_file in OPENFACE_DOWNLOADS:  # detector and embedder, each with its publisher's URL and its place
        assert any(model_file.url in line and str(models / model_file.filename) in line for line in lines), message
        assert f"{mirror}/{model_file.filename}" in message  # where it was tried
    assert "FACEREC_MODEL_MIRROR" in message
    assert "--detector DIR" in message
    assert all(twin.filename in message for twin in OPENFACE.detectors[1].files)  # the TensorFlow twin also works
    assert "--embedding-model" in message
    assert "set FACEREC_MODELS_DIR to a folder that already holds them" in message
    assert f"the one set is {models}" in message
    assert "--model" not in message  # sface's files are just as missing: no way out (issue 30 item 4)
    assert not models.exists() or not any(models.iterdir())


def test_what_can_be_downloaded_is_and_only_what_fails_is_listed(http_folder, shared, tmp_path):
    served, base = http_folder
    prototxt = OPENFACE.detectors[0].files[0]
    (served / prototxt.filename).write_bytes(shared("models/deploy.prototxt").read_bytes())
    models = tmp_path / "models"
    message = error_text(offline_extract(tmp_path, models, base))
    assert sorted(p.name for p in models.iterdir()) == [prototxt.filename]  # downloaded, checked and kept
    assert str(models / prototxt.filename) not in message
    for model_file in OPENFACE_DOWNLOADS[1:]:
        assert f"{model_file.filename}: HTTP 404" in message
        assert str(models / model_file.filename) in message


def test_sface_offline_lists_its_own_two_files_and_the_other_profile_only_where_its_files_are(tmp_path, closed_port,
                                                                                               shared):
    models = tmp_path / "models"
    models.mkdir()
    for model_file in OPENFACE.detectors[1].files:  # openface's detector (the TensorFlow twin), not yet its embedder
        (models / model_file.filename).symlink_to(shared(f"models/{model_file.filename}"))
    message = error_text(offline_extract(tmp_path, models, f"http://127.0.0.1:{closed_port}", "--model", "sface"))
    sface = PROFILES["sface"]
    for model_file in (sface.detectors[0].files[0], sface.embedder.files[0]):
        assert any(model_file.url in line and str(models / model_file.filename) in line
                   for line in message.splitlines()), message
    assert "--model" not in message  # openface's embedder is missing too
    embedder = OPENFACE.embedder.files[0]
    (models / embedder.filename).symlink_to(shared("models/openface_nn4_architecture_standin.t7"))
    message = error_text(offline_extract(tmp_path, models, f"http://127.0.0.1:{closed_port}", "--model", "sface"))
    assert f"--model openface: another profile, whose files are in {models}" in message
    assert "deploy.prototxt" not in message


def test_a_damaged_file_in_the_default_folder_may_be_deleted_to_download_it_again(tmp_path, shared, monkeypatch):
    monkeypatch.setenv("FACEREC_MODELS_DIR", str(tmp_path))
    (tmp_path / PROTOTXT.filename).write_bytes(shared("models/deploy.prototxt").read_bytes()[:1000])
    with pytest.raises(FacerecError) as caught:
        model_path(PROTOTXT, None)
    assert "delete it and run again to download it" in str(caught.value).lower()


def test_models_dir_that_is_a_file_is_named_as_such(tmp_path, closed_port):
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("I am a file")
    message = error_text(offline_extract(tmp_path, not_a_folder, f"http://127.0.0.1:{closed_port}"))
    assert f"{not_a_folder}" in message and "is a file, not a folder" in message
    assert "FACEREC_MODELS_DIR" in message
    assert "cannot download" not in message
    assert not_a_folder.read_text() == "I am a file"


def test_a_named_detector_folder_that_is_a_file_is_named_as_such(tmp_path, shared):
    message = error_text(run_script("extract_embeddings.py", "--dataset", str(tmp_path), "--quiet",
                                    "--detector", str(shared("models/deploy.prototxt"))))
    assert "is a file, not a folder" in message


@pytest.mark.parametrize("option", ["--detector", "--embedding-model"])
def test_a_model_path_with_a_name_over_255_bytes_is_a_clean_error(tmp_path, shared, option):
    too_long = tmp_path / ("é" * 150) / "model.t7"  # 300 bytes in one component
    given = {"--detector": ["--detector", str(shared("models"))], "--embedding-model": []}
    given[option] = [option, str(too_long)]
    result = run_script("extract_embeddings.py", "--dataset", str(tmp_path), "--quiet",
                        *given["--detector"], *given.get("--embedding-model", []))
    message = error_text(result)
    assert "too long" in message


# Fallback addresses: the publisher first, then each mirror, every copy checked by the same checksum ---------

CONTENT = bytes(range(256)) * 400


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections (the kernel completes them) but never answers a request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def fallback_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "downloaded from the fallback" in line]


def download_past(publisher: str, tmp_path, capsys) -> tuple[str, str]:
    """Download a file whose publisher's address is `publisher` and whose one catalogued mirror serves it:
    (the mirror's base URL, the one fallback line printed)."""
    with serving(tmp_path / "mirror") as mirror:
        (tmp_path / "mirror" / "weights.bin").write_bytes(CONTENT)
        model_file = model_file_for(CONTENT, url=f"{publisher}/weights.bin",
                                    mirrors=(Mirror(f"{mirror}/weights.bin", "a test mirror"),))
        download_model_file(model_file, tmp_path / "models" / "weights.bin", quiet=True)
    assert (tmp_path / "models" / "weights.bin").read_bytes() == CONTENT
    [line] = fallback_lines(capsys.readouterr().err)
    return mirror, line


def test_a_publisher_answering_404_falls_back_to_the_catalogued_mirror_with_one_line(tmp_path, capsys):
    with serving(tmp_path / "empty") as publisher:
        mirror, line = download_past(publisher, tmp_path, capsys)
    assert f"the fallback {mirror}/weights.bin" in line and f"{publisher}/weights.bin: HTTP 404" in line


def test_a_publisher_that_never_answers_falls_back_after_the_timeout(tmp_path, silent_server, capsys, monkeypatch):
    monkeypatch.setattr(modelfiles, "DOWNLOAD_TIMEOUT_SECONDS", 1)
    mirror, line = download_past(silent_server, tmp_path, capsys)
    assert f"{silent_server}/weights.bin: no answer within 1 s" in line and f"the fallback {mirror}/weights.bin" in line


def test_a_mirror_serving_another_file_is_refused_by_the_checksum_and_the_next_one_tried(tmp_path, capsys):
    other = bytes(reversed(CONTENT))  # same size: only the checksum tells them apart
    with serving(tmp_path / "empty") as publisher, serving(tmp_path / "bad") as bad, \
            serving(tmp_path / "good") as good:
        (tmp_path / "bad" / "weights.bin").write_bytes(other)
        (tmp_path / "good" / "weights.bin").write_bytes(CONTENT)
        model_file = model_file_for(CONTENT, url=f"{publisher}/weights.bin",
                                    mirrors=(Mirror(f"{bad}/weights.bin", "a bad mirror"),
                                             Mirror(f"{good}/weights.bin", "a good mirror")))
        download_model_file(model_file, tmp_path / "models" / "weights.bin", quiet=True)
    assert (tmp_path / "models" / "weights.bin").read_bytes() == CONTENT
    [line] = fallback_lines(capsys.readouterr().err)
    assert f"{bad}/weights.bin: the download is corrupt: its sha256 is {hashlib.sha256(other).hexdigest()}" in line
    assert f"the fallback {good}/weights.bin" in line


def test_when_every_address_fails_nothing_is_left_and_each_is_named_with_its_reason(tmp_path, closed_port):
    with serving(tmp_path / "bad") as bad:
        (tmp_path / "bad" / "weights.bin").write_bytes(b"another file")
        model_file = model_file_for(CONTENT, url=f"http://127.0.0.1:{closed_port}/weights.bin",
                                    mirrors=(Mirror(f"{bad}/weights.bin", "a bad mirror"),))
        with pytest.raises(FacerecError) as caught:
            download_model_file(model_file, tmp_path / "models" / "weights.bin", quiet=True)
    message = str(caught.value)
    assert f"http://127.0.0.1:{closed_port}/weights.bin: " in message and "refused" in message.lower()
    assert f"{bad}/weights.bin: the download is corrupt" in message
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def sface_dataset(root, shared):
    """A one-person dataset for extract_embeddings.py."""
    person = root / "dataset" / "obama"
    person.mkdir(parents=True)
    shutil.copy(shared("faces/known/obama/obama.jpg"), person / "obama.jpg")
    return root / "dataset"


SFACE_DOWNLOADS = [PROFILES["sface"].detectors[0].files[0], PROFILES["sface"].embedder.files[0]]


def test_a_first_run_whose_first_address_fails_goes_on_from_the_second(tmp_path, shared):
    dataset = sface_dataset(tmp_path, shared)
    with serving(tmp_path / "empty") as first, serving(tmp_path / "second") as second:
        for model_file in SFACE_DOWNLOADS:
            shutil.copy(shared(f"models/{model_file.filename}"), tmp_path / "second" / model_file.filename)
        result = run_script("extract_embeddings.py", "--model", "sface", "--dataset", str(dataset),
                            "--embeddings", str(tmp_path / "e.pickle"), "--quiet",
                            env={"FACEREC_MODELS_DIR": str(tmp_path / "models"),
                                 "FACEREC_MODEL_MIRROR": f"{first} {second}"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "e.pickle").is_file()
    lines = fallback_lines(result.stderr)
    assert len(lines) == len(SFACE_DOWNLOADS), result.stderr  # one line a file
    for model_file, line in zip(SFACE_DOWNLOADS, lines):
        assert line.startswith(model_file.filename) and f"the fallback {second}/{model_file.filename}" in line
        assert f"{first}/{model_file.filename}: HTTP 404" in line


def test_a_first_run_where_every_address_fails_names_each_in_its_one_error(tmp_path, shared, closed_port):
    dataset = sface_dataset(tmp_path, shared)
    with serving(tmp_path / "empty") as empty, serving(tmp_path / "wrong") as wrong:
        for model_file in SFACE_DOWNLOADS:  # each name holds the other file: right size nowhere, wrong checksum
            (tmp_path / "wrong" / model_file.filename).write_bytes(b"not the model")
        closed = f"http://127.0.0.1:{closed_port}"
        message = error_text(run_script("extract_embeddings.py", "--model", "sface", "--dataset", str(dataset),
                                        "--quiet", env={"FACEREC_MODELS_DIR": str(tmp_path / "models"),
                                                        "FACEREC_MODEL_MIRROR": f"{closed} {empty} {wrong}"}))
    for model_file in SFACE_DOWNLOADS:
        tried = [line for line in message.splitlines() if line.startswith(f"  {model_file.filename}: ")]
        assert len(tried) == 3, message
        assert f"({closed}/{model_file.filename})" in tried[0] and "refused" in tried[0].lower()
        assert tried[1] == f"  {model_file.filename}: HTTP 404 File not found ({empty}/{model_file.filename})"
        assert "corrupt" in tried[2] and f"({wrong}/{model_file.filename})" in tried[2]
        assert model_file.url not in "\n".join(tried)  # the variable replaces the catalogue's addresses
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_the_catalogue_error_lists_the_mirrors_of_a_file_to_fetch_by_hand(tmp_path, closed_port):
    message = error_text(offline_extract(tmp_path, tmp_path / "models", f"http://127.0.0.1:{closed_port}"))
    embedder = OPENFACE.embedder.files[0]
    assert embedder.mirrors, "the OpenFace file has mirrors in the catalogue"
    for mirror in embedder.mirrors:
        assert f"or {mirror.url}" in message


def _check_in_a_new_run(models):
    """Check deploy.prototxt in the default folder `models` as a new start of a script does; its error, or ""."""
    code = ("from facerec.catalogue import RES10_CAFFE\nfrom facerec.errors import FacerecError\n"
            "from facerec.modelfiles import model_path\n"
            "try:\n    model_path(RES10_CAFFE.files[0], None)\nexcept FacerecError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**os.environ, "FACEREC_MODELS_DIR": str(models)}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_model_is_hashed_once_and_a_changed_one_is_checked_again_and_refused(tmp_path, shared, monkeypatch):
    # issue 22 item 5: an unchanged model is not read again at every start; the digest remembered in facerec's
    # cache folder (never beside the file: issue 30 item 4) is keyed by size, modification and change times and inode
    good = shared("models/deploy.prototxt").read_bytes()
    path = tmp_path / PROTOTXT.filename
    path.write_bytes(good)
    monkeypatch.setenv("FACEREC_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("FACEREC_CACHE_DIR", str(tmp_path / "cache"))
    assert model_path(PROTOTXT, None) == path
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["cache", PROTOTXT.filename]
    cache = tmp_path / "cache" / CHECKSUM_CACHE
    remembered = cache.read_text()
    key = str(path.resolve())
    assert json.loads(remembered)[key]["digests"]["sha256"] == PROTOTXT.sha256
    assert _check_in_a_new_run(tmp_path) == ""
    # the next start takes the digest from the cache, not from the file: a wrong one remembered is believed
    entries = json.loads(remembered)
    entries[key]["digests"]["sha256"] = "0" * 64
    cache.write_text(json.dumps(entries))
    assert f"its sha256 is {'0' * 64}" in _check_in_a_new_run(tmp_path)
    # a file changed in place (same size, its modification time put back) is read again and refused,
    # though the cache still holds the good digest for its name
    cache.write_text(remembered)
    info = path.stat()
    damaged = good.replace(b"Convolution", b"Cenvolution", 1)
    path.write_bytes(damaged)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns
    message = _check_in_a_new_run(tmp_path)
    assert f"is damaged or not the expected file: its sha256 is {hashlib.sha256(damaged).hexdigest()}" in message
    assert json.loads(cache.read_text())[key]["digests"]["sha256"] == hashlib.sha256(damaged).hexdigest()
