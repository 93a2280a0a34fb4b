"""Events to an MQTT broker, and the Home Assistant discovery that makes each camera a device.

Topics under PREFIX/CAMERA (docs/events.md):

    events          one JSON message per arrival or departure (QoS 1, not retained)
    people          the names in view now, a JSON list (retained)
    status          online / offline (retained; offline is also the connection's last will)
    seen/PERSON     ON while PERSON's visit is open and for --seen-minutes after, else OFF (retained; OFF when
                    the run ends); PERSON is the name's Home Assistant id (ids.py: `jose_garcia`)
    stranger        the last kept group of unknown faces seen and its visits, JSON (retained; --keep-unknowns)

At the start, retained `seen` states and discovery configs of this camera left by an earlier run for
people no longer in the gallery are deleted (found by subscribing to them until a message of our own,
sent after the subscription, comes back: the broker sends the retained ones first).

The connection is made (and checked) when the sink is made: a bad URL, a broker that cannot be
reached or a refused login is a FacerecError. Later losses are a warning: paho reconnects, events
wait in the QueuedSink in front of this one, and the retained topics are published again from
the state held here (a restarted broker may have forgotten them). Passwords are never shown.
"""

from __future__ import annotations

import json
import threading
import time
import unicodedata
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho

from ..errors import FacerecError
from ..stores import masked
from ..text import printable
from ..version import __version__
from .ids import PersonIds, camera_id, person_ids, slug, unique_id
from .sink import MAX_SEEN_MINUTES, Event, EventSink

DEFAULT_PREFIX = "facerec"
DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
BIRTH_TOPIC = f"{DISCOVERY_PREFIX}/status"  # where Home Assistant says `online` when it (re)starts
PORTS = {"mqtt": 1883, "mqtts": 8883}
KEEPALIVE_SECONDS = 30
CONNECT_SECONDS = 10.0  # to reach the broker and hear its answer at the start
FLUSH_SECONDS = 5.0  # at the end: the last messages' acknowledgements
# An event the broker has not acknowledged in this long: it hangs (a stopped process, a frozen machine keep the
# connection open: paho's keepalive notices only after 2 x KEEPALIVE_SECONDS). One warning; the next events wait.
PUBLISH_SECONDS = 10.0
ON, OFF = "ON", "OFF"
MAX_TOPIC_BYTES = 65_535  # MQTT's limit (a UTF-8 string's 2-byte length)
# room left in the longest topic (homeassistant/binary_sensor/facerec_CAMERA/seen_PERSON/config) for the rest
MAX_PREFIX_AND_CAMERA_BYTES = MAX_TOPIC_BYTES - 512


