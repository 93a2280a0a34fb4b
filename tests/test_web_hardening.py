"""serve.py against a hostile client (issue 19, items 5-11 and 21), the real server on loopback (tests/web_server.py).

Load tests are bounded in count and time and stay on loopback: a client may come from its own address
(127.0.0.3, ...: all of 127/8 is this computer) so that per-address limits can be told from per-server ones.
No timing is asserted beyond "answered at all within a generous timeout".
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import socket
import threading
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from attack_clients import BINARY, TEXT, bomb_png, closed_by_server, half_sent, send_frame, websocket
from conftest import run_script, shared_path
from helpers import assert_clean_failure
from test_sface import sface_model_args
from web_server import Server, enrolled, serving

from facerec.web.limits import MAX_WEBSOCKETS, MAX_WEBSOCKETS_PER_CLIENT
from facerec.web.protocol import pack_frame

OBAMA = "faces/probe/obama1.jpg"
ANSWER_SECONDS = 20  # "answered at all": generous, on a busy shared machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server on obama and biden, for the tests that change nothing in its gallery."""
    with serving(tmp_path_factory.mktemp("web_hardening")) as running:
        yield running


def get(host: str, port: int, path: str, source: str = "127.0.0.1", timeout: float = ANSWER_SECONDS,
        headers: dict | None = None, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request from the loopback address `source`."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class PeakMemory:
    """The server's peak resident memory (kB) while the block runs, sampled every 20 ms."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak, self.running = server, 0, True

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = self.server.rss_kb()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self) -> None:
        while self.running:
            with contextlib.suppress(FileNotFoundError, AssertionError):
                self.peak = max(self.peak, self.server.rss_kb())
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    @property
    def grown_mb(self) -> float:
        return (self.peak - self.start) / 1024


# 5, 6: slowloris and the log flood --------------------------------------------------------------------

def test_2000_half_sent_requests_under_a_1024_file_limit_leave_the_server_answering_and_its_log_short(tmp_path):
    """As under `ulimit -n 1024` (soft and hard): 2,000 connections from 127.0.0.3 that send half a request's
    head and stop. A request from 127.0.0.1 is still answered; the log says so in a line or two, no traceback."""
    def ulimit_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    running = Server(dataset, embeddings, preexec_fn=ulimit_1024)
    sockets = []
    try:
        sockets = half_sent(running.host, running.port, 2000, source="127.0.0.3", seconds=10)
        status, body = get(running.host, running.port, "/api/info")
        assert status == 200 and json.loads(body)["people"] == 1
        assert running.alive()
    finally:
        for sock in sockets:
            sock.close()
        stderr = running.stop()
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) < 10, stderr[:2000]


def test_accepts_failing_for_lack_of_open_files_are_logged_on_one_line(tmp_path):
    """A server started with room for its connection cap is then left a few descriptors only (prlimit on its
    process): a burst of connections runs it out of descriptors below its cap, whatever the machine's speed, so
    accepting fails, again and again; the log says so once, on one line, and the server recovers."""
    spare = 8  # descriptors left: far fewer than the connections held open, far fewer than the server's cap

    def descriptors(pid: int) -> int:
        return len(os.listdir(f"/proc/{pid}/fd"))

    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    running = Server(dataset, embeddings)
    pid = running.process.pid
    sockets = []
    try:
        status, _ = get(running.host, running.port, "/api/info")  # started, and idle again
        assert status == 200
        limit = descriptors(pid) + spare
        started_with = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, started_with[1]))  # the soft limit: given back below
        sockets = half_sent(running.host, running.port, 3 * spare, source="127.0.0.3", seconds=10)
        # the server holds every descriptor it may have while connections still wait to be accepted: its next
        # accept fails (closing ours now changes nothing: a connection closed while queued is still accepted)
        deadline = time.monotonic() + ANSWER_SECONDS
        while descriptors(pid) < limit:
            assert time.monotonic() < deadline, f"the server never used its {limit} descriptors"
            time.sleep(0.05)
        for sock in sockets:
            sock.close()
        # descriptors to be had again (not waiting for it to close what it holds, at its own pace): it recovers
        resource.prlimit(pid, resource.RLIMIT_NOFILE, started_with)
        status, _ = get(running.host, running.port, "/api/info")
        assert status == 200
    finally:
        for sock in sockets:
            sock.close()
        stderr = running.stop()
    assert stderr.count("cannot accept new connections: [Errno 24] Too many open files") == 1, stderr[:2000]
    assert "server full" not in stderr  # the descriptors ran out, not the cap
    assert "Traceback" not in stderr and len(stderr.splitlines()) < 10, stderr[:2000]


def test_a_connection_that_never_finishes_its_request_is_closed(server):
    """The head of a request must arrive within limits.HEADER_SECONDS (10 s); this waits at most 30 s."""
    sockets = half_sent(server.host, server.port, 1, source="127.0.0.3")
    try:
        assert closed_by_server(sockets[0], seconds=30)
    finally:
        sockets[0].close()


# 7: WebSocket memory ------------------------------------------------------------------------------------

def test_websockets_are_capped_per_client_address_and_per_server(server):
    opened = []
    try:
        for number in range(MAX_WEBSOCKETS_PER_CLIENT):
            status, sock = websocket(server.host, server.port, source="127.0.0.4")
            assert status == 101, number
            opened.append(sock)
        status, refused = websocket(server.host, server.port, source="127.0.0.4")
        refused.close()
        assert status == 429
        sources = (f"127.0.1.{n}" for n in range(1, 100))
        while len(opened) < MAX_WEBSOCKETS:
            source = next(sources)
            for _ in range(min(MAX_WEBSOCKETS_PER_CLIENT, MAX_WEBSOCKETS - len(opened))):
                status, sock = websocket(server.host, server.port, source=source)
                assert status == 101
                opened.append(sock)
        status, refused = websocket(server.host, server.port, source="127.0.2.1")
        refused.close()
        assert status == 503
    finally:
        for sock in opened:
            sock.close()
    # closed ones are counted out: a page can connect again, and is answered
    deadline = time.monotonic() + ANSWER_SECONDS
    while True:
        try:
            with connect(server.ws_url(), max_size=None) as ws:
                ws.send(pack_frame(7, shared_path(OBAMA).read_bytes()))
                assert json.loads(ws.recv(timeout=120))["faces"][0]["name"] == "obama"
            break
        except InvalidStatus:
            assert time.monotonic() < deadline, "the closed WebSockets were not counted out"
            time.sleep(0.2)


def test_half_sent_16_mib_frames_are_refused_and_memory_returns_after_close(server):
    """As many WebSockets as the server takes, each sending a 16 MiB frame minus its last byte: refused at the
    frame's header (4 MiB at most), memory does not grow; frames just under the limit grow it by about their
    size, and it comes back when they close."""
    sources = [f"127.0.3.{n}" for n in range(1, 100)]

    def attack(declared: int, sent: int) -> list[socket.socket]:
        opened = []
        for index in range(MAX_WEBSOCKETS):
            status, sock = websocket(server.host, server.port, source=sources[index // MAX_WEBSOCKETS_PER_CLIENT])
            assert status == 101
            opened.append(sock)
        for sock in opened:
            with contextlib.suppress(OSError):
                send_frame(sock, BINARY, bytes(sent), declared=declared)
        return opened

    with PeakMemory(server) as memory:
        opened = attack(16 * 2**20, 16 * 2**20 - 1)
        assert all(closed_by_server(sock, seconds=30) for sock in opened)  # 1009: message too big
        for sock in opened:
            sock.close()
    assert memory.grown_mb < 100, memory.grown_mb  # without the bound: 16 x 16 MiB held

    start = server.rss_kb()
    opened = attack(4 * 2**20, 4 * 2**20 - 1)
    time.sleep(1)
    for sock in opened:
        sock.close()
    deadline = time.monotonic() + ANSWER_SECONDS
    while (server.rss_kb() - start) / 1024 > 32 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (server.rss_kb() - start) / 1024 <= 32, (server.rss_kb() - start) / 1024


# 8: decompression bombs -----------------------------------------------------------------------------------

def test_a_100_mp_png_bomb_is_refused_from_its_header_and_memory_stays_low(server):
    """97 KB declaring 10000 x 10000 (100 MP, which an enrolment photo file may have) decodes into 300 MB:
    4 at once to /api/recognize are each refused (400) from the header, the server's memory barely moves."""
    bomb = bomb_png(10000, 10000)
    answers = []

    def post() -> None:
        answers.append(get(server.host, server.port, "/api/recognize", method="POST", body=bomb, timeout=120))

    with PeakMemory(server) as memory:
        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 4
    for status, body in answers:
        assert status == 400 and "100 MP: more than the 16 MP" in json.loads(body)["error"], body
    assert memory.grown_mb < 150, memory.grown_mb


def test_a_bomb_frame_on_one_page_is_refused_and_another_page_is_answered(server):
    with connect(server.ws_url(), max_size=None) as attacker, connect(server.ws_url(), max_size=None) as page:
        attacker.send(pack_frame(1, bomb_png(10000, 10000)))
        page.send(pack_frame(2, shared_path(OBAMA).read_bytes()))
        assert json.loads(page.recv(timeout=120))["faces"][0]["name"] == "obama"
        answer = json.loads(attacker.recv(timeout=120))
        assert answer["frame"] == 1 and "more than the 16 MP" in answer["error"]


# 9: viewers of --source ------------------------------------------------------------------------------------

@contextlib.contextmanager
def stalling_camera(frames: int = 10):
    """An MJPEG camera over HTTP on loopback that sends `frames` frames to each client and then nothing, the
    connection held open: a stream that stopped sending. Yields its URL."""
    import cv2

    jpeg = cv2.imencode(".jpg", cv2.imread(str(shared_path("faces/known/obama/obama.jpg"))))[1].tobytes()
    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                held.append(client)
                client.recv(65536)
                client.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
                               + part * frames)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/camera.mjpg"
    finally:
        listener.close()
        for client in held:
            client.close()


