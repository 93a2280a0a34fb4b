#!/usr/bin/env python3
"""How many boxes each detector finds at low confidences: the measurement behind --confidence's floor (0.2).

On every photo of faces/ and every 5th frame of the clip, with the detector
files of ../shared/models (res10 as its TensorFlow twin, YuNet int8), counts
the boxes found at each confidence: the most in one image and the total.
The photos show one to four people each and the clip's frames 0 to 6 (README
of ../shared). Below 0.2 the counts grow into boxes that are not faces, each
of which recognition would then embed.

Example:
  FACEREC_SHARED=../shared python bench/confidence_floor.py --confidences 0 0.05 0.1 0.2 0.5
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2

from benchmark import CLIP, ROOT, SHARED  # noqa: F401  (ROOT puts the package on the path)

from facerec.catalogue import PROFILES  # noqa: E402
from facerec.detection import load_detector  # noqa: E402
from facerec.images import read_image  # noqa: E402


def clip_frames(step: int) -> list:
    capture = cv2.VideoCapture(str(CLIP))
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--confidences", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--frame-step", type=int, default=5)
    args = parser.parse_args()
    photos = [read_image(path) for path in sorted((SHARED / "faces").glob("*/**/*")) if path.is_file()]
    photos = [photo for photo in photos if photo is not None]
    frames = clip_frames(args.frame_step)
    print(f"{len(photos)} photos, {len(frames)} frames (every {args.frame_step}th of the clip)")
    print(f"{'detector':45} {'conf':>5} {'photo max':>9} {'photos all':>10} {'frame max':>9} {'frames all':>10} "
          f"{'ms/image':>8}")
    for network in (PROFILES["openface"].detectors[1], PROFILES["sface"].detectors[0]):
        paths = [SHARED / "models" / model_file.filename for model_file in network.files]
        for confidence in args.confidences:
            detector = load_detector(network, paths, confidence)
            started = time.perf_counter()
            on_photos = [len(detector.detect(photo)) for photo in photos]
            on_frames = [len(detector.detect(frame)) for frame in frames]
            ms = (time.perf_counter() - started) * 1000 / (len(photos) + len(frames))
            print(f"{network.name:45} {confidence:5g} {max(on_photos):9} {sum(on_photos):10} {max(on_frames):9} "
                  f"{sum(on_frames):10} {ms:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
