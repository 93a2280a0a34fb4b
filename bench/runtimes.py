#!/usr/bin/env python3
"""Benchmarks (not tests): each network through each runtime installed, on the same inputs, side by side.

Inputs: every face YuNet finds (at the sface profile's confidence) in
short_hamilton_clip.mp4, aligned by FaceRecognizerSF.alignCrop for SFace
(112x112) and cut from its box for the OpenFace stand-in (96x96); the clip's
frames padded to 640x640 for YuNet. Runtimes: OpenCV's DNN (what the package
used alone until now), onnxruntime and OpenVINO when installed, each at 1 and
2 threads. The int8 block-quantised ONNX files go to onnxruntime and OpenVINO
as the plain float32 files facerec/plainonnx.py derives from them (onnxruntime
refuses the int8 file as it is; OpenVINO cannot read its blocked
DequantizeLinear). Torch7 (the OpenFace stand-in) is read by OpenCV alone.

Rounds interleave the runtimes (A B C A B C ...) and the median of the rounds
is printed, so a machine that others load slows every runtime alike.

Per runtime: ms per face (one call per face), ms per frame (a frame's faces
in one call, where the runtime takes a batch; OpenCV's int8 SFace returns
wrong features for all but the first face of a batch, so it is called per
face), threads, and agreement with OpenCV's DNN: the largest difference of
the unit vectors (raw outputs for YuNet) and whether every clip face gets
the same name (nearest of faces/known + lin-manuel-miranda.png as "lin",
each embedded by the same runtime, within the sface threshold).

Example:
  python bench/runtimes.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facerec.catalogue import PROFILES, SFACE, YUNET  # noqa: E402
from facerec.detection import load_detector  # noqa: E402
from facerec.images import read_image  # noqa: E402
from facerec.plainonnx import fold_block_quantised  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CLIP = SHARED / "video" / "short_hamilton_clip.mp4"
MODELS = SHARED / "models"
OPENFACE_STANDIN = MODELS / "openface_nn4_architecture_standin.t7"
YUNET_SIDE = 640


@dataclass
class Runner:
    """One network in one runtime: `run` maps an NCHW float32 batch to the raw output rows."""

    runtime: str
    threads: int
    run: Callable[[np.ndarray], np.ndarray]
    batches: bool = True  # False: call it once per face
    before: Callable[[], None] = lambda: None  # set global state (OpenCV's thread count) before a round
    face_ms: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)


def opencv_runner(net: cv2.dnn.Net, threads: int, label: str = "OpenCV DNN", batches: bool = True) -> Runner:
    names = list(net.getUnconnectedOutLayersNames())

    def run(blob: np.ndarray) -> np.ndarray:
        net.setInput(blob)
        return _joined(dict(zip(names, net.forward(names))))
    return Runner(label, threads, run, batches, before=lambda: cv2.setNumThreads(threads))


def onnxruntime_runners(model: bytes, name: str) -> list[Runner]:
    try:
        import onnxruntime
    except ImportError:
        return []
    runners = []
    for threads in (1, 2):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy waiting on a shared box
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        outputs = [output.name for output in session.get_outputs()]
        runners.append(Runner(f"onnxruntime {onnxruntime.__version__} ({name})", threads,
                              lambda blob, s=session, o=outputs: _joined(dict(zip(o, s.run(o, {s.get_inputs()[0].name: blob}))))))
    return runners


def openvino_runners(model: bytes, name: str) -> list[Runner]:
    try:
        import openvino
    except ImportError:
        return []
    import onnx

    names = [output.name for output in onnx.load_from_string(model).graph.output]
    core = openvino.Core()
    runners = []
    for threads in (1, 2):
        compiled = core.compile_model(core.read_model(model=model), "CPU",
                                      {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                       "INFERENCE_PRECISION_HINT": "f32"})  # as shipped (bf16 where the CPU has it)
        request = compiled.create_infer_request()

        def run(blob: np.ndarray, request=request, compiled=compiled) -> np.ndarray:
            result = request.infer({0: blob})
            # in the file's order of outputs: OpenVINO may call one by another of its tensor's names
            return _joined({name: result[output] for name, output in zip(names, compiled.outputs)})
        runners.append(Runner(f"OpenVINO {openvino.__version__.split('-')[0]} ({name})", threads, run))
    return runners


def _joined(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The outputs by name (YuNet has twelve) as one row per image, in the order of their names."""
    return np.concatenate([np.asarray(outputs[name]).reshape(len(outputs[name]), -1) for name in sorted(outputs)],
                          axis=1)


