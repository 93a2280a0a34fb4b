"""serve.py --config: several cameras in one process, against real RTSP cameras (GStreamer's RTSP server,
bench/rtsp_camera.py) on loopback, a real mosquitto, and the real server's /api/health and /metrics.

Nothing waits by sleeping: every wait polls /api/health (or the broker) until a condition holds, with a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PROJECT_ROOT, require, run_script, shared_path
from facerec.catalogue import SFACE
from facerec.config import Camera
from facerec.embedding import OpenVinoSFaceEmbedder
from facerec.models import load_models
from facerec.recognition import Recogniser
from facerec.service import Service
from facerec.service.camera import STOPPED
from facerec.stores import open_gallery
from facerec.tracking import DEFAULT_EVERY
from facerec.web.engine import Engine
from helpers import CLIP, CLIP_FRAMES
from mqtt_broker import free_port
from rtsp_camera import RtspCamera
from test_events import Listener, new_broker, retained
from test_sface import CLIP_CONFIDENCE, enrol_with_lin
from web_server import Server

BACK_SECONDS = 45  # the bound: a camera is back this long after its server returns
START_SECONDS = 120  # models and first frames on a busy shared machine: a bound, never a measure
STOP_SECONDS = 10  # SIGTERM: the process has ended with everything flushed (the service aims at 5)
TOKEN = "service-token-1234"
UNIT = PROJECT_ROOT / "docs" / "service" / "facerec.service"


@pytest.fixture(scope="module")
def looped_clip(tmp_path_factory) -> Path:
    """The shared clip 40 times over (6 min) as an H.264 MP4 in a temporary folder: a camera that outlasts a test
    on a slow machine (its end would be a reconnect of its own)."""
    reason = RtspCamera.available()
    require(not reason, reason)
    return RtspCamera.looped(shared_path(CLIP), tmp_path_factory.mktemp("rtsp") / "clip.mp4", 40)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    return enrol_with_lin(tmp_path_factory.mktemp("service_gallery"))


def write_config(folder: Path, cameras: dict[str, str], own: dict[str, dict] | None = None, **settings) -> Path:
    """The TOML of `settings` and `cameras` (name -> source), each with its `own` settings."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    for name, url in cameras.items():
        lines += [f"[cameras.{name}]", f"source = {json.dumps(url)}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in (own or {}).get(name, {}).items()]
    path = folder / "facerec.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def health(server: Server) -> tuple[int, dict]:
    status, answer, _ = server.request("GET", "/api/health")
    return status, answer


def wait_health(server: Server, condition, what: str, seconds: float) -> dict:
    """The health once `condition(status, cameras)` holds; fails after `seconds` saying what was awaited."""
    deadline = time.monotonic() + seconds
    while True:
        status, answer = health(server)
        if condition(status, answer["cameras"]):
            return answer["cameras"]
        assert time.monotonic() < deadline, f"{what} within {seconds} s; last health {status} {answer}"
        time.sleep(0.2)  # a poll's pace, not a synchronisation: the condition decides


def metrics(server: Server) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}, read with prometheus_client's own parser."""
    status, text, _ = server.request("GET", "/metrics", raw=True)
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode()) for sample in family.samples}


def stop_with_sigterm(server: Server) -> tuple[int, float, str]:
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=STOP_SECONDS * 3)
    except subprocess.TimeoutExpired:
        server.kill()
        raise AssertionError("serve.py did not end on SIGTERM") from None
    return code, time.monotonic() - started, server.process.stderr.read()


