"""The live-gallery tests' camera (tests/test_live_gallery.py, tests/test_postgres_scripts.py): bench/fifo_camera.py's
PacedCamera running recognize_video.py --json with the sface models on the clip's frames of Lin-Manuel Miranda.
"Within 2 s" is counted in frames, which a busy machine cannot flake.
"""

from __future__ import annotations

import sys

import fifo_camera
from conftest import PROJECT_ROOT, shared_path
from fifo_camera import WAIT_SECONDS, WITHIN_TWO_SECONDS, names  # noqa: F401  (the tests' bounds)
from helpers import CLIP
from test_sface import CLIP_CONFIDENCE, sface_model_args

LIN_PHOTO = "faces/probe/lin-manuel-miranda.png"
# Lin-Manuel Miranda on stage: once he is enrolled, named in each of these frames (--every 1, measured: 116-210)
LIN_FRAMES = range(120, 200)


def y4m_frames(indices) -> tuple[bytes, list[bytes]]:
    """(stream header, frames) of those frames of the clip as a YUV4MPEG2 stream."""
    return fifo_camera.y4m_frames(shared_path(CLIP), indices)


class PacedCamera(fifo_camera.PacedCamera):
    """recognize_video.py --json (and `options`) on the gallery `embeddings`, reading `fifo` fed with `frames`."""

    def __init__(self, fifo, embeddings, frames, *options):
        command = [sys.executable, str(PROJECT_ROOT / "recognize_video.py"), "--embeddings", str(embeddings),
                   "--source", str(fifo), "--no-display", "--json", "--confidence", CLIP_CONFIDENCE, "--every", "1",
                   *options, *sface_model_args()]
        super().__init__(fifo, command, frames)
