#!/usr/bin/env python3
"""Redraw docs/images/annotated.jpg (two frames of the clip, named) and docs/images/clip.webp (the clip, moving).

The sface profile with the tests' gallery (faces/known plus
faces/probe/lin-manuel-miranda.png as "lin"), enrolled by extract_embeddings.py,
then every frame of short_hamilton_clip.mp4 followed with tracks as
recognize_video.py follows it (facerec.Recogniser.follow, default --every and
confidence), each face boxed and labelled `#track name: distance` by the
same drawing code. No frame-rate badge is drawn: a picture's speed would be
that of the machine it was drawn on. The still is frames 9 (the stage) and 228
(the audience shot, the most crowded) side by side; the animation (--animation,
.gif or .webp) every STEP-th frame, scaled to WIDTH pixels. Model files from
models/ if there, else ../shared/models.

Example:
  python bench/annotated.py docs/images/annotated.jpg --animation docs/images/clip.webp
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmark import CLIP, ROOT, model_paths
from profiles import linked_gallery

FRAMES = (9, 228)
STEP, WIDTH, FPS = 2, 640, 15  # the animation: every 2nd frame of the 30 fps clip, shown at 15 a second (real time)
MAX_BYTES = 2 * 1024 * 1024  # a README picture must stay small (issue 24: at most 2 MB)


def annotated_clip(workdir: Path) -> list[np.ndarray]:
    """Every frame of the clip, named and drawn as recognize_video.py --model sface draws it (without the rate)."""
    import facerec
    from facerec.drawing import draw_faces

    folder, embedder_file, _ = model_paths("sface")
    models = ["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)]
    embeddings = workdir / "sface.pickle"
    subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset", str(linked_gallery(workdir)),
                    "--embeddings", str(embeddings), "--quiet", *models], check=True, capture_output=True)
    loaded = facerec.load_models("sface", detector=str(folder), embedder=str(embedder_file))
    drawn = []
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    with facerec.Recogniser(loaded, str(embeddings)) as recogniser:
        for index, faces in recogniser.follow(frames):
            frame = frames[index].copy()
            draw_faces(frame, [(face.detected, face.label, face.known) for face in faces])
            drawn.append(frame)
    return drawn


def write_animation(frames: list[np.ndarray], target: Path) -> int:
    """Every STEP-th frame scaled to WIDTH, as an endlessly looping GIF or WebP; returns its size in bytes."""
    from PIL import Image

    height = round(frames[0].shape[0] * WIDTH / frames[0].shape[1])
    pictures = [Image.fromarray(cv2.cvtColor(cv2.resize(frame, (WIDTH, height), interpolation=cv2.INTER_AREA),
                                             cv2.COLOR_BGR2RGB)) for frame in frames[::STEP]]
    options: dict = {"save_all": True, "append_images": pictures[1:], "duration": round(1000 / FPS), "loop": 0}
    if target.suffix.lower() == ".webp":
        options.update(quality=70, method=6)
    else:
        # one palette for the whole clip: no flicker between frames, and smaller
        palette = pictures[len(pictures) // 2].quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        pictures = [picture.quantize(palette=palette, dither=Image.Dither.NONE) for picture in pictures]
        options.update(append_images=pictures[1:], optimize=True)
    temporary = target.with_name(f".{target.name}.tmp{target.suffix}")
    pictures[0].save(temporary, **options)
    size = temporary.stat().st_size
    if size > MAX_BYTES:
        temporary.unlink()
        raise SystemExit(f"error: the animation would be {size:,} bytes, over {MAX_BYTES:,}: use .webp or a smaller WIDTH")
    temporary.replace(target)
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="the still to write (.jpg or .png)")
    parser.add_argument("--animation", type=Path, help="also write the clip as an animation (.gif or .webp)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        frames = annotated_clip(Path(workdir))
    picture = cv2.hconcat([frames[index] for index in FRAMES])
    cv2.imwrite(str(args.target), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.target}: frames {', '.join(map(str, FRAMES))} of {CLIP.name}")
    if args.animation:
        size = write_animation(frames, args.animation)
        print(f"wrote {args.animation}: {len(frames[::STEP])} frames of {CLIP.name} (every {STEP}), "
              f"{WIDTH} px wide, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