def test_200_viewers_of_a_stalled_source_cost_no_thread_each_and_the_api_still_answers(tmp_path):
    """The source sends 10 frames, then nothing (taken as stalled only after FACEREC_STALL_SECONDS=120):
    the viewers wait for its next frame; the server's threads do not grow with them."""
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    viewers = []
    with stalling_camera() as camera:
        running = Server(dataset, embeddings, "--source", camera, env={"FACEREC_STALL_SECONDS": "120"})
        try:
            def view() -> None:
                """A viewer that has had the newest frame: the server is serving it, and waits for the next."""
                sock = socket.create_connection((running.host, running.port), timeout=30)
                sock.sendall(f"GET /video HTTP/1.1\r\nHost: {running.host}:{running.port}\r\n\r\n".encode())
                viewers.append(sock)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += sock.recv(65536) or pytest.fail(f"the server closed a viewer: {received!r}")
                assert received.startswith(b"HTTP/1.1 200")
                head, _, body = received.partition(b"\r\n\r\n")
                while not re.search(rb"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: (\d+)\r\n\r\n", body):
                    body += sock.recv(65536) or pytest.fail("the server closed a viewer before its first frame")
                length = int(re.search(rb"Content-Length: (\d+)\r\n\r\n", body).group(1))
                while len(body.partition(b"\r\n\r\n")[2]) < length:  # the whole JPEG: the part was served
                    body += sock.recv(65536) or pytest.fail("the server closed a viewer within a frame")

            view()  # its first frame: the source is read and recognised; it sends its 10 frames, then stalls
            assert running.json("GET", "/api/people")[0] == 200
            before = running.threads()
            for _ in range(199):
                view()
            grown = running.threads() - before  # each viewer has been served and now waits for the next frame
            status, _ = get(running.host, running.port, "/api/people")
            assert status == 200
            assert grown < 10, f"{grown} threads more for 199 more viewers"
        finally:
            for sock in viewers:
                sock.close()
            running.stop()


