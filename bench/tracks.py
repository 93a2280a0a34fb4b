#!/usr/bin/env python3
"""Tracks on the clip (not a test): speed and answers with --every N against --every 1, and against face_recognition.

Stages, each in a fresh process (bench/benchmark.py's run_stage), all in one run:
  peer      face_recognition (HOG detector, dlib embeddings, tolerance 0.6) on the clip, same gallery;
            skipped with a note when it is not installed
  full      recognize_video.py's own main(), headless, --json, per profile, with --every 1 and --every N
  rules     the sface pipeline through the package with each naming rule, several N, and with or without
            embedding a track again the next frame when its verdict was near the threshold (--margins),
            with and without settling named tracks (tracking.SETTLED_AFTER): agreement with --every 1,
            faces named rightly (by eye, bench/shared_faces.py), label flips, faces embedded
  cost      the tracker alone (association, cut check, bookkeeping, naming) on 10 moving faces

The gallery is faces/known plus faces/probe/lin-manuel-miranda.png as "lin" (the tests' gallery).
Frame rates are the recognition loop's (start-up excluded), decoding included for every row.
`--repeats R` runs each speed row R times, interleaved, and keeps each row's fastest run: on a
machine shared with other work that is the least disturbed one. The answers do not vary between runs.

Example (prints the markdown table of docs/tracks.md):
  python bench/tracks.py --repeats 2 --json bench/tracks.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

from benchmark import CLIP, ROOT, enrolled, model_paths, run_stage
from profiles import linked_gallery
from shared_faces import KNOWN_PEOPLE, named_rightly

sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PEER_TOLERANCE = 0.6  # face_recognition's default
ABSENT = ("biden", "kit_harington", "rose_leslie")  # in the gallery, not in the clip
AUDIENCE_SHOT = (211, 274)  # the only frames that show Barack Obama (../shared/README.md)
INSTALL_PEER = "pip install dlib-bin face_recognition_models Click Pillow && pip install --no-deps face_recognition"


def stage_peer(_: dict) -> dict:
    """face_recognition as its README shows it: HOG locations, 128-d encodings, nearest known face within 0.6."""
    try:
        import face_recognition
    except ImportError:
        return {"skipped": f"face_recognition is not installed ({INSTALL_PEER})"}
    import cv2

    with tempfile.TemporaryDirectory() as workdir:
        known, names = [], []
        for photo in sorted(linked_gallery(Path(workdir)).glob("*/*")):
            encodings = face_recognition.face_encodings(face_recognition.load_image_file(str(photo)))
            if encodings:
                known.append(encodings[0])
                names.append(photo.parent.name)
    records = []
    capture = cv2.VideoCapture(str(CLIP))
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        locations = face_recognition.face_locations(rgb)
        faces = []
        for (top, right, bottom, left), encoding in zip(locations, face_recognition.face_encodings(rgb, locations)):
            distances = face_recognition.face_distance(known, encoding)
            best = int(np.argmin(distances))
            faces.append({"name": names[best] if distances[best] <= PEER_TOLERANCE else "Unknown",
                          "box": [left, top, right, bottom]})
        records.append({"frame": len(records), "faces": faces})
    seconds = time.perf_counter() - start
    capture.release()
    return {"fps": len(records) / seconds, **answers(records), "version": metadata.version("face_recognition")}


def stage_full(args: dict) -> dict:
    """recognize_video.py's main() in this process: --no-display --json --every N; its JSON lines and frame rate."""
    import recognize_video

    with tempfile.TemporaryDirectory() as workdir:
        models, embeddings, note = enrolled(args["profile"], linked_gallery(Path(workdir)), Path(workdir))
        lines, errors = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(lines), contextlib.redirect_stderr(errors):
            code = recognize_video.main(["--embeddings", str(embeddings), "--source", str(CLIP), "--no-display",
                                         "--json", "--every", str(args["every"]), *models])
    summary = errors.getvalue()
    fps = re.search(r"([\d.]+) frames/s", summary)
    if code != 0 or not fps:
        raise RuntimeError(f"recognize_video.py failed: {summary}")
    return {"fps": float(fps[1]), "records": [json.loads(line) for line in lines.getvalue().splitlines()],
            "summary": summary.strip(), "note": note}