def test_a_killed_camera_comes_back_by_itself_while_the_other_counts_on_and_sigterm_flushes(
        looped_clip, tmp_path):
    gallery = enrol_with_lin(tmp_path / "gallery")  # its own: the unknown faces are kept beside it
    broker = new_broker(tmp_path / "broker")
    listener = Listener(broker.port)
    door, lab = RtspCamera({"door": looped_clip}).start(), RtspCamera({"lab": looped_clip}).start()
    server = None
    try:
        # lab's own threshold is so strict that nobody is named there: the cameras' settings are their own
        config = write_config(tmp_path, {"door": door.url("door"), "lab": lab.url("lab")}, {"lab": {"threshold": 0.05}},
                              confidence=float(CLIP_CONFIDENCE), mqtt=broker.url(), keep_unknowns=True)
        server = Server(tmp_path / "dataset", gallery, "--config", str(config))
        wait_health(server, lambda status, cameras: status == 200 and all(c["frames"] > 5 for c in cameras.values()),
                    "both cameras running", START_SECONDS)

        door.kill()
        away = wait_health(server, lambda status, cameras: status == 503
                           and cameras["door"]["state"] == "reconnecting", "door reconnecting", START_SECONDS)
        lab_frames = away["lab"]["frames"]
        listener.wait_for(lambda: listener.payloads("facerec/door/status")[-1:] == ["offline"],
                          "door's MQTT status not offline while it reconnects")
        assert listener.payloads("facerec/lab/status")[-1:] == ["online"]
        wait_health(server, lambda status, cameras: cameras["lab"]["frames"] >= lab_frames + 20
                    and cameras["door"]["state"] == "reconnecting", "lab counting while door is away", START_SECONDS)

        door.start()  # the same port
        back = wait_health(server, lambda status, cameras: status == 200 and cameras["door"]["frames"] > 0,
                           "door back", BACK_SECONDS)
        assert back["door"]["reconnects"] == 1 and back["lab"]["reconnects"] == 0
        listener.wait_for(lambda: listener.payloads("facerec/door/status")[-1:] == ["online"],
                          "door's MQTT status not online again once it is back")
        counted = metrics(server)
        assert counted[("facerec_reconnects_total", (("camera", "door"),))] >= 1
        assert counted[("facerec_frames_total", (("camera", "lab"),))] >= lab_frames + 20
        assert counted[("facerec_frame_latency_seconds_count", (("camera", "lab"),))] > 0
        assert counted[("facerec_gallery_vectors", ())] > 0
        assert counted[("facerec_events_total", (("sink", "mqtt"),))] > 0

        # each camera tells its own topics who arrives
        listener.wait_for(lambda: listener.payloads("facerec/lab/events") and any(
            json.loads(payload)["name"] == "lin" for payload in listener.payloads("facerec/door/events")),
            "no events at lab, or lin never named at door")
        code, seconds, stderr = stop_with_sigterm(server)
        server = None
        assert code == 0, stderr
        assert seconds < STOP_SECONDS, stderr
    finally:
        if server is not None:
            server.kill()
        door.kill()
        lab.kill()
    try:
        # flushed: every arrival has its departure, per camera, and both say offline
        for name in ("door", "lab"):
            events = [json.loads(payload) for payload in listener.payloads(f"facerec/{name}/events")]
            assert {event["camera"] for event in events} == {name}
            kinds = [event["type"] for event in events]
            assert kinds.count("arrived") == kinds.count("left") > 0, (name, kinds)
            if name == "lab":
                assert {event["name"] for event in events} == {"Unknown"}, events
        state = retained(broker.port)
        assert state["facerec/door/status"] == state["facerec/lab/status"] == "offline"
    finally:
        listener.close()
        broker.stop()
    # flushed: the Unknown tracks in view at the end, and before, were kept, under each camera's name
    kept = run_script("unknowns.py", "--embeddings", str(gallery), "list", "--json", env={"FACEREC_MODEL": "sface"})
    assert kept.returncode == 0, kept.stderr
    cameras = {camera for line in kept.stdout.splitlines() for camera in json.loads(line)["cameras"]}
    assert cameras == {"door", "lab"}, kept.stdout
    lines = stderr.splitlines()
    went = [line for line in lines if "camera door: warning:" in line and "trying again" in line]
    came = [line for line in lines if "camera door: warning: back" in line]
    assert len(went) == 1 and len(came) == 1, stderr  # one warning away, one back, never one per attempt
    assert not [line for line in lines if "camera lab: warning" in line], stderr
    assert all(line[:4].isdigit() and line[19] == "Z" for line in went + came)  # a time on every line
    assert "Connection refused" not in stderr  # FFmpeg's own line at every attempt


def test_a_camera_that_never_answers_leaves_the_others_running_with_one_warning(looped_clip, gallery, tmp_path):
    ghost = f"rtsp://127.0.0.1:{free_port()}/ghost"  # nothing listens there
    with RtspCamera({"lab": looped_clip}) as lab:
        config = write_config(tmp_path, {"ghost": ghost, "lab": lab.url("lab")})
        server = Server(tmp_path / "dataset", gallery, "--config", str(config), env={"FACEREC_TOKEN": TOKEN})
        try:
            cameras = wait_health(server, lambda status, cameras: status == 503 and cameras["lab"]["frames"] > 30
                                  and cameras["ghost"]["state"] == "reconnecting", "lab running beside the ghost",
                                  START_SECONDS)
            assert cameras["ghost"]["frames"] == 0 and cameras["ghost"]["last_frame_seconds_ago"] is None
            assert cameras["lab"]["state"] == "running"
            for path in ("/api/health", "/metrics"):  # the server's token rule, as every route
                assert server.request("GET", path, token=False)[0] == 401
            # the page lists the cameras; each has its annotated view
            assert server.json("GET", "/api/info")[1]["cameras"] == ["ghost", "lab"]
            assert server.request("GET", "/video?camera=hall")[0] == 404
            connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
            connection.request("GET", "/video?camera=lab", headers={"Authorization": f"Bearer {TOKEN}"})
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("content-type").startswith("multipart/x-mixed")
            part = response.read(4096)
            connection.close()
            assert part.startswith(b"--frame") and b"\xff\xd8" in part  # a JPEG's first bytes
        finally:
            code, _, stderr = stop_with_sigterm(server)
    assert code == 0, stderr
    assert sum("camera ghost: warning" in line for line in stderr.splitlines()) == 1, stderr