# 10: names that are not UTF-8 ------------------------------------------------------------------------------

def test_photo_and_person_names_that_are_not_utf8_are_listed_escaped_served_and_deletable(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama", "biden"))
    photo = shared_path("faces/known/obama/obama.jpg")
    bad_photo = dataset / "obama" / os.fsdecode(b"bad\xff.jpg")
    shutil.copy(photo, bad_photo)
    bad_person = dataset / os.fsdecode(b"bad\xfeperson")
    bad_person.mkdir()
    shutil.copy(photo, bad_person / "1.jpg")
    running = Server(dataset, embeddings)
    try:
        status, listing = running.json("GET", "/api/people")
        assert status == 200, listing
        people = {person["name"]: person for person in listing["people"]}
        assert "bad\\xfeperson" in people and people["bad\\xfeperson"]["photos"][0]["file"] == "1.jpg"
        assert "bad\\xff.jpg" in [photo["file"] for photo in people["obama"]["photos"]]
        status, data, _ = running.request("GET", "/api/people/obama/photos/bad%5Cxff.jpg")
        assert status == 200 and data == photo.read_bytes()
        assert running.json("DELETE", "/api/people/obama/photos/bad%5Cxff.jpg")[0] == 200
        assert not bad_photo.exists() and (dataset / "obama" / "obama.jpg").exists()
        assert running.json("DELETE", "/api/people/bad%5Cxfeperson")[0] == 200
        assert not bad_person.exists()
        names = [person["name"] for person in running.json("GET", "/api/people")[1]["people"]]
        assert names == ["biden", "obama"]
    finally:
        running.stop()


# 11: a key that is not ASCII ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("POST", "/api/enrolment/photos"), ("DELETE", "/api/enrolment"),
                                          ("POST", "/api/learn")])