def stage_rules(args: dict) -> dict:
    """The sface pipeline through the package, every naming rule, N and doubt margin, on frames decoded once."""
    import cv2

    from facerec.catalogue import PROFILES
    from facerec.detection import load_detector
    from facerec.embedding import load_embedder
    from facerec.matching import make_matcher
    from facerec.modelfiles import model_path, network_files
    from facerec.recognition import FacePipeline
    from facerec.running import run_recognition
    from facerec.stores import load_store
    from facerec.tracking import NAMING_RULES, Tracker

    profile = PROFILES["sface"]
    with tempfile.TemporaryDirectory() as workdir:
        _, embeddings, _ = enrolled("sface", linked_gallery(Path(workdir)), Path(workdir))
        store = load_store(embeddings)
    folder, embedder_file, _ = model_paths("sface")  # the sface files are never made here
    network, paths = network_files(profile.detectors, folder)
    detector = load_detector(network, paths, profile.confidence)
    embedder = load_embedder(profile.embedder, model_path(profile.embedder.files[0], embedder_file))
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    matcher = make_matcher("nearest", store.vectors, store.names, profile.threshold)
    # settling (tracking.SETTLED_AFTER) only matters where tracks in doubt are embedded again: with a margin
    runs = [("frame", 1, 0.0, 0)] + [(rule, every, margin, settled) for rule in NAMING_RULES
                                     for margin in args["margins"] for settled in (args["settled"] if margin else (0,))
                                     for every in args["everies"]]
    results = {}
    for rule, every, margin, settled in runs:
        tracker = Tracker(every, rule, doubt_margin=margin, settled_after=settled)
        recogniser = FacePipeline(detector, embedder, matcher, tracker)
        lines = io.StringIO()
        summary = run_recognition(frames, recogniser, json_lines=lines)
        records = [json.loads(line) for line in lines.getvalue().splitlines()]
        results[f"{rule} {every} {margin} {settled}"] = {"records": records, "embedded": recogniser.embedded,
                                                          "fps": summary.fps}
    return {"runs": results}


