"""Where serve.py --config's memory goes: each load step's memory, and a running process's memory by kind.

    python bench/service_memory.py --sets 3
    python bench/service_memory.py --sets 3 --cameras 4 --seconds 30

Load steps (each way in a fresh child process, sface profile, the models of ../shared): VmRSS, VmHWM (the peak
so far) and RssAnon after the imports, the first set of networks (load_models), the learner's networks and each
further set, made two ways (and, as "parts", one set piece by piece):
  shared        Models.reloaded(): the detector loaded again, the embedder's Embedder.another() (OpenVINO: one
                compiled network, an inference request a set; OpenCV's SFace for alignCrop shared)
  compiled each the detector and the embedder loaded again from the files (load_embedder: a compilation a set),
                as serve.py did before the sets shared their compiled network
With --cameras N: serve.py --config with N cameras over RTSP (bench/cameras.py's), after --seconds of running:
its memory by kind from /proc/PID/smaps (glibc's arenas: the anonymous mappings of 64 MB reserved each), once
with glibc's default number of arenas (MALLOC_ARENA_MAX=8 a core, which serve.py leaves alone when set) and once
as serve.py sets it (limits.limit_malloc_arenas: one a usable core).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

ARENA = 64 * 1024 * 1024  # glibc's HEAP_MAX_SIZE on 64-bit: a thread arena reserves this much


def status() -> dict[str, int]:
    """VmRSS, VmHWM and RssAnon of this process, in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon"):
            found[key] = int(value.split()[0]) // 1024
    return found


def steps(way: str, sets: int) -> None:
    """The child: load as serve.py does, printing the memory after each step."""
    def step(name: str) -> None:
        figures = status()
        print(f"| {way} | {name} | {figures['VmRSS']} | {figures['VmHWM']} | {figures['RssAnon']} |", flush=True)

    step("python started")
    import cv2  # noqa: F401
    import openvino  # noqa: F401

    from facerec.catalogue import PROFILES
    from facerec.detection import load_detector
    from facerec.embedding import load_embedder
    from facerec.models import Models, load_models
    step("imports (cv2, openvino, facerec)")
    models_dir = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared")) / "models"
    if way == "parts":
        parts(models_dir, step)
        return
    models = load_models("sface", detector=models_dir,
                         embedder=models_dir / PROFILES["sface"].embedder.files[0].filename)
    step(f"set 1 (load_models), {models.needs_embedder().description()}")

    def another() -> Models:
        if way == "shared":
            return models.reloaded()
        embedder = models.needs_embedder()
        return Models(models.profile, load_detector(models.detector.network, models.detector.paths,
                                                    models.detector.confidence),
                      load_embedder(embedder.network, embedder.paths[0], embedder.precision))

    kept = [another()]
    step("the learner's networks")
    for number in range(2, sets + 1):
        kept.append(another())
        step(f"set {number}")


def parts(models_dir: Path, step) -> None:
    """What one set is made of, loaded piece by piece as OpenVinoSFaceEmbedder does."""
    import cv2
    import openvino

    from facerec.catalogue import PROFILES
    from facerec.detection import load_detector
    from facerec.modelfiles import cache_dir
    from facerec.plainonnx import plain_model

    profile = PROFILES["sface"]
    kept = [load_detector(profile.detectors[0], [models_dir / profile.detectors[0].files[0].filename],
                          profile.confidence)]
    step("YuNet (OpenCV's DNN)")
    source = models_dir / profile.embedder.files[0].filename
    kept.append(cv2.FaceRecognizerSF.create(str(source), ""))
    step("OpenCV's SFace (int8; alignCrop's)")
    assert profile.embedder.plain is not None
    model = plain_model(source, profile.embedder.plain, cache_dir())
    core = openvino.Core()
    graph = core.read_model(model=model)
    graph.reshape([1, 3, 112, 112])
    del model
    step("OpenVINO: the float32 graph read")
    compiled = core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": "f32"})
    kept.append(compiled.create_infer_request())
    step("OpenVINO: compiled, a request")
    del graph
    step("OpenVINO: the graph dropped")
    kept.append(compiled.create_infer_request())
    step("OpenVINO: a second request")


