"""Events for other systems: recognize_video.py and serve.py --mqtt / --webhook, against a real broker.

Each test starts Debian's mosquitto on a free loopback port (bench/mqtt_broker.py) and
listens with a real paho client; webhooks go to a small HTTP server on loopback. The events
are checked against the recogniser's own --json output of the same run: one arrival and one
departure per visit of a person (the clip is shorter than --away-seconds: one visit each),
never one per track or per frame.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import re
import shutil
import sys
import threading
import time
from collections import Counter

import paho.mqtt.client as paho
import pytest

from conftest import PROJECT_ROOT, require, run_script, shared_path
from helpers import CLIP, assert_clean_failure
from mqtt_broker import Broker, broker_available, free_port
from paced_camera import WAIT_SECONDS, y4m_frames
from test_sface import CLIP_CONFIDENCE, enrol, enrol_with_lin, linked_dataset, sface_model_args
from web_server import Server
from fifo_camera import PacedCamera

from facerec.cli import add_event_arguments, webhook_secret
from facerec.events import Event, EventSink, QueuedSink
from facerec.matching import UNKNOWN
from facerec.events.webhook import WebhookSink

CAMERA = "stage"
PASSWORD = "Pa55-w0rd-xyz"
EVENT_KEYS = {"type", "name", "camera", "track", "time", "distance", "box"}
PEOPLE = {"alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie", "lin"}
# What Home Assistant's MQTT discovery needs of a sensor and a binary sensor grouped under a device
# (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery): a state topic, a unique id (without
# it there is no device), and a device with identifiers; availability tells it online / offline.
DISCOVERY_KEYS = {"name", "unique_id", "state_topic", "device", "availability_topic", "payload_available",
                  "payload_not_available"}



def new_broker(folder, users: dict[str, str] | None = None) -> Broker:
    """A mosquitto of this test's own (skipped, or failed under FACEREC_REQUIRE_ASSETS=1, without mosquitto)."""
    require(broker_available(), "mosquitto and mosquitto_passwd are not installed: apt-get install mosquitto")
    return Broker(folder, users)


