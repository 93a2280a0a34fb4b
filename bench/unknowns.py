#!/usr/bin/env python3
"""How should unknown faces be grouped into candidate people? BCubed precision and recall on labelled vectors.

Data: each item is a track, one or more vectors of one face (a photo is a track of one vector):
- lfw-openface: the real OpenFace nn4.small2.v1 vectors of 1,000 LFW images of 410 people
  (../shared/embeddings), the openface profile's threshold;
- faces-sface: SFace vectors of every labelled face of ../shared/faces (known/ and the probe photos
  as ../shared/README.md describes them, embedded as bench/sface_threshold.py does), the sface
  profile's threshold;
- clip-tracks-sface: the tracks of ../shared/video/short_hamilton_clip.mp4 as recognize_video.py follows
  them (the sface profile's YuNet and SFace models from ../shared/models at its confidence, facerec's
  Tracker with its defaults, the quality stage, a gallery of faces/known, which does not hold Lin-Manuel
  Miranda): each track is its best 5 vectors by face quality, as --keep-unknowns keeps them
  (clip-tracks-sface), or every vector the tracker embedded for it (clip-tracks-sface-every-vector).
  These group every track, also those the gallery named (Obama, Alex Lacamoire's close-up), which
  --keep-unknowns does not keep: more evidence of who is near whom. clip-unknown-tracks-sface groups only
  the tracks that never carried a name (best 5 vectors each): what --keep-unknowns hands the store. Who each track is was established by eye: the crops of every embedded face of every track, and the frames bench/shared_faces.py names
  (clip_person), with Alex Lacamoire's faces also compared by eye with probe/alex-lacamoire.png and Lin-Manuel
  Miranda's with probe/lin-manuel-miranda.png. A track whose faces that rule gives to two people stops the bench.

Methods, each swept over its parameter: ours (facerec/unknowns/grouping.py) incremental and full
regroup for each linkage, over the cut (the profile's threshold minus a margin), on the tracks'
vectors; scikit-learn's AgglomerativeClustering, DBSCAN and HDBSCAN (noise points count as groups of
one) and dlib's chinese_whispers_clustering (when dlib is installed; a note says when it is not) on one
vector per track, the unit mean of its vectors. For each: the best BCubed recall (over tracks) among the
settings whose precision is at least --precision (a group should hold one person), with that setting.
Then ours as shipped (DEFAULT_LINKAGE, the threshold minus the profile's margin_for), its number of groups, and
whether it meets the target of issue 21: precision >= --precision with recall at least the best any
established method reaches at that precision. The incremental grouping sees the tracks in a shuffled
order (fixed seed). A last line shows an incremental rule not shipped: a new track also merges the groups it
bridges (it gives the full regroup's groups with single linkage, whatever the order).

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
from facerec.tracking import unit_mean  # noqa: E402
from facerec.unknowns.grouping import DEFAULT_LINKAGE, LINKAGES, Groups, margin_for, regroup  # noqa: E402
from clip_tracks import clip_tracks_sface  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
LFW = SHARED / "embeddings"
SEED = 21

Grouper = Callable[[list[np.ndarray], float], np.ndarray]  # (tracks, parameter) -> a group label per track
# A method: its grouper, the name of the parameter swept, and its own values (None: the distance sweep).
Method = tuple[Grouper, str, "tuple[float, ...] | None"]


def lfw_openface() -> tuple[list[np.ndarray], list[str]]:
    vectors, people = load_labelled_vectors(LFW / "lfw_openface_reps.csv", LFW / "lfw_openface_labels.csv")
    return [vector[None, :] for vector in vectors], people


def faces_sface() -> tuple[list[np.ndarray], list[str]]:
    from sface_threshold import photo_faces, sface_models
    known, probes = photo_faces(*sface_models(PROFILES["sface"].confidence))
    faces = known + probes
    return [vector[None, :] for _, _, vector in faces], [person for person, _, _ in faces]


def incremental(linkage: str, threshold: float) -> Grouper:
    def group(tracks: list[np.ndarray], cut: float) -> np.ndarray:
        order = np.random.default_rng(SEED).permutation(len(tracks))
        groups = Groups(threshold, threshold - cut, linkage)
        labels = np.empty(len(tracks), dtype=np.int64)
        for index in order:
            labels[index] = groups.add(tracks[index])
        return labels
    return group


def full(linkage: str, threshold: float) -> Grouper:
    return lambda tracks, cut: regroup(tracks, threshold, threshold - cut, linkage)


def bridging(tracks: list[np.ndarray], cut: float) -> np.ndarray:
    """Not shipped: incremental single linkage where a new track also merges every group within the cut of it
    (union-find), in the same shuffled order. It always gives the full regroup's single-linkage groups."""
    owner = list(range(len(tracks)))

    def root(index: int) -> int:
        while owner[index] != index:
            owner[index] = owner[owner[index]]
            index = owner[index]
        return index

    seen: list[int] = []
    for index in np.random.default_rng(SEED).permutation(len(tracks)):
        for other in seen:
            if np.linalg.norm(tracks[index][:, None] - tracks[other][None], axis=2).min() <= cut:
                owner[root(other)] = root(index)
        seen.append(int(index))
    return np.array([root(index) for index in range(len(tracks))])


def on_means(cluster: Callable[[np.ndarray, float], np.ndarray]) -> Grouper:
    """A library's clustering of vectors, given one vector per track: the unit mean of its vectors."""
    return lambda tracks, parameter: cluster(np.array([unit_mean(track) for track in tracks], dtype=np.float64),
                                             parameter)