@dataclass(frozen=True)
class MqttTarget:
    """Where --mqtt points: the broker, the login and the topic prefix."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    prefix: str


def parse_mqtt_url(url: str) -> MqttTarget:
    """`mqtt://[user:password@]host[:port][/prefix]` (mqtts:// for TLS), or FacerecError saying what is wrong."""
    shown = masked(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FacerecError(f"--mqtt {shown} is not a valid URL (mqtt://[user:password@]host[:port][/prefix])") from None
    if parts.scheme not in PORTS:
        raise FacerecError(f"--mqtt {shown}: the URL must start with mqtt:// or mqtts:// (TLS)")
    if not parts.hostname:
        raise FacerecError(f"--mqtt {shown} names no broker host (mqtt://host[:port][/prefix])")
    if port == 0:  # urlsplit reads :0 as 0, which `port or default` would have made 1883
        raise FacerecError(f"--mqtt {shown}: port 0 is not a port (1 to 65535)")
    if "#" in url or "?" in url:  # urlsplit would cut the prefix there, silently
        raise FacerecError(f"--mqtt {shown}: # and ? cannot be part of the URL (the prefix is a topic: no # or +; "
                           "in a password write them %23 and %3F)")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    check_topic_level(prefix, "--mqtt's prefix", levels=True)
    return MqttTarget(parts.hostname, PORTS[parts.scheme] if port is None else port, parts.scheme == "mqtts",
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password is not None else None, prefix)


def check_topic_level(text: str, what: str, levels: bool = False) -> None:
    """FacerecError unless `text` can be used in a topic: no wildcards (+ #), no / unless `levels`, nothing
    a broker refuses (mosquitto closes the connection without a word on a control character, U+0000 to
    U+001F and U+007F to U+009F, a non-character or a text that is not UTF-8)."""
    shown = f"'{printable(text[:80])}'" + (f" (and {len(text) - 80:,} more characters)" if len(text) > 80 else "")
    if not text or "+" in text or "#" in text or (not levels and "/" in text):
        raise FacerecError(f"{what} {shown} cannot be part of an MQTT topic (no + or #{'' if levels else ' or /'})")
    refused = next((char for char in text if _refused_in_topics(char)), None)
    if refused is not None:
        kind = ("a byte that is not UTF-8" if 0xD800 <= ord(refused) <= 0xDFFF
                else "a control character" if unicodedata.category(refused) == "Cc" else "a non-character")
        raise FacerecError(f"{what} {shown} cannot be part of an MQTT topic: it holds {kind} "
                           f"(U+{ord(refused):04X}), which brokers refuse")


def _refused_in_topics(char: str) -> bool:
    """What MQTT 3.1.1 (1.5.3) lets a broker refuse in a topic: controls, surrogates, non-characters."""
    code = ord(char)
    return (code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or 0xFDD0 <= code <= 0xFDEF
            or code & 0xFFFE == 0xFFFE)


def check_topic_room(prefix: str, camera: str) -> None:
    """FacerecError unless every topic made of `prefix` and `camera` fits MQTT's 65,535 bytes."""
    size = len(prefix.encode()) + len(camera.encode())
    if size > MAX_PREFIX_AND_CAMERA_BYTES:
        raise FacerecError(f"--mqtt's prefix and --camera are {size:,} bytes together: at most "
                           f"{MAX_PREFIX_AND_CAMERA_BYTES:,} (an MQTT topic is at most {MAX_TOPIC_BYTES:,} bytes, "
                           f"and the longest adds a person's name)")


class MqttSink(EventSink):
    """Publishes a camera's events, who is in view, and Home Assistant's discovery, to one broker."""

    def __init__(self, url: str, camera: str, warn: Callable[[str], None], discovery: bool = True,
                 seen_minutes: float = 5.0, connect_seconds: float = CONNECT_SECONDS) -> None:
        self.target = parse_mqtt_url(url)
        if not 0 < seen_minutes <= MAX_SEEN_MINUTES:  # NaN too
            raise FacerecError(f"--seen-minutes {seen_minutes:g} is out of range: more than 0, at most "
                               f"{MAX_SEEN_MINUTES:,} (a year)")
        check_topic_level(camera, "--camera")
        check_topic_room(self.target.prefix, camera)
        self.shown = f"the MQTT broker {masked(url)}"
        self.camera, self.discovery, self.seen_seconds = camera, discovery, seen_minutes * 60
        self.topic = f"{self.target.prefix}/{camera}"
        self._warn = warn
        self._lock = threading.Condition()  # the state below, shared with paho's thread and the timers
        self._in_view: Counter = Counter()  # tracks in view per name
        self._people: list[str] = []  # the names published in `people`
        self._known: set[str] = set()  # the gallery's people: each has a binary sensor
        self._ids: dict[str, PersonIds] = {}  # their Home Assistant ids
        self._clear: set[str] = set()  # retained topics to delete (people gone, ids changed, left by an earlier run)
        self._found: set[str] = set()  # retained seen states and configs of this camera found at the start
        self._swept = threading.Event()  # ... all of them (our own message came back after them)
        self._stranger: dict | None = None  # the last kept group of unknown faces seen
        self._seen: dict[str, str] = {}  # person -> ON / OFF
        self._timers: dict[str, threading.Timer] = {}
        self._dirty: set[str] = set()  # retained topics to publish again
        self._retained: list[paho.MQTTMessageInfo] = []  # retained messages not yet acknowledged
        # the ids of the last messages the broker acknowledged (paho calls on_publish holding its own lock:
        # this one is never held while calling paho)
        self._acks = threading.Condition()
        self._acked_mids: deque[int] = deque(maxlen=1024)
        self._hanging = False  # warned that the broker does not acknowledge
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refused: str | None = None
        self._closing = False
        self._source_up = True  # False while serve.py --config reconnects the camera: status offline
        self._client = self._new_client()
        self._connect(connect_seconds)
        self._keeper = threading.Thread(target=self._keep_retained, name="mqtt-retained", daemon=True)
        self._keeper.start()

    # the connection

    def _new_client(self) -> paho.Client:
        client_id = f"facerec-{slug(self.camera)[:32]}-{uuid.uuid4().hex[:8]}"  # unique by its random part
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.target.username is not None:
            client.username_pw_set(self.target.username, self.target.password)
        if self.target.tls:
            client.tls_set()
        client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_birth
        client.on_publish = self._on_publish
        return client

    def _connect(self, seconds: float) -> None:
        try:
            self._client.connect(self.target.host, self.target.port, KEEPALIVE_SECONDS)
        except (OSError, ValueError) as error:
            raise FacerecError(f"cannot reach {self.shown}: {getattr(error, 'strerror', None) or error}") from None
        self._client.loop_start()
        answered = self._answered.wait(seconds)
        if self._refused is not None or not answered:
            self._client.loop_stop()
            self._client.disconnect()
            raise FacerecError(f"{self.shown} refused the connection: {self._refused}" if answered
                               else f"{self.shown} did not answer in {seconds:g} s")

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            if not self._answered.is_set():
                self._refused = str(reason)
                self._answered.set()
                client.disconnect()  # at the start a refusal is final: no reconnecting
            else:
                self._warn(f"{self.shown} refused the connection again: {reason}; retrying")
            return
        if self.discovery:
            client.subscribe(BIRTH_TOPIC, qos=1)
        if not self._swept.is_set():  # what an earlier run left, then a message of our own behind it
            client.subscribe([(topic, 1) for topic in self._sweep_topics()])
            client.publish(f"{self.topic}/sweep", "", qos=1)
        with self._lock:
            if self._answered.is_set():
                self._hanging = False
                self._warn(f"{self.shown} is back: sending the events that waited")
            self._dirty |= self._all_retained()  # a restarted broker may have forgotten them
            self._connected.set()
            self._lock.notify_all()
        self._answered.set()

    def _on_birth(self, client, userdata, message) -> None:
        """Home Assistant (re)started: it asks for the discovery configs and states again. At the start: the
        retained topics of this camera an earlier run left."""
        if message.topic == f"{self.topic}/sweep" and not self._swept.is_set():
            client.unsubscribe(self._sweep_topics())
            self._swept.set()
        elif message.retain and message.payload and not self._swept.is_set() and message.topic != BIRTH_TOPIC:
            with self._lock:
                self._found.add(message.topic)
        if message.topic == BIRTH_TOPIC and message.payload == b"online":
            with self._lock:
                self._dirty |= self._all_retained()
                self._lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._acks:
            self._acked_mids.append(mid)
            self._acks.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closing:
            self._warn(f"lost {self.shown} ({reason}): reconnecting; events wait until it is back")

    # events (called by the QueuedSink's thread: waiting here never slows the video)

    def arrived(self, event: Event) -> None:
        self._publish_event(event)
        with self._lock:
            self._in_view[event.name] += 1
            self._mark_seen(event.name)
            self._people_changed()
            if event.unknown_group is not None:
                self._stranger = {"unknown_group": event.unknown_group, "visits": event.visits,
                                  "time": event.as_json()["time"]}
                self._dirty.add("stranger")
                self._lock.notify_all()

    def left(self, event: Event) -> None:
        self._publish_event(event)
        with self._lock:
            self._in_view[event.name] -= 1
            if self._in_view[event.name] <= 0:
                del self._in_view[event.name]
                if event.name in self._known:
                    self._expire_later(event.name)
            self._people_changed()

    def available(self, running: bool) -> None:
        with self._lock:
            self._source_up = running
            self._dirty.add("status")
            self._lock.notify_all()

    def gallery(self, names: set[str]) -> None:
        with self._lock:
            gone, new = self._known - names, names - self._known
            old_topics = self._person_topics()
            self._known, self._ids = set(names), person_ids(names)
            self._clear |= old_topics - self._person_topics()  # people gone, or whose id changed (a new namesake)
            for name in gone:
                self._cancel_timer(name)
                self._seen.pop(name, None)
            for name in new:
                self._seen[name] = ON if name in self._in_view else OFF
            self._dirty |= {f"seen:{name}" for name in self._known} | {"clear"}
            if self.discovery:
                self._dirty.add("discovery")
            self._lock.notify_all()

    def _person_topics(self) -> set[str]:
        """The retained topics of the gallery's people (seen states, and configs with discovery)."""
        return {topic for name in self._known
                for topic in (self._seen_topic(name), *([self._config_topic(name)] if self.discovery else []))}

    def _sweep_topics(self) -> list[str]:
        """Where this camera's retained per-person topics are (+: any person), and the sync message."""
        return [f"{self.topic}/seen/+", f"{self.topic}/sweep",
                *([self._config_topic(None, "binary_sensor", "+")] if self.discovery else [])]

    def _publish_event(self, event: Event) -> None:
        """Publish once connected, and wait for the broker's acknowledgement (QoS 1: paho sends it again if the
        connection drops first). One event at a time: while the broker does not answer, the next ones wait in
        the QueuedSink, which says at the end how many never went."""
        while not self._connected.wait(1.0):
            if self._closing:  # given up (the QueuedSink counted this event as not delivered)
                return
        mid = self._client.publish(f"{self.topic}/events", json.dumps(event.as_json()), qos=1).mid
        if self._wait_for_ack(mid, PUBLISH_SECONDS):
            return
        with self._lock:
            if not self._hanging:
                self._hanging = True
                self._warn(f"{self.shown} has not acknowledged an event in {PUBLISH_SECONDS:g} s: events wait "
                           "until it answers")
        while not self._wait_for_ack(mid, 1.0):
            if self._closing:
                return
        with self._lock:
            if self._hanging:  # answering again on the same connection (a reconnection says so itself)
                self._hanging = False
                self._warn(f"{self.shown} answers again: sending the events that waited")

    def _wait_for_ack(self, mid: int, seconds: float) -> bool:
        with self._acks:
            return self._acks.wait_for(lambda: mid in self._acked_mids, seconds)

    # retained state: changed here, published by one thread, in order, again after every reconnect

    def _people_changed(self) -> None:
        people = sorted(self._in_view)
        if people != self._people:
            self._people = people
            self._dirty.add("people")
            self._lock.notify_all()

    def _mark_seen(self, name: str) -> None:
        if name not in self._known:
            return
        self._cancel_timer(name)
        if self._seen.get(name) != ON:
            self._seen[name] = ON
            self._dirty.add(f"seen:{name}")
            self._lock.notify_all()

    def _expire_later(self, name: str) -> None:
        """`name` left: OFF after seen_seconds, unless seen again meanwhile."""
        self._cancel_timer(name)
        timer = threading.Timer(self.seen_seconds, self._expire, (name,))
        timer.daemon = True
        self._timers[name] = timer
        timer.start()

    def _expire(self, name: str) -> None:
        with self._lock:
            if self._timers.get(name) is not threading.current_thread():
                return  # seen again, or removed, since this timer started
            del self._timers[name]
            if name in self._known and name not in self._in_view:
                self._seen[name] = OFF
                self._dirty.add(f"seen:{name}")
                self._lock.notify_all()

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _all_retained(self) -> set[str]:
        return {"status", "people", *(f"seen:{name}" for name in self._known),
                *(["discovery"] if self.discovery else []), *(["stranger"] if self._stranger else [])}

    def _keep_retained(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: (self._dirty and self._connected.is_set()) or self._closing)
                if not self._dirty or not self._connected.is_set():
                    return
            # messages sent before a reconnect are sent again by paho first: let them land before newer ones
            _wait_acknowledged(self._retained, FLUSH_SECONDS)
            if "clear" in self._dirty and not self._swept.wait(FLUSH_SECONDS):
                self._swept.set()  # our message never came back (a broker's ACL?): clear only what this run knows
            with self._lock:
                messages = [message for key in sorted(self._dirty) for message in self._messages(key)]
                self._dirty.clear()
            self._retained = [self._client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]

    def _messages(self, key: str) -> list[tuple[str, str]]:
        """(topic, payload) of one retained item as it is now (call with the lock held)."""
        kind, _, name = key.partition(":")
        if kind == "status":
            return [(f"{self.topic}/status", "offline" if self._closing or not self._source_up else "online")]
        if kind == "people":
            return [(f"{self.topic}/people", json.dumps([printable(name) for name in self._people]))]
        if kind == "seen":
            return [(self._seen_topic(name), self._seen[name])] if name in self._seen else []
        if kind == "stranger":
            return [(f"{self.topic}/stranger", json.dumps(self._stranger))]
        if kind == "clear":  # an empty retained message deletes the retained one (and the entity in Home Assistant)
            stale = (self._clear | self._found) - self._person_topics()
            self._clear, self._found = set(), set()
            return [(topic, "") for topic in sorted(stale)]
        return self.discovery_configs()

    # Home Assistant discovery

    def _device(self) -> dict:
        return {"identifiers": [f"facerec_{camera_id(self.camera)}"], "name": f"facerec {printable(self.camera)}",
                "manufacturer": "facerec", "model": "face recognition", "sw_version": __version__}

    def _entity(self, component: str, object_id: str, name: str, unique: str) -> dict:
        # default_entity_id, not object_id: Home Assistant 2025.10 deprecated object_id and 2026.4 dropped it.
        # The friendly name is short: Home Assistant shows it after the device's name ("facerec door lin").
        return {"name": name, "unique_id": unique,
                "default_entity_id": f"{component}.facerec_{camera_id(self.camera)}_{object_id}",
                "availability_topic": f"{self.topic}/status", "payload_available": "online",
                "payload_not_available": "offline", "device": self._device()}

    def _seen_topic(self, name: str) -> str:
        return f"{self.topic}/seen/{self._ids[name].object_id}"

    def _config_topic(self, name: str | None, component: str = "binary_sensor", object_id: str = "") -> str:
        object_id = object_id or ("last_person" if name is None else f"seen_{self._ids[name].object_id}")
        return f"{DISCOVERY_PREFIX}/{component}/facerec_{camera_id(self.camera)}/{object_id}/config"

    def discovery_configs(self) -> list[tuple[str, str]]:
        """(topic, JSON) of every discovery config: the last person seen, the familiar stranger, and a binary
        sensor per known person (its unique_id from the exact camera and name: never shared by two people)."""
        camera = camera_id(self.camera)
        last = {**self._entity("sensor", "last_person", "Last person", f"facerec_{camera}_last_person"),
                "state_topic": f"{self.topic}/events", "value_template": "{{ value_json.name }}",
                "json_attributes_topic": f"{self.topic}/events", "icon": "mdi:face-recognition"}
        stranger = {**self._entity("sensor", "familiar_stranger", "Familiar stranger",
                                   f"facerec_{camera}_familiar_stranger"),
                    "state_topic": f"{self.topic}/stranger", "value_template": "{{ value_json.unknown_group }}",
                    "json_attributes_topic": f"{self.topic}/stranger", "icon": "mdi:account-question"}
        configs = [(self._config_topic(None, "sensor"), json.dumps(last)),
                   (self._config_topic(None, "sensor", "familiar_stranger"), json.dumps(stranger))]
        for name in sorted(self._known):
            ids = self._ids[name]
            seen = {**self._entity("binary_sensor", f"seen_{ids.object_id}", printable(name),
                                   unique_id(self.camera, "seen", name)),
                    "state_topic": self._seen_topic(name), "payload_on": ON, "payload_off": OFF,
                    "device_class": "presence"}
            configs.append((self._config_topic(name), json.dumps(seen)))
        return configs

    # the end

    def close(self) -> None:
        """Publish the last state and `offline`, wait (a little) for the broker's acknowledgements, disconnect."""
        with self._lock:
            for name in list(self._timers):
                self._cancel_timer(name)
            for name in self._known:  # nobody is seen by a camera that stopped (a killed process cannot say so)
                if self._seen.get(name) != OFF:
                    self._seen[name] = OFF
                    self._dirty.add(f"seen:{name}")
            self._closing = True
            self._dirty.add("status")
            self._lock.notify_all()
        self._keeper.join(FLUSH_SECONDS)
        _wait_acknowledged(self._retained, FLUSH_SECONDS)
        self._client.disconnect()
        self._client.loop_stop()


def _acknowledged(info: paho.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (ValueError, RuntimeError):  # not sent yet (no connection): paho sends it once connected
        return False


def _wait_acknowledged(infos: list[paho.MQTTMessageInfo], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    for info in infos:
        while not _acknowledged(info) and time.monotonic() < deadline:
            time.sleep(0.02)