class Listener:
    """A paho client subscribed to everything (QoS 1, a persistent session: it misses nothing across a restart)."""

    def __init__(self, port: int, login: tuple[str, str] | None = None, name: str = "listener") -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.changed = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{name}", clean_session=False)
        if login:
            self.client.username_pw_set(*login)
        self.client.reconnect_delay_set(0.2, 1)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda client, *_: client.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._received
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _received(self, client, userdata, message) -> None:
        with self.changed:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))
            self.changed.notify_all()

    def wait_for(self, condition, what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(condition, WAIT_SECONDS), f"{what}; got {self.messages[-5:]}"

    def payloads(self, topic: str) -> list[str]:
        with self.changed:
            return [payload for message_topic, payload, _ in self.messages if message_topic == topic]

    def events(self) -> list[dict]:
        return [json.loads(payload) for payload in self.payloads(f"facerec/{CAMERA}/events")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, login: tuple[str, str] | None = None) -> dict[str, str]:
    """{topic: payload} of every retained message the broker holds now (a fresh client's first look).

    The broker queues them to the client as it takes the subscription, before anything the client publishes
    after it; so once the client's own marker (QoS 1, as the subscription) comes back, all of them have come."""
    listener = Listener(port, login, name=f"retained-{time.monotonic_ns()}")
    marker = f"test-marker/{time.monotonic_ns()}"
    try:
        assert listener.subscribed.wait(WAIT_SECONDS), "the broker did not take the subscription"
        listener.client.publish(marker, "end of the retained messages", qos=1)
        listener.wait_for(lambda: any(topic == marker for topic, _, _ in listener.messages), "the marker never came")
        with listener.changed:
            return {topic: payload for topic, payload, is_retained in listener.messages if is_retained}
    finally:
        listener.close()


def docs_receiver():
    """`verified(secret, body, headers)` as docs/events.md shows a receiver checking a signed webhook."""
    text = (PROJECT_ROOT / "docs" / "events.md").read_text()
    (code,) = re.findall(r"```python\n(# a webhook receiver.*?)```", text, re.S)
    assert len(code.strip().splitlines()) <= 10, code
    scope: dict = {}
    exec(compile(code, "docs/events.md", "exec"), scope)
    return scope["verified"]


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver on loopback: the JSON bodies POSTed to it; `fail_first` requests answer 500. With
    `secret`, each POST's signature is checked by the docs' own receiver code (`signed`: the verdicts)."""

    def __init__(self, fail_first: int = 0, secret: bytes | None = None) -> None:
        self.bodies: list[dict] = []
        self.signed: list[bool] = []
        self.requests = 0
        self.fail_first = fail_first
        verified = docs_receiver() if secret is not None else None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if verified is not None:
                    receiver.signed.append(verified(secret, body, self.headers))
                receiver.requests += 1
                if receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def check_events(events: list[dict], records: list[dict]) -> None:
    """The events are the visits the --json records call for: each person named in them arrives once, when
    first named, and leaves once (the run is shorter than --away-seconds); each Unknown visit ends; each
    event carries its fields and the box of its track where it was seen."""
    faces = {(record["frame"], face["track"]): face for record in records for face in record["faces"]}
    first = {}
    for record in records:
        for face in record["faces"]:
            first.setdefault(face["name"], (record["frame"], face["track"]))
    named = set(first) - {UNKNOWN}
    assert "lin" in named
    for name in named:
        assert [event["type"] for event in events if event["name"] == name] == ["arrived", "left"], name
        (arrival,) = [event for event in events if event["name"] == name and event["type"] == "arrived"]
        assert (arrival["frame"], arrival["track"]) == first[name]
    unknown = Counter(event["type"] for event in events if event["name"] == UNKNOWN)
    assert unknown["arrived"] == unknown["left"] and set(unknown) <= {"arrived", "left"}
    for event in events:
        assert set(event) >= EVENT_KEYS and event["camera"] == CAMERA
        assert datetime.datetime.fromisoformat(event["time"]).tzinfo is not None
        face = faces[(event["frame"], event["track"])]  # seen there and then
        assert event["box"] == face["box"]
        if event["type"] == "arrived":
            assert event["name"] == face["name"] and event["distance"] == face["distance"]


def check_people(people: list[list[str]], name: str = "lin") -> None:
    """The retained `people` lists: `name` in one stretch (never dropped and taken back within the visit), never
    a transient [] while anyone is in view, [] at the end."""
    having = [index for index, names in enumerate(people) if name in names]
    assert having and having == list(range(having[0], having[-1] + 1)), people
    assert people[-1] == [] and all(people[1:-1]), people


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    require(shared_path(CLIP).is_file(), f"{CLIP} is missing")
    return enrol_with_lin(tmp_path_factory.mktemp("events_gallery"))


@pytest.fixture
def broker(tmp_path):
    broker = new_broker(tmp_path / "broker")
    yield broker
    broker.stop()


def recognise_clip(gallery, *options):
    run = run_script("recognize_video.py", "--embeddings", str(gallery), "--source", str(shared_path(CLIP)),
                     "--no-display", "--json", "--confidence", CLIP_CONFIDENCE, "--camera", CAMERA, *options,
                     *sface_model_args())
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()], run


# over the clip ----------------------------------------------------------------------------------

def test_the_clip_publishes_one_arrival_and_one_departure_per_visit_and_the_signed_webhook_gets_the_same(
        gallery, broker, tmp_path):
    listener = Listener(broker.port)
    secret = tmp_path / "webhook.secret"
    secret.write_text("s3cret-Ωmega\n")
    receiver = Receiver(secret="s3cret-Ωmega".encode())
    try:
        records, run = recognise_clip(gallery, "--mqtt", broker.url(), "--webhook", receiver.url,
                                      "--webhook-secret-file", str(secret))
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{CAMERA}/status"), "no offline status")
        events = listener.events()
        check_events(events, records)
        assert [(event["type"], event["name"]) for event in events if event["name"] in ("lin", "obama")] == [
            ("arrived", "lin"), ("arrived", "obama"), ("left", "lin"), ("left", "obama")]  # each leaves at the end
        assert receiver.bodies == events  # the same JSON, in the same order
        assert receiver.signed == [True] * len(events)  # every POST, checked by the docs' receiver
        assert listener.payloads(f"facerec/{CAMERA}/status")[-2:] == ["online", "offline"]
        check_people([json.loads(payload) for payload in listener.payloads(f"facerec/{CAMERA}/people")])
        assert run.stderr.count("warning") == 0, run.stderr
        state = retained(broker.port)
        assert state[f"facerec/{CAMERA}/people"] == "[]" and state[f"facerec/{CAMERA}/status"] == "offline"
        assert state[f"facerec/{CAMERA}/seen/lin"] == "OFF"  # ON for 5 minutes after, but the camera stopped
        assert "ON" in listener.payloads(f"facerec/{CAMERA}/seen/lin")
        assert state[f"facerec/{CAMERA}/seen/biden"] == "OFF"  # not in the clip
        check_discovery(state, PEOPLE)
    finally:
        listener.close()
        receiver.shutdown()


def check_discovery(state: dict[str, str], people: set[str]) -> None:
    """Home Assistant's discovery configs: one sensor (the last person) and a binary sensor per person, one device."""
    configs = {topic: json.loads(payload) for topic, payload in state.items()
               if topic.startswith("homeassistant/") and payload}
    sensors = {topic: config for topic, config in configs.items() if topic.startswith("homeassistant/sensor/")}
    binary = {topic: config for topic, config in configs.items() if topic.startswith("homeassistant/binary_sensor/")}
    assert len(sensors) == 2 and len(binary) == len(people), sorted(configs)  # last person, familiar stranger
    for topic, config in configs.items():
        # <discovery prefix>/<component>/<node id>/<object id>/config, ids of lowercase ASCII letters, digits, _
        prefix, component, node, object_id, last = topic.split("/")
        assert last == "config" and re.fullmatch("[a-z0-9_]+", node) and re.fullmatch("[a-z0-9_]+", object_id)
        assert set(config) >= DISCOVERY_KEYS, topic
        assert config["availability_topic"] == f"facerec/{CAMERA}/status"
        assert config["device"]["identifiers"] == [f"facerec_{CAMERA}"]
        assert "object_id" not in config and config["default_entity_id"] == f"{component}.{node}_{object_id}"
    assert len({config["unique_id"] for config in configs.values()}) == len(configs)
    last_person = configs[f"homeassistant/sensor/facerec_{CAMERA}/last_person/config"]
    assert last_person["state_topic"] == f"facerec/{CAMERA}/events" and "value_json.name" in last_person["value_template"]
    for config in binary.values():
        assert state[config["state_topic"]] in (config["payload_on"], config["payload_off"])
    assert {config["name"] for config in binary.values()} == people  # short: Home Assistant adds the device's name
    assert {config["state_topic"].rsplit("/", 1)[1] for config in binary.values()} == people


def test_names_in_any_script_get_ids_of_their_own_and_an_earlier_runs_stale_ones_are_cleared(broker, tmp_path):
    dataset = tmp_path / "dataset"
    for name, photo in {"李明": "obama1.jpg", "王芳": "alex_lacamoire1.jpg", "José García": "johnsnow_test1.jpg"}.items():
        (dataset / name).mkdir(parents=True)
        (dataset / name / photo).symlink_to(shared_path(f"faces/probe/{photo}"))
    embeddings = tmp_path / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    # what an earlier run of this camera left for someone no longer in the gallery, and another camera's
    stale = {"homeassistant/binary_sensor/facerec_stage/seen_ghost/config": "{}", f"facerec/{CAMERA}/seen/ghost": "ON"}
    other = {"facerec/hall/seen/ghost": "ON"}
    planter = paho.Client(paho.CallbackAPIVersion.VERSION2)
    planter.connect("127.0.0.1", broker.port)
    planter.loop_start()
    for topic, payload in {**stale, **other}.items():
        planter.publish(topic, payload, qos=1, retain=True).wait_for_publish(WAIT_SECONDS)
    planter.disconnect()
    planter.loop_stop()
    clip = tmp_path / "short.y4m"
    header, frames = y4m_frames(range(0, 5))
    clip.write_bytes(header + b"".join(frames))
    run = run_script("recognize_video.py", "--embeddings", str(embeddings), "--source", str(clip), "--no-display",
                     "--camera", CAMERA, "--mqtt", broker.url(), *sface_model_args())
    assert run.returncode == 0, run.stderr
    state = retained(broker.port)
    assert not set(stale) & set(state) and {topic: state.get(topic) for topic in other} == other
    configs = {json.loads(payload)["name"]: json.loads(payload) for topic, payload in state.items()
               if topic.startswith("homeassistant/binary_sensor/")}
    assert set(configs) == {"李明", "王芳", "José García"}
    assert configs["José García"]["default_entity_id"] == "binary_sensor.facerec_stage_seen_jose_garcia"
    assert configs["李明"]["state_topic"] == f"facerec/{CAMERA}/seen/li_ming"
    for key in ("state_topic", "unique_id", "default_entity_id"):
        values = {config[key] for config in configs.values()}
        assert len(values) == 3 and all(re.fullmatch("[a-z0-9_./]+", value) for value in values), values
    assert all(state[config["state_topic"]] == "OFF" for config in configs.values())


def test_strangers_kept_by_a_first_run_arrive_with_their_group_and_once_named_arrive_by_name(broker, tmp_path):
    dataset = tmp_path / "dataset"
    for person in sorted(shared_path("faces/known").iterdir()):
        (tmp_path / "dataset").mkdir(exist_ok=True)
        shutil.copytree(person, dataset / person.name)  # lin is not enrolled: he is a stranger
    embeddings = tmp_path / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    listener = Listener(broker.port)
    try:
        recognise_clip(embeddings, "--keep-unknowns")
        listed = run_script("unknowns.py", *sface_model_args(), "--embeddings", str(embeddings), "list", "--json")
        groups = {json.loads(line)["group"]: json.loads(line) for line in listed.stdout.splitlines()}
        assert groups, listed.stderr
        records, run = recognise_clip(embeddings, "--keep-unknowns", "--mqtt", broker.url())
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{CAMERA}/status"), "no offline status")
        familiar = [event for event in listener.events() if event["type"] == "arrived" and "unknown_group" in event]
        assert familiar and all(event["name"] == UNKNOWN for event in familiar), listener.events()
        assert all(event["unknown_group"] in groups and event["visits"] == groups[event["unknown_group"]]["tracks"] + 1
                   for event in familiar), (familiar, groups)
        # lin, on stage in most frames, is the group of most tracks; named, his faces are named from then on
        lin_group = max(groups, key=lambda group: groups[group]["tracks"])
        assert lin_group in [event["unknown_group"] for event in familiar]
        stranger = json.loads(retained(broker.port)[f"facerec/{CAMERA}/stranger"])
        assert stranger["unknown_group"] == familiar[-1]["unknown_group"]
        named = run_script("unknowns.py", *sface_model_args(), "--embeddings", str(embeddings), "name",
                           str(lin_group), "lin", "--dataset", str(dataset))
        assert named.returncode == 0, named.stderr
        seen = len(listener.events())
        recognise_clip(embeddings, "--keep-unknowns", "--mqtt", broker.url())
        listener.wait_for(lambda: listener.payloads(f"facerec/{CAMERA}/status").count("offline") == 2, "no offline")
        third = listener.events()[seen:]
        assert ("arrived", "lin") in [(event["type"], event["name"]) for event in third]
        assert lin_group not in [event.get("unknown_group") for event in third]
    finally:
        listener.close()


# errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("ftp://127.0.0.1/x", "must start with mqtt:// or mqtts://"),
    ("mqtt://", "names no broker host"),
    ("mqtt://127.0.0.1:port", "is not a valid URL"),
    ("mqtt://127.0.0.1/a+b", "cannot be part of an MQTT topic"),
])
def test_a_bad_mqtt_url_is_one_error_line(tmp_path, url, message):
    run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--mqtt", url,
                     "--no-display")
    assert_clean_failure(run, message)