def noise_alone(labels: np.ndarray) -> np.ndarray:
    """Noise (-1) as one group per point, the way a user would see an ungrouped face."""
    labels = labels.copy()
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return labels


def established() -> dict[str, Method]:
    methods: dict[str, Method] = {
        f"sklearn Agglomerative {linkage}": (
            on_means(lambda v, t, linkage=linkage: AgglomerativeClustering(n_clusters=None, distance_threshold=t,
                                                                  linkage=linkage).fit_predict(v)),
            "distance_threshold", None)
        for linkage in ("single", "average", "complete")}
    for samples in (1, 2):
        methods[f"sklearn DBSCAN min_samples={samples}"] = (
            on_means(lambda v, t, samples=samples: noise_alone(DBSCAN(eps=t, min_samples=samples).fit_predict(v))),
            "eps", None)
    methods["sklearn HDBSCAN min_cluster_size=2"] = (
        on_means(lambda v, t: noise_alone(HDBSCAN(min_cluster_size=2, cluster_selection_epsilon=float(t),
                                                  copy=True).fit_predict(v))),
        "cluster_selection_epsilon", None)
    methods["sklearn HDBSCAN epsilon 0"] = (
        on_means(lambda v, t: noise_alone(HDBSCAN(min_cluster_size=int(t), copy=True).fit_predict(v))),
        "min_cluster_size", (2, 3, 4, 5))
    try:
        import dlib
    except ImportError:
        print("note: dlib is not installed (pip install dlib-bin): chinese_whispers_clustering left out")
    else:
        methods["dlib chinese_whispers"] = (
            on_means(lambda v, t: np.array(dlib.chinese_whispers_clustering([dlib.vector(row.tolist()) for row in v],
                                                                            float(t)))),
            "threshold", None)
    return methods


def best_at(vectors: list[np.ndarray], people: list[str], group: Grouper, parameters: Iterable[float],
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


DATA: dict[str, tuple[Callable[[], tuple[list[np.ndarray], list[str]]], str]] = {
    "lfw-openface": (lfw_openface, "openface"),
    "faces-sface": (faces_sface, "sface"),
    "clip-tracks-sface": (clip_tracks_sface, "sface"),
    "clip-tracks-sface-every-vector": (lambda: clip_tracks_sface(None), "sface"),
    "clip-unknown-tracks-sface": (lambda: clip_tracks_sface(unknown_only=True), "sface"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", type=float, default=0.98, help="lowest BCubed precision accepted (default: 0.98)")
    parser.add_argument("--step", type=float, default=0.01, help="sweep step of each distance parameter (default: 0.01)")
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA), help="data sets (default: all)")
    args = parser.parse_args(argv)
    others = established()
    for name in args.data:
        load, profile = DATA[name]
        tracks, people = load()
        threshold = PROFILES[profile].threshold
        # Distance parameters from half the threshold to 1.25 times it (where every method's best lies).
        sweep = np.round(np.arange(round(threshold / 2, 2), threshold * 1.25, args.step), 4)
        print(f"\n{name}: {len(tracks)} tracks ({sum(len(track) for track in tracks)} vectors) of {len(set(people))} "
              f"people; {profile} threshold {threshold}; best BCubed recall at precision >= {args.precision}")
        print(f"  {'method':<42} {'parameter':>26} {'precision':>9} {'recall':>7}")
        ours: dict[str, Method] = {f"ours {kind} {linkage}": (make(linkage, threshold), "cut", None)
                for kind, make in (("incremental", incremental), ("regroup", full)) for linkage in LINKAGES}
        best_established = 0.0
        for method, (group, parameter_name, values) in {**ours, **others}.items():
            # Our cut is never above the profile's threshold: a group is never looser than naming a face.
            parameters = values or (sweep[sweep <= threshold] if method in ours else sweep)
            parameter, precision, recall, failed = best_at(tracks, people, group, parameters, args.precision)
            if method in others:
                best_established = max(best_established, recall)
            shown = "none reaches it" if parameter is None else f"{parameter_name} {parameter:g}"
            note = f"  ({failed} of {len(parameters)} settings failed in the library)" if failed else ""
            print(f"  {method:<42} {shown:>26} {precision:>9.3f} {recall:>7.3f}{note}")
        margin = margin_for(profile)
        default_cut = round(threshold - margin, 4)
        for kind, make in (("incremental", incremental), ("regroup", full)):
            labels = make(DEFAULT_LINKAGE, threshold)(tracks, default_cut)
            precision, recall = bcubed(labels, people)
            met = precision >= args.precision and recall >= best_established - 1e-9
            print(f"  ours {kind} as shipped ({DEFAULT_LINKAGE}, cut {threshold} - {margin} = {default_cut:g}): "
                  f"precision {precision:.3f}, recall {recall:.3f}, {len(set(labels))} groups of "
                  f"{len(set(people))} people: target {'met' if met else 'NOT met'} (best established recall "
                  f"{best_established:.3f})")
        precision, recall = bcubed(bridging(tracks, default_cut), people)
        print(f"  (not shipped: incremental merging the groups a new track bridges, same cut: precision {precision:.3f}, "
              f"recall {recall:.3f})")
        alone_precision, alone_recall = bcubed(np.arange(len(tracks)), people)
        print(f"  (every track alone: precision {alone_precision:.3f}, recall {alone_recall:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