def test_a_non_ascii_enrolment_key_is_refused_403(server, method, path):
    """While an enrolment is held (its key is compared then), whatever the request."""
    status, held = server.json("POST", "/api/enrolment", {"name": "held"})
    assert status == 201
    try:
        body = shared_path(OBAMA).read_bytes() if path.endswith("photos") else None
        status, answer = get(server.host, server.port, path, method=method, body=body,
                             headers={"X-Enrolment": "cl\xe9-\xff".encode("latin-1")})
        assert status == 403 and "not an enrolment key" in json.loads(answer)["error"], answer
    finally:
        assert server.json("DELETE", "/api/enrolment", X_Enrolment=held["key"])[0] == 200


# 21: smaller gaps ---------------------------------------------------------------------------------------------

def test_the_token_comes_from_a_file_or_the_environment_and_is_not_in_the_command_line(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-123\n")
    for extra, env, token in [(("--token-file", str(token_file)), {}, "from-a-file-123"),
                              ((), {"FACEREC_TOKEN": "from-the-env-456"}, "from-the-env-456")]:
        running = Server(dataset, embeddings, *extra, host="127.0.0.2", env=env)
        try:
            assert running.token == token
            assert token not in open(f"/proc/{running.process.pid}/cmdline").read()
            assert running.request("GET", "/api/people", token=False)[0] == 401
            assert running.request("GET", "/api/people")[0] == 200
        finally:
            running.stop()
    common = [*sface_model_args(), "--dataset", str(dataset), "--embeddings", str(embeddings)]
    assert_clean_failure(run_script("serve.py", *common, "--token-file", str(tmp_path / "missing")),
                         "cannot read --token-file")
    (tmp_path / "short").write_text("abc\n")
    assert_clean_failure(run_script("serve.py", *common, "--token-file", str(tmp_path / "short")),
                         "at least 8 characters")


def test_unknown_paths_and_methods_answer_json(server):
    status, answer, response = server.request("GET", "/api/nonexistent")
    assert status == 404 and response.getheader("content-type") == "application/json" and answer["error"]
    status, answer, response = server.request("PUT", "/api/people")
    assert status == 405 and response.getheader("content-type") == "application/json" and answer["error"]
    assert "GET" in response.getheader("allow")


def test_a_websocket_without_the_token_is_401_and_with_a_wrong_one_403(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    running = Server(dataset, embeddings, host="127.0.0.2")
    try:
        for url, expected in [(running.ws_url(), 401), (running.ws_url() + "?token=wrong-token", 403)]:
            with pytest.raises(InvalidStatus) as refused:
                connect(url)
            assert refused.value.response.status_code == expected
            assert "error" in json.loads(refused.value.response.body)
    finally:
        running.stop()


def test_an_invalid_utf8_text_frame_closes_that_socket_with_one_log_line(tmp_path):
    dataset, embeddings = enrolled(tmp_path, people=("obama",))
    running = Server(dataset, embeddings)
    try:
        for _ in range(3):
            status, sock = websocket(running.host, running.port)
            assert status == 101
            send_frame(sock, TEXT, b"caf\xe9 \xff")
            assert closed_by_server(sock)
            sock.close()
        with connect(running.ws_url(), max_size=None) as ws:
            ws.send(pack_frame(1, shared_path(OBAMA).read_bytes()))
            assert json.loads(ws.recv(timeout=120))["faces"][0]["name"] == "obama"
    finally:
        stderr = running.stop()
    assert "Traceback" not in stderr
    assert stderr.count("not UTF-8") == 1, stderr
