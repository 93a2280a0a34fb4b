#!/usr/bin/env python3
"""How should unknown faces be grouped into candidate people? BCubed precision and recall on labelled vectors.

Data (each face is its own track, as a photo is):
- lfw-openface: the real OpenFace nn4.small2.v1 vectors of 1,000 LFW images of 410 people
  (../shared/embeddings), the openface profile's threshold;
- faces-sface: SFace vectors of every labelled face of ../shared/faces (known/ and the probe photos
  as ../shared/README.md describes them, embedded as bench/sface_threshold.py does), the sface
  profile's threshold.

Methods, each swept over its parameter: ours (facerec/unknowns/grouping.py) incremental and full
regroup for each linkage, over the cut (the profile's threshold minus a margin); scikit-learn's
AgglomerativeClustering, DBSCAN and HDBSCAN (noise points count as groups of one); dlib's
chinese_whispers_clustering when dlib is installed. For each: the best BCubed recall among the
settings whose precision is at least --precision (a group should hold one person), with that setting.
The incremental grouping sees the faces in a shuffled order (fixed seed).

Example:
  python bench/unknowns.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering  # noqa: E402

from facerec.catalogue import PROFILES  # noqa: E402
from facerec.evaluation import load_labelled_vectors  # noqa: E402
from facerec.evaluation.clustering import bcubed  # noqa: E402
from facerec.unknowns.grouping import DEFAULT_LINKAGE, DEFAULT_MARGIN, LINKAGES, Groups, regroup  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
LFW = SHARED / "embeddings"
SEED = 21

Grouper = Callable[[np.ndarray, float], np.ndarray]  # (vectors, parameter) -> a group label per vector
# A method: its grouper, the name of the parameter swept, and its own values (None: the distance sweep).
Method = tuple[Grouper, str, "tuple[float, ...] | None"]


def lfw_openface() -> tuple[np.ndarray, list[str]]:
    return load_labelled_vectors(LFW / "lfw_openface_reps.csv", LFW / "lfw_openface_labels.csv")


def faces_sface() -> tuple[np.ndarray, list[str]]:
    from sface_threshold import photo_faces, sface_models
    known, probes = photo_faces(*sface_models(PROFILES["sface"].confidence))
    faces = known + probes
    return np.array([vector for _, _, vector in faces]), [person for person, _, _ in faces]


def incremental(linkage: str, threshold: float) -> Grouper:
    def group(vectors: np.ndarray, cut: float) -> np.ndarray:
        order = np.random.default_rng(SEED).permutation(len(vectors))
        groups = Groups(threshold, threshold - cut, linkage)
        labels = np.empty(len(vectors), dtype=np.int64)
        for index in order:
            labels[index] = groups.add(vectors[index])
        return labels
    return group


def full(linkage: str, threshold: float) -> Grouper:
    return lambda vectors, cut: regroup(list(vectors), threshold, threshold - cut, linkage)


def noise_alone(labels: np.ndarray) -> np.ndarray:
    """Noise (-1) as one group per point, the way a user would see an ungrouped face."""
    labels = labels.copy()
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return labels


def established() -> dict[str, Method]:
    methods: dict[str, Method] = {
        f"sklearn Agglomerative {linkage}": (
            lambda v, t, linkage=linkage: AgglomerativeClustering(n_clusters=None, distance_threshold=t,
                                                                  linkage=linkage).fit_predict(v),
            "distance_threshold", None)
        for linkage in ("single", "average", "complete")}
    for samples in (1, 2):
        methods[f"sklearn DBSCAN min_samples={samples}"] = (
            lambda v, t, samples=samples: noise_alone(DBSCAN(eps=t, min_samples=samples).fit_predict(v)), "eps", None)
    methods["sklearn HDBSCAN min_cluster_size=2"] = (
        lambda v, t: noise_alone(HDBSCAN(min_cluster_size=2, cluster_selection_epsilon=float(t),
                                         copy=True).fit_predict(v)),
        "cluster_selection_epsilon", None)
    methods["sklearn HDBSCAN epsilon 0"] = (
        lambda v, t: noise_alone(HDBSCAN(min_cluster_size=int(t), copy=True).fit_predict(v)),
        "min_cluster_size", (2, 3, 4, 5))
    try:
        import dlib
    except ImportError:
        print("dlib is not installed: chinese_whispers_clustering left out")
    else:
        methods["dlib chinese_whispers"] = (
            lambda v, t: np.array(dlib.chinese_whispers_clustering([dlib.vector(row.tolist()) for row in v], float(t))),
            "threshold", None)
    return methods


def best_at(vectors: np.ndarray, people: list[str], group: Grouper, parameters: Iterable[float],
            floor: float) -> tuple[float | None, float, float, int]:
    """(parameter, precision, recall, settings that failed) with the best recall at precision >= floor.

    The parameter is None if no setting reaches the floor. A setting the library fails on is counted, not fatal:
    scikit-learn 1.9.1's HDBSCAN raises a TypeError in its epsilon search on some (small) inputs.
    """
    best: tuple[float | None, float, float] = (None, 0.0, 0.0)
    failed = 0
    for parameter in parameters:
        try:
            labels = group(vectors, parameter)
        except (TypeError, ValueError):
            failed += 1
            continue
        precision, recall = bcubed(labels, people)
        if precision >= floor and recall > best[2]:
            best = (parameter, precision, recall)
    return (*best, failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", type=float, default=0.98, help="lowest BCubed precision accepted (default: 0.98)")
    parser.add_argument("--step", type=float, default=0.01, help="sweep step of each distance parameter (default: 0.01)")
    args = parser.parse_args(argv)
    others = established()
    for name, load, profile in (("lfw-openface", lfw_openface, "openface"), ("faces-sface", faces_sface, "sface")):
        vectors, people = load()
        threshold = PROFILES[profile].threshold
        # Distance parameters from half the threshold to 1.25 times it (where every method's best lies).
        sweep = np.round(np.arange(round(threshold / 2, 2), threshold * 1.25, args.step), 4)
        print(f"\n{name}: {len(vectors)} faces of {len(set(people))} people; {profile} threshold {threshold}; "
              f"best BCubed recall at precision >= {args.precision}")
        print(f"  {'method':<42} {'parameter':>26} {'precision':>9} {'recall':>7}")
        ours: dict[str, Method] = {f"ours {kind} {linkage}": (make(linkage, threshold), "cut", None)
                for kind, make in (("incremental", incremental), ("regroup", full)) for linkage in LINKAGES}
        for method, (group, parameter_name, values) in {**ours, **others}.items():
            # Our cut is never above the profile's threshold: a group is never looser than naming a face.
            parameters = values or (sweep[sweep <= threshold] if method in ours else sweep)
            parameter, precision, recall, failed = best_at(vectors, people, group, parameters, args.precision)
            shown = "none reaches it" if parameter is None else f"{parameter_name} {parameter:g}"
            note = f"  ({failed} of {len(parameters)} settings failed in the library)" if failed else ""
            print(f"  {method:<42} {shown:>26} {precision:>9.3f} {recall:>7.3f}{note}")
        default_cut = threshold - DEFAULT_MARGIN
        for kind, make in (("incremental", incremental), ("regroup", full)):
            precision, recall = bcubed(make(DEFAULT_LINKAGE, threshold)(vectors, default_cut), people)
            print(f"  ours {kind} as shipped ({DEFAULT_LINKAGE}, cut {threshold} - {DEFAULT_MARGIN} = {default_cut:.2f}): "
                  f"precision {precision:.3f}, recall {recall:.3f}")
        alone_precision, alone_recall = bcubed(np.arange(len(vectors)), people)
        print(f"  (every face alone: precision {alone_precision:.3f}, recall {alone_recall:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
