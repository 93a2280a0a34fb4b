#!/usr/bin/env python3
"""Start-up time: from starting recognize_video.py to its first JSON line, with a gallery of N vectors.

Writes a gallery of N random 128-d unit vectors (the sface profile) and a model
folder of links to ../shared/models (used as the default folder, where facerec
remembers the models' checksums), then starts recognize_video.py on the shared
clip --repeat times. The first start of each project is cold (no checksums
remembered yet), the others warm. --compare DIR times another checkout (e.g.
main, before a change) in the same run, alternating with this one, each with
its own model folder.

    python bench/startup.py --vectors 10000 --compare /work/main
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from facerec.catalogue import SFACE, YUNET  # noqa: E402
from store_load import synthetic_gallery  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CLIP = SHARED / "video" / "short_hamilton_clip.mp4"


# Run in the project timed, so that each writes the gallery in its own format: the gallery comes as a plain pickle.
_WRITE_GALLERY = """
import pickle, sys
from facerec import stores
Gallery = getattr(stores, "Gallery", None) or stores.EmbeddingStore  # its name before issue 20, in older checkouts
with open(sys.argv[1], "rb") as handle:
    stores.save_store(Gallery(**pickle.load(handle)), sys.argv[2])
"""


def write_gallery(project: Path, path: Path, count: int) -> Path:
    """A gallery of `count` random unit vectors (see store_load.py), written by `project`'s own code."""
    gallery = synthetic_gallery(count, "sface")
    plain = path.with_suffix(".plain")
    with open(plain, "wb") as handle:
        pickle.dump({"vectors": gallery.vectors, "names": gallery.names, "paths": gallery.paths,
                     "profile": gallery.profile, "models": gallery.models, "files": dict(gallery.files)}, handle)
    subprocess.run([sys.executable, "-c", _WRITE_GALLERY, str(plain), str(path)], cwd=project, check=True)
    return path


def model_folder(folder: Path) -> Path:
    """A default model folder holding links to the shared sface files."""
    folder.mkdir()
    for network in (YUNET, SFACE):
        name = network.files[0].filename
        os.symlink(SHARED / "models" / name, folder / name)
    return folder


def first_line_seconds(project: Path, gallery: Path, models: Path) -> float:
    """Seconds from starting recognize_video.py to its first line on standard output."""
    command = [sys.executable, str(project / "recognize_video.py"), "--model", "sface", "--embeddings", str(gallery),
               "--source", str(CLIP), "--no-display", "--json"]
    env = {**os.environ, "FACEREC_MODELS_DIR": str(models), "FACEREC_MODEL_MIRROR": "http://127.0.0.1:9/"}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - start
    process.kill()
    _, error = process.communicate()
    if not line:
        raise SystemExit(f"{project}: recognize_video.py printed nothing: {error.decode(errors='replace')[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=4, help="starts of each project (the first is cold)")
    parser.add_argument("--compare", type=Path, help="another checkout of facerec to time in the same run")
    args = parser.parse_args()
    projects = {"this checkout": ROOT, **({f"{args.compare}": args.compare.resolve()} if args.compare else {})}
    with tempfile.TemporaryDirectory() as folder:
        galleries = {label: write_gallery(project, Path(folder) / f"gallery{index}.pickle", args.vectors)
                     for index, (label, project) in enumerate(projects.items())}
        models = {label: model_folder(Path(folder) / f"models{index}") for index, label in enumerate(projects)}
        times: dict[str, list[float]] = {label: [] for label in projects}
        for _ in range(args.repeat):  # alternating, so a load on the machine weighs on both alike
            for label, project in projects.items():
                times[label].append(first_line_seconds(project, galleries[label], models[label]))
    print(f"recognize_video.py to its first JSON line, {args.vectors:,}-vector gallery (sface), seconds")
    print(f"{'project':<30} {'cold':>6} {'warm (median)':>14}")
    for label, found in times.items():
        warm = statistics.median(found[1:]) if len(found) > 1 else float("nan")
        print(f"{label:<30} {found[0]:6.2f} {warm:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