def test_an_unreachable_broker_and_a_refused_login_are_one_error_line_without_the_password(gallery, tmp_path):
    unreachable = run_script("recognize_video.py", "--embeddings", str(gallery), "--no-display", *sface_model_args(),
                             "--mqtt", f"mqtt://facerec:{PASSWORD}@127.0.0.1:{free_port()}/home")
    assert_clean_failure(unreachable, "error: cannot reach the MQTT broker mqtt://facerec@127.0.0.1:")
    broker = new_broker(tmp_path / "broker", {"facerec": PASSWORD})
    try:
        not_tls = run_script("recognize_video.py", "--embeddings", str(gallery), "--no-display",
                             "--mqtt", f"mqtts://facerec:{PASSWORD}@127.0.0.1:{broker.port}")
        assert_clean_failure(not_tls, "error: cannot reach the MQTT broker mqtts://facerec@127.0.0.1:")
        refused = run_script("recognize_video.py", "--embeddings", str(gallery), "--no-display", *sface_model_args(),
                             "--mqtt", f"mqtt://facerec:wrong-{PASSWORD}@127.0.0.1:{broker.port}")
        assert_clean_failure(refused, "refused the connection: Not authorized")
        anonymous = run_script("recognize_video.py", "--embeddings", str(gallery), "--no-display",
                               *sface_model_args(), "--mqtt", broker.url())
        assert_clean_failure(anonymous, "refused the connection")
    finally:
        broker.stop()
    for run in (unreachable, not_tls, refused, anonymous):
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert PASSWORD not in run.stdout + run.stderr


