"""serve.py's HTTP API and WebSocket, with the server started for real on a loopback port (tests/web_server.py):
answers, every bad input, the token rules, enrolment and the gallery, the no-queue rule, a kill mid-learn."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import time

import cv2
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import run_script, shared_path
from helpers import assert_clean_failure, huge_png
from test_sface import sface_model_args
from web_server import Server, copied_dataset, enrolled, serving

from facerec.catalogue import PROFILES, SFACE
from facerec.detection import load_detector
from facerec.embedding import load_embedder
from facerec.matching import make_matcher
from facerec.modelfiles import model_path, network_files
from facerec.recognition import FacePipeline
from facerec.stores import load_store
from facerec.web.protocol import MAX_UPLOAD_BYTES, frame_record, pack_frame

OBAMA = "faces/probe/obama1.jpg"
LIN = "faces/probe/lin-manuel-miranda.png"


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server on obama and biden, for the tests that change nothing in its gallery."""
    with serving(tmp_path_factory.mktemp("web_api")) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path):
    """A server of its own, for a test that enrols or deletes."""
    with serving(tmp_path) as running:
        yield running


def snapshot(folder):
    """Every file under `folder` with its content, to show nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# answers ------------------------------------------------------------------------------------

def test_recognize_answers_the_json_line_the_packages_recogniser_gives(server):
    """The body is, to the byte, json.dumps of the record recognize_video.py --json prints for the same image."""
    profile = PROFILES["sface"]
    network, paths = network_files(profile.detectors, shared_path("models"))
    embedder = load_embedder(profile.embedder, model_path(SFACE.files[0], shared_path("models") / SFACE.files[0].filename))
    store = load_store(server.embeddings)
    recogniser = FacePipeline(load_detector(network, paths, profile.confidence), embedder,
                            make_matcher("nearest", store.vectors, store.names, profile.threshold, store.paths))
    for asset, name in [(OBAMA, "obama"), (LIN, "Unknown")]:
        data = shared_path(asset).read_bytes()
        status, body, response = server.request("POST", "/api/recognize", data, raw=True)
        assert status == 200 and response.getheader("content-type") == "application/json"
        expected = frame_record(0, recogniser.recognise(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)))
        assert body.decode() == json.dumps(expected) + "\n"
        answer = json.loads(body)
        assert list(answer) == ["frame", "faces"] and [face["name"] for face in answer["faces"]] == [name]
        assert list(answer["faces"][0]) == ["box", "confidence", "name", "distance", "match", "quality"]


def test_people_lists_the_gallery_with_each_photo_status(server):
    status, answer = server.json("GET", "/api/people")
    assert status == 200 and answer["profile"] == "sface"
    people = {person["name"]: person for person in answer["people"]}
    assert sorted(people) == ["biden", "obama"]
    assert people["obama"]["used"] == 2 and people["obama"]["vectors"] == 2 and people["obama"]["skipped"] == 0
    assert {photo["file"]: photo["status"] for photo in people["obama"]["photos"]} == {
        "obama.jpg": "used", "obama2.jpg": "used"}
    status, data, _ = server.request("GET", "/api/people/obama/photos/obama.jpg")
    assert status == 200 and data == (server.dataset / "obama" / "obama.jpg").read_bytes()


# bad input ----------------------------------------------------------------------------------

def test_bad_uploads_are_refused_with_their_reason_and_the_server_keeps_running(server):
    obama = shared_path(OBAMA).read_bytes()
    cases = {
        b"": (400, "empty"),
        b"hello, this is text": (415, "not a JPEG or PNG"),
        obama[:3000]: (400, "cannot be decoded"),
        b"\xff\xd8\xff" + os.urandom(5000): (400, "cannot be decoded"),
        huge_png(32000, 32000): (400, "more than the 16 MP"),  # 1 MB that OpenCV would decode into 3 GB
    }
    for body, (code, message) in cases.items():
        status, answer, _ = server.request("POST", "/api/recognize", body)
        assert status == code and message in answer["error"], (body[:20], status, answer)
    assert server.request("POST", "/api/recognize", obama)[0] == 200


def test_a_50_mb_upload_is_refused_413_before_it_is_read(server):
    """Declared with Content-Length, and sent chunked with no length: both 413, the server keeps running."""
    import http.client
    fifty_mb = 50 * 1024 * 1024
    assert fifty_mb > MAX_UPLOAD_BYTES
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    connection.putrequest("POST", "/api/recognize")
    connection.putheader("Content-Length", str(fifty_mb))
    connection.endheaders()
    chunk = b"\xff\xd8\xff" + bytes(1024 * 1024 - 3)
    try:
        for _ in range(50):
            connection.send(chunk)
    except OSError:
        pass  # the server answered and closed before the whole body came: what a limit should do
    response = connection.getresponse()
    assert response.status == 413 and "larger than 16 MB" in json.loads(response.read())["error"]
    connection.close()

    def chunks():
        for _ in range(50):
            yield chunk
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        connection.request("POST", "/api/recognize", body=chunks(), encode_chunked=True)
    except OSError:
        pass
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[0] == 200
    assert server.alive()


@pytest.mark.parametrize("name, why", [("..", "starts with a dot"), ("a/b", "path separator"),
                                       ("../escape", "starts with a dot"), ("", "empty")])
def test_names_that_are_not_plain_folders_are_refused_and_nothing_is_written(server, name, why):
    before = snapshot(server.dataset)
    status, answer = server.json("POST", "/api/enrolment", {"name": name})
    assert status == 400 and why in answer["error"]
    assert snapshot(server.dataset) == before


def test_deleting_what_does_not_exist_is_refused(server):
    before = snapshot(server.dataset), server.embeddings.read_bytes()
    for path, code, message in [("/api/people/nobody", 404, "no person 'nobody'"),
                                ("/api/people/..", 400, "starts with a dot"),
                                ("/api/people/obama/photos/nothing.jpg", 404, "no photo 'nothing.jpg'"),
                                ("/api/people/obama/photos/.hidden", 400, "not a photo's file name"),
                                ("/api/people/nobody/photos/x.jpg", 404, "no photo")]:
        status, answer = server.json("DELETE", path)
        assert status == code and message in answer["error"], (path, status, answer)
    assert (snapshot(server.dataset), server.embeddings.read_bytes()) == before


def test_bodies_that_are_not_json_or_have_no_name_are_refused(server):
    for body, message in [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"), (b'{"nom": "x"}', '"name"')]:
        status, answer, _ = server.request("POST", "/api/enrolment", body)
        assert status == 400 and message in answer["error"]


# the WebSocket ------------------------------------------------------------------------------

def test_websocket_answers_each_frame_with_its_number_and_names(server):
    obama = shared_path(OBAMA).read_bytes()
    with connect(server.ws_url(), max_size=None) as ws:
        for number in (7, 8):
            ws.send(pack_frame(number, obama))
            answer = json.loads(ws.recv(timeout=120))
            assert answer["frame"] == number and answer["dropped"] == 0
            assert [face["name"] for face in answer["faces"]] == ["obama"]
        ws.send(pack_frame(9, b"not an image"))
        assert json.loads(ws.recv(timeout=120)) | {"server_ms": 0} == {
            "frame": 9, "error": "the body is not a JPEG or PNG image", "dropped": 0, "server_ms": 0}
        ws.send("a text message")
        assert "frame number" in json.loads(ws.recv(timeout=120))["error"]


def flood(ws, first: int, count: int, frame: bytes) -> list[dict]:
    """Send `count` frames at once, then read answers until the one about the last frame."""
    for number in range(first, first + count):
        ws.send(pack_frame(number, frame))
    answers = []
    while not answers or answers[-1]["frame"] != first + count - 1:
        answers.append(json.loads(ws.recv(timeout=300)))
    return answers


def test_a_client_faster_than_the_server_gets_answers_about_its_newest_frames_and_no_queue(server):
    """Frames sent all at once: the server answers some, always the newest, and drops the others.

    First, frames that are in the server's socket before it runs: the server is stopped (SIGSTOP) while 30
    frames (2.4 MB, within what loopback's buffers hold) are sent, then let go on. However fast the machine,
    the frames all wait for it: a queue would answer each one; the server answers the newest, and few.
    Then the memory: 150 frames of 0.3 MB JPEG that decode to 4000x3000 pixels (36 MB) each, sent as fast as
    the server takes them; the answers plus the frames they say were dropped add up to what was sent, and
    memory stays flat (a queue would hold what waits).
    """
    photo = shared_path(OBAMA).read_bytes()
    with connect(server.ws_url(), max_size=None) as ws:
        flood(ws, 0, 2, photo)  # the page's session is set up
        waiting = 30
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            for number in range(100, 100 + waiting):
                ws.send(pack_frame(number, photo))
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        answers = []
        while not answers or answers[-1]["frame"] != 100 + waiting - 1:
            answers.append(json.loads(ws.recv(timeout=300)))
    assert [answer["frame"] for answer in answers] == sorted(answer["frame"] for answer in answers)
    assert len(answers) + sum(answer["dropped"] for answer in answers) == waiting
    assert len(answers) < waiting / 2, f"{len(answers)} answers: the server worked through a queue"
    assert all(answer["faces"][0]["name"] == "obama" for answer in answers)

    canvas = np.full((3000, 4000, 3), 120, np.uint8)
    obama = cv2.imread(str(shared_path(OBAMA)))
    canvas[100:100 + obama.shape[0], 100:100 + obama.shape[1]] = obama
    frame = jpeg(canvas)
    with connect(server.ws_url(), max_size=None) as ws:
        flood(ws, 0, 30, frame)  # the server's buffers reach their working size
        before = server.rss_kb()
        sent = 150
        answers = flood(ws, 1000, sent, frame)
        grown_mb = (server.rss_kb() - before) / 1024
    numbers = [answer["frame"] for answer in answers]
    assert numbers == sorted(numbers) and numbers[-1] == 1000 + sent - 1
    assert len(answers) + sum(answer["dropped"] for answer in answers) == sent
    assert all(answer["faces"][0]["name"] == "obama" for answer in answers)
    assert grown_mb < 40, f"the server grew by {grown_mb:.0f} MB while {sent * len(frame) / 1e6:.0f} MB came in"


def test_each_page_follows_its_faces_with_its_own_tracks_and_a_photo_has_none(server):
    """A page's frames are a video: its faces keep one track id from frame to frame, as recognize_video.py's
    do; another page has tracks of its own (its ids start afresh); /api/recognize names a photo alone."""
    frame = shared_path(OBAMA).read_bytes()
    sessions = []
    for _ in range(2):
        with connect(server.ws_url(), max_size=None) as ws:
            answers = []
            for number in range(4):  # one at a time: every frame is answered, none dropped
                ws.send(pack_frame(number, frame))
                answers.append(json.loads(ws.recv(timeout=300)))
        sessions.append([[face["track"] for face in answer["faces"]] for answer in answers])
        assert all(answer["faces"][0]["name"] == "obama" for answer in answers)
    assert sessions[0] == sessions[1] == [[1]] * 4
    status, answer, _ = server.request("POST", "/api/recognize", frame)
    assert status == 200 and "track" not in answer["faces"][0]


def test_a_websocket_that_closes_mid_frame_leaves_the_server_running(server):
    """A raw socket: the handshake, then half of a 200 kB binary frame, then the connection is cut."""
    with socket.create_connection((server.host, server.port), timeout=30) as raw:
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall((f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        assert b"101" in raw.recv(4096).split(b"\r\n")[0]
        length = 200_000
        raw.sendall(bytes([0x82, 0xFF]) + struct.pack(">Q", length) + os.urandom(4) + os.urandom(length // 2))
    # and one that goes away while its frame is being worked on
    with connect(server.ws_url(), max_size=None) as ws:
        ws.send(pack_frame(1, shared_path(OBAMA).read_bytes()))
    assert server.alive()
    with connect(server.ws_url(), max_size=None) as ws:
        ws.send(pack_frame(2, shared_path(OBAMA).read_bytes()))
        assert json.loads(ws.recv(timeout=120))["faces"][0]["name"] == "obama"


def test_a_websocket_frame_over_the_size_limit_closes_that_socket_only(server):
    with connect(server.ws_url(), max_size=None) as ws:
        ws.send(pack_frame(1, b"\xff\xd8\xff" + bytes(MAX_UPLOAD_BYTES)))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=120)
    assert closed.value.rcvd.code == 1009  # message too big
    with connect(server.ws_url(), max_size=None) as ws:
        ws.send(pack_frame(2, shared_path(OBAMA).read_bytes()))
        assert json.loads(ws.recv(timeout=120))["faces"][0]["name"] == "obama"


# safe by default ----------------------------------------------------------------------------

def test_loopback_server_refuses_other_hosts_and_other_sites(server):
    status, answer, _ = server.request("GET", "/api/people", headers={"Host": "attacker.example:80"})
    assert status == 403 and "not 'attacker.example:80'" in answer["error"]
    status, answer, _ = server.request("POST", "/api/enrolment", b'{"name": "x"}',
                                       {"Origin": "http://attacker.example"})
    assert status == 403 and "another site" in answer["error"]
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url(), origin="http://attacker.example")
    assert refused.value.response.status_code == 403
    origin = f"http://{server.host}:{server.port}"
    assert server.json("GET", "/api/people", Origin=origin)[0] == 200


def test_any_other_host_needs_the_token_on_every_request_and_websocket(tmp_path):
    """127.0.0.2 is a loopback address, but not the default: it stands for any other host here."""
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    running = Server(dataset, embeddings, host="127.0.0.2")
    try:
        assert running.token and len(running.token) >= 16, running.url
        for path in ("/", "/gallery", "/api/people", "/static/live.js", "/video"):
            status, answer, _ = running.request("GET", path, token=False)
            assert status == 401 and "access token" in answer["error"], path
        status, answer, _ = running.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes(), token=False)
        assert status == 401
        status, answer, _ = running.request("GET", "/api/people", headers={"Authorization": "Bearer wrong-token"},
                                            token=False)
        assert status == 403 and answer["error"] == "wrong access token"
        assert running.request("GET", "/api/people")[0] == 200
        status, _, response = running.request("GET", f"/?token={running.token}", token=False)
        assert status == 200 and f"facerec_token={running.token}" in response.getheader("set-cookie")
        cookie = {"Cookie": f"facerec_token={running.token}"}
        assert running.request("GET", "/api/people", headers=cookie, token=False)[0] == 200
        for url, status in ((running.ws_url(), 401), (running.ws_url() + "?token=wrong", 403)):
            with pytest.raises(InvalidStatus) as refused:
                connect(url)
            assert refused.value.response.status_code == status
        with connect(running.ws_url() + f"?token={running.token}", max_size=None) as ws:
            ws.send(pack_frame(1, shared_path(OBAMA).read_bytes()))
            assert json.loads(ws.recv(timeout=120))["faces"][0]["name"] == "obama"
    finally:
        running.stop()
    given = Server(dataset, embeddings, "--token", "my-own-token-123", host="127.0.0.2")
    try:
        assert given.token == "my-own-token-123"
        assert given.request("GET", "/api/people", token=False)[0] == 401
        assert given.request("GET", "/api/people")[0] == 200
    finally:
        given.stop()


def test_bad_server_arguments_end_with_one_line_and_exit_2(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    common = [*sface_model_args(), "--dataset", str(dataset), "--embeddings", str(embeddings)]
    assert_clean_failure(run_script("serve.py", *common, "--token", "short"), "at least 8 characters")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        assert_clean_failure(run_script("serve.py", *common, "--port", port), f"cannot listen on 127.0.0.1:{port}")
    assert_clean_failure(run_script("serve.py", *common, "--source", str(tmp_path / "missing.mp4")),
                         "neither a camera index, an existing file nor a URL")
    bad = tmp_path / "garbage.pickle"
    bad.write_bytes(b"not a pickle")
    assert_clean_failure(run_script("serve.py", *common[:-1], str(bad)), "not a readable embeddings pickle")


# enrolment and the gallery ------------------------------------------------------------------

def test_enrol_from_the_page_then_learn_names_the_new_person_without_a_restart(fresh_server):
    server = fresh_server
    lin = shared_path(LIN).read_bytes()
    assert server.request("POST", "/api/recognize", lin)[1]["faces"][0]["name"] == "Unknown"
    status, held = server.json("POST", "/api/enrolment", {"name": "lin"})
    assert status == 201
    key = held["key"]

    # a second page may not enrol, take photos or learn meanwhile
    status, answer = server.json("POST", "/api/enrolment", {"name": "someone"})
    assert status == 409 and "another page is enrolling 'lin'" in answer["error"]
    status, answer, _ = server.request("POST", "/api/enrolment/photos", lin, {"X-Enrolment": "not-the-key"})
    assert status == 409 and "no longer held" in answer["error"]
    assert server.json("POST", "/api/learn")[0] == 409
    assert server.json("DELETE", "/api/people/lin")[0] in (404, 409)

    blank = jpeg(np.full((240, 320, 3), 128, np.uint8))
    two = shared_path("faces/probe/two_people.jpg").read_bytes()
    for photo, message in [(blank, "no face found"), (two, "2 faces found"), (b"text", "not a JPEG or PNG")]:
        status, answer, _ = server.request("POST", "/api/enrolment/photos", photo, {"X-Enrolment": key})
        assert status in (415, 422) and message in answer["error"]
    assert not (server.dataset / "lin").exists() or not os.listdir(server.dataset / "lin")
    for number in (1, 2):
        status, answer, _ = server.request("POST", "/api/enrolment/photos", lin, {"X-Enrolment": key})
        assert status == 201 and answer == {"saved": f"000{number}.png", "photos": number}
    assert (server.dataset / "lin" / "0001.png").read_bytes() == lin

    progress = server.learned(key)
    assert progress["state"] == "done" and progress["done"] == progress["total"] == 6, progress
    assert server.request("POST", "/api/recognize", lin)[1]["faces"][0]["name"] == "lin"
    assert load_store(server.embeddings).names.count("lin") == 2
    # learning ended the enrolment: its key is spent, and another page may enrol now
    assert server.request("POST", "/api/enrolment/photos", lin, {"X-Enrolment": key})[0] == 409
    assert server.json("POST", "/api/enrolment", {"name": "someone"})[0] == 201


def test_delete_a_photo_and_a_person_updates_dataset_store_and_answers(fresh_server):
    server = fresh_server
    status, answer = server.json("DELETE", "/api/people/obama/photos/obama2.jpg")
    assert status == 200
    assert sorted(os.listdir(server.dataset / "obama")) == ["obama.jpg"]
    store = load_store(server.embeddings)
    assert "obama/obama2.jpg" not in store.paths and "obama/obama2.jpg" not in store.files
    assert store.names.count("obama") == 1
    assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[1]["faces"][0]["name"] == "obama"

    assert server.json("DELETE", "/api/people/obama")[0] == 200
    assert sorted(os.listdir(server.dataset)) == ["biden"]
    assert "obama" not in load_store(server.embeddings).names
    assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[1]["faces"][0]["name"] == "Unknown"
    assert [person["name"] for person in server.json("GET", "/api/people")[1]["people"]] == ["biden"]
    assert server.json("DELETE", "/api/people/obama")[0] == 404

    # with nobody left, Learn fails with the reason and the server goes on
    assert server.json("DELETE", "/api/people/biden")[0] == 200
    progress = server.learned()
    assert progress["state"] == "failed" and "has no photos" in progress["message"]
    assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[0] == 200
    assert len(load_store(server.embeddings)) == 0


def obama_photos(server) -> dict:
    person = next(p for p in server.json("GET", "/api/people")[1]["people"] if p["name"] == "obama")
    return {photo["file"]: photo["status"] for photo in person["photos"]} | {
        key: person[key] for key in ("used", "skipped", "pending")}


def test_two_learns_at_once_the_second_is_refused_and_skipped_photos_show_why(fresh_server):
    server = fresh_server
    (server.dataset / "obama" / "wall.jpg").write_bytes(jpeg(np.full((240, 320, 3), 90, np.uint8)))
    assert obama_photos(server) == {"obama.jpg": "used", "obama2.jpg": "used", "wall.jpg": "not learned yet",
                                    "used": 2, "skipped": 0, "pending": 1}
    first = server.json("POST", "/api/learn")
    second = server.json("POST", "/api/learn")
    assert first[0] == 202
    assert second[0] == 409 and "busy learning" in second[1]["error"]
    while server.json("GET", "/api/learn")[1]["state"] == "learning":
        time.sleep(0.1)
    assert server.json("GET", "/api/learn")[1]["state"] == "done"
    assert obama_photos(server) == {"obama.jpg": "used", "obama2.jpg": "used", "wall.jpg": "no face found",
                                    "used": 2, "skipped": 1, "pending": 0}


def test_killing_the_server_mid_learn_loses_nothing(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    lin = shared_path(LIN).read_bytes()
    for number in range(40):  # enough photos that learning takes a while
        (dataset / "obama" / f"copy{number:02d}.png").write_bytes(lin)
    photos_before, store_before = snapshot(dataset), embeddings.read_bytes()
    server = Server(dataset, embeddings)
    try:
        assert server.json("POST", "/api/learn")[0] == 202
        while (progress := server.json("GET", "/api/learn")[1])["done"] < 2:
            assert progress["state"] == "learning", progress
            time.sleep(0.02)
        server.kill()
    finally:
        server.stop()
    assert snapshot(dataset) == photos_before
    assert embeddings.read_bytes() == store_before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # and a new server learns it all
    server = Server(dataset, embeddings)
    try:
        assert server.learned()["state"] == "done"
    finally:
        server.stop()
    assert len(load_store(embeddings)) == 42


def test_a_server_without_an_embeddings_file_starts_empty_and_learns_one_and_finishes_killed_deletes(tmp_path):
    dataset = copied_dataset(tmp_path, people=("obama",))
    embeddings = tmp_path / "new" / "embeddings.pickle"
    # what a server killed mid-delete leaves: the photo already renamed out of the dataset's sight
    (dataset / "obama" / ".deleted-old.jpg-1234abcd").write_bytes(b"half-deleted")
    server = Server(dataset, embeddings)
    try:
        assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[1]["faces"][0]["name"] == "Unknown"
        assert server.learned()["state"] == "done"
        assert server.request("POST", "/api/recognize", shared_path(OBAMA).read_bytes())[1]["faces"][0]["name"] == "obama"
    finally:
        stderr = server.stop()
    assert "holds no gallery yet" in stderr and load_store(embeddings).people == ["obama"]
    assert sorted(os.listdir(dataset / "obama")) == ["obama.jpg", "obama2.jpg"]


# the server's own source --------------------------------------------------------------------

def mjpeg_parts(server, count: int) -> list[np.ndarray]:
    """The first `count` pictures of GET /video, decoded."""
    import http.client
    connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
    connection.request("GET", "/video")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("content-type") == "multipart/x-mixed-replace; boundary=frame"
    pictures = []
    while len(pictures) < count:
        assert response.readline() == b"--frame\r\n"
        headers = dict(line.decode().strip().split(": ", 1) for line in iter(response.readline, b"\r\n"))
        assert headers["Content-Type"] == "image/jpeg"
        data = response.read(int(headers["Content-Length"]))
        assert response.readline() == b"\r\n"
        pictures.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    connection.close()
    return pictures


def test_source_is_shown_annotated_as_mjpeg_and_without_one_video_is_404(server, tmp_path):
    status, answer, _ = server.request("GET", "/video")
    assert status == 404 and "no --source" in answer["error"]
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    clip = shared_path("video/short_hamilton_clip.mp4")
    running = Server(dataset, embeddings, "--source", str(clip))
    try:
        pictures = mjpeg_parts(running, 3)
        assert all(picture.shape == (360, 640, 3) for picture in pictures)
        # the frame rate line drawn in the top-left corner (facerec.drawing.draw_status): the clip has none
        capture = cv2.VideoCapture(str(clip))
        first = capture.read()[1]
        capture.release()
        corner = (slice(0, 20), slice(0, 60))
        assert np.abs(pictures[0][corner].astype(int) - first[corner].astype(int)).mean() > 20
        assert running.json("GET", "/api/info")[1]["source"] == str(clip)
    finally:
        running.stop()
