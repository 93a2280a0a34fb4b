#!/usr/bin/env python3
"""Benchmarks (not tests): how fast the pipeline is on this machine, measured in one run.

Stages, each in a fresh process so its peak memory is its own:
  decode     reading the clip alone
  detect     decoding + the profile's detector
  bare       decoding + detection + embedding every face: the bare network work
  full       recognize_video.py's own main(), headless (--no-display), per profile
  extract    extract_embeddings.py on ~150 photos, cold on one core (--jobs 1, pinned), cold, and again unchanged:
             each a fresh process, timed from its start (imports and model loading count, as a user waits)
  match      exact and approximate (FAISS) search in galleries of 10^3 .. 10^6 random unit vectors

It prints docs/benchmarks.md's table in markdown (one row per profile, naming the detector
and embedder files each used), then the details. Without OpenFace's weights, the openface rows
run ../shared/models/openface_nn4_architecture_standin.t7: OpenFace's architecture, real cost.

`--repeats R` runs detect, bare and full R times each, interleaved, and reports each one's median run:
on a machine whose speed drifts (this one's detection alone ranged from 42 to 87 frames/s within an
hour) full / detection alone is then the ratio of medians measured side by side. So are extract's
one-core and cold runs (R of each, in turn) and their ratio.

Example:
  python bench/benchmark.py --json bench/results.json
  python bench/benchmark.py --stages detect full --repeats 5
  python bench/benchmark.py --profiles sface --stages extract --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
CLIP = SHARED / "video" / "short_hamilton_clip.mp4"
# OpenFace's weights cannot be had here; this file has nn4.small2.v1's exact architecture (3,733,968 parameters,
# the real cost) with weights that do not tell faces apart (../shared/README.md).
OPENFACE_ARCHITECTURE = SHARED / "models" / "openface_nn4_architecture_standin.t7"
ARCHITECTURE_NOTE = "embedder: nn4.small2.v1 architecture stand-in (real cost, meaningless names)"


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def model_paths(profile_name: str) -> tuple[Path, Path, str]:
    """(detector folder, embedder file, note): files from models/ if present, else ../shared/models.

    Without OpenFace's weights the openface embedder is OpenFace's architecture with stand-in weights: its
    speed is the real network's, its names mean nothing (the note says so).
    """
    from facerec.catalogue import PROFILES
    from facerec.modelfiles import default_models_dir

    profile = PROFILES[profile_name]
    embedder_name = profile.embedder.files[0].filename
    for folder in (default_models_dir(), SHARED / "models"):
        if (folder / embedder_name).is_file():
            return folder, folder / embedder_name, ""
    if profile_name == "openface" and OPENFACE_ARCHITECTURE.is_file():
        return SHARED / "models", OPENFACE_ARCHITECTURE, ARCHITECTURE_NOTE
    raise SystemExit(f"no {embedder_name} in {default_models_dir()} or {SHARED / 'models'}")


def files_used(profile_name: str) -> dict:
    """The detector's and the embedder's files this bench runs for a profile (names, as the table shows them)."""
    from facerec.catalogue import PROFILES
    from facerec.modelfiles import network_files

    folder, embedder_file, note = model_paths(profile_name)
    network, paths = network_files(PROFILES[profile_name].detectors, folder)
    return {"detector": network.name, "detector_files": [path.name for path in paths],
            "embedder_file": embedder_file.name, "note": note}


def load_models(profile_name: str):
    """The profile's models as the scripts load them by default (facerec.load_models), from model_paths' files."""
    import facerec

    folder, embedder_file, note = model_paths(profile_name)
    models = facerec.load_models(profile_name, detector=folder, embedder=embedder_file)
    return models.detector, models.embedder, folder, embedder_file, note


def plain_frames():
    """Decode the clip in this thread, no reader thread: the baseline loops."""
    import cv2

    capture = cv2.VideoCapture(str(CLIP))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        yield frame
    capture.release()


def stage_decode(_: dict) -> dict:
    start = time.perf_counter()
    frames = sum(1 for _ in plain_frames())
    seconds = time.perf_counter() - start
    return {"frames": frames, "fps": frames / seconds}


def stage_loop(args: dict) -> dict:
    """detect (args['embed'] False) or the bare network loop (True)."""
    detector, embedder, *_, note = load_models(args["profile"])
    frames = faces = 0
    start = time.perf_counter()
    for frame in plain_frames():
        found = detector.detect(frame)
        if args["embed"] and found:
            embedder.embed(frame, found)
        frames += 1
        faces += len(found)
    seconds = time.perf_counter() - start
    return {"frames": frames, "fps": frames / seconds, "faces_per_frame": faces / frames,
            "note": note if args["embed"] else ""}


def enrolled(profile: str, dataset: Path, workdir: Path) -> tuple[list[str], Path, str]:
    """extract_embeddings.py's main() on `dataset`: (the scripts' model options, the embeddings file, note)."""
    import extract_embeddings

    folder, embedder_file, note = model_paths(profile)
    models = ["--model", profile, "--detector", str(folder), "--embedding-model", str(embedder_file)]
    embeddings = workdir / "e.pickle"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        extract_embeddings.main(["--dataset", str(dataset), "--embeddings", str(embeddings), "--quiet", *models])
    return models, embeddings, note


def stage_full(args: dict) -> dict:
    """recognize_video.py's main() in this process, headless, against a gallery of faces/known."""
    import recognize_video

    with tempfile.TemporaryDirectory() as workdir:
        models, embeddings, note = enrolled(args["profile"], SHARED / "faces" / "known", Path(workdir))
        errors = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stderr(errors):
            code = recognize_video.main(["--embeddings", str(embeddings), "--source", str(CLIP), "--no-display",
                                         *args.get("extra", []), *models])
        seconds = time.perf_counter() - start
    summary = errors.getvalue()
    match = re.search(r"(\d+) frames, (\d+) faces .*?, ([\d.]+) frames/s", summary)
    if code != 0 or not match:
        raise RuntimeError(f"recognize_video.py failed: {summary}")
    frames, faces, loop_fps = int(match[1]), int(match[2]), float(match[3])
    named = sum(int(n) for name, n in re.findall(r"(\w[\w-]*) (\d+)(?=[,)])", summary.split("(", 1)[1].split(")")[0])
                if name != "Unknown")
    return {"frames": frames, "fps": loop_fps, "fps_with_startup": frames / seconds,
            "faces_per_frame": faces / frames, "faces_named": named, "note": note}