def test_a_bad_webhook_url_and_events_without_a_source_are_refused(tmp_path):
    run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--no-display",
                     "--webhook", "ftp://127.0.0.1/hook")
    assert_clean_failure(run, "--webhook ftp://127.0.0.1/***: give an http:// or https:// URL")  # path masked
    run = run_script("serve.py", "--embeddings", str(tmp_path / "none.pickle"), "--mqtt", "mqtt://127.0.0.1")
    assert_clean_failure(run, "give --source too")
    (tmp_path / "empty.secret").write_text("\n")
    for secret, message in ((tmp_path / "empty.secret", "is empty"), (tmp_path / "missing", "cannot be read"),
                            (tmp_path, "cannot be read")):
        run = run_script("recognize_video.py", "--embeddings", str(tmp_path / "none.pickle"), "--no-display",
                         "--webhook", "http://127.0.0.1:9/hook", "--webhook-secret-file", str(secret))
        assert_clean_failure(run, f"--webhook-secret-file {str(secret)!r} {message}")


@pytest.mark.parametrize("given", ["line", "environment", "config"])
def test_with_a_login_events_arrive_and_the_password_is_never_printed(gallery, tmp_path, given):
    """The URL with its password from --mqtt, or (out of `ps`' sight) $FACEREC_MQTT_URL or the config file."""
    broker = new_broker(tmp_path / "broker", {"facerec": PASSWORD, "reader": "reader-pw"})
    listener = Listener(broker.port, ("reader", "reader-pw"))
    clip = tmp_path / "lin.y4m"  # the frames where lin is on stage: a short clip
    header, frames = y4m_frames(range(82, 130))
    clip.write_bytes(header + b"".join(frames))
    url = f"mqtt://facerec:{PASSWORD}@127.0.0.1:{broker.port}"
    config = tmp_path / "facerec.toml"
    config.write_text(f'mqtt = "{url}"\n')
    options, env = {"line": (["--mqtt", url], {}), "environment": ([], {"FACEREC_MQTT_URL": url}),
                    "config": (["--config", str(config)], {})}[given]
    try:
        run = run_script("recognize_video.py", "--embeddings", str(gallery), "--source", str(clip), "--no-display",
                         "--confidence", CLIP_CONFIDENCE, "--camera", CAMERA, *sface_model_args(), *options, env=env)
        assert run.returncode == 0, run.stderr
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{CAMERA}/status"), "no offline status")
        assert [(event["type"], event["name"]) for event in listener.events()] == [("arrived", "lin"), ("left", "lin")]
        assert PASSWORD not in run.stdout + run.stderr
    finally:
        listener.close()
        broker.stop()