def clip_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def inputs(stride: int) -> dict:
    """The clip's faces (per frame) as SFace and OpenFace blobs, the gallery's SFace blobs, and YuNet's frames."""
    profile = PROFILES["sface"]
    detector = load_detector(YUNET, [MODELS / YUNET.files[0].filename], profile.confidence)
    aligner = cv2.FaceRecognizerSF.create(str(MODELS / SFACE.files[0].filename), "")

    def aligned(image: np.ndarray, face) -> np.ndarray:
        x1, y1, x2, y2 = face.box
        row = np.array([x1, y1, x2 - x1, y2 - y1, *np.asarray(face.landmarks).ravel(), face.confidence], np.float32)
        return aligner.alignCrop(image, row.reshape(1, 15))

    sface, openface, yunet = [], [], []
    for frame in clip_frames()[::stride]:
        faces = detector.detect(frame)
        padded = np.zeros((YUNET_SIDE, YUNET_SIDE, 3), np.uint8)
        padded[:frame.shape[0], :frame.shape[1]] = frame[:YUNET_SIDE, :YUNET_SIDE]
        yunet.append(cv2.dnn.blobFromImage(padded))
        if not faces:
            continue
        sface.append(cv2.dnn.blobFromImages([aligned(frame, face) for face in faces], 1.0, (112, 112), swapRB=True))
        boxes = [frame[face.box[1]:face.box[3], face.box[0]:face.box[2]] for face in faces]
        openface.append(cv2.dnn.blobFromImages(boxes, 1 / 255, (96, 96), swapRB=True))
    gallery, people = [], []
    photos = [*sorted((SHARED / "faces" / "known").glob("*/*")), SHARED / "faces" / "probe" / "lin-manuel-miranda.png"]
    for photo in photos:
        image = read_image(photo)
        faces = detector.detect(image)[:1]
        gallery.append(cv2.dnn.blobFromImage(aligned(image, faces[0]), 1.0, (112, 112), swapRB=True))
        people.append("lin" if photo.parent.name == "probe" else photo.parent.name)
    return {"sface": sface, "openface": openface, "yunet": yunet, "gallery": (np.vstack(gallery), people)}


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, np.float32).reshape(len(rows), -1)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def outputs(runner: Runner, frames: list[np.ndarray]) -> np.ndarray:
    """The runner's output rows for every face (or frame) of `frames`, one call per face."""
    return np.vstack([runner.run(blob[i:i + 1]) for blob in frames for i in range(len(blob))])


def time_round(runner: Runner, frames: list[np.ndarray]) -> None:
    runner.before()
    count = sum(len(blob) for blob in frames)
    start = time.perf_counter()
    for blob in frames:
        for i in range(len(blob)):
            runner.run(blob[i:i + 1])
    seconds = time.perf_counter() - start
    runner.face_ms.append(seconds * 1000 / count)
    if runner.batches:
        start = time.perf_counter()
        for blob in frames:
            runner.run(blob)
        runner.frame_ms.append((time.perf_counter() - start) * 1000 / len(frames))
    else:
        runner.frame_ms.append(seconds * 1000 / len(frames))


