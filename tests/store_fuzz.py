#!/usr/bin/env python3
"""Fuzz the embeddings loader: mutated valid stores and hand-made hostile pickles.

Every input must end in a loaded store or a FacerecError; any other exception,
a hang (5 s an input) or a crash fails the run. Run as its own process (a
crash must not take pytest with it): tests/test_store_hostile.py starts it
with a memory limit. Prints "fuzzed N inputs: L loaded, R refused".

    python tests/store_fuzz.py --examples 3000
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import crafted_pickles  # noqa: E402
from facerec.errors import FacerecError  # noqa: E402
from facerec.stores import Gallery, load_store, save_store  # noqa: E402

SECONDS_AN_INPUT = 5


def seeds(folder: Path) -> list[bytes]:
    """Valid stores in every accepted format, and the hostile pickles."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ours = folder / "ours.pickle"
    save_store(Gallery(vectors, ["a", "b", "a"], ["a/1.jpg", "b/1.jpg", "a/2.jpg"], "openface",
                              {"profile": "openface", "sha256": {"x.t7": "00"}},
                              {f"{n}": {"size": 1, "mtime_ns": 2, "status": "used"} for n in ("a/1.jpg", "b/1.jpg", "a/2.jpg")}),
               ours)
    valid = [ours.read_bytes()]
    for protocol in (2, 3, 4, 5):
        for numpy1 in (False, True):
            valid.append(crafted_pickles.tutorial_store(2, 8, protocol, numpy1))
        valid.append(crafted_pickles.tutorial_store(2, 8, protocol, dtype=np.float16))
    valid.append(pickle.dumps({"embeddings": [[0.6, 0.8]], "names": ["a"]}, protocol=2))
    hostile = list(crafted_pickles.hostile_arrays().values())
    hostile += [crafted_pickles.memo_bomb(), crafted_pickles.repeated_references(2000, 512)]
    hostile += list(crafted_pickles.hostile_splits().values())
    return valid + hostile


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random edit: change, insert, delete, duplicate a span, truncate, or write an extreme integer."""
    kind = rng.choice(["set", "insert", "delete", "duplicate", "truncate", "int"])
    at = rng.randrange(max(len(data), 1))
    if kind == "set":
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + rng.randint(1, 16):]
    if kind == "duplicate":
        return data[:at] + data[at:at + rng.randint(1, 64)] * rng.randint(2, 4) + data[at:]
    if kind == "truncate":
        return data[:at]
    # lengths, sizes and memo indices
    value = rng.choice([0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 20])
    return data[:at] + value.to_bytes(4, "little") + data[at + 4:]


def _too_slow(signum, frame):
    raise TimeoutError(f"an input took more than {SECONDS_AN_INPUT} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=3000)
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    signal.signal(signal.SIGALRM, _too_slow)
    # memory-backed when there is one: thousands of small files
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as folder_name:
        folder = Path(folder_name)
        pool = seeds(folder)
        target = folder / "fuzzed.pickle"

        @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def fuzz(data):
            content = data.draw(st.sampled_from(pool))
            rng = random.Random(data.draw(st.integers(0, 2**32)))
            for _ in range(data.draw(st.integers(0, 4))):
                content = mutate(content, rng)
            target.write_bytes(content)
            signal.alarm(SECONDS_AN_INPUT)
            try:
                store = load_store(target)
            except FacerecError as error:
                assert "\n" not in str(error), str(error)
                outcomes["refused"] += 1
            else:
                assert isinstance(store, Gallery)
                assert store.vectors.dtype == np.float32 and len(store.vectors) == len(store.names)
                outcomes["loaded"] += 1
            finally:
                signal.alarm(0)

        fuzz()
    print(f"fuzzed {sum(outcomes.values())} inputs: {outcomes['loaded']} loaded, {outcomes['refused']} refused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
