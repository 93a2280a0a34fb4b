"""The service's figures in Prometheus' text format (prometheus_client), one registry per service, no globals.

The counters are the cameras', the sinks' and the keeper's own numbers, read at each scrape (never
written here); only the latency histogram is observed as frames are named.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .camera import CameraRunner


class Counted(Protocol):
    """What the metrics read of a service (facerec.service.Service)."""

    cameras: dict[str, CameraRunner]

    def event_counts(self) -> dict[str, tuple[int, int]]: ...

    def unknowns_kept(self) -> int: ...

    def gallery_size(self) -> int: ...

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From capture to names: on 2 cores a frame takes 30 to 150 ms; beyond a second something is wrong.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 2.5)
CAMERA_COUNTERS = {  # metric (without _total) -> (CameraRunner attribute, help)
    "facerec_frames": ("frames", "frames recognised"),
    "facerec_frames_dropped": ("dropped", "frames a live camera gave that were never recognised (only the newest is)"),
    "facerec_faces": ("faces", "faces found in the frames recognised"),
    "facerec_embeddings": ("embeddings", "faces embedded (a followed face is embedded only now and then)"),
    "facerec_reconnects": ("reconnects", "times the camera came back after it dropped"),
}


class _Counters(Collector):
    def __init__(self, service: Counted) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        cameras = list(self.service.cameras.values())
        for metric, (attribute, text) in CAMERA_COUNTERS.items():
            family = CounterMetricFamily(metric, text, labels=["camera"])
            for camera in cameras:
                family.add_metric([camera.name], getattr(camera, attribute))
            yield family
        events = CounterMetricFamily("facerec_events", "arrivals and departures handed to a sink", labels=["sink"])
        dropped = CounterMetricFamily("facerec_events_dropped", "events a sink dropped (it was not keeping up)",
                                      labels=["sink"])
        for sink, (handed, lost) in self.service.event_counts().items():
            events.add_metric([sink], handed)
            dropped.add_metric([sink], lost)
        yield events
        yield dropped
        yield CounterMetricFamily("facerec_unknown_faces_kept", "unknown tracks kept for review (--keep-unknowns)",
                                  value=self.service.unknowns_kept())
        yield GaugeMetricFamily("facerec_gallery_vectors", "face vectors in the gallery naming faces now",
                                value=self.service.gallery_size())
        up = GaugeMetricFamily("facerec_camera_up", "1 while the camera gives frames", labels=["camera"])
        for camera in cameras:
            up.add_metric([camera.name], 1 if camera.state == "running" else 0)
        yield up


class ServiceMetrics:
    """The registry of one service, and the latency histogram its cameras observe."""

    def __init__(self, service: Counted) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram("facerec_frame_latency_seconds", "from a frame's capture to its faces named",
                                 ["camera"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.registry.register(_Counters(service))

    def observer(self, camera: str) -> Callable[[float], None]:
        return self.latency.labels(camera).observe

    def text(self) -> bytes:
        return generate_latest(self.registry)