# a broker that goes away, a process that is killed, a gallery that changes ------------------------

def paced_recogniser(tmp_path, gallery, broker, frames, *options):
    """recognize_video.py --json --mqtt reading a FIFO fed `frames` of the clip at most 10 a second."""
    command = [sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings", str(gallery),
               "--source", str(tmp_path / "camera.y4m"), "--no-display", "--json", "--confidence", CLIP_CONFIDENCE,
               "--camera", CAMERA, "--mqtt", broker.url(), *options, *sface_model_args()]
    return PacedCamera(tmp_path / "camera.y4m", command, y4m_frames(frames))


def test_a_broker_stopped_and_restarted_in_the_middle_of_the_clip_loses_no_event(gallery, broker, tmp_path):
    listener = Listener(broker.port)
    frames = range(60, 230)  # Lin-Manuel Miranda's shot (82 to 210) and a little of each side
    camera = paced_recogniser(tmp_path, gallery, broker, frames)
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the recogniser started")
        broker.stop()  # before lin arrives (at 82): his arrival waits for the broker
        camera.wait_for(lambda: len(camera.records) >= 70, "the recogniser goes on without its broker")
        broker.start()
        camera.wait_for(lambda: len(camera.records) >= len(frames), "the recogniser saw the whole shot")
        assert camera.stop() == 0, camera.stderr
        listener.wait_for(lambda: "offline" in listener.payloads(f"facerec/{CAMERA}/status"), "no offline status")
        check_events(listener.events(), camera.records)
        stderr = "".join(camera.stderr)
        assert stderr.count("warning: lost the MQTT broker") == 1, stderr
        assert json.loads(listener.payloads(f"facerec/{CAMERA}/people")[-1]) == []
    finally:
        camera.stop()
        listener.close()


