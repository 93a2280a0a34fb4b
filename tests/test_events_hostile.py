"""Events under hostile receivers and careless URLs (issue 31 items 1, 9, 16, 17, 20), through the real scripts.

A webhook that redirects elsewhere or trickles its answer, a mosquitto stopped with SIGSTOP in the middle
of a run (a hung broker: the connection stays open, nothing is acknowledged), and URLs, cameras and
prefixes a broker or a store cannot take. Brokers are Debian's mosquitto on a free loopback port
(bench/mqtt_broker.py), receivers small servers on loopback.
"""

from __future__ import annotations

import http.server
import re
import signal
import socket
import threading

import pytest

from conftest import run_script
from helpers import assert_clean_failure
from mqtt_broker import free_port
from paced_camera import WAIT_SECONDS, y4m_frames
from test_events import (CAMERA, PASSWORD, Listener, Receiver, an_event, broker,  # noqa: F401
                         gallery, paced_recogniser)
from test_sface import CLIP_CONFIDENCE, sface_model_args

from facerec.events import mqtt
from facerec.events.mqtt import MqttSink
from facerec.events.webhook import WebhookSink

SECRET = "s3cret-webhook-id"


def lin_clip(tmp_path):
    """The frames where lin is on stage (82 to 130): one arrival and one departure."""
    clip = tmp_path / "lin.y4m"
    header, frames = y4m_frames(range(82, 130))
    clip.write_bytes(header + b"".join(frames))
    return clip


def recognise_lin(gallery, tmp_path, *options):
    return run_script("recognize_video.py", "--embeddings", str(gallery), "--source", str(lin_clip(tmp_path)),
                      "--no-display", "--confidence", CLIP_CONFIDENCE, "--camera", CAMERA, *options,
                      *sface_model_args())


class Recorder(http.server.ThreadingHTTPServer):
    """An HTTP server on loopback that records every request (method, path, headers) and answers with
    `answers` in turn (status, Location), the last one again and again."""

    def __init__(self, answers: list[tuple[int, str | None]]) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.requests.append((self.command, self.path, dict(self.headers)))
                status, location = answers[min(len(recorder.requests), len(answers)) - 1]
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = answer

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class Listening:
    """A TCP port on loopback that counts the connections made to it and, if `trickle`, answers each (after
    reading its request) with a whole HTTP answer, one byte every `trickle` seconds."""

    ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    def __init__(self, trickle: float | None = None) -> None:
        self.connections, self.answered = 0, 0
        self.trickle = trickle
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with self.changed:
                self.connections += 1
                self.changed.notify_all()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            if self.trickle is None:
                self._stop.wait()
                return
            try:
                connection.recv(65536)  # the request (small: one event)
                for byte in self.ANSWER:
                    if self._stop.wait(self.trickle):
                        return
                    connection.sendall(bytes([byte]))
                with self.changed:
                    self.answered += 1
            except OSError:  # the client gave up
                return

    def close(self) -> None:
        self._stop.set()
        self._socket.close()


# 1. redirects ------------------------------------------------------------------------------------

def test_a_webhook_redirect_is_never_followed_and_the_login_goes_nowhere_else(gallery, tmp_path):
    elsewhere = Recorder([(204, None)])  # another origin (another port), glad to take the login
    ftp = Listening()
    redirecting = Recorder([(302, elsewhere.url("/steal")), (307, f"ftp://127.0.0.1:{ftp.port}/x")])
    try:
        run = recognise_lin(gallery, tmp_path, "--webhook",
                            redirecting.url("/hook").replace("//", f"//facerec:{PASSWORD}@", 1))
        assert run.returncode == 0, run.stderr
        assert elsewhere.requests == [] and ftp.connections == 0
        # one POST an event (a redirect is not retried), each with its body and login, to the URL given
        assert [(method, path) for method, path, _ in redirecting.requests] == [("POST", "/hook")] * 2
        assert all(headers["Authorization"].startswith("Basic ") for _, _, headers in redirecting.requests)
        warnings = run.stderr.splitlines()
        assert len([line for line in warnings if "not followed" in line]) == 1, run.stderr
        assert f"HTTP 302 Found: a redirect to {elsewhere.url('/***')}, not followed" in run.stderr
        assert f"warning: --webhook http://facerec@127.0.0.1:{redirecting.server_address[1]}/***: 2 events not " \
               "delivered" in warnings, run.stderr
        assert PASSWORD not in run.stdout + run.stderr
    finally:
        for server in (elsewhere, ftp, redirecting):
            server.close()


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1:{port}/x", "http://127.0.0.1:{port}/",
                                      "/same/origin"])
def test_every_redirect_is_a_failed_delivery_with_no_retry(location):
    target = Listening()
    redirecting = Recorder([(301, location.format(port=target.port))])
    warnings: list[str] = []
    try:
        sink = WebhookSink(redirecting.url(), warnings.append, first_wait=0.01)
        sink.arrived(an_event(1))
        sink.left(an_event(1))
        assert len(redirecting.requests) == 2 and target.connections == 0 and sink.undelivered == 2
        assert len(warnings) == 1 and "HTTP 301 Moved Permanently: a redirect" in warnings[0]
    finally:
        target.close()
        redirecting.close()