def test_a_file_camera_that_does_not_exist_is_refused_before_anything_starts(tmp_path):
    config = write_config(tmp_path, {"lab": str(tmp_path / "missing.mp4")})
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "serve.py"), "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{config}: camera lab: source" in result.stderr


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the unit is checked where it is)")
    text = UNIT.read_text()
    assert "Restart=on-failure" in text and "User=facerec" in text and "FACEREC_CONFIG=" in text
    command = tmp_path / "facerec-serve"  # verify wants ExecStart's program to exist
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    unit = tmp_path / "facerec.service"
    unit.write_text(text.replace("/opt/facerec/venv/bin/facerec-serve", str(command)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr


def test_two_sets_of_networks_recognise_two_cameras_in_parallel_each_camera_in_order(gallery, tmp_path):
    """In one process (no HTTP): two file cameras of the whole clip, two sets of networks (engine.add_networks)."""
    models = load_models("sface", detector=shared_path("models"),
                         embedder=shared_path("models") / SFACE.files[0].filename)
    with Recogniser(models, gallery) as recogniser:
        engine = Engine(recogniser, models.reloaded, tmp_path / "dataset")
        engine.add_networks(models.reloaded())
        clip = str(shared_path(CLIP))
        service = Service(engine, [Camera("a", clip), Camera("b", clip)], DEFAULT_EVERY)
        try:
            deadline = time.monotonic() + START_SECONDS * 3
            while not all(camera.state == STOPPED for camera in service.cameras.values()):
                assert time.monotonic() < deadline, {name: camera.health() for name, camera in service.cameras.items()}
                time.sleep(0.2)  # a poll's pace: the cameras' states decide
        finally:
            service.stop()
            service.close()
    a, b = service.cameras["a"], service.cameras["b"]
    # every frame of the clip, in order (a file camera drops none), with the same faces whichever set detected them
    assert a.frames == b.frames == CLIP_FRAMES and a.dropped == b.dropped == 0
    assert a.faces == b.faces > 0
    pool = engine.networks
    assert pool.size == 2 and pool.in_use == 0
    assert pool.most_in_use == 2  # both sets lent at once: two frames recognised in parallel
    sets = list(pool._free)
    assert len({id(networks.detector) for networks in sets} | {id(networks.embedder) for networks in sets}) == 4
    assert recogniser in sets and all(networks.embedded > 0 for networks in sets)  # both sets computed
    # one compiled OpenVINO network for both sets (an inference request each), and no enrolment: no learner loaded
    if isinstance(recogniser.models.embedder, OpenVinoSFaceEmbedder):
        assert len({id(networks.embedder.compiled) for networks in sets}) == 1  # type: ignore[attr-defined]
    assert engine._learner_models is None


def test_the_learners_networks_are_loaded_at_the_first_enrolment_apart_from_the_cameras(gallery, tmp_path):
    """serve.py's Engine: no learner held until something enrols; then networks of its own (learning runs beside
    the cameras), which learn the dataset."""
    models = load_models("sface", detector=shared_path("models"),
                         embedder=shared_path("models") / SFACE.files[0].filename)
    dataset = tmp_path / "dataset"
    shutil.copytree(shared_path("faces/known/obama"), dataset / "obama")
    with open_gallery(tmp_path / "embeddings.pickle", missing_ok=True) as stored, Recogniser(models, stored) as recogniser:
        engine = Engine(recogniser, models.reloaded, dataset)
        engine.add_networks(models.reloaded())
        assert engine._learner_models is None
        engine.learn()
        deadline = time.monotonic() + START_SECONDS
        while engine.progress.state == "learning":
            assert time.monotonic() < deadline, engine.progress
            time.sleep(0.2)  # a poll's pace: the learner's state decides
        assert engine.progress.state == "done", engine.progress
        assert engine.gallery.people == ["obama"]
        learner = engine.learner
        assert engine.learner is learner  # loaded once
        sets = list(engine.networks._free)
        assert all(learner.detector is not networks.detector and learner.embedder is not networks.embedder
                   for networks in sets)


ARENAS_SCRIPT = """
import ctypes, sys, threading
from facerec.web.limits import limit_malloc_arenas
if sys.argv[1] != "-":
    limit_malloc_arenas(int(sys.argv[1]))
started, done = threading.Barrier(6), threading.Barrier(6)
def allocate():
    started.wait()
    kept = [bytearray(10_000) for _ in range(100)]  # malloc's, not Python's small-object allocator
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()  # glibc: an "Arena N:" paragraph each, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_limit_malloc_arenas_caps_them_unless_malloc_arena_max_says_otherwise():
    """serve.py calls limit_malloc_arenas(usable cores) first: 6 threads that allocate at once share that many
    arenas instead of one each (glibc: up to 8 a core); $MALLOC_ARENA_MAX, when set, is left as it is."""
    def arenas(limit: str, **environment: str) -> int:
        result = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, limit], capture_output=True, text=True,
                                timeout=120, cwd=PROJECT_ROOT,
                                env={**{key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"},
                                     **environment})
        assert result.returncode == 0, result.stderr
        return sum(line.startswith("Arena ") for line in result.stderr.splitlines())

    assert arenas("-") == 7  # glibc's own: the main thread's and one a thread
    assert arenas("2") == 2 and arenas("1") == 1
    assert arenas("1", MALLOC_ARENA_MAX="3") == 3
