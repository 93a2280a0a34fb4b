"""Visits (facerec/events/presence.py) and Home Assistant ids (facerec/events/ids.py), without a video.

Real tracks (tracking.Track) carrying real matches of a real matcher are handed to Presence frame by frame
with a clock the test moves; the sink records what it is told. The clip's own visits, through a real broker,
are in tests/test_events.py.
"""

from __future__ import annotations

import re
import string

import numpy as np

from facerec.events import Event, EventSink, Presence
from facerec.events.ids import person_ids, slug, unique_id
from facerec.matching import MATCHERS, UNKNOWN, Match, VectorIndex
from facerec.tracking import Track

MATCHER = MATCHERS["nearest"](VectorIndex(np.eye(3, dtype=np.float32), ["lin", "obama", "biden"]), 0.5)


class Recorded(EventSink):
    """What a sink is told, and who it counts in view after each call (as MqttSink's `people` does)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.in_view: dict[str, int] = {}
        self.people: list[list[str]] = []

    def arrived(self, event: Event) -> None:
        self.events.append(event)
        self.in_view[event.name] = self.in_view.get(event.name, 0) + 1
        self.people.append(sorted(name for name, count in self.in_view.items() if count))

    def left(self, event: Event) -> None:
        self.events.append(event)
        self.in_view[event.name] -= 1
        self.people.append(sorted(name for name, count in self.in_view.items() if count))

    def close(self) -> None:
        pass

    def told(self) -> list[tuple[str, str, int]]:
        return [(event.type, event.name, event.track) for event in self.events]


class Camera:
    """A Presence fed frames of tracks at 10 frames a second of its own clock."""

    def __init__(self, away_seconds: float = 30.0, step: float = 0.1) -> None:
        self.sink = Recorded()
        self.step = step
        self.now = 1000.0
        self.frame = 0
        self.presence = Presence(self.sink, "door", clock=lambda: self.now, away_seconds=away_seconds)

    def show(self, *faces: tuple[int, str], missed: tuple[int, ...] = (), frames: int = 1) -> None:
        """`frames` frames in which track id N carries name (missed: tracked but not seen in the frame)."""
        for _ in range(frames):
            tracks = [Track(track_id, (10, 10, 50, 50), self.frame, match=Match(name, 0.3),
                            missed=int(track_id in missed)) for track_id, name in faces]
            self.presence.saw(tracks, self.frame, MATCHER)
            self.frame += 1
            self.now += self.step


def test_a_flicker_to_unknown_a_new_track_and_a_short_loss_are_one_visit():
    camera = Camera()
    camera.show((1, "lin"), frames=10)
    camera.show((1, UNKNOWN), frames=7)  # the flicker of the clip's first shot: lin, Unknown, lin
    camera.show((1, "lin"), frames=5)
    camera.show(frames=50)  # lost for 5 s
    camera.show((2, "lin"), frames=10)  # a new track of him
    camera.show((2, "lin"), missed=(2,), frames=5)  # tracked but not seen
    assert camera.sink.told() == [("arrived", "lin", 1)]
    camera.presence.close()
    assert camera.sink.told() == [("arrived", "lin", 1), ("left", "lin", 2)]
    left = camera.sink.events[-1]
    assert left.frame == 81 and abs(left.time - camera.sink.events[0].time - 8.1) < 1e-6  # where he was last seen


def test_a_person_unseen_for_away_seconds_leaves_and_arrives_again():
    camera = Camera(away_seconds=3.0)
    camera.show((1, "lin"), frames=5)
    camera.show(frames=29)  # 2.9 s unseen: still visiting
    assert camera.sink.told() == [("arrived", "lin", 1)]
    camera.show(frames=1)  # 3 s
    assert camera.sink.told() == [("arrived", "lin", 1), ("left", "lin", 1)]
    camera.show((5, "lin"))
    assert camera.sink.told()[-1] == ("arrived", "lin", 5)


def test_a_track_renamed_for_good_is_the_second_persons_arrival_and_the_first_leaves_when_gone():
    camera = Camera(away_seconds=2.0)
    camera.show((1, "lin"), frames=5)
    camera.show((1, "obama"), frames=30)
    assert camera.sink.told() == [("arrived", "lin", 1), ("arrived", "obama", 1), ("left", "lin", 1)]
    assert camera.sink.events[-1].frame == 4  # lin's last sighting, 2 s before
    camera.show((1, UNKNOWN), frames=3)  # obama's track flickering is still obama's
    assert camera.sink.told()[-1] == ("left", "lin", 1)


def test_people_never_drops_someone_within_a_visit_nor_empties_between_two_visits():
    camera = Camera(away_seconds=1.0, step=0.125)
    camera.show((1, "lin"), (2, UNKNOWN), frames=5)
    camera.show((1, UNKNOWN), (3, "obama"), frames=5)
    camera.show((4, "lin"), (3, "obama"), frames=5)
    camera.show((3, "obama"), frames=12)  # lin leaves after 1 s
    camera.show(frames=7)
    camera.show((6, "biden"), frames=3)  # biden arrives in the frame obama leaves: told first
    assert camera.sink.told()[-2:] == [("arrived", "biden", 6), ("left", "obama", 3)]
    camera.presence.close()
    people = camera.sink.people
    lin = [index for index, names in enumerate(people) if "lin" in names]
    assert lin == list(range(lin[0], lin[-1] + 1))  # one stretch: never dropped and taken back
    assert all(names for names in people[:-1]) and people[-1] == []
    assert [kind for kind, name, _ in camera.sink.told() if name == "obama"] == ["arrived", "left"]


def test_an_unknown_face_visits_per_track_and_its_visit_ends_when_it_is_named():
    camera = Camera()
    camera.show((1, UNKNOWN), (2, UNKNOWN), frames=3)
    camera.show((1, "lin"), (2, UNKNOWN), frames=3)
    assert camera.sink.told() == [("arrived", UNKNOWN, 1), ("arrived", UNKNOWN, 2), ("arrived", "lin", 1),
                                  ("left", UNKNOWN, 1)]


class Kept:
    """Strangers: track vectors near (0, 0, 1) are kept group 7, seen twice before this visit."""

    def recognise(self, vectors: np.ndarray) -> tuple[int, int] | None:
        return (7, 3) if float(np.mean(vectors, axis=0)[2]) > 0.9 else None


def test_an_unknown_face_of_a_kept_group_visits_as_that_group():
    sink = Recorded()
    presence = Presence(sink, "door", strangers=Kept())
    tracks = [Track(1, (1, 1, 9, 9), 0, match=Match(UNKNOWN, 0.9)), Track(2, (20, 1, 29, 9), 0, match=Match(UNKNOWN, 0.9)),
              Track(3, (40, 1, 49, 9), 0, match=Match(UNKNOWN, 0.9))]
    tracks[0].vectors.append(np.array([0, 0, 1], np.float32))
    tracks[1].vectors.append(np.array([0, 0, 1], np.float32))  # the same stranger on a second track: one visit
    tracks[2].vectors.append(np.array([0, 1, 0], np.float32))
    presence.saw(tracks, 0, MATCHER)
    presence.close()
    arrivals = [event.as_json() for event in sink.events if event.type == "arrived"]
    assert [(event["track"], event.get("unknown_group"), event.get("visits")) for event in arrivals] == [
        (1, 7, 3), (3, None, None)]


# Home Assistant ids --------------------------------------------------------------------------------------

def test_every_name_gets_a_lowercase_ascii_id_of_its_own_and_unique_ids_never_collide():
    names = ["李明", "王芳", "José García", "jose garcia", "😀", "🙂", "lin", "O'Brien", "x" * 300, "Ελένη"]
    ids = person_ids(names)
    object_ids = [ids[name].object_id for name in names]
    assert len(set(object_ids)) == len(names), object_ids
    allowed = set(string.ascii_lowercase + string.digits + "_")
    assert all(set(made) <= allowed and made for made in object_ids), object_ids
    assert ids["李明"].object_id == "li_ming" and ids["王芳"].object_id == "wang_fang" and ids["lin"].object_id == "lin"
    assert re.fullmatch(r"jose_garcia_[0-9a-f]{6}", ids["José García"].object_id)  # a namesake: both hashed
    assert re.fullmatch(r"person_[0-9a-f]{6}", ids["😀"].object_id)
    assert person_ids(["José García"])["José García"].object_id == "jose_garcia"
    assert person_ids(names) == ids  # stable
    uniques = {unique_id("Front Door", "seen", name) for name in names}
    assert len(uniques) == len(names) and unique_id("front door", "seen", "lin") != unique_id("Front Door", "seen", "lin")
    assert slug("Front Door") == "front_door"