# 16. a receiver that trickles ----------------------------------------------------------------------

def test_a_receiver_trickling_its_answer_is_cut_after_5_s_in_all(gallery, tmp_path):
    trickler = Listening(trickle=3.0)  # a whole answer, 66 bytes: 198 s
    try:
        run = recognise_lin(gallery, tmp_path, "--webhook", f"http://127.0.0.1:{trickler.port}/hook")
        assert run.returncode == 0, run.stderr
        # the first try was cut at 5 s and tried again: urllib read each byte within its 5 s and kept the one
        # connection until the process ended
        assert trickler.connections >= 2 and trickler.answered == 0
        assert f"warning: --webhook http://127.0.0.1:{trickler.port}/***: 2 events not delivered, 2 of them still " \
               "waiting after 10 s" in run.stderr.splitlines(), run.stderr
    finally:
        trickler.close()


def test_a_trickled_answer_is_a_failed_attempt_not_a_delivery():
    trickler = Listening(trickle=3.0)
    warnings: list[str] = []
    try:
        sink = WebhookSink(f"http://127.0.0.1:{trickler.port}/hook", warnings.append, attempts=2, first_wait=0.01)
        sink.arrived(an_event(1))  # returns after 2 tries of 5 s, not after the 198 s of a whole answer
        assert trickler.connections == 2 and trickler.answered == 0 and sink.undelivered == 1
        assert warnings == [f"--webhook http://127.0.0.1:{trickler.port}/***: an event was not delivered (no answer "
                            "within 5 s); later ones are tried too"]
    finally:
        trickler.close()


# 9. a broker that hangs ----------------------------------------------------------------------------

def stderr_has(camera, text: str) -> bool:
    return any(text in line for line in camera.stderr)


def test_a_hung_broker_is_noticed_once_and_its_events_are_sent_when_it_answers_again(gallery, broker, tmp_path):
    listener = Listener(broker.port)
    receiver = Receiver()  # the same events by webhook: what the broker should have had, in order
    frames = range(60, 230)  # Lin-Manuel Miranda's shot (82 to 210) and a little of each side
    camera = paced_recogniser(tmp_path, gallery, broker, frames, "--webhook", receiver.url)
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the recogniser started")
        broker.process.send_signal(signal.SIGSTOP)  # before lin arrives (at 82): the connection stays open
        camera.wait_for(lambda: stderr_has(camera, "has not acknowledged an event in 10 s"), "no warning")
        broker.process.send_signal(signal.SIGCONT)
        camera.wait_for(lambda: stderr_has(camera, "answers again"), "the broker's answers were not noticed")
        camera.wait_for(lambda: len(camera.records) >= len(frames), "the recogniser saw the whole shot")
        assert camera.stop() == 0, camera.stderr
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{CAMERA}/status"), "no offline status")
        events = listener.events()
        assert events == receiver.bodies  # every event, once, in order
        assert ("arrived", "lin") in [(event["type"], event["name"]) for event in events]
        stderr = "".join(camera.stderr)
        assert stderr.count("has not acknowledged") == 1 and "not delivered" not in stderr, stderr
    finally:
        broker.process.send_signal(signal.SIGCONT)
        camera.stop()
        listener.close()
        receiver.shutdown()


def test_a_broker_hung_until_the_end_is_counted_in_the_events_not_delivered(gallery, broker, tmp_path):
    listener = Listener(broker.port)
    receiver = Receiver()  # the same events by webhook: how many there were
    camera = paced_recogniser(tmp_path, gallery, broker, range(60, 230), "--webhook", receiver.url)
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the recogniser started")
        broker.process.send_signal(signal.SIGSTOP)
        camera.wait_for(lambda: stderr_has(camera, "has not acknowledged an event in 10 s"), "no warning")
        camera.wait_for(lambda: len(camera.records) >= 180, "the recogniser went on")
        assert camera.stop() == 0, camera.stderr
        delivered = listener.events()  # before the stop: the listener hears nothing from a stopped broker
        stderr = "".join(camera.stderr)
        (line,) = [line for line in camera.stderr if "not delivered" in line]
        assert line.startswith("warning: the MQTT broker"), line
        lost = int(re.search(r": (\d+) events? not delivered", line).group(1))
        assert receiver.bodies[:len(delivered)] == delivered and lost == len(receiver.bodies) - len(delivered) > 0
        assert "lin" not in {event["name"] for event in delivered}  # he came after the stop
        assert stderr.count("has not acknowledged") == 1, stderr
    finally:
        broker.process.send_signal(signal.SIGCONT)
        camera.stop()
        listener.close()
        receiver.shutdown()