def smaps_kinds(pid: int) -> dict[str, float]:
    """A running process's resident memory by kind, in MB: files mapped (libraries, models), glibc arenas
    (anonymous mappings whose reserved size is a multiple of 64 MB, with their count), the main heap, other
    anonymous memory (numpy arrays, OpenVINO's and OpenCV's buffers, thread stacks)."""
    kinds = {"file-backed": 0.0, "arenas": 0.0, "arena count": 0.0, "heap": 0.0, "other anonymous": 0.0}
    mappings: list[tuple[int, int, str, int]] = []  # start, end, name, rss kB
    current: list = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            start, end = (int(part, 16) for part in fields[0].split("-"))
            current = [start, end, fields[5] if len(fields) > 5 else "", 0]
            mappings.append(current)  # type: ignore[arg-type]
        elif fields[0] == "Rss:":
            current[3] = int(fields[1])
    index = 0
    while index < len(mappings):
        start, end, name, rss = mappings[index]
        if name == "[heap]":
            kinds["heap"] += rss / 1024
        elif name.startswith("/"):
            kinds["file-backed"] += rss / 1024
        elif not name:
            # an arena: a used part then its reserved rest, adjacent, together 64 MB aligned to 64 MB
            following = mappings[index + 1] if index + 1 < len(mappings) else None
            if start % ARENA == 0 and following and following[0] == end and not following[2] \
                    and (following[1] - start) == ARENA:
                kinds["arenas"] += (rss + following[3]) / 1024
                kinds["arena count"] += 1
                index += 2
                continue
            if start % ARENA == 0 and end - start == ARENA:
                kinds["arenas"] += rss / 1024
                kinds["arena count"] += 1
            else:
                kinds["other anonymous"] += rss / 1024
        else:  # [stack], [vdso] ...
            kinds["other anonymous"] += rss / 1024
        index += 1
    return kinds


def running(count: int, seconds: float, arenas: str | None) -> None:
    import cameras
    from rtsp_camera import RtspCamera

    environment = dict(os.environ)
    if arenas is not None:
        environment["MALLOC_ARENA_MAX"] = arenas
    with tempfile.TemporaryDirectory(prefix="facerec-memory-") as temporary:
        folder = Path(temporary)
        gallery = folder / "embeddings.pickle"
        subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), *cameras.model_args(), "--dataset",
                        str(cameras.SHARED / "faces" / "known"), "--embeddings", str(gallery)], check=True,
                       capture_output=True)
        loops = max(2, int((seconds + cameras.START_SECONDS) / 9) + 1)
        clip = RtspCamera.looped(cameras.CLIP, folder / "looped.mp4", loops)
        names = [f"cam{index}" for index in range(count)]
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environment)  # serving() starts serve.py with this process's environment
        try:
            with RtspCamera({name: clip for name in names}) as server:
                urls = {name: server.url(name) for name in names}
                with cameras.serving(urls, gallery, folder) as (process, _):
                    time.sleep(seconds)
                    kinds = smaps_kinds(process.pid)
                    rss, peak = cameras.peak_kb(process.pid, "VmRSS") / 1024, cameras.peak_kb(process.pid) / 1024
                    threads = len(os.listdir(f"/proc/{process.pid}/task"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    print(f"| {count} | {'MALLOC_ARENA_MAX=' + arenas if arenas else 'serve.py: one a core'} | {rss:.0f} | {peak:.0f} | {threads} "
          f"| {kinds['file-backed']:.0f} | {kinds['arenas']:.0f} ({kinds['arena count']:.0f}) | {kinds['heap']:.0f} "
          f"| {kinds['other anonymous']:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=3, help="sets of networks beside the learner's")
    parser.add_argument("--cameras", type=int, help="also: a running serve.py --config with this many cameras")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long it runs before smaps is read")
    parser.add_argument("--child", choices=("parts", "shared", "compiled each"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        steps(args.child, args.sets)
        return
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print("| way | after | VmRSS (MB) | VmHWM (MB) | RssAnon (MB) |")
    print("|---|---|---:|---:|---:|")
    for way in ("parts", "compiled each", "shared"):
        subprocess.run([sys.executable, __file__, "--child", way, "--sets", str(args.sets)], check=True,
                       stderr=subprocess.DEVNULL)
    if args.cameras:
        print()
        print("| cameras | malloc | VmRSS (MB) | VmHWM (MB) | threads | file-backed | arenas (count) | heap "
              "| other anonymous |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for arenas in (str(8 * (os.cpu_count() or 1)), None):
            running(args.cameras, args.seconds, arenas)


if __name__ == "__main__":
    main()