def test_a_person_leaving_the_gallery_leaves_home_assistant_and_a_killed_process_goes_offline(gallery, broker,
                                                                                            tmp_path):
    listener = Listener(broker.port)
    # the gallery this run follows: lin and faces/known; then biden is removed from it
    dataset = linked_dataset(tmp_path / "dataset", {"lin": shared_path("faces/probe/lin-manuel-miranda.png")})
    embeddings = tmp_path / "embeddings.pickle"
    enrol(dataset, embeddings, *sface_model_args())
    camera = paced_recogniser(tmp_path, embeddings, broker, range(100, 200))
    biden = "homeassistant/binary_sensor/facerec_stage/seen_biden/config"
    try:
        listener.wait_for(lambda: listener.payloads(biden), "no discovery config for biden")
        listener.wait_for(lambda: "online" in listener.payloads(f"facerec/{CAMERA}/status"), "not online")
        (dataset / "biden").unlink()
        enrol(dataset, embeddings, *sface_model_args())
        listener.wait_for(lambda: listener.payloads(biden)[-1] == "", "biden's config was not removed")
        assert listener.payloads(f"facerec/{CAMERA}/seen/biden")[-1] == ""
        lin = "homeassistant/binary_sensor/facerec_stage/seen_lin/config"
        configs = len(listener.payloads(lin))
        listener.client.publish("homeassistant/status", "online", qos=1)  # Home Assistant restarted
        listener.wait_for(lambda: len(listener.payloads(lin)) > configs, "discovery was not sent again")
        camera.process.kill()  # no goodbye: the broker publishes the connection's last will
        listener.wait_for(lambda: listener.payloads(f"facerec/{CAMERA}/status")[-1] == "offline", "no last will")
        state = retained(broker.port)
        assert state[f"facerec/{CAMERA}/status"] == "offline"
        check_discovery(state, PEOPLE - {"biden"})
    finally:
        camera.stop()
        listener.close()


# serve.py --source ------------------------------------------------------------------------------