def make_noisy_dataset(target: Path, copies: int) -> int:
    """Each photo of faces/known `copies` times with faint, different noise: distinct files, same faces."""
    import cv2

    rng = np.random.default_rng(0)
    count = 0
    for photo in sorted((SHARED / "faces" / "known").glob("*/*")):
        image = cv2.imread(str(photo))
        person = target / photo.parent.name
        person.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            noisy = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(person / f"{photo.stem}_{copy:02d}.jpg"), noisy)
            count += 1
    return count


def stage_extract(args: dict) -> dict:
    """extract_embeddings.py, each run a fresh process timed from its start (imports and model loading count):
    cold pinned to one core (--jobs 1), cold on every core (its default --jobs), `repeats` times each, in turn
    (each round starts with the other one), then once more with nothing changed."""
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        photos = make_noisy_dataset(workdir / "dataset", args["copies"])
        folder, embedder_file, note = model_paths(args["profile"])
        command = [sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset", str(workdir / "dataset"),
                   "--embeddings", str(workdir / "e.pickle"), "--quiet", "--model", args["profile"],
                   "--detector", str(folder), "--embedding-model", str(embedder_file)]
        one_core = min(os.sched_getaffinity(0))
        runs: dict[str, list[tuple[float, float]]] = {"one_core": [], "cold": [], "unchanged": []}

        def run(name: str, *extra: str, on_one_core: bool = False) -> None:
            """Wall and CPU seconds (user + system, every thread) of one run into runs[name]."""
            if name != "unchanged":
                (workdir / "e.pickle").unlink(missing_ok=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([*command, *extra], check=True, capture_output=True,
                           preexec_fn=(lambda: os.sched_setaffinity(0, {one_core})) if on_one_core else None)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs[name].append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))

        # one core: one process, which OpenCV's threads share; every core: as a user runs it
        for round_ in range(args.get("repeats", 1)):
            pair = [lambda: run("one_core", "--jobs", "1", on_one_core=True), lambda: run("cold")]
            for step in pair if round_ % 2 == 0 else pair[::-1]:
                step()
        run("unchanged")
    median = {name: (statistics.median(wall for wall, _ in done), statistics.median(cpu for _, cpu in done))
              for name, done in runs.items()}
    return {"photos": photos, "cold_s": median["cold"][0], "unchanged_s": median["unchanged"][0],
            "one_core_cold_s": median["one_core"][0], "cores_over_one_core": median["one_core"][0] / median["cold"][0],
            "rounds": [one[0] / cold[0] for one, cold in zip(runs["one_core"], runs["cold"])],
            "peak_mb_children": peak_rss_mb(resource.RUSAGE_CHILDREN),
            "cpu_s": {name: cpu for name, (_, cpu) in median.items()}, "runs": runs, "note": note}


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def stage_match(args: dict) -> dict:
    """Exact and (FAISS installed) approximate search in `size` random unit vectors, 5 faces a frame.

    Per search: build time, memory it keeps (RSS growth) or allocates for a frame (numpy's peak),
    median latency of a frame; recall@1 of approximate against exact on `queries` noisy copies of
    stored vectors (faces near an enrolled one: distances ~0.1 to ~0.55, the openface threshold)
    and `queries` random unit vectors (strangers: ~1.1 from everyone).
    """
    from facerec.errors import FacerecError
    from facerec.matching import APPROXIMATE_FROM, UNKNOWN, VectorIndex, NearestMatcher

    with contextlib.suppress(ImportError):
        import faiss  # noqa: F401  loaded now, so that its library does not count as the index's memory

    size, faces, frames = args["size"], 5, 20
    threshold = 0.55  # the openface profile's: where a noisy copy stops being named
    rng = np.random.default_rng(0)

    def unit(rows: np.ndarray) -> np.ndarray:
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)  # in place: no second gallery-sized array
        return rows

    vectors = unit(rng.standard_normal((size, 128), dtype=np.float32))
    names = [f"p{i % 1000}" for i in range(size)]
    noise = rng.normal(size=(args["queries"], 128)) * np.linspace(0.01, 0.048, args["queries"])[:, None]
    queries = {"noisy": unit(vectors[rng.integers(0, size, args["queries"])] + noise.astype(np.float32)),
               "random": unit(rng.standard_normal((args["queries"], 128), dtype=np.float32))}
    result: dict = {"gallery": size, "faces_per_query": faces, "gallery_mb": vectors.nbytes / 2**20,
                    "approximate_from": APPROXIMATE_FROM}
    found = {}
    for search in ("exact", "approximate"):
        resident, start = rss_mb(), time.perf_counter()
        try:
            gallery = VectorIndex(vectors, names, search=search)
        except FacerecError as error:
            result[search] = {"skipped": str(error)}
            continue
        build_s, kept_mb = time.perf_counter() - start, rss_mb() - resident
        matcher, times = NearestMatcher(gallery, threshold), []
        for frame in range(frames):
            start = time.perf_counter()
            matcher.match(queries["noisy"][frame * faces : (frame + 1) * faces])
            times.append(time.perf_counter() - start)
        tracemalloc.start()  # numpy's arrays, not FAISS's own: the working memory of a frame's exact search
        matcher.match(queries["noisy"][:faces])
        frame_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        found[search] = {kind: gallery.nearest(batch, 1) for kind, batch in queries.items()}
        result[search] = {"build_s": build_s, "latency_ms": float(np.median(times)) * 1000,
                          "kept_mb": kept_mb, "frame_mb": frame_mb}
        del gallery, matcher
    def answers(indices: np.ndarray, distances: np.ndarray) -> list[str]:
        return [names[i] if d < threshold else UNKNOWN for i, d in zip(indices[:, 0], distances[:, 0])]

    for kind in found.get("approximate", {}):
        (exact_rows, exact_distances), approximate = found["exact"][kind], found["approximate"][kind]
        result["approximate"][f"recall_{kind}"] = float(np.mean(approximate[0][:, 0] == exact_rows[:, 0]))
        result["approximate"][f"same_answer_{kind}"] = float(np.mean(
            np.array(answers(*approximate)) == np.array(answers(exact_rows, exact_distances))))
    result["nearest_distance_range"] = {kind: [float(found["exact"][kind][1].min()), float(found["exact"][kind][1].max())]
                                        for kind in queries}
    result["auto"] = "approximate" if "approximate" in found and size >= APPROXIMATE_FROM else "exact"
    return result


