#!/usr/bin/env python3
"""Benchmark (not a test) of the svm matching strategy, measured in one run.

  train    time to build SvmMatcher (label encoder, SVM, temperature) on galleries of
           10^3 .. 10^5 synthetic unit vectors (people of 10 photos, at most 1,000 people),
           RBF and linear SVM, each in a fresh process stopped after --limit seconds
  match    time of one frame's match() (5 faces) on the 1,000 LFW vectors, svm against nearest; and how
           the SVM's top probability spreads over the first of 5 folds (trained on the other 4)
  clip     recognize_video.py's loop on the clip with the sface profile, --match svm against nearest
  one-photo  LFW 5-fold at 0.60 and 0.70: one-photo people learnt from their vector entered twice (the svm
           strategy) against left out of the SVM and decided by distance

Example:
  python bench/svm.py --json bench/svm.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from benchmark import SHARED, run_stage, stage_full  # noqa: E402

LFW = SHARED / "embeddings"


def synthetic_gallery(size: int) -> tuple[np.ndarray, list[str]]:
    """`size` unit vectors of min(1000, size // 10) people, each a noisy copy of its person's centre (~0.5 apart)."""
    rng = np.random.default_rng(0)
    people = max(2, min(1000, size // 10))
    centres = rng.standard_normal((people, 128))
    who = np.arange(size) % people
    vectors = centres[who] / np.linalg.norm(centres[who], axis=1, keepdims=True) + rng.standard_normal((size, 128)) * 0.03
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), [f"p{i}" for i in who]


def stage_train(args: dict) -> dict:
    import facerec.matching as matching

    vectors, names = synthetic_gallery(args["size"])
    matching.SVM_KERNEL = args["kernel"]  # this process only
    import sklearn.svm  # noqa: F401  imported before timing: the import is paid once per process

    start = time.perf_counter()
    matching.SvmMatcher(matching.VectorIndex(vectors, names), 0.55)
    return {"size": args["size"], "people": len(set(names)), "kernel": args["kernel"],
            "train_s": time.perf_counter() - start}


def stage_match(args: dict) -> dict:
    from facerec.evaluation import load_labelled_vectors
    from facerec.matching import make_matcher

    vectors, names = load_labelled_vectors(LFW / "lfw_openface_reps.csv", LFW / "lfw_openface_labels.csv")
    rng = np.random.default_rng(0)
    frames = [vectors[rng.integers(0, len(vectors), 5)] for _ in range(20)]
    result = {}
    for strategy in ("nearest", "svm"):
        start = time.perf_counter()
        matcher = make_matcher(strategy, vectors, names, 0.55)
        build_s = time.perf_counter() - start
        times = []
        for frame in frames:
            start = time.perf_counter()
            matcher.match(frame)
            times.append(time.perf_counter() - start)
        result[strategy] = {"build_s": build_s, "frame_ms": float(np.median(times)) * 1000}
    from facerec.crossvalidation import stratified_folds

    train = stratified_folds(names, 5) != 0
    matcher = make_matcher("svm", vectors[train], [name for name, kept in zip(names, train) if kept], 0.55)
    top = matcher._classifier.probabilities(vectors[~train]).max(axis=1)
    result["svm"]["top_probability_percentiles"] = dict(zip(
        ("0", "10", "50", "90", "100"), np.percentile(top, [0, 10, 50, 90, 100]).round(3).tolist()))
    result["svm"]["people_learnt"] = len(set(names[row] for row in np.flatnonzero(train)))
    return result


def stage_one_photo(args: dict) -> dict:
    from collections import Counter

    from facerec.crossvalidation import k_fold
    from facerec.evaluation import load_labelled_vectors
    from facerec.matching import MATCHERS, Matcher, NearestMatcher, SvmMatcher, VectorIndex

    class OnePhotoByDistance(Matcher):
        """The SVM learns people with two photos or more; a face whose nearest vector is a one-photo person's goes by distance."""

        def __init__(self, index: VectorIndex, threshold: float) -> None:
            super().__init__(index, threshold)
            counts = Counter(index.names)
            self.alone = {name for name, count in counts.items() if count == 1}
            rows = [row for row, name in enumerate(index.names) if counts[name] > 1]
            self.nearest = NearestMatcher(index, threshold)
            self.svm = SvmMatcher(VectorIndex(index.vectors[rows], [index.names[row] for row in rows]), threshold) \
                if len({index.names[row] for row in rows}) >= 2 else None

        def _match(self, queries):
            by_distance = self.nearest.match(queries)
            by_svm = self.svm.match(queries) if self.svm is not None else by_distance
            indices, _ = self.index.nearest(queries, 1)
            return [near if self.index.names[row] in self.alone else learnt
                    for near, learnt, row in zip(by_distance, by_svm, indices[:, 0])]

    MATCHERS["svm one-photo by distance"] = OnePhotoByDistance
    vectors, names = load_labelled_vectors(LFW / "lfw_openface_reps.csv", LFW / "lfw_openface_labels.csv")
    result = {}
    for strategy in ("svm", "svm one-photo by distance"):
        for threshold in (0.6, 0.7):
            row = k_fold(vectors, names, strategy, threshold, 5)
            result[f"{strategy} {threshold}"] = {"right": row.right, "errors": row.wrong + row.false_accepts}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--stages", nargs="+", default=["train", "match", "clip"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5])
    parser.add_argument("--limit", type=float, default=300.0, help="seconds a training may take before it is stopped")
    args = parser.parse_args(argv)
    results: dict = {}
    if "train" in args.stages:
        results["train"] = []
        for kernel in ("rbf", "linear"):
            for size in args.sizes:
                row = {"size": size, "kernel": kernel}
                pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                try:
                    row = pool.submit(stage_train, row).result(timeout=args.limit)
                except TimeoutError:
                    row["train_s"] = None  # stopped: longer than the limit
                    for process in pool._processes.values():  # the worker we started, by its own handle
                        process.kill()
                pool.shutdown(wait=False, cancel_futures=True)
                results["train"].append(row)
                shown = f"{row['train_s']:.2f} s" if row["train_s"] is not None else f"> {args.limit:.0f} s (stopped)"
                print(f"train {kernel:6} {size:>7} vectors: {shown}", flush=True)
    if "match" in args.stages:
        results["match"] = run_stage(stage_match, {})
        for strategy in ("nearest", "svm"):
            row = results["match"][strategy]
            print(f"match on 1,000 LFW vectors, {strategy:7}: build {row['build_s']:.2f} s, "
                  f"{row['frame_ms']:.3f} ms a frame of 5 faces", flush=True)
        svm = results["match"]["svm"]
        print(f"svm top probability, fold 1 of 5 ({svm['people_learnt']} people learnt), percentiles: "
              f"{svm['top_probability_percentiles']}", flush=True)
    if "clip" in args.stages:
        results["clip"] = {strategy: run_stage(stage_full, {"profile": "sface", "extra": ["--match", strategy]})
                           for strategy in ("nearest", "svm")}
        for strategy, row in results["clip"].items():
            print(f"clip, sface, --match {strategy:7}: {row['fps']:.1f} frames/s, {row['faces_named']} faces named",
                  flush=True)
    if "one-photo" in args.stages:
        results["one-photo"] = run_stage(stage_one_photo, {})
        for label, row in results["one-photo"].items():
            if label == "peak_mb":
                continue
            print(f"LFW 5-fold, {label}: {row['right']} right, {row['errors']} errors", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
