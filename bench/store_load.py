#!/usr/bin/env python3
"""Time to load an embeddings file: facerec's checked loader against an unchecked pickle.load, same file, same run.

Writes a store of N random unit vectors (128-d, with names, paths and file
records as extract_embeddings.py writes them) to a temporary folder, then
loads it both ways, best of --repeat.

    python bench/store_load.py --vectors 100000
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.stores import Gallery, load_store, save_store  # noqa: E402


def best_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_gallery(count: int, profile: str = "openface") -> Gallery:
    """N random 128-d unit vectors of 1,000 people, with paths and file records as extract_embeddings.py writes them."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = [f"person{i % 1000}" for i in range(count)]
    paths = [f"{name}/{i}.jpg" for i, name in enumerate(names)]
    files = {path: {"size": 30_000 + i, "mtime_ns": 1_700_000_000_000_000_000 + i, "status": "used"}
             for i, path in enumerate(paths)}
    return Gallery(vectors, names, paths, profile, {"profile": profile}, files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print("  vectors  file MB  pickle.load s  load_store s  ratio")
    for count in args.vectors:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "embeddings.pickle"
            save_store(synthetic_gallery(count), path)

            def unchecked():
                with open(path, "rb") as handle:
                    pickle.load(handle)

            plain = best_time(unchecked, args.repeat)
            checked = best_time(lambda: load_store(path), args.repeat)
            size = os.path.getsize(path) / 1e6
        print(f"{count:>9,}  {size:7.1f}  {plain:13.2f}  {checked:12.2f}  {checked / plain:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
