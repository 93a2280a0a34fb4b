"""A real RTSP camera on loopback: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0, run with the
system's /usr/bin/python3, which has the `gi` bindings) serving H.264 MP4 files at rtsp://127.0.0.1:PORT/NAME.

Run as a script (by RtspCamera, below) it serves `NAME=FILE` pairs and prints `ready PORT` once listening;
`--loop CLIP OUT TIMES` instead writes OUT, the H.264 of CLIP TIMES over (no re-encoding: concatenated), so a
9 s clip becomes a camera that streams for minutes. Imported (tests/, bench/cameras.py), RtspCamera starts,
kills and restarts that process on one port; nothing here imports `gi` then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: its gi finds the GStreamer RTSP server
START_SECONDS = 60  # a bound on waiting for the server on a busy machine, never a measure


def _gst():  # imported only in the server's own process
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    return GLib, Gst, GstRtspServer


def loop_file(clip: str, out: str, times: int) -> None:
    """OUT: CLIP's H.264 stream `times` over in one MP4 (concat keeps the timestamps running)."""
    GLib, Gst, _ = _gst()
    parts = " ".join(f'filesrc location="{clip}" ! qtdemux ! h264parse ! queue ! c.' for _ in range(times))
    pipeline = Gst.parse_launch(f'concat name=c ! h264parse ! mp4mux ! filesink location="{out}" {parts}')
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message.type == Gst.MessageType.ERROR:
        raise SystemExit(f"cannot loop {clip}: {message.parse_error()[0].message}")


def serve(port: int, mounts: dict[str, str]) -> None:
    GLib, Gst, GstRtspServer = _gst()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    for name, path in mounts.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )')
        factory.set_shared(True)  # every client sees the same moment, as with a camera
        server.get_mount_points().add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


class RtspCamera:
    """The RTSP server process for `mounts` (name -> H.264 MP4), on a free loopback port kept across restarts."""

    def __init__(self, mounts: dict[str, Path], port: int = 0) -> None:
        self.mounts, self.port = mounts, port
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> str:
        """'' if the system's Python can run the server, else why not."""
        if not Path(SYSTEM_PYTHON).exists():
            return f"{SYSTEM_PYTHON} is missing"
        check = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                                "import rtsp_camera; rtsp_camera._gst()", str(Path(__file__).parent)],
                               capture_output=True, text=True, timeout=60)
        return "" if check.returncode == 0 else ("GStreamer's RTSP server is not installed "
                                                 "(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good "
                                                 "gstreamer1.0-plugins-bad)")

    @staticmethod
    def looped(clip: Path, out: Path, times: int) -> Path:
        """`out`: `clip` `times` over (see loop_file), made once."""
        if not out.exists():
            partial = out.with_name(out.stem + ".partial.mp4")
            subprocess.run([SYSTEM_PYTHON, __file__, "--loop", str(clip), str(partial), str(times)],
                           check=True, timeout=300)
            os.replace(partial, out)
        return out

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> RtspCamera:
        args = [f"{name}={path}" for name, path in self.mounts.items()]
        self.process = subprocess.Popen([SYSTEM_PYTHON, __file__, "--port", str(self.port), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        start_new_session=True)  # its stdout only: no pipe of ours held open
        line = self.process.stdout.readline() if self.process.stdout else ""  # the server says when it listens
        if not line.startswith("ready "):
            self.kill()
            raise RuntimeError(f"the RTSP server did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def kill(self) -> None:
        """SIGKILL: the camera vanishes without a goodbye, as a rebooting one does."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loop"]:
        loop_file(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:2] == ["--port"]:
        serve(int(sys.argv[2]), dict(pair.split("=", 1) for pair in sys.argv[3:]))
    else:
        raise SystemExit(f"usage: {SYSTEM_PYTHON} {sys.argv[0]} --port PORT NAME=FILE... | --loop CLIP OUT TIMES")