def names(vectors: np.ndarray, gallery: np.ndarray, people: list[str], threshold: float) -> list[str]:
    distances = np.linalg.norm(vectors[:, None, :] - gallery[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    return [people[j] if distances[i, j] < threshold else "Unknown" for i, j in enumerate(nearest)]


def compare(title: str, runners: list[Runner], frames: list[np.ndarray], rounds: int,
            naming: tuple[np.ndarray, list[str], float] | None = None, raw: bool = False) -> list[dict]:
    """Time every runner in interleaved rounds, print its row, and return the rows."""
    reference = None
    reference_names = None
    rows = []
    results = {}
    for runner in runners:  # agreement first, untimed (and a warm-up)
        runner.before()
        out = outputs(runner, frames)
        out = out if raw else unit(out)
        if reference is None:
            reference = out
        named = None
        if naming is not None:
            gallery_blob, people, threshold = naming
            gallery = unit(np.vstack([runner.run(gallery_blob[i:i + 1]) for i in range(len(gallery_blob))]))
            named = names(out, gallery, people, threshold)
            reference_names = reference_names or named
        results[id(runner)] = (float(np.abs(out - reference).max()), named)
    for _ in range(rounds):
        for runner in runners:
            time_round(runner, frames)
    count = sum(len(blob) for blob in frames)
    unit_label = "frames" if raw else "faces"
    where = "" if raw else f" in {len(frames)} frames"
    print(f"\n{title}: {count} {unit_label}{where}, median of {rounds} interleaved rounds")
    base = statistics.median(runners[0].face_ms)
    print(f"| runtime | threads | ms a {unit_label[:-1]} | ms a frame | × OpenCV DNN, 1st row | largest difference "
          f"{'of the raw outputs' if raw else 'of the unit vectors'} | clip's names |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for runner in runners:
        face_ms, frame_ms = statistics.median(runner.face_ms), statistics.median(runner.frame_ms)
        difference, named = results[id(runner)]
        same = "-" if named is None else ("identical" if named == reference_names else
                                          f"{sum(a != b for a, b in zip(named, reference_names))} differ")
        per_frame = "-" if raw else f"{frame_ms:.2f}"
        print(f"| {runner.runtime} | {runner.threads} | {face_ms:.2f} | {per_frame} | {base / face_ms:.2f} "
              f"| {difference:.1e} | {same} |")
        rows.append({"runtime": runner.runtime, "threads": runner.threads, "ms": face_ms, "frame_ms": frame_ms,
                     "difference": difference, "names": same})
    return rows


def load_times(rounds: int) -> None:
    """Start-up cost of the sface embedder: load_embedder with OpenCV's DNN and with the catalogue's runtime."""
    from facerec.embedding import RUNTIME_VARIABLE, load_embedder

    path = MODELS / SFACE.files[0].filename
    load_embedder(SFACE, path)  # derives and keeps the float32 file if it is not kept yet
    seconds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for runtime in ("opencv", ""):
            os.environ[RUNTIME_VARIABLE] = runtime
            start = time.perf_counter()
            name = type(load_embedder(SFACE, path)).__name__
            seconds.setdefault(name, []).append(time.perf_counter() - start)
    os.environ.pop(RUNTIME_VARIABLE)
    print(f"\nload_embedder(SFACE) (start-up; the float32 file kept), median of {rounds} interleaved rounds: "
          + ", ".join(f"{name} {statistics.median(times):.2f} s" for name, times in seconds.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default 3)")
    parser.add_argument("--stride", type=int, default=3, help="every Nth frame of the clip (default 3)")
    parser.add_argument("--networks", nargs="+", default=["sface", "yunet", "openface"])
    args = parser.parse_args(argv)
    threads_before = cv2.getNumThreads()
    print(f"python bench/runtimes.py {' '.join(sys.argv[1:] if argv is None else argv)}  "
          f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, OpenCV {cv2.__version__} "
          f"({threads_before} threads by default), load average {os.getloadavg()[0]:.1f}")
    data = inputs(args.stride)
    if "sface" in args.networks:
        source = MODELS / SFACE.files[0].filename
        plain = fold_block_quantised(source)
        sface = cv2.FaceRecognizerSF.create(str(source), "")
        runners = [Runner("OpenCV DNN (FaceRecognizerSF, int8bq file)", threads,
                          lambda blob: sface.feature(np.ascontiguousarray(blob[0].transpose(1, 2, 0)[:, :, ::-1]).astype(np.uint8)),
                          batches=False, before=lambda t=threads: cv2.setNumThreads(t)) for threads in (2, 1)]
        runners.append(opencv_runner(cv2.dnn.readNetFromONNX(np.frombuffer(plain, np.uint8)), 2, "OpenCV DNN (float32 file)", batches=False))
        runners += onnxruntime_runners(plain, "float32 file") + openvino_runners(plain, "float32 file")
        gallery, people = data["gallery"]
        compare(f"SFace ({source.name})", runners, data["sface"], args.rounds,
                naming=(gallery, people, PROFILES["sface"].threshold))
    if "yunet" in args.networks:
        source = MODELS / YUNET.files[0].filename
        plain = fold_block_quantised(source)
        runners = [opencv_runner(cv2.dnn.readNet(str(source)), threads, "OpenCV DNN (int8bq file)") for threads in (2, 1)]
        runners += onnxruntime_runners(plain, "float32 file") + openvino_runners(plain, "float32 file")
        compare(f"YuNet ({source.name}, {YUNET_SIDE}x{YUNET_SIDE})", runners, data["yunet"], args.rounds, raw=True)
    if "openface" in args.networks and OPENFACE_STANDIN.is_file():
        runners = [opencv_runner(cv2.dnn.readNetFromTorch(str(OPENFACE_STANDIN)), threads) for threads in (2, 1)]
        compare(f"OpenFace nn4.small2.v1 stand-in ({OPENFACE_STANDIN.name}; Torch7: OpenCV alone reads it)",
                runners, data["openface"], args.rounds)
    cv2.setNumThreads(threads_before)
    if "sface" in args.networks:
        load_times(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
