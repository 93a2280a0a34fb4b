"""Events for other systems: who arrived in view of a camera and who left, sent to MQTT, webhooks and the
sightings log.

A video loop hands its tracks to a Presence after each frame (`saw`); the Presence tells the
sinks of visits beginning and ending (arrivals and departures). Each sink (EventSink: `arrived`, `left`, `close`) runs behind
its own QueuedSink, so a slow or absent receiver never slows the video; the sightings log (sightings.py) queues
and writes in a thread of its own.
"""

from __future__ import annotations

from typing import Callable

from ..errors import FacerecError
from ..stores import SightingLog, masked
from .presence import AWAY_SECONDS, Presence, Strangers
from .sightings import SightingsSink
from .sink import Event, EventSink, QueuedSink, Sinks


def open_events(camera: str, warn: Callable[[str], None], mqtt: str | None = None, webhook: str | None = None,
                discovery: bool = True, seen_minutes: float = 5.0, *, away_seconds: float = AWAY_SECONDS,
                webhook_secret: bytes | None = None, strangers: Strangers | None = None) -> Presence | None:
    """The Presence feeding the sinks the arguments ask for (None for none); FacerecError if one cannot start
    (a bad URL, a broker that cannot be reached or refuses the login). Close it with `close_events`.
    `webhook_secret` signs each POST; `strangers` tells Unknown faces of kept groups apart (--keep-unknowns)."""
    sinks: list[EventSink] = []
    try:
        if webhook is not None:
            from .webhook import WebhookSink
            hook = WebhookSink(webhook, warn, secret=webhook_secret)
            sinks.append(QueuedSink(hook, hook.shown, warn))
        if mqtt is not None:
            try:
                from .mqtt import MqttSink
            except ImportError as error:
                raise FacerecError(f"--mqtt needs paho-mqtt, which cannot be imported ({error}): "
                                   "pip install paho-mqtt") from None
            sinks.append(QueuedSink(MqttSink(mqtt, camera, warn, discovery, seen_minutes),
                                    f"the MQTT broker {masked(mqtt)}", warn))
    except BaseException:
        Sinks(sinks).close()
        raise
    return Presence(Sinks(sinks), camera, away_seconds=away_seconds, strangers=strangers) if sinks else None


def log_visits(presence: Presence | None, log: SightingLog | None, camera: str,
               away_seconds: float = AWAY_SECONDS) -> Presence | None:
    """`presence` telling `log` (--log-sightings) its visits too: a Presence of its own if there is none yet.
    Call before the first frame. The log stays its opener's to close, after the departures (Presence.end)."""
    if log is None:
        return presence
    if presence is None:
        return Presence(Sinks([SightingsSink(log)]), camera, away_seconds=away_seconds)
    told = presence.sink.sinks if isinstance(presence.sink, Sinks) else [presence.sink]
    presence.sink = Sinks([*told, SightingsSink(log)])
    return presence


def close_events(presence: Presence | None) -> None:
    """Presence.close, if there is one (an ExitStack callback)."""
    if presence is not None:
        presence.close()


__all__ = ["AWAY_SECONDS", "Event", "EventSink", "Presence", "QueuedSink", "SightingsSink", "Sinks", "Strangers",
           "close_events", "log_visits", "open_events"]
