#!/usr/bin/env python3
"""How long does `unknowns.py regroup` take, and how much memory, for many kept faces?

Synthetic tracks (unit vectors around random centres, FACES faces a track, 128 numbers: SFace's size) regrouped
with the default single linkage at the sface profile's cut: wall and CPU time, and the peak of memory numpy
allocated (tracemalloc) and of the process (ru_maxrss). --compare also runs the step-by-step merges over the
track-by-track matrix (what regroup did before, still used for the other linkages) and checks both give the same
groups; it also compares them on the 1,000 real OpenFace vectors of LFW (../shared/embeddings, one-vector tracks,
the openface profile's cut).

Example:
  python bench/regroup.py --tracks 4000 --faces 5
  python bench/regroup.py --tracks 10000 --faces 1 --compare
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from facerec.catalogue import PROFILES  # noqa: E402
from facerec.evaluation import load_labelled_vectors  # noqa: E402
from facerec.unknowns.grouping import _agglomerate, _in_order_of_first_track, margin_for, regroup  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))


def synthetic(tracks: int, faces: int, people: int, seed: int = 0) -> list[np.ndarray]:
    """`tracks` tracks of `faces` unit vectors each, around `people` random centres: many chains near the cut."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128))
    made = []
    for person in rng.integers(people, size=tracks):
        vectors = centres[person] / np.linalg.norm(centres[person]) + 0.09 * rng.normal(size=(faces, 128))
        made.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return made


def measured(run):
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, wall, cpu, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=4000)
    parser.add_argument("--faces", type=int, default=5, help="faces a track")
    parser.add_argument("--people", type=int, help="centres (default: a quarter of the tracks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also the step-by-step merges (slow)")
    args = parser.parse_args()
    threshold, margin = PROFILES["sface"].threshold, margin_for("sface")
    tracks = synthetic(args.tracks, args.faces, args.people or max(1, args.tracks // 4), args.seed)
    labels, wall, cpu, peak = measured(lambda: regroup(tracks, threshold, margin))
    print(f"{args.tracks:,} tracks of {args.faces} faces ({args.tracks * args.faces:,} faces): {labels.max() + 1:,} "
          f"groups in {wall:.1f} s ({cpu:.1f} s CPU), numpy peak {peak / 2**20:.0f} MB, process peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.compare:
        merged, wall, cpu, peak = measured(
            lambda: _in_order_of_first_track(_agglomerate(tracks, threshold - margin, "single")))
        print(f"step-by-step merges: {wall:.1f} s ({cpu:.1f} s CPU), numpy peak {peak / 2**20:.0f} MB; "
              f"same groups: {np.array_equal(labels, merged)}")
        vectors, _ = load_labelled_vectors(SHARED / "embeddings" / "lfw_openface_reps.csv",
                                           SHARED / "embeddings" / "lfw_openface_labels.csv")
        lfw = list(vectors)
        cut_margin = margin_for("openface")
        openface = PROFILES["openface"].threshold
        same = np.array_equal(regroup(lfw, openface, cut_margin),
                              _in_order_of_first_track(_agglomerate([np.atleast_2d(v) for v in lfw],
                                                                    openface - cut_margin, "single")))
        print(f"LFW OpenFace, 1,000 one-vector tracks: same groups: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
