"""Video sources read in a background thread: files lose no frame, live streams keep only the newest."""

import functools
import http.server
import threading
import time

import cv2
import numpy as np
import pytest

from facerec.video import VideoOutput, open_source

FRAMES = 60


@pytest.fixture
def numbered_video(tmp_path):
    """An MJPG video whose frame i is a flat grey of level 4*i, so each frame read tells its index."""
    path = tmp_path / "numbered.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for index in range(FRAMES):
        writer.write(np.full((120, 160, 3), 4 * index, np.uint8))
    writer.release()
    return path


def frame_index(frame):
    return int(round(frame.mean() / 4))


def test_a_slow_consumer_of_a_file_still_gets_every_frame_in_order(numbered_video):
    with open_source(str(numbered_video)) as source:
        seen = []
        for frame in source:
            seen.append(frame_index(frame))
            time.sleep(0.01)
    assert seen == list(range(FRAMES))


AHEAD = 5  # frames the reader reads while the slow consumer holds one


def test_a_slow_consumer_of_a_live_stream_gets_the_newest_frames(numbered_video):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(numbered_video.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/{numbered_video.name}") as source:
            assert source.spec.is_live
            seen = []
            for frame in source:
                seen.append(frame_index(frame))
                # slower than decoding: take the next frame only once the reader has read AHEAD more (or all)
                deadline = time.monotonic() + 30
                while source.frames_read < min(seen[-1] + 1 + AHEAD, FRAMES) and time.monotonic() < deadline:
                    time.sleep(0.001)
                assert source.frames_read >= min(seen[-1] + 1 + AHEAD, FRAMES), "the reader stopped reading"
    finally:
        server.shutdown()
        server.server_close()
    # the frames read meanwhile were dropped, not queued: the next one taken is the newest, AHEAD on at least
    # (or the last frame, when fewer than AHEAD were left)
    assert all(later - earlier >= min(AHEAD, FRAMES - 1 - earlier) for earlier, later in zip(seen, seen[1:])), seen
    assert seen[-1] == FRAMES - 1  # the newest frame is the one kept


class _InterruptedAfterTheEncoder:
    """The real encoder, with a Ctrl-C landing just after it took a frame: where Python checks for signals."""

    def __init__(self, writer: cv2.VideoWriter) -> None:
        self._writer = writer

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)
        raise KeyboardInterrupt

    def release(self) -> None:
        self._writer.release()


def test_a_ctrl_c_after_the_encoder_took_a_frame_keeps_the_video_with_that_frame(tmp_path):
    frame = np.full((48, 64, 3), 128, np.uint8)
    output = VideoOutput(tmp_path / "out.mp4", 25.0, (64, 48))
    output.write(frame, 0)
    output.write(frame, 1)
    output._writer = _InterruptedAfterTheEncoder(output._writer)
    with pytest.raises(KeyboardInterrupt):
        output.write(frame, 2)
    output.close()
    assert output.problem is None
    assert output.outcome.endswith("(3 frames)")
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
