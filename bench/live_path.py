#!/usr/bin/env python3
"""Benchmarks (not tests): the live path against detection alone, and a live camera's latency, in one run.

For each profile, in interleaved rounds in this one process (so that other
load slows every variant alike), on short_hamilton_clip.mp4:
  detect        decoding + the profile's detector, one thread (bench/benchmark.py's "detect")
  full ...      recognize_video.py's loop (run_recognition, tracks on, the clip read by its reader thread)
                against faces/known + lin-manuel-miranda.png as "lin": with the embedder's runtime
                (OpenCV's DNN, or the catalogue's faster one when installed, on its threads and, for
                comparison, on one thread) and with detection one frame ahead on another thread or not
Printed: frames/s (median of the rounds), full / detect, faces embedded a frame, and whether every frame's
names are those of the first full variant (OpenCV's DNN, one step at a time: the path before this round).
The row marked "shipped" is what recognize_video.py does by default (run_recognition's `ahead` left to it):
its full / detect is the issue's "live path at the detector's pace" (issue 22 item 2).

Latency: the clip played as a live camera (30 frames/s, only the newest frame kept, as VideoSource does
for a camera), drawn into a window stand-in; from a frame's capture to its names drawn, median and
90th percentile, and the frames shown a second.

--against-opencv (sface; only this comparison): `recognize_video.py --every 1 --no-display --json` (its own
main(), in this process: every face of every frame embedded and named) against OpenCV's own YuNet + SFace loop
as OpenCV's samples/dnn/face_detect.py writes it (cv2.FaceDetectorYN + cv2.FaceRecognizerSF on the same model
files, OpenCV's DNN on OpenCV's threads: detect, alignCrop, feature, match each gallery vector by L2 distance,
the nearest named below the profile's threshold), on the clip and the same gallery (faces/known + lin,
enrolled by extract_embeddings.py), in interleaved rounds. Printed: each one's frames/s (median of the rounds,
start-up not counted), the ratio (issue 30's target: 1.6), round by round, and how many faces each named
and with the same name (frame by frame, as multisets of names).

Examples:
  python bench/live_path.py --rounds 3
  python bench/live_path.py --against-opencv --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmark import CLIP, SHARED, enrolled, load_models, model_paths, plain_frames  # noqa: E402
from facerec.catalogue import PROFILES  # noqa: E402
from facerec.embedding import EMBEDDER_BACKENDS, RUNTIME_VARIABLE  # noqa: E402
from facerec.images import read_image  # noqa: E402
from facerec.matching import make_matcher  # noqa: E402
from facerec.names import UNKNOWN  # noqa: E402
from facerec.recognition import FacePipeline  # noqa: E402
from facerec.running import run_recognition  # noqa: E402
from facerec.tracking import Tracker  # noqa: E402
from facerec.video import open_source  # noqa: E402

LIVE_FPS = 30.0
LIN = SHARED / "faces" / "probe" / "lin-manuel-miranda.png"  # in most frames of the clip: enrolled as "lin"


def gallery_matcher(profile: str, detector, embedder):
    photos = [*sorted((SHARED / "faces" / "known").glob("*/*")), LIN]
    vectors, names = [], []
    for photo in photos:
        image = read_image(photo)
        faces = detector.detect(image)[:1]
        if faces:
            vectors.append(embedder.embed(image, faces)[0])
            names.append("lin" if photo.parent.name == "probe" else photo.parent.name)
    return make_matcher("nearest", np.array(vectors), names, PROFILES[profile].threshold)


def models(profile: str, runtime: str):
    """(detector, embedder, matcher) with the embedder on `runtime` ("opencv"; "catalogue": the row's; "one
    thread": the row's, its runtime on one thread, as shipped before issue 22 item 1 settled on two)."""
    previous = os.environ.pop(RUNTIME_VARIABLE, None)
    if runtime == "opencv":
        os.environ[RUNTIME_VARIABLE] = "opencv"
    network = PROFILES[profile].embedder
    faster = EMBEDDER_BACKENDS.get(f"{network.backend}@{network.runtime}")
    threads = getattr(faster, "THREADS", None)
    if runtime == "one thread" and threads is not None:
        faster.THREADS = 1
    try:
        detector, embedder, *_ = load_models(profile)
    finally:
        os.environ.pop(RUNTIME_VARIABLE, None)
        if previous is not None:
            os.environ[RUNTIME_VARIABLE] = previous
        if threads is not None:
            faster.THREADS = threads
    return detector, embedder, gallery_matcher(profile, detector, embedder)


def shipped(runtime: str, ahead: bool, live: bool) -> bool:
    """Whether this variant is what recognize_video.py does by default (see run_recognition's `ahead`)."""
    return runtime == "catalogue" and ahead == (not live)


def described(runtime: str, embedder) -> str:
    """The embedder's class, and its runtime's threads where it sets them (OpenCV's DNN: OpenCV's threads)."""
    if not hasattr(embedder, "THREADS"):
        return type(embedder).__name__
    return f"{type(embedder).__name__}, {embedder.threads} thread{'s' * (embedder.threads > 1)}"


def detect_alone(detector) -> float:
    start, frames = time.perf_counter(), 0
    for frame in plain_frames():
        detector.detect(frame)
        frames += 1
    return frames / (time.perf_counter() - start)


def full(detector, embedder, matcher, ahead: bool) -> tuple[float, list, float]:
    """recognize_video.py's loop on the clip: (frames/s, every frame's names, faces embedded a frame)."""
    lines = io.StringIO()
    pipeline = FacePipeline(detector, embedder, matcher, Tracker())
    with open_source(str(CLIP)) as source:
        summary = run_recognition(source, pipeline, json_lines=lines, ahead=ahead)
    names = [[face["name"] for face in json.loads(line)["faces"]] for line in lines.getvalue().splitlines()]
    return summary.fps, names, pipeline.embedded / max(summary.frames, 1)


class LiveClip:
    """The clip as a live camera: a frame every 1/LIVE_FPS s, only the newest kept; `captured` by frame id."""

    ended_by = "end of stream"

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.captured: dict[int, float] = {}
        self._slot: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        start = time.perf_counter()
        for index, frame in enumerate(self.frames):
            time.sleep(max(0.0, start + index / LIVE_FPS - time.perf_counter()))
            copy = frame.copy()  # drawing marks the frame it is given
            self.captured[id(copy)] = time.perf_counter()
            self._offer((index, copy))
        self._offer(None)

    def _offer(self, item) -> None:
        while True:
            try:
                self._slot.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._slot.get_nowait()  # the stale frame goes
                except queue.Empty:
                    pass

    def numbered(self):
        self._thread.start()
        while (item := self._slot.get()) is not None:
            yield item

    def __iter__(self):
        return (frame for _, frame in self.numbered())


class RecordingWindow:
    """A window stand-in: when each frame was shown (its names drawn)."""

    closed = False

    def __init__(self, clip: LiveClip) -> None:
        self.clip = clip
        self.latencies: list[float] = []

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> None:
        self.latencies.append(time.perf_counter() - self.clip.captured.pop(id(frame)))

    def close(self) -> None:
        pass


def live(detector, embedder, matcher, frames: list[np.ndarray], ahead: bool) -> tuple[list[float], float]:
    clip = LiveClip(frames)
    window = RecordingWindow(clip)
    summary = run_recognition(clip, FacePipeline(detector, embedder, matcher, Tracker()), window=window, ahead=ahead)
    return window.latencies, summary.fps


def throughput(profile: str, loaded: dict, variants: list, rounds: int) -> None:
    fps: dict = {"detect": [], **{variant: [] for variant in variants}}
    names, embedded = {}, {}
    for round_ in range(rounds):
        fps["detect"].append(detect_alone(next(iter(loaded.values()))[0]))
        # each round starts one variant later, so that a load that rises or falls during a round favours none
        for runtime, ahead in variants[round_ % len(variants):] + variants[:round_ % len(variants)]:
            rate, names[runtime, ahead], embedded[runtime, ahead] = full(*loaded[runtime], ahead)
            fps[runtime, ahead].append(rate)
    detect = statistics.median(fps["detect"])
    print(f"\nprofile {profile}: {rounds} interleaved rounds, median frames/s")
    print("| variant | embedder | frames/s | full / detect | faces embedded a frame | names of every frame |")
    print("|---|---|---:|---:|---:|---|")
    print(f"| detect alone | - | {detect:.1f} | - | - | - |")
    reference = names[variants[0]]
    for runtime, ahead in variants:
        rate = statistics.median(fps[runtime, ahead])
        same = "same" if names[runtime, ahead] == reference else (
            f"{sum(a != b for a, b in zip(names[runtime, ahead], reference))} frames differ")
        embedder = loaded[runtime][1]
        mark = " (shipped)" if shipped(runtime, ahead, live=False) else ""
        print(f"| full, {STEPS[ahead]}{mark} | {described(runtime, embedder)} | {rate:.1f} | {rate / detect:.2f} "
              f"| {embedded[runtime, ahead]:.2f} | {same} |")


def latency(profile: str, loaded: dict, variants: list, rounds: int, frames: list[np.ndarray]) -> None:
    pooled = {variant: ([], []) for variant in variants}
    for _ in range(rounds):
        for runtime, ahead in variants:
            latencies, rate = live(*loaded[runtime], frames, ahead)
            pooled[runtime, ahead][0].extend(latencies)
            pooled[runtime, ahead][1].append(rate)
    print(f"\nprofile {profile}: live camera at {LIVE_FPS:.0f} frames/s, capture to names drawn "
          f"({rounds} interleaved rounds pooled)")
    print("| variant | embedder | median ms | 90th percentile ms | frames shown a second |")
    print("|---|---|---:|---:|---:|")
    for (runtime, ahead), (latencies, rates) in pooled.items():
        embedder = loaded[runtime][1]
        mark = " (shipped)" if shipped(runtime, ahead, live=True) else ""
        print(f"| {STEPS[ahead]}{mark} | {described(runtime, embedder)} | {1000 * statistics.median(latencies):.0f} "
              f"| {1000 * float(np.percentile(latencies, 90)):.0f} | {statistics.median(rates):.1f} |")


STEPS = {False: "one step at a time", True: "detection one frame ahead"}


def every_frame(embeddings: Path, models: list[str]) -> tuple[float, list[Counter], str]:
    """recognize_video.py --every 1 --no-display --json, its own main() here: (its frames/s, each frame's names,
    its embedder as its summary line names it)."""
    import recognize_video

    out, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
        code = recognize_video.main(["--embeddings", str(embeddings), "--source", str(CLIP), "--no-display",
                                     "--every", "1", "--json", *models])
    summary = re.search(r" ([\d.]+) frames/s.*; embedder: ([^\n]*)", errors.getvalue())
    if code != 0 or not summary:
        raise RuntimeError(f"recognize_video.py failed: {errors.getvalue()}")
    return float(summary[1]), [Counter(face["name"] for face in json.loads(line)["faces"])
                               for line in out.getvalue().splitlines()], summary[2]


def opencv_loop(yunet: Path, sface: Path, vectors: np.ndarray, names: list[str]) -> tuple[float, list[Counter]]:
    """OpenCV's own loop (samples/dnn/face_detect.py): (frames/s, each frame's names); the profile's confidence,
    NMS and threshold, as facerec runs them, and OpenCV's DNN on OpenCV's own threads."""
    profile = PROFILES["sface"]
    detector = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), profile.confidence,
                                         profile.detectors[0].nms_threshold, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(sface), "")
    capture = cv2.VideoCapture(str(CLIP))
    detector.setInputSize((int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    seen = []
    start = time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        _, faces = detector.detect(frame)
        named = Counter()
        for face in faces if faces is not None else []:
            feature = recognizer.feature(recognizer.alignCrop(frame, face))
            distances = [recognizer.match(feature, known, cv2.FaceRecognizerSF_FR_NORM_L2) for known in vectors]
            nearest = int(np.argmin(distances))
            named[names[nearest] if distances[nearest] < profile.threshold else UNKNOWN] += 1
        seen.append(named)
    seconds = time.perf_counter() - start
    capture.release()
    return len(seen) / seconds, seen


def against_opencv(rounds: int) -> None:
    """--every 1 against OpenCV's own YuNet + SFace loop, interleaved rounds (see the module's doc)."""
    from facerec.stores import open_gallery

    with tempfile.TemporaryDirectory() as workdir:
        dataset = Path(workdir) / "dataset"
        shutil.copytree(SHARED / "faces" / "known", dataset)
        (dataset / "lin").mkdir()
        shutil.copyfile(LIN, dataset / "lin" / LIN.name)
        models, embeddings, _ = enrolled("sface", dataset, Path(workdir))
        with open_gallery(embeddings) as stored:
            gallery = stored.snapshot
        folder, sface, _ = model_paths("sface")
        yunet = folder / PROFILES["sface"].detectors[0].files[0].filename
        fps: dict[str, list[float]] = {"facerec": [], "opencv": []}
        for round_ in range(rounds):  # each round starts with the other one: a drifting load favours neither
            for which in (("facerec", "opencv") if round_ % 2 == 0 else ("opencv", "facerec")):
                if which == "facerec":
                    rate, ours, embedder = every_frame(embeddings, models)
                else:
                    rate, theirs = opencv_loop(yunet, sface, np.asarray(gallery.vectors).reshape(len(gallery.names), 1, -1),
                                              list(gallery.names))
                fps[which].append(rate)
    ratios = [ours_fps / theirs_fps for ours_fps, theirs_fps in zip(fps["facerec"], fps["opencv"])]
    facerec_fps, opencv_fps = statistics.median(fps["facerec"]), statistics.median(fps["opencv"])
    count = lambda frames, known=False: sum(n for names in frames for name, n in names.items()  # noqa: E731
                                            if not known or name != UNKNOWN)
    same = [ours_names & theirs_names for ours_names, theirs_names in zip(ours, theirs)]
    print(f"\nsface, {len(ours)} frames, gallery faces/known + lin ({len(gallery.names)} photos), {rounds} interleaved "
          "rounds, median frames/s (start-up not counted)")
    print("| loop | embedder | frames/s | faces | named (not Unknown) |")
    print("|---|---|---:|---:|---:|")
    print(f"| OpenCV's own YuNet + SFace loop | OpenCV's DNN, {cv2.getNumThreads()} threads | {opencv_fps:.1f} "
          f"| {count(theirs)} | {count(theirs, True)} |")
    print(f"| recognize_video.py --every 1 | {embedder} | {facerec_fps:.1f} | {count(ours)} "
          f"| {count(ours, True)} |")
    print(f"--every 1 / OpenCV's own loop: {facerec_fps / opencv_fps:.2f} (target 1.6); round by round: "
          f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} (median {statistics.median(ratios):.2f})")
    print(f"same name: {count(same)} faces of {count(ours)} (facerec) and {count(theirs)} (OpenCV's loop), "
          f"{count(same, True)} of them named; frames with the same names: "
          f"{sum(a == b for a, b in zip(ours, theirs))} of {len(ours)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES))
    parser.add_argument("--no-latency", action="store_true", help="skip the live camera")
    parser.add_argument("--no-throughput", action="store_true", help="only the live camera")
    parser.add_argument("--against-opencv", action="store_true",
                        help="only --every 1 against OpenCV's own YuNet + SFace loop (sface)")
    args = parser.parse_args(argv)
    print(f"python bench/live_path.py {' '.join(sys.argv[1:] if argv is None else argv)}  "
          f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, OpenCV {cv2.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.against_opencv:
        against_opencv(args.rounds)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return 0
    clip_frames = list(plain_frames())
    for profile in args.profiles:
        loaded = {runtime: models(profile, runtime) for runtime in ("opencv", "catalogue", "one thread")}
        if type(loaded["opencv"][1]) is type(loaded["catalogue"][1]):  # no faster runtime for this profile
            loaded = {"catalogue": loaded["opencv"]}  # the catalogue's, which is OpenCV's DNN: shipped
        elif loaded["one thread"][1].threads == loaded["catalogue"][1].threads:  # one core, or one thread shipped
            del loaded["one thread"]
        variants = [(runtime, ahead) for runtime in loaded for ahead in (False, True)]
        if not args.no_throughput:
            throughput(profile, loaded, variants, args.rounds)
        if not args.no_latency:
            latency(profile, loaded, variants, args.rounds, clip_frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
