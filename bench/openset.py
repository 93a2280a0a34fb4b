#!/usr/bin/env python3
"""Open-set recognition: how often are known people named rightly, and strangers named at all?

Over a folder laid out as ../shared/faces/lfw-dev (people.csv: file,person,role; photos/<file>): each known
person is enrolled with one photo (their first in people.csv; --enrol for another), their other photos are probes that should get
their name, and every stranger's photo (people no gallery holds) should stay Unknown. Counted per probe:
known named rightly, named wrongly (another person's name), missed (Unknown, or no face found), and
strangers named. The decision is the library's own (matching.make_matcher, Matcher.match), for each --match
strategy, each gallery size (a seeded sample of the known people; only their photos are known probes, and
the strangers stay the folder's strangers), and each threshold and look-alike margin asked for; "default" is
the profile's threshold and margin.

Hold-out: the known people and the strangers are each dealt into two halves by a seeded shuffle; the gallery
always holds every sampled person, and each row is counted on all probes, on half A (where settings are
chosen) and on half B (held out, to see whether what was chosen on A holds).

--candidates also measures the rules that were tried and not adopted (nearest strategy, full gallery, numpy
over the same vectors): cohort normalisation (a face named only when its distance to the person is at least
CUT below the mean of its K nearest cohort faces; the cohort is strangers' half A, measured on half B, so no
face is both cohort and probe), and a quality-aware threshold (threshold + SLOPE x (quality - 0.85)).

Faces are detected and embedded once per folder, models and runtime, and cached (bench/openset_faces.py):
the runtime is printed (FACEREC_RUNTIME=opencv for OpenCV's DNN in float32).

Example:
  FACEREC_RUNTIME=opencv python bench/openset.py
  FACEREC_RUNTIME=opencv python bench/openset.py --threshold 1.0 1.05 1.07 1.1 1.12 --margin 0 0.03 0.05 0.1 \\
      --match nearest --gallery 150 --candidates
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from facerec.catalogue import PROFILES  # noqa: E402
from facerec.errors import FacerecError  # noqa: E402
from facerec.matching import MATCHERS, UNKNOWN, make_matcher  # noqa: E402
from openset_faces import OpenSetFaces, load_faces  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
PARTS = ("all", "A", "B")


@dataclass
class Split:
    """Which rows are enrolled, which are known probes (and their half), which are strangers (and their half)."""

    enrolled: np.ndarray
    known: np.ndarray
    known_half: np.ndarray  # "A" or "B" a known probe
    strangers: np.ndarray
    stranger_half: np.ndarray


def split(faces: OpenSetFaces, gallery: int, seed: int, enrol: int = 0) -> Split:
    """Enrol photo number `enrol` (0: the first listed, -1: the last) of `gallery` known people (a seeded sample);
    halves dealt by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    people = np.array(faces.people, dtype=object)
    roles = np.array(faces.roles, dtype=object)
    known_people = list(dict.fromkeys(people[roles == "known"]))
    chosen = [known_people[i] for i in sorted(rng.permutation(len(known_people))[:gallery])]
    half_of = {person: "AB"[i % 2] for i, person in enumerate(rng.permutation(np.array(known_people, dtype=object)))}
    enrolled = np.array([np.flatnonzero(people == person)[enrol] for person in chosen], int)
    known = np.array([i for i in np.flatnonzero(np.isin(people, chosen)) if i not in set(enrolled)], int)
    strangers = np.flatnonzero(roles == "stranger")
    stranger_half = np.array(["AB"[i % 2] for i in rng.permutation(len(strangers))], dtype=object)
    return Split(enrolled, known, np.array([half_of[people[i]] for i in known], dtype=object), strangers,
                 stranger_half)


def count(faces: OpenSetFaces, part: Split, strategy: str, threshold: float, margin: float) -> dict[str, dict]:
    """For each of PARTS: known probes, named rightly, wrongly, missed, strangers, strangers named."""
    if not faces.found[part.enrolled].all():
        raise FacerecError("an enrolment photo has no face: choose another folder or confidence")
    names = [faces.people[i] for i in part.enrolled]
    matcher = make_matcher(strategy, faces.vectors[part.enrolled], names, threshold, margin=margin)
    queries = np.concatenate([part.known, part.strangers])
    given = [match.name for match in matcher.match(faces.vectors[queries])]
    given = [name if faces.found[i] else UNKNOWN for name, i in zip(given, queries)]  # no face: nobody named
    known_given, stranger_given = given[:len(part.known)], given[len(part.known):]
    rows = {}
    for name in PARTS:
        k = [j for j in range(len(part.known)) if name == "all" or part.known_half[j] == name]
        s = [j for j in range(len(part.strangers)) if name == "all" or part.stranger_half[j] == name]
        right = sum(known_given[j] == faces.people[part.known[j]] for j in k)
        missed = sum(known_given[j] == UNKNOWN for j in k)
        rows[name] = {"known": len(k), "right": right, "wrong": len(k) - right - missed, "missed": missed,
                      "strangers": len(s), "strangers named": sum(stranger_given[j] != UNKNOWN for j in s)}
    return rows