def run_stage(function, args: dict) -> dict:
    """Run one stage in a fresh process; add its peak memory."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_with_peak, function, args).result()


def _with_peak(function, args: dict) -> dict:
    result = function(args)
    result.setdefault("peak_mb", peak_rss_mb())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--profiles", nargs="+", default=None, help="profiles to measure (default: all)")
    parser.add_argument("--stages", nargs="+", default=["decode", "detect", "bare", "full", "extract", "match"])
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of detect, bare and full, interleaved, and of extract's one-core and cold runs, "
                             "in turn; each reports its median run (default 1)")
    parser.add_argument("--copies", type=int, default=17, help="noisy copies of each of the 9 known photos (default 17: 153)")
    parser.add_argument("--gallery-sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--recall-queries", type=int, default=200,
                        help="queries of each kind (noisy copy, random) for recall@1 of approximate search")
    args = parser.parse_args(argv)
    from facerec.catalogue import PROFILES

    profiles = args.profiles or list(PROFILES)
    import cv2

    results: dict = {"machine": machine(), "opencv": cv2.__version__, "clip": str(CLIP.name),
                     "command": " ".join(["python", "bench/benchmark.py", *(sys.argv[1:] if argv is None else argv)]),
                     "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()}
    if "decode" in args.stages:
        results["decode"] = run_stage(stage_decode, {})
    loops = {"detect": (stage_loop, {"embed": False}), "bare": (stage_loop, {"embed": True}), "full": (stage_full, {})}
    for profile in profiles:
        row = results.setdefault("profiles", {}).setdefault(profile, {"files": files_used(profile)})
        runs: dict[str, list[dict]] = {stage: [] for stage in loops if stage in args.stages}
        for _ in range(args.repeats):  # interleaved: a load that rises or falls slows every stage alike
            for stage, (function, extra) in loops.items():
                if stage in runs:
                    runs[stage].append(run_stage(function, {"profile": profile, **extra}))
        for stage, stage_runs in runs.items():
            row[stage] = median_run(stage_runs)
        if "bare" in row and "full" in row:
            row["full_over_bare"] = row["full"]["fps"] / row["bare"]["fps"]
        if "detect" in row and "full" in row:  # issue 22's target: the live path at the detector's pace
            row["full_over_detect"] = row["full"]["fps"] / row["detect"]["fps"]
        if "extract" in args.stages:
            row["extract"] = run_stage(stage_extract, {"profile": profile, "copies": args.copies,
                                                       "repeats": args.repeats})
    if "match" in args.stages:
        results["match"] = [run_stage(stage_match, {"size": size, "queries": args.recall_queries})
                            for size in args.gallery_sizes]
    results["load_after"] = os.getloadavg()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def median_run(runs: list[dict]) -> dict:
    """The run of median frames/s (the lower middle one of an even count), with every run's frames/s."""
    ordered = sorted(runs, key=lambda run: run["fps"])
    return {**ordered[(len(ordered) - 1) // 2], "fps_runs": [run["fps"] for run in runs]}


def machine() -> dict:
    """Cores and CPU model (Linux), for the line above the table."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    return {"cores": os.cpu_count(), "cpu": model}


def embedding_ms_per_face(row: dict) -> float | None:
    """What embedding adds per face: the bare loop's time a frame less detection's, per face."""
    if "detect" not in row or "bare" not in row or not row["bare"]["faces_per_frame"]:
        return None
    return (1 / row["bare"]["fps"] - 1 / row["detect"]["fps"]) * 1000 / row["bare"]["faces_per_frame"]


def markdown_table(results: dict) -> str:
    """docs/benchmarks.md's table: one row per profile, every figure from this run."""
    header = ("| profile | detector file | embedder file | detect frames/s | bare frames/s | full frames/s "
              "| embedding ms a face | faces a frame | full: peak MB | extract_embeddings.py cold / unchanged |")
    lines = [header, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for profile, row in results.get("profiles", {}).items():
        files = row["files"]
        embedder = f"`{files['embedder_file']}`"
        if files["note"]:
            notes.append(files["note"])
            embedder += f" ({len(notes)})"
        cell = lambda stage, key, form: format(row[stage][key], form) if stage in row else "-"  # noqa: E731
        per_face = embedding_ms_per_face(row)
        extract = (f"{row['extract']['cold_s']:.1f} s / {row['extract']['unchanged_s']:.2f} s ({row['extract']['photos']} photos, "
                   f"{row['extract']['cores_over_one_core']:.2f}x one core)" if "extract" in row else "-")
        lines.append(f"| `{profile}` | `{files['detector_files'][-1]}` | {embedder} | {cell('detect', 'fps', '.1f')} "
                     f"| {cell('bare', 'fps', '.1f')} | {cell('full', 'fps', '.1f')} "
                     f"| {'-' if per_face is None else format(per_face, '.1f')} "
                     f"| {cell('bare' if 'bare' in row else 'detect', 'faces_per_frame', '.2f')} "
                     f"| {cell('full', 'peak_mb', '.0f')} | {extract} |")
    lines += [f"\n({number}) {note}" for number, note in enumerate(notes, 1)]
    return "\n".join(lines)


def print_table(results: dict) -> None:
    m = results["machine"]
    print(f"{results['command']}  # {results['started']}, {m['cores']} cores ({m['cpu']}), OpenCV {results['opencv']}, "
          f"load average {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after")
    if "decode" in results:
        d = results["decode"]
        print(f"decode alone: {d['fps']:.1f} frames/s ({d['frames']} frames), peak {d['peak_mb']:.0f} MB")
    if results.get("profiles"):
        print(f"\n{markdown_table(results)}")
    for profile, row in results.get("profiles", {}).items():
        if len(row) == 1:  # its files only
            continue
        print(f"\nprofile {profile}: {row['files']['detector']} + {row['files']['embedder_file']}")
        print(f"  {'stage':<10} {'frames/s':>9} {'faces/frame':>12} {'peak MB':>8}  note")
        for stage in ("detect", "bare", "full"):
            if stage in row:
                r = row[stage]
                print(f"  {stage:<10} {r['fps']:>9.1f} {r['faces_per_frame']:>12.2f} {r['peak_mb']:>8.0f}  {r.get('note', '')}")
                if len(r.get("fps_runs", [])) > 1:
                    print(f"  {'':<10} runs: {', '.join(f'{fps:.1f}' for fps in r['fps_runs'])} (the median shown)")
        if "full" in row:
            print(f"  full path: {row['full']['faces_named']} faces named; "
                  f"{row['full']['fps_with_startup']:.1f} frames/s counting start-up")
        if "full_over_bare" in row:
            print(f"  full / bare network loop: {row['full_over_bare']:.0%}")
        if "full_over_detect" in row:
            print(f"  full / detection alone: {row['full_over_detect']:.2f}")
            rounds = [full / detect for detect, full in zip(row["detect"]["fps_runs"], row["full"]["fps_runs"])]
            if len(rounds) > 1:  # each round's two runs are neighbours in time: the ratio a drift disturbs least
                print(f"    round by round: {', '.join(f'{ratio:.2f}' for ratio in rounds)} "
                      f"(median {statistics.median(rounds):.2f})")
        if "extract" in row:
            e = row["extract"]
            print(f"  extract_embeddings.py on {e['photos']} photos: cold {e['cold_s']:.1f} s "
                  f"(one core: {e['one_core_cold_s']:.1f} s, {e['cores_over_one_core']:.2f}x), "
                  f"unchanged {e['unchanged_s']:.2f} s, peak {e['peak_mb_children']:.0f} MB")
            if len(e.get("rounds", [])) > 1:  # medians above; each round's two runs are neighbours in time
                print(f"    {len(e['rounds'])} rounds: one core {', '.join(f'{w:.1f}' for w, _ in e['runs']['one_core'])} s, "
                      f"cold {', '.join(f'{w:.1f}' for w, _ in e['runs']['cold'])} s; round by round "
                      f"{', '.join(f'{ratio:.2f}' for ratio in e['rounds'])}x (median {statistics.median(e['rounds']):.2f}x)")
            if "cpu_s" in e:  # what a loaded machine distorts least: CPU seconds, every thread
                print(f"    CPU seconds: one core {e['cpu_s']['one_core']:.1f}, cold {e['cpu_s']['cold']:.1f}, "
                      f"unchanged {e['cpu_s']['unchanged']:.1f}")
    if "match" in results:
        print(f"\nmatching, {results['match'][0]['faces_per_query']} faces a frame; exact: numpy, approximate: FAISS IVF-Flat; "
              "recall@1 and same answer (name or Unknown) of approximate against exact search")
        print(f"  {'gallery':>9} {'auto':>6} | {'exact ms':>8} {'frame MB':>8} | {'approx ms':>9} {'build s':>7} {'index MB':>8} "
              f"{'recall noisy':>12} {'random':>6} {'same answer':>11} | {'gallery MB':>10} {'peak MB':>7}")
        for r in results["match"]:
            exact, approximate = r["exact"], r["approximate"]
            approx = (f"{approximate['latency_ms']:>9.2f} {approximate['build_s']:>7.2f} {approximate['kept_mb']:>8.0f} "
                      f"{approximate['recall_noisy']:>12.3f} {approximate['recall_random']:>6.3f} "
                      f"{approximate['same_answer_noisy']:>11.3f}" if "skipped" not in approximate else f"{'(no FAISS)':>59}")
            print(f"  {r['gallery']:>9} {r['auto'][:6]:>6} | {exact['latency_ms']:>8.2f} {exact['frame_mb']:>8.0f} | "
                  f"{approx} | {r['gallery_mb']:>10.0f} {r['peak_mb']:>7.0f}")

if __name__ == "__main__":
    sys.exit(main())
