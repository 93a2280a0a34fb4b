#!/usr/bin/env python3
"""Redraw docs/images/annotated.jpg: two frames of the clip as recognize_video.py --output draws them.

The sface profile with the tests' gallery (faces/known plus
faces/probe/lin-manuel-miranda.png as "lin"), recognize_video.py
--no-display --output on short_hamilton_clip.mp4, then frames 9 (the stage)
and 228 (the audience shot, the most crowded) of the video it wrote, side by
side. Model files from models/ if there, else ../shared/models.

Example:
  python bench/annotated.py docs/images/annotated.jpg
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from benchmark import CLIP, ROOT, model_paths
from profiles import linked_gallery

FRAMES = (9, 228)


def annotated_frames(workdir: Path, frames: tuple[int, ...] = FRAMES) -> list:
    """Frames `frames` of the annotated video recognize_video.py --model sface --output writes."""
    folder, embedder_file, _ = model_paths("sface")
    models = ["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)]
    embeddings, video = workdir / "sface.pickle", workdir / "annotated.avi"
    subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset", str(linked_gallery(workdir)),
                    "--embeddings", str(embeddings), "--quiet", *models], check=True, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
                    "--source", str(CLIP), "--no-display", "--output", str(video), *models],
                   check=True, capture_output=True)
    capture = cv2.VideoCapture(str(video))
    wanted = {}
    index = 0
    while len(wanted) < len(frames):
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{video} ended at frame {index}")
        if index in frames:
            wanted[index] = frame
        index += 1
    capture.release()
    return [wanted[index] for index in frames]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="the picture to write (.jpg or .png)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        picture = cv2.hconcat(annotated_frames(Path(workdir)))
    cv2.imwrite(str(args.target), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.target}: frames {', '.join(map(str, FRAMES))} of {CLIP.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