def test_serve_tells_who_arrives_in_its_source_without_a_page_watching(gallery, broker, tmp_path):
    listener = Listener(broker.port)
    clip = tmp_path / "lin.y4m"
    header, frames = y4m_frames(range(82, 130))
    clip.write_bytes(header + b"".join(frames))
    server = Server(tmp_path / "dataset", gallery, "--source", str(clip), "--confidence", CLIP_CONFIDENCE,
                    "--camera", CAMERA, "--mqtt", broker.url())
    try:
        # the file plays again at its end: lin arrives, leaves when it starts again, arrives again
        listener.wait_for(lambda: [event["type"] for event in listener.events() if event["name"] == "lin"][:3]
                          == ["arrived", "left", "arrived"], "lin did not arrive twice")
    finally:
        stderr = server.stop()
        listener.close()
    listener_state = retained(broker.port)
    assert listener_state[f"facerec/{CAMERA}/status"] == "offline", stderr
    assert listener_state[f"facerec/{CAMERA}/people"] == "[]"


# the sinks' queue and the webhook's retries -------------------------------------------------------

def an_event(track: int) -> Event:
    return Event("arrived", "lin", CAMERA, track, 1.0e9, 0.5, (1, 2, 3, 4), track)


def test_a_webhook_that_fails_is_retried_and_one_that_is_down_costs_one_warning():
    receiver = Receiver(fail_first=2)
    warnings: list[str] = []
    sink = WebhookSink(receiver.url, warnings.append, first_wait=0.05)
    sink.arrived(an_event(1))
    assert [body["track"] for body in receiver.bodies] == [1] and receiver.requests == 3 and not warnings
    receiver.shutdown()
    receiver.server_close()
    down = WebhookSink(f"http://user:{PASSWORD}@127.0.0.1:{receiver.server_address[1]}/hook", warnings.append,
                       attempts=2, first_wait=0.05)
    for track in range(3):
        down.arrived(an_event(track))
    assert len(warnings) == 1 and "not delivered" in warnings[0] and PASSWORD not in warnings[0]


def test_a_secret_from_the_environment_signs_each_attempt_and_the_docs_receiver_refuses_a_wrong_one(monkeypatch):
    monkeypatch.setenv("FACEREC_WEBHOOK_SECRET", "from-the-environment")
    parser = argparse.ArgumentParser()
    add_event_arguments(parser)
    secret = webhook_secret(parser.parse_args([]))
    assert secret == b"from-the-environment"
    receiver = Receiver(fail_first=1, secret=secret)
    WebhookSink(receiver.url, print, first_wait=0.05, secret=secret).arrived(an_event(1))
    WebhookSink(receiver.url, print, secret=b"another").arrived(an_event(2))
    WebhookSink(receiver.url, print).arrived(an_event(3))
    receiver.shutdown()
    assert receiver.requests == 4 and receiver.signed == [True, True, False, False]
    verified = docs_receiver()
    body = json.dumps(an_event(1).as_json()).encode()
    headers = WebhookSink(receiver.url, print, secret=secret).signed(body)
    assert verified(secret, body, headers) and not verified(secret, body + b" ", headers)
    assert not verified(secret, body, {**headers, "X-Facerec-Timestamp": str(int(time.time()) - 3600)})


def test_a_sink_that_does_not_keep_up_never_blocks_the_caller_and_drops_the_oldest():
    class Stuck(EventSink):
        def __init__(self):
            self.started, self.go, self.got = threading.Event(), threading.Event(), []

        def arrived(self, event):
            self.started.set()
            self.go.wait()
            self.got.append(event.track)

        left = arrived

        def close(self):
            pass

    warnings: list[str] = []
    stuck = Stuck()
    queued = QueuedSink(stuck, "stuck", warnings.append, limit=3)
    queued.arrived(an_event(0))
    stuck.started.wait(WAIT_SECONDS)  # the sink's thread holds the first; 3 of the others wait
    for track in range(1, 10):
        queued.arrived(an_event(track))
    assert len(warnings) == 1 and "oldest are dropped" in warnings[0]
    stuck.go.set()
    queued.close()
    assert stuck.got == [0, 7, 8, 9]