def stage_cost(args: dict) -> dict:
    """Milliseconds a frame the tracker takes for `faces` faces moving on a 640x360 frame, naming included."""
    from facerec.detection import DetectedFace
    from facerec.matching import make_matcher
    from facerec.tracking import DEFAULT_EVERY, Tracker

    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((10, 128)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    matcher = make_matcher("nearest", gallery, [f"p{i}" for i in range(10)], 1.128)
    tracker = Tracker(DEFAULT_EVERY)
    frame = np.full((360, 640, 3), 90, np.uint8)
    starts = np.stack([np.linspace(20, 560, args["faces"]), np.tile([40.0, 200.0], args["faces"])[: args["faces"]]], 1)
    vector = gallery[0]
    times = []
    for index in range(args["frames"]):
        faces = [DetectedFace((int(x), int(y), int(x) + 50, int(y) + 60), 0.9)
                 for x, y in starts + [np.sin(index / 20) * 30, 0]]
        start = time.perf_counter()
        tracks = tracker.update(faces, index, frame)
        for track in tracks:
            if tracker.needs_embedding(track):
                tracker.add_evidence(track, vector, matcher.match(vector)[0], matcher)
        times.append(time.perf_counter() - start)
    return {"faces": args["faces"], "frames": args["frames"], "ms_per_frame": 1000 * float(np.median(times)),
            "ms_per_frame_p99": 1000 * float(np.percentile(times, 99)), "tracks": len({t.id for t in tracker.tracks})}


def answers(records: list[dict], reference: list[dict] | None = None) -> dict:
    """Faces found and named, lin's frames, obama's frames, absent people named; with a reference run
    (the same boxes, as the detector is the same): the share of faces given the same name."""
    names = Counter(face["name"] for record in records for face in record["faces"])
    frames_of = defaultdict(set)
    for record in records:
        for face in record["faces"]:
            frames_of[face["name"]].add(record["frame"])
    result = {"frames": len(records), "faces": sum(names.values()), "named": sum(n for k, n in names.items() if k != "Unknown"),
              "names": dict(names), "lin_frames": len(frames_of["lin"]),
              "obama_frames": [min(frames_of["obama"]), max(frames_of["obama"])] if frames_of["obama"] else None,
              "absent_named": sorted(name for name in ABSENT if name in names), "right": right_by_eye(records)}
    if reference is not None:
        given = {(record["frame"], tuple(face["box"])): face["name"] for record in reference for face in record["faces"]}
        same = [given.get((record["frame"], tuple(face["box"]))) == face["name"]
                for record in records for face in record["faces"]]
        result["agreement"] = float(np.mean(same)) if same else 1.0
    return result


def right_by_eye(records: list[dict]) -> int:
    """Faces named rightly (bench/shared_faces.py): a person of the gallery (faces/known and lin) by their name,
    anyone else Unknown."""
    return named_rightly(records, {*KNOWN_PEOPLE, "lin"})


def flips_per_100(records: list[dict]) -> float:
    """How often a track's label changes from one of its frames to its next, per 100 track-frames."""
    by_track = defaultdict(list)
    for record in records:
        for face in record["faces"]:
            by_track[face["track"]].append(face["name"])
    flips = sum(a != b for names in by_track.values() for a, b in zip(names, names[1:]))
    return 100.0 * flips / max(sum(len(names) for names in by_track.values()), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--profiles", nargs="+", default=["sface", "openface"])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each speed row, interleaved; the fastest is kept")
    parser.add_argument("--everies", type=int, nargs="+", default=[5, 10, 20], help="N for the naming-rule comparison")
    parser.add_argument("--margins", type=float, nargs="+", default=None,
                        help="doubt margins for the naming-rule comparison (default: 0, i.e. none, and DOUBT_MARGIN)")
    parser.add_argument("--settled", type=int, nargs="+", default=None,
                        help="verdicts after which a named track in doubt settles, for the naming-rule comparison "
                             "(default: 0, i.e. never, and SETTLED_AFTER)")
    parser.add_argument("--stages", nargs="+", default=["peer", "full", "rules", "cost"])
    args = parser.parse_args(argv)
    from facerec.tracking import DEFAULT_EVERY, DOUBT_MARGIN, SETTLED_AFTER

    margins = args.margins if args.margins is not None else [0.0, DOUBT_MARGIN]

    rows: dict[str, list[dict]] = defaultdict(list)
    for _ in range(args.repeats):
        if "peer" in args.stages:
            rows["face_recognition"].append(run_stage(stage_peer, {}))
        if "full" in args.stages:
            for profile in args.profiles:
                for every in (1, DEFAULT_EVERY):
                    rows[f"{profile} --every {every}"].append(run_stage(stage_full, {"profile": profile, "every": every}))
    fastest = {name: max(runs, key=lambda run: run.get("fps", 0)) for name, runs in rows.items()}
    figures: dict = {"clip": CLIP.name, "repeats": args.repeats, "every": DEFAULT_EVERY, "doubt_margin": DOUBT_MARGIN,
                     "rows": {}}
    for name, run in fastest.items():
        if "skipped" in run:
            figures["rows"][name] = run
            continue
        row = {"fps": run["fps"], "fps_runs": [r["fps"] for r in rows[name]], "note": run.get("note", "")}
        if "records" in run:
            reference = fastest[name.split(" --every")[0] + " --every 1"]["records"]
            row.update(answers(run["records"], reference), flips=flips_per_100(run["records"]), summary=run["summary"])
        else:
            row.update({k: v for k, v in run.items() if k not in ("fps",)})
        figures["rows"][name] = row
    if "rules" in args.stages:
        settled = args.settled if args.settled is not None else [0, SETTLED_AFTER]
        rules = run_stage(stage_rules, {"everies": args.everies, "margins": margins, "settled": settled})["runs"]
        reference = rules["frame 1 0.0 0"]["records"]
        figures["rules"] = {name: {**answers(r["records"], reference), "flips": flips_per_100(r["records"]),
                                   "embedded": r["embedded"], "fps": r["fps"]} for name, r in rules.items()}
    if "cost" in args.stages:
        figures["cost"] = run_stage(stage_cost, {"faces": 10, "frames": 2000})
    print_tables(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def print_tables(figures: dict) -> None:
    every = figures["every"]
    rows = figures["rows"]
    print(f"{figures['clip']}, gallery faces/known + lin; fastest of {figures['repeats']} interleaved run(s) a row\n")
    if rows:
        print("| run | frames/s | faces found | faces named | right by eye | lin frames | obama frames | absent named "
              "| same name as --every 1 | label flips /100 track-frames |")
        print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|")
        for name, row in rows.items():
            if "skipped" in row:
                print(f"| {name} | skipped: {row['skipped']} | | | | | | | | |")
                continue
            obama = "-".join(map(str, row["obama_frames"])) if row["obama_frames"] else "none"
            agreement = f"{row['agreement']:.1%}" if "agreement" in row else ""
            flips = f"{row['flips']:.2f}" if "flips" in row else ""
            label = f"face_recognition {row['version']} (HOG, tolerance {PEER_TOLERANCE})" if name == "face_recognition" else name
            print(f"| {label} | {row['fps']:.1f} | {row['faces']} | {row['named']} | {row['right']} | {row['lin_frames']} | {obama} "
                  f"| {', '.join(row['absent_named']) or 'none'} | {agreement} | {flips} |")
        print()
        peer = rows.get("face_recognition", {})
        for profile in ("sface", "openface"):
            tracked, per_frame = rows.get(f"{profile} --every {every}"), rows.get(f"{profile} --every 1")
            if tracked and per_frame:
                line = f"- {profile}: --every {every} at {tracked['fps'] / per_frame['fps']:.2f}x the frame rate of --every 1"
                if "fps" in peer:
                    line += (f"; {tracked['fps'] / peer['fps']:.1f}x face_recognition's frame rate, "
                             f"{tracked['faces'] / peer['faces']:.1f}x its faces")
                print(line + (f" [{tracked['note']}]" if tracked.get("note") else ""))
        print("- frames/s of each run: " + "; ".join(f"{name} {', '.join(f'{fps:.1f}' for fps in row['fps_runs'])}"
                                                     for name, row in rows.items() if "fps_runs" in row))
    if "rules" in figures:
        print("\nsface, naming rule x N x doubt margin (through the package, frames decoded beforehand; "
              "margin: a track whose verdict is within this share of the threshold is embedded again the next frame, "
              "unless named and its last K verdicts all gave that name (settled after K); right by eye: of the "
              f"{figures['rules']['frame 1 0.0 0']['faces']} faces, bench/shared_faces.py's clip_person):\n")
        print("| rule | N | doubt margin | settled after | frames/s | faces embedded | same name as --every 1 | right by eye "
              "| label flips /100 track-frames | lin frames | obama frames | absent named |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for name, r in figures["rules"].items():
            rule, n, margin, settled = name.split()
            obama = "-".join(map(str, r["obama_frames"])) if r["obama_frames"] else "none"
            shown = f"{float(margin):.0%}" if float(margin) else "none"
            settling = f"{settled} verdicts" if int(settled) else "never"
            print(f"| {rule} | {n} | {shown} | {settling} | {r['fps']:.1f} | {r['embedded']} of {r['faces']} "
                  f"| {r['agreement']:.1%} | {r['right']} | {r['flips']:.2f} | {r['lin_frames']} | {obama} "
                  f"| {', '.join(r['absent_named']) or 'none'} |")
    if "cost" in figures:
        c = figures["cost"]
        print(f"\ntracker alone, {c['faces']} moving faces, {c['frames']} frames: median {c['ms_per_frame']:.3f} ms a frame "
              f"(99th percentile {c['ms_per_frame_p99']:.3f} ms)")


if __name__ == "__main__":
    sys.exit(main())
