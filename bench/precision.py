#!/usr/bin/env python3
"""Benchmark (not a test): SFace in float32 and in bfloat16, against OpenCV's DNN, by the names they give.

Embedders: OpenCV's DNN on the int8 file (the reference, float32), OpenVINO
in float32 (what ships) and OpenVINO in bfloat16 (--precision bfloat16; on a
processor without bf16 OpenVINO runs float32 and the row says so).

- ../shared/faces/lfw-dev, open set: the first photo (by name) of each of
  the 150 known people enrolled, every other photo probed (301 of known
  people, 300 strangers), each photo's largest face, nearest neighbour
  within the sface threshold. Counted: right names, wrong names (a known
  person given another's name), known people left Unknown, strangers named,
  and the probes whose verdict differs from the reference's.
- the clip: faces/known + lin-manuel-miranda.png as "lin" enrolled,
  recognize_video.py's pipeline on every frame: faces whose name differs
  from the reference's, and faces rightly named (bench/shared_faces.py).
- the largest difference of any vector from the reference's, and the median
  ms a face (noisy on a shared machine: compare the counts first).

Example:
  python bench/precision.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from shared_faces import named_rightly  # noqa: E402

from facerec.catalogue import PROFILES, SFACE, YUNET  # noqa: E402
from facerec.detection import load_detector  # noqa: E402
from facerec.embedding import BFLOAT16, FLOAT32, RUNTIME_VARIABLE, load_embedder  # noqa: E402
from facerec.images import read_image  # noqa: E402
from facerec.matching import UNKNOWN, make_matcher  # noqa: E402
from facerec.recognition import FacePipeline  # noqa: E402
from facerec.running import run_recognition  # noqa: E402
from facerec.tracking import Tracker  # noqa: E402
from facerec.video import open_source  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "models"
LFW = SHARED / "faces" / "lfw-dev"
CLIP = SHARED / "video" / "short_hamilton_clip.mp4"
PROFILE = PROFILES["sface"]


def embedders() -> dict[str, object]:
    path = MODELS / SFACE.files[0].filename
    os.environ[RUNTIME_VARIABLE] = "opencv"
    reference = load_embedder(SFACE, path)
    del os.environ[RUNTIME_VARIABLE]
    return {"OpenCV's DNN": reference, "OpenVINO float32": load_embedder(SFACE, path, FLOAT32),
            "OpenVINO bfloat16": load_embedder(SFACE, path, BFLOAT16)}


def lfw_faces(detector) -> list[tuple[str, str, np.ndarray, object]]:
    """(person, role, image, largest face) of every lfw-dev photo where YuNet finds a face."""
    rows = []
    with open(LFW / "people.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            image = read_image(LFW / "photos" / row["file"])
            faces = detector.detect(image)
            if faces:
                largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
                rows.append((row["person"], row["role"], image, largest))
    return rows


def lfw_verdicts(faces, vectors: np.ndarray) -> tuple[dict[str, int], list[str]]:
    """Counts of the open-set verdicts, and each probe's name."""
    enrolled: dict[str, int] = {}
    for index, (person, role, _, _) in enumerate(faces):
        if role == "known":
            enrolled.setdefault(person, index)  # people.csv lists each person's photos in order
    gallery = sorted(enrolled.values())
    matcher = make_matcher("nearest", vectors[gallery], [faces[i][0] for i in gallery], PROFILE.threshold)
    probes = [i for i in range(len(faces)) if i not in set(gallery)]
    names = [match.name for match in matcher.match(vectors[probes])]
    counts = {"right": 0, "wrong": 0, "missed": 0, "strangers named": 0, "strangers": 0, "known probes": 0}
    for index, name in zip(probes, names):
        person, role = faces[index][0], faces[index][1]
        if role == "known":
            counts["known probes"] += 1
            counts["right" if name == person else "missed" if name == UNKNOWN else "wrong"] += 1
        else:
            counts["strangers"] += 1
            counts["strangers named"] += name != UNKNOWN
    return counts, names


def clip_records(detector, embedder) -> list[dict]:
    known = [(path.parent.name, read_image(path)) for path in sorted((SHARED / "faces" / "known").glob("*/*"))]
    known.append(("lin", read_image(SHARED / "faces" / "probe" / "lin-manuel-miranda.png")))
    vectors = [embedder.embed(image, detector.detect(image)[:1])[0] for _, image in known]
    matcher = make_matcher("nearest", np.array(vectors), [name for name, _ in known], PROFILE.threshold)
    lines = io.StringIO()
    with open_source(str(CLIP)) as source:
        run_recognition(source, FacePipeline(detector, embedder, matcher, Tracker()), json_lines=lines)
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def main() -> int:
    detector = load_detector(YUNET, [MODELS / YUNET.files[0].filename], PROFILE.confidence)
    runs = embedders()
    faces = lfw_faces(detector)
    print(f"lfw-dev: {len(faces)} photos with a face; clip: {CLIP.name}; threshold {PROFILE.threshold}")
    reference_vectors = reference_names = reference_clip = None
    enrolled = {path.name for path in (SHARED / "faces" / "known").iterdir() if path.is_dir()} | {"lin"}
    print("\n| embedder | ran in | right | wrong | missed | strangers named | lfw verdicts changed | "
          "clip faces renamed | clip faces named rightly | largest vector difference | ms a face (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, embedder in runs.items():
        times, rows = [], []
        for _, _, image, face in faces:
            start = time.perf_counter()
            rows.append(embedder.embed(image, [face])[0])
            times.append((time.perf_counter() - start) * 1000)
        vectors = np.array(rows)
        counts, names = lfw_verdicts(faces, vectors)
        records = clip_records(detector, embedder)
        clip_names = [face["name"] for record in records for face in record["faces"]]
        if reference_vectors is None:
            reference_vectors, reference_names, reference_clip = vectors, names, clip_names
        changed = sum(a != b for a, b in zip(names, reference_names))
        renamed = sum(a != b for a, b in zip(clip_names, reference_clip)) + abs(len(clip_names) - len(reference_clip))
        print(f"| {label} | {embedder.precision} | {counts['right']} of {counts['known probes']} | {counts['wrong']} "
              f"| {counts['missed']} | {counts['strangers named']} of {counts['strangers']} | {changed} | {renamed} "
              f"of {len(clip_names)} | {named_rightly(records, enrolled)} | "
              f"{np.abs(vectors - reference_vectors).max():.1e} | {statistics.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
