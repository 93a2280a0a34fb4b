"""Home Assistant ids for any name: one function for topics, entity ids and discovery configs.

A name becomes a lowercase ASCII slug by python-slugify's transliteration (`José García` → `jose_garcia`,
`李明` → `li_ming`). Where nothing is left (`😀`) or two names of one gallery give the same slug (`José García`
and `jose garcia`), a short hash of the exact name is appended (`person_3f2a9c`, `jose_garcia_1b9e04`), so
each person of a gallery has a topic and entity id of their own. `unique_id`s hash the exact camera and
name: they never collide, whatever the slugs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from slugify import slugify

SLUG_LENGTH = 40  # Home Assistant's entity ids may hold 255 characters; topics and ids stay readable
HASH_LENGTH = 6  # hex digits appended to a slug that collides or is empty (16.7 million values)


def digest(*parts: str) -> str:
    """The SHA-256 (hex) of `parts` joined by NUL: the same text always gives the same digest."""
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def slug(text: str, empty: str = "person") -> str:
    """`text` as a lowercase ASCII id (letters, digits and _), or `EMPTY_` and a hash when nothing is left of it."""
    made = slugify(text, separator="_", max_length=SLUG_LENGTH, word_boundary=True, save_order=True)
    return made or f"{empty}_{digest(text)[:HASH_LENGTH]}"


@dataclass(frozen=True)
class PersonIds:
    """What a person is called in Home Assistant: `object_id` in topics and entity ids, `key` in unique_ids."""

    name: str
    object_id: str  # lowercase ASCII: PREFIX/CAMERA/seen/OBJECT_ID, binary_sensor.facerec_CAMERA_seen_OBJECT_ID
    key: str  # the exact name's digest (unique ids)


def person_ids(names: Iterable[str]) -> dict[str, PersonIds]:
    """The ids of every person of a gallery: each slug, with the exact name's short hash where slugs collide."""
    names = sorted(set(names))
    slugs = {name: slug(name) for name in names}
    taken: dict[str, int] = {}
    for made in slugs.values():
        taken[made] = taken.get(made, 0) + 1
    ids = {}
    for name in names:
        made = slugs[name]
        if taken[made] > 1:  # jose_garcia twice: each gets its own hash (never just the later one: order-free)
            made = f"{made}_{digest(name)[:HASH_LENGTH]}"
        ids[name] = PersonIds(name, made, digest(name)[:32])
    return ids


def camera_id(camera: str) -> str:
    """The camera's part of node and entity ids (`Front Door` → `front_door`)."""
    return slug(camera, "camera")


def unique_id(camera: str, *parts: str) -> str:
    """A unique_id readable in Home Assistant's registry, made unique by the exact camera's and parts' digest."""
    return f"facerec_{camera_id(camera)}_{'_'.join(slug(part) for part in parts)}_{digest(camera, *parts)[:16]}"