def percent(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.1f}%)" if whole else "0"


def table_row(folder: str, gallery: int, part: str, strategy: str, threshold: float, margin: float,
              counts: dict, default: bool) -> str:
    setting = f"{threshold:g} / {margin:g}" + (" (default)" if default else "")
    known = counts["known"]
    return (f"| {folder} | {gallery} | {part} | {strategy} | {setting} | {known} | {percent(counts['right'], known)} | "
            f"{percent(counts['wrong'], known)} | {percent(counts['missed'], known)} | "
            f"{percent(counts['strangers named'], counts['strangers'])} of {counts['strangers']} |")


def candidates(faces: OpenSetFaces, part: Split, thresholds: list[float]) -> None:
    """The rules tried and not adopted (see the module), nearest strategy, on half B's probes."""
    vectors = faces.vectors.astype(np.float64)
    gallery = vectors[part.enrolled]
    names = np.array([faces.people[i] for i in part.enrolled], dtype=object)
    cohort = vectors[part.strangers[part.stranger_half == "A"]]
    known = part.known[(part.known_half == "B") & faces.found[part.known]]
    strangers = part.strangers[(part.stranger_half == "B") & faces.found[part.strangers]]
    queries = np.concatenate([known, strangers])
    to_gallery = np.linalg.norm(vectors[queries][:, None] - gallery[None], axis=2)
    to_cohort = np.sort(np.linalg.norm(vectors[queries][:, None] - cohort[None], axis=2), axis=1)
    nearest = to_gallery.argmin(axis=1)
    best = to_gallery.min(axis=1)
    truth = np.array([faces.people[i] for i in known], dtype=object)

    def line(rule: str, named: np.ndarray) -> str:
        right = int((named[:len(known)] & (names[nearest[:len(known)]] == truth)).sum())
        wrong = int((named[:len(known)] & (names[nearest[:len(known)]] != truth)).sum())
        return (f"| {rule} | {percent(right, len(known))} | {wrong} | "
                f"{percent(int(named[len(known):].sum()), len(strangers))} of {len(strangers)} |")

    print(f"\nrules tried, nearest, gallery {len(part.enrolled)}, half B ({len(known)} known probes, "
          f"{len(strangers)} strangers; cohort: the {len(cohort)} strangers of half A)\n")
    print("| rule | named rightly | wrong | strangers named |\n|---|---:|---:|---:|")
    for threshold in thresholds:
        print(line(f"threshold {threshold:g}", best < threshold))
        for k, cut in ((5, 0.06), (5, 0.1), (10, 0.1)):
            score = to_cohort[:, :k].mean(axis=1) - best
            print(line(f"threshold {threshold:g}, cohort K={k} CUT={cut:g}", (best < threshold) & (score >= cut)))
        for slope in (0.2, 0.5):
            quality = faces.quality[queries]
            print(line(f"threshold {threshold:g} + {slope:g} x (quality - 0.85)",
                       best < threshold + slope * (quality - 0.85)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "faces" / "lfw-dev"])
    parser.add_argument("--profile", default="sface", choices=sorted(PROFILES))
    parser.add_argument("--models", type=Path, default=SHARED / "models", help="folder of the model files")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "facerec-openset",
                        help="folder of the cached vectors (default: %(default)s)")
    parser.add_argument("--match", nargs="+", default=list(MATCHERS), choices=list(MATCHERS))
    parser.add_argument("--gallery", nargs="+", type=int, default=[50, 150], help="people enrolled")
    parser.add_argument("--threshold", nargs="+", type=float, help="thresholds to sweep (default: the profile's)")
    parser.add_argument("--margin", nargs="+", type=float, help="look-alike margins to sweep (default: the profile's)")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--enrol", type=int, default=0,
                        help="which photo of each known person is enrolled: 0 the first listed (default), 1 the "
                             "second, -1 the last")
    parser.add_argument("--candidates", action="store_true", help="also the rules tried and not adopted")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    thresholds = args.threshold or [profile.threshold]
    margins = args.margin if args.margin is not None else [profile.margin]
    try:
        for folder in args.folders:
            faces = load_faces(folder, args.cache, args.models, args.profile)
            print(f"{folder}: {len(faces.files)} photos, faces found in {int(faces.found.sum())}; "
                  f"{args.profile} profile, embedder {faces.runtime}")
            print("\n| folder | enrolled | half | match | threshold / margin | known probes | named rightly | "
                  "named wrongly | missed | strangers named |\n|---|---:|---|---|---|---:|---:|---:|---:|---:|")
            for gallery in args.gallery:
                part = split(faces, gallery, args.seed, args.enrol)
                for strategy in args.match:
                    for threshold in thresholds:
                        for margin in margins:
                            counts = count(faces, part, strategy, threshold, margin)
                            default = threshold == profile.threshold and margin == profile.margin
                            for name in args.parts:
                                print(table_row(folder.name, len(part.enrolled), name, strategy, threshold, margin,
                                                counts[name], default))
            if args.candidates:
                candidates(faces, split(faces, max(args.gallery), args.seed, args.enrol), thresholds)
    except FacerecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