class Warnings:
    """What a sink warns, for waiting on (with a deadline) from the test's thread."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, line: str) -> None:
        with self.changed:
            self.lines.append(line)
            self.changed.notify_all()

    def wait_for(self, text: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count(text), WAIT_SECONDS), f"no {text!r}: {self.lines}"

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


def test_an_event_sent_into_a_hung_connection_is_sent_again_after_reconnecting(broker, monkeypatch):
    monkeypatch.setattr(mqtt, "KEEPALIVE_SECONDS", 2)  # paho drops a silent connection after 2 x 2 s, not 60 s
    listener = Listener(broker.port)
    warnings = Warnings()
    sink = MqttSink(broker.url(), CAMERA, warnings, discovery=False)
    try:
        listener.wait_for(lambda: "online" in listener.payloads(f"facerec/{CAMERA}/status"), "not online")
        broker.process.send_signal(signal.SIGSTOP)
        sending = threading.Thread(target=sink.arrived, args=(an_event(7),))
        sending.start()  # into the open connection of a broker that reads nothing
        warnings.wait_for("lost the MQTT broker")  # the keepalive closed it: paho reconnects (and waits)
        warnings.wait_for("has not acknowledged an event in 10 s")
        broker.process.send_signal(signal.SIGCONT)
        warnings.wait_for("is back")
        sending.join(WAIT_SECONDS)
        assert not sending.is_alive()  # acknowledged: sent again on the new connection
        listener.wait_for(lambda: [event["track"] for event in listener.events()], "the event never arrived")
        assert {event["track"] for event in listener.events()} == {7}  # QoS 1: at least once
        assert warnings.count("has not acknowledged") == 1 and warnings.count("answers again") == 0, warnings.lines
    finally:
        broker.process.send_signal(signal.SIGCONT)
        sink.close()
        listener.close()


# 17, 20. what cannot be a topic, a port, a gallery or printed ---------------------------------------

@pytest.mark.parametrize("url, message", [
    ("mqtt://127.0.0.1/home#b", "# and ? cannot be part of the URL"),
    ("mqtt://127.0.0.1/home?b", "# and ? cannot be part of the URL"),
    ("mqtt://127.0.0.1:0", "port 0 is not a port"),
    ("mqtt://127.0.0.1/" + "p" * 70_000, "together: at most 65,023"),
], ids=["fragment", "query", "port 0", "prefix of 70,000 bytes"])
def test_a_url_that_would_be_taken_for_another_is_one_error_line(tmp_path, url, message):
    run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--mqtt", url,
                     "--no-display")
    assert_clean_failure(run, message)
    assert len(run.stderr.strip().splitlines()) == 1 and "p" * 100 not in run.stderr


@pytest.mark.parametrize("camera, message", [
    ("door\n", "--camera 'door\\n' cannot name a camera (in sightings, events and kept faces): it holds a control "
                "character (U+000A)"),  # the door's check (names.camera_problem), before MQTT's
    ("a\tb", "control character (U+0009)"),
    ("del\x7f", "control character (U+007F)"),
    ("c" * 70_000, "it is longer than 200 characters"),  # the door's bound, far below MQTT's 65,023 bytes
], ids=["newline", "tab", "DEL", "70,000 bytes"])
def test_a_camera_a_broker_cannot_take_is_said_so_before_connecting(broker, tmp_path, camera, message):
    run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--mqtt", broker.url(),
                     "--camera", camera, "--no-display")
    assert_clean_failure(run, message)
    assert "did not answer" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_seen_minutes_beyond_a_year_is_refused(tmp_path):
    run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--seen-minutes", "2e8",
                     "--mqtt", "mqtt://127.0.0.1", "--no-display")
    assert_clean_failure(run, "--seen-minutes: 2e8 is out of range: must be in (0, 525600] (a year)")


@pytest.mark.parametrize("scheme", ["mysql", "postgresql+psycopg", "sqlite"])
def test_a_database_url_this_program_cannot_open_is_not_taken_for_a_file(tmp_path, scheme):
    url = f"{scheme}://facerec:{PASSWORD}@127.0.0.1/faces"
    for script, options in [("recognize_video.py", ["--no-display"]), ("extract_embeddings.py", ["--dataset", str(tmp_path)])]:
        run = run_script(script, "--embeddings", url, *options)
        assert_clean_failure(run, f"--embeddings {scheme}://facerec@127.0.0.1/faces: not a gallery this program "
                                  "can open")
        assert PASSWORD not in run.stdout + run.stderr


def test_a_webhook_url_keeps_its_secret_path_and_query_out_of_every_warning(gallery, tmp_path):
    port = free_port()  # nothing listens there
    run = recognise_lin(gallery, tmp_path, "--webhook", f"http://127.0.0.1:{port}/api/webhook/{SECRET}?token={SECRET}")
    assert run.returncode == 0, run.stderr
    assert f"--webhook http://127.0.0.1:{port}/api/webhook/***?***: an event was not delivered" in run.stderr
    assert SECRET not in run.stdout + run.stderr
