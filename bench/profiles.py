#!/usr/bin/env python3
"""Both model profiles on the clip, as a user runs them: faces detected, faces named (speed: benchmark.py).

For each profile: extract_embeddings.py on faces/known plus
faces/probe/lin-manuel-miranda.png as "lin" (the tests' gallery), then
recognize_video.py --no-display --json on short_hamilton_clip.mp4. Model
files come from models/ if there, else ../shared/models; OpenFace's weights
cannot be had here, so the openface profile then runs OpenFace's architecture
with stand-in weights (../shared/README.md): its names mean nothing.

Example:
  python bench/profiles.py --confidence 0.5
"""

from __future__ import annotations

import argparse
import json
import re
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmark import CLIP, ROOT, SHARED, model_paths


def linked_gallery(root: Path) -> Path:
    """faces/known/<person> linked in place, plus lin/."""
    dataset = root / "dataset"
    dataset.mkdir()
    for person in sorted((SHARED / "faces" / "known").iterdir()):
        if person.is_dir():
            os.symlink(person, dataset / person.name)
    (dataset / "lin").mkdir()
    os.symlink(SHARED / "faces" / "probe" / "lin-manuel-miranda.png", dataset / "lin" / "lin-manuel-miranda.png")
    return dataset


def run_profile(profile: str, confidence: float | None, workdir: Path) -> dict:
    folder, embedder_file, note = model_paths(profile)
    models = ["--model", profile, "--detector", str(folder), "--embedding-model", str(embedder_file)]
    if confidence is not None:
        models += ["--confidence", str(confidence)]
    embeddings = workdir / f"{profile}.pickle"
    subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset", str(linked_gallery(workdir)),
                    "--embeddings", str(embeddings), "--quiet", *models], check=True, capture_output=True)
    run = subprocess.run([sys.executable, str(ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
                          "--source", str(CLIP), "--no-display", "--json", *models],
                         check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in run.stdout.splitlines()]
    names = Counter(face["name"] for record in records for face in record["faces"])
    loop_fps = re.search(r"([\d.]+) frames/s", run.stderr)  # the script's own summary (bench/web.py compares it)
    return {"frames": len(records), "fps": float(loop_fps[1]) if loop_fps else None, "detected": sum(names.values()),
            "named": sum(n for name, n in names.items() if name != "Unknown"), "names": dict(names), "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--confidence", type=float, default=None,
                        help="detection confidence (default: each profile's own, as the scripts use)")
    parser.add_argument("--profiles", nargs="+", default=None, help="profiles to run (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from facerec.catalogue import PROFILES

    print(f"{CLIP.name}, confidence {args.confidence or 'of each profile'}, gallery faces/known + lin, {os.cpu_count()} cores")
    print(f"{'profile':<9} {'frames':>6} {'detected':>8} {'named':>6}  names")
    for profile in args.profiles or list(PROFILES):
        with tempfile.TemporaryDirectory() as workdir:
            r = run_profile(profile, args.confidence, Path(workdir))
        names = ", ".join(f"{name} {n}" for name, n in sorted(r["names"].items(), key=lambda kv: -kv[1]))
        print(f"{profile:<9} {r['frames']:>6} {r['detected']:>8} {r['named']:>6}  {names}"
              + (f"  [{r['note']}]" if r["note"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
