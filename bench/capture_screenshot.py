#!/usr/bin/env python3
"""Retake docs/images/capture-window.png: imagecapture.py's window under Xvfb, just after SPACE saved a photo.

The window must show the person it is named after: frames 135 to 160 of
short_hamilton_clip.mp4 show Lin-Manuel Miranda alone (SFace distance 0.71 to
0.90 to faces/probe/lin-manuel-miranda.png, checked again here on the photo
saved). They are played as a video file at 5 frames/s (time to press SPACE)
by `imagecapture.py --name "Lin-Manuel Miranda"` with the default profile, on
a private Xvfb display; xdotool presses SPACE, and the window is read from
the X server with Pillow (ImageGrab).

Example:
  python bench/capture_screenshot.py docs/images/capture-window.png
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmark import CLIP, ROOT, SHARED, model_paths  # puts the project on sys.path

import facerec
from facerec.catalogue import PROFILES
from facerec.images import read_image

NAME = "Lin-Manuel Miranda"
PHOTO = SHARED / "faces" / "probe" / "lin-manuel-miranda.png"
FRAMES = range(135, 161)
PLAY_FPS = 5
TITLE = "facerec capture"


def write_frames(target: Path) -> None:
    capture = cv2.VideoCapture(str(CLIP))
    writer = None
    for index in range(FRAMES.stop):
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f"{CLIP} ended at frame {index}")
        if index in FRAMES:
            writer = writer or cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), PLAY_FPS,
                                               (frame.shape[1], frame.shape[0]))
            writer.write(frame)
    capture.release()
    writer.release()


def sface_distance_to_photo(image: np.ndarray) -> float:
    """L2 distance (sface profile) between the one face of `image` and the face of the named person's photo."""
    folder, embedder_file, _ = model_paths("sface")
    models = facerec.load_models("sface", detector=folder, embedder=embedder_file)
    [face] = models.detector.detect(image)  # the saved photo holds one face
    return facerec.verify(image, read_image(PHOTO), models).distance


def xdotool(env: dict, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=60).stdout


def screenshot(video: Path, dataset: Path):
    """Run imagecapture.py on `video` in a private X server, press SPACE once, grab its window: (picture, photo path)."""
    from PIL import ImageGrab

    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x720x24", "-nolisten", "tcp", "-noreset"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    select.select([read_end], [], [], 30)
    display = f":{os.read(read_end, 16).decode().strip()}"
    env = {**os.environ, "DISPLAY": display}
    folder, _, _ = model_paths("openface")
    capture = subprocess.Popen([sys.executable, str(ROOT / "imagecapture.py"), "--source", str(video), "--name", NAME,
                                "--dataset", str(dataset), "--detector", str(folder)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found: list[str] = []
        while not found and capture.poll() is None:
            found = xdotool(env, "search", "--onlyvisible", "--name", TITLE).split()
            time.sleep(0.2)
        if not found:
            raise SystemExit(f"no capture window appeared: {capture.stderr.read()}")
        window = found[0]
        time.sleep(1.0)  # a few frames in
        xdotool(env, "windowfocus", "--sync", window)
        xdotool(env, "key", "space")
        saved = Path(capture.stdout.readline().strip().removeprefix("saved "))
        time.sleep(0.3)  # the next frame, with "saved 0001.jpg" drawn
        geometry = dict(line.split("=") for line in xdotool(env, "getwindowgeometry", "--shell", window).split())
        x, y, width, height = (int(geometry[key]) for key in ("X", "Y", "WIDTH", "HEIGHT"))
        picture = ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=display)
        xdotool(env, "key", "Escape")
        capture.wait(timeout=60)
    finally:
        if capture.poll() is None:
            capture.kill()
        os.close(read_end)  # open until the end: Xvfb stops answering once it is closed
        server.terminate()
        server.wait(timeout=10)
    return picture, saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="the PNG to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        write_frames(workdir / "lin.avi")
        picture, saved = screenshot(workdir / "lin.avi", workdir / "dataset")
        distance = sface_distance_to_photo(cv2.imread(str(saved)))
    threshold = PROFILES["sface"].threshold
    if distance >= threshold:
        raise SystemExit(f"the saved photo is not {NAME}: distance {distance:.3f} to {PHOTO.name} (threshold {threshold})")
    picture.save(args.target)
    print(f"wrote {args.target} ({picture.width}x{picture.height}); the photo saved shows {NAME}: "
          f"sface distance {distance:.3f} to {PHOTO.name} (threshold {threshold})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
