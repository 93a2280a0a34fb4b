"""Small builders shared by the tests: model folders, stand-in networks, frames of the clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from torch7 import write_openface_like_network

CLIP = "video/short_hamilton_clip.mp4"
CLIP_FRAMES = 275
CLIP_SIZE = (640, 360)


def stand_in_openface(folder: Path, seed: int = 0) -> Path:
    """A Torch7 network with OpenFace's contract (1x3x96x96 in, 1x128 unit vector out) at folder/stand_in.t7."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stand_in_{seed}.t7"
    write_openface_like_network(path, seed=seed)
    return path


def clip_frame(clip: Path, index: int) -> np.ndarray:
    """Frame `index` of a video, decoded as recognize_video.py decodes it."""
    capture = cv2.VideoCapture(str(clip))
    try:
        for _ in range(index + 1):
            ok, frame = capture.read()
            assert ok, f"{clip} has fewer than {index + 1} frames"
        return frame
    finally:
        capture.release()


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    """(number of decodable frames, (width, height)) of a video file."""
    capture = cv2.VideoCapture(str(path))
    frames, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        size = (frame.shape[1], frame.shape[0])
    capture.release()
    return frames, size


def assert_clean_failure(result, *fragments: str) -> None:
    """The script failed as a user should see it: exit code 2, no traceback, each fragment in its message."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def device_node(folder: Path, name: str, major: int, minor: int) -> Path:
    """A private character device node (e.g. 1, 3: like /dev/null) at folder/name, so that a test that
    writes to the wrong place damages nothing shared. Not allowed to make one (not root): skips with the reason,
    or fails under FACEREC_REQUIRE_ASSETS=1 (CI runs as root). A symbolic link to the system's device would not
    do: the code follows links, and verify.py refuses a link that leaves its folder before seeing a device."""
    import os
    import stat

    from conftest import require

    path = folder / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
    except PermissionError:
        require(False, "making a device node needs root (CAP_MKNOD): run the tests as root, as .ci/run does")
    return path


def huge_png(width: int, height: int) -> bytes:
    """A valid grey PNG of width x height black pixels: about 1 MB for 32000 x 32000 (bench/attack_clients.py)."""
    from attack_clients import bomb_png

    return bomb_png(width, height)

def checkout_copy(target: Path) -> Path:
    """A copy at `target` of this checkout's files as a fresh clone has them (tracked and new files as git lists
    them; not models/' downloads, output/ or caches), to run what a reader runs in a project folder."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parent.parent
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (root / name).is_file():  # a file deleted but not yet committed is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, target / name)
    return target
