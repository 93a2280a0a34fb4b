#!/usr/bin/env python3
"""The gallery in PostgreSQL against the embeddings pickle, in one run: load time, enrolment throughput, live updates.

Needs an empty database it may fill (every facerec table in it is dropped first), e.g.
a throwaway server: `python tests/postgres_server.py` prints the URL of one.

    python bench/postgres_store.py --url postgresql://postgres@127.0.0.1:PORT/DB

- load: galleries of N random 128-d unit vectors (names, paths and file records as an
  enrolment writes them), loaded by PostgresStore.load() and by load_store() from the
  same gallery saved as a pickle; best of --repeat.
- enrolment: images recorded per second through StoreWriter.record (one transaction
  each, as extract_embeddings.py writes), by one writer process, then by two at once.
- live update: from a writer's record() returning to a watcher's on_change holding the
  new person, for galleries of --watch-sizes vectors; median of --repeat-watch.
- extraction (--stages extract): real extract_embeddings.py --model sface processes (the
  photos of faces/known --copies times with faint noise, as bench/benchmark.py makes them)
  into the database: one alone, then two at once on two machines' folders; photos per
  second from each process's start (models loading included) to its end.
- recogniser (--stages recogniser): a running recognize_video.py --json following the
  database (fed the clip's frames of Lin-Manuel Miranda through a FIFO, bench/fifo_camera.py, at most 10 frames a second); from extract_embeddings.py
  printing that it wrote him (or his deletion) to the first JSON line naming him (or no longer
  naming him); --repeat-watch enrolments and deletions.
"""


from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from benchmark import make_noisy_dataset, model_paths  # noqa: E402

from facerec.stores import Gallery, load_store, save_store  # noqa: E402
from facerec.stores.postgres import PostgresStore  # noqa: E402

MODELS = {"profile": "sface", "detector": "yunet", "embedder": "sface", "confidence": 0.9,
          "sha256": {"face_detection_yunet.onnx": "ab" * 32, "face_recognition_sface.onnx": "cd" * 32}}
DIMENSION = 128
BATCH = 50_000


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def reset(url: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS facerec_images, facerec_meta, facerec_sightings")


def binary_rows(origin: str, start: int, vectors: np.ndarray) -> bytes:
    """COPY binary rows of facerec_images (origin, key, person, size, mtime_ns, status, vector), all of fixed size."""
    count = len(vectors)
    texts = {"origin": origin.encode(), "status": b"used"}
    layout = [("fields", ">i2"),
              ("origin_length", ">i4"), ("origin", f"S{len(texts['origin'])}"),
              ("key_length", ">i4"), ("key", "S22"),
              ("person_length", ">i4"), ("person", "S10"),
              ("size_length", ">i4"), ("size", ">i8"),
              ("mtime_length", ">i4"), ("mtime_ns", ">i8"),
              ("status_length", ">i4"), ("status", "S4"),
              ("vector_length", ">i4"), ("vector", "<f4", (DIMENSION,))]  # bytea: the numbers as stored
    rows = np.zeros(count, np.dtype(layout))
    numbers = np.arange(start, start + count)
    rows["fields"] = 7
    rows["origin_length"], rows["origin"] = len(texts["origin"]), texts["origin"]
    rows["key_length"], rows["key"] = 22, [f"p{n % 1000:07d}/{n:09d}.jpg".encode() for n in numbers]
    rows["person_length"], rows["person"] = 10, [f"person{n % 1000:04d}".encode() for n in numbers]
    rows["size_length"], rows["size"] = 8, 30_000 + numbers
    rows["mtime_length"], rows["mtime_ns"] = 8, 1_700_000_000_000_000_000 + numbers
    rows["status_length"], rows["status"] = 4, texts["status"]
    rows["vector_length"], rows["vector"] = 4 * DIMENSION, vectors
    return rows.tobytes()


def fill(url: str, count: int, folder: Path) -> Gallery:
    """A gallery of `count` vectors in the database (bulk COPY, as a restore would) and the same as an Gallery."""
    import psycopg
    reset(url)
    dataset = folder / "dataset"
    PostgresStore(url).open_writer(dataset, MODELS, DIMENSION).finish()  # the tables and the model record
    origin = f"{socket.gethostname()}:{dataset.resolve()}"
    vectors = unit_vectors(count, seed=count)
    with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
        with connection.cursor().copy("COPY facerec_images (origin, key, person, size, mtime_ns, status, vector) "
                                      "FROM STDIN (FORMAT binary)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for start in range(0, count, BATCH):
                copy.write(binary_rows(origin, start, vectors[start:start + BATCH]))
            copy.write(b"\xff\xff")
        connection.execute("ANALYZE facerec_images")
    names = [f"person{n % 1000:04d}" for n in range(count)]
    paths = [f"p{n % 1000:07d}/{n:09d}.jpg" for n in range(count)]
    files = {path: {"size": 30_000 + n, "mtime_ns": 1_700_000_000_000_000_000 + n, "status": "used"}
             for n, path in enumerate(paths)}
    return Gallery(vectors, names, paths, "sface", MODELS, files)


def best_time(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_load(url: str, sizes: list[int], repeat: int) -> list[str]:
    lines = ["| vectors | PostgreSQL load() s | pickle load_store() s | PostgreSQL / pickle |", "|---:|---:|---:|---:|"]
    for count in sizes:
        with tempfile.TemporaryDirectory() as folder:
            expected = fill(url, count, Path(folder))
            pickle_path = Path(folder) / "embeddings.pickle"
            save_store(expected, pickle_path)
            store = PostgresStore(url)
            database, loaded = best_time(store.load, repeat)
            assert np.array_equal(loaded.vectors, expected.vectors) and loaded.names == expected.names
            del loaded
            pickled, _ = best_time(lambda: load_store(pickle_path), repeat)
            store.close()
        lines.append(f"| {count:,} | {database:.2f} | {pickled:.2f} | {database / pickled:.1f} |")
        print(lines[-1], flush=True)
    return lines


def writer_process(url: str, dataset: str, count: int) -> None:
    """--writer: record `count` images of `dataset`, one transaction each; print the images per second."""
    vectors = unit_vectors(count, seed=len(dataset))
    writer = PostgresStore(url).open_writer(Path(dataset), MODELS, DIMENSION)
    start = time.perf_counter()
    for index in range(count):
        writer.record(f"person{index % 50}/{index}.jpg", {"size": index, "mtime_ns": index}, "used",
                      f"person{index % 50}", vectors[index])
    print(count / (time.perf_counter() - start), flush=True)


def bench_writers(url: str, count: int) -> list[str]:
    reset(url)
    lines = ["| writers at once | images recorded per second, each | all together |", "|---:|---:|---:|"]
    for writers in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            processes = [subprocess.Popen([sys.executable, __file__, "--url", url, "--writer", f"{folder}/d{n}",
                                           str(count)], stdout=subprocess.PIPE, text=True) for n in range(writers)]
            rates = [float(process.communicate()[0]) for process in processes]
        lines.append(f"| {writers} | {' and '.join(f'{rate:.0f}' for rate in rates)} | {sum(rates):.0f} |")
        print(lines[-1], flush=True)
    return lines


def bench_watch(url: str, size: int, repeat: int) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        fill(url, size, Path(folder))
        recogniser = PostgresStore(url)
        recogniser.load()
        arrived = threading.Event()
        seen: list[float] = []

        def on_change(gallery: Gallery) -> None:
            if gallery.names[-1].startswith("newcomer"):
                seen.append(time.perf_counter())
                arrived.set()

        watch = recogniser.watch(on_change, lambda message: print("watch:", message, file=sys.stderr))
        writer = PostgresStore(url).open_writer(Path(folder) / "elsewhere", MODELS, DIMENSION)
        delays = []
        for attempt in range(repeat):
            arrived.clear()
            writer.record(f"newcomer{attempt}/1.jpg", {"size": 1, "mtime_ns": attempt}, "used", f"newcomer{attempt}",
                          unit_vectors(1, seed=attempt)[0])
            committed = time.perf_counter()
            if not arrived.wait(60):
                raise SystemExit("error: the watcher was not told within 60 s")
            delays.append(seen[-1] - committed)
        watch.stop()
    line = (f"| {size:,} | {statistics.median(delays):.2f} | {min(delays):.2f} to {max(delays):.2f} |")
    print(line, flush=True)
    return ["| gallery vectors | enrolment to on_change, median s | range s |", "|---:|---:|---:|", line]


def extract_command(url: str, dataset: Path) -> list[str]:
    folder, embedder_file, _ = model_paths("sface")
    return [sys.executable, str(ROOT / "extract_embeddings.py"), "--dataset", str(dataset), "--embeddings", url,
            "--quiet", "--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)]


def bench_extract(url: str, copies: int) -> list[str]:
    lines = ["| extract_embeddings.py at once | photos each | photos per second, each | all together |",
             "|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as folder:
        datasets = [Path(folder) / f"machine{n}" for n in range(2)]
        photos = [make_noisy_dataset(dataset, copies) for dataset in datasets]
        for writers in (1, 2):
            reset(url)
            start = time.perf_counter()
            processes = [subprocess.Popen(extract_command(url, dataset), stdout=subprocess.DEVNULL)
                         for dataset in datasets[:writers]]
            ends: dict[int, float] = {}
            while len(ends) < writers:
                for number, process in enumerate(processes):
                    if number not in ends and process.poll() is not None:
                        if process.returncode:
                            raise SystemExit(f"error: extract_embeddings.py failed ({process.returncode})")
                        ends[number] = time.perf_counter()
                time.sleep(0.01)
            rates = [photos[n] / (ends[n] - start) for n in range(writers)]
            together = sum(photos[:writers]) / (max(ends.values()) - start)
            lines.append(f"| {writers} | {photos[0]} | {' and '.join(f'{rate:.1f}' for rate in rates)} "
                         f"| {together:.1f} |")
            print(lines[-1], flush=True)
        start = time.perf_counter()  # the cost of a run with nothing to embed: models loading, the listing
        subprocess.run(extract_command(url, datasets[0]), check=True, stdout=subprocess.DEVNULL)
        lines.append(f"\n(a run with nothing new to embed, models loading included: {time.perf_counter() - start:.1f} s)")
        print(lines[-1], flush=True)
    reset(url)
    return lines


def bench_recogniser(url: str, repeat: int) -> list[str]:
    """Enrolments and deletions as a running recognize_video.py sees them (the clip's frames through a FIFO)."""
    from benchmark import SHARED
    from fifo_camera import PacedCamera, names, y4m_frames

    folder_of_models, embedder_file, _ = model_paths("sface")
    lin_photo = SHARED / "faces/probe/lin-manuel-miranda.png"
    lin_frames = range(120, 200)  # Lin-Manuel Miranda on stage: named in each of these frames once enrolled
    reset(url)
    delays: dict[str, list[float]] = {"enrolment": [], "deletion": []}
    with tempfile.TemporaryDirectory() as folder:
        hall = Path(folder) / "hall"
        hall.mkdir()
        for person in sorted((SHARED / "faces/known").iterdir()):
            if person.is_dir():
                (hall / person.name).symlink_to(person)
        subprocess.run(extract_command(url, hall), check=True, stdout=subprocess.DEVNULL)
        fifo = Path(folder) / "camera.y4m"
        command = [sys.executable, str(ROOT / "recognize_video.py"), "--embeddings", url, "--source", str(fifo),
                   "--no-display", "--json", "--confidence", "0.8", "--every", "1", "--model", "sface",
                   "--detector", str(folder_of_models), "--embedding-model", str(embedder_file)]
        camera = PacedCamera(fifo, command, y4m_frames(SHARED / "video/short_hamilton_clip.mp4", lin_frames))
        try:
            camera.wait_for(lambda: len(camera.records) >= 10, "the first frames")
            for attempt in range(repeat):
                for what, named in (("enrolment", True), ("deletion", False)):
                    if named:
                        (hall / "lin").mkdir()
                        (hall / "lin" / "lin.png").symlink_to(lin_photo)
                    else:
                        shutil.rmtree(hall / "lin")
                    run = subprocess.Popen(extract_command(url, hall), stdout=subprocess.PIPE, text=True)
                    written = next(time.perf_counter() for line in run.stdout if line.startswith("wrote "))
                    run.communicate()
                    since = len(camera.records)
                    camera.wait_for(lambda: any(("lin" in names(record)) == named for record in camera.records[since:]),
                                    what)
                    first = next(number for number in range(since, len(camera.records))
                                 if ("lin" in names(camera.records[number])) == named)
                    delays[what].append(camera.arrivals[first] - written)
        finally:
            camera.stop()
    lines = ["| change | to the first frame that shows it, median s | range s |", "|---|---:|---:|"]
    for what, seconds in delays.items():
        lines.append(f"| {what} | {statistics.median(seconds):.2f} | {min(seconds):.2f} to {max(seconds):.2f} |")
        print(lines[-1], flush=True)
    reset(url)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="an empty PostgreSQL database this may fill")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=2000, help="images each writer records")
    parser.add_argument("--watch-sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--repeat-watch", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10, help="noisy copies of each known photo per machine")
    parser.add_argument("--stages", nargs="+", default=["load", "writers", "watch", "extract", "recogniser"],
                        choices=["load", "writers", "watch", "extract", "recogniser"])
    parser.add_argument("--writer", nargs=2, metavar=("DATASET", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer_process(args.url, args.writer[0], int(args.writer[1]))
        return 0
    tables = []
    if "load" in args.stages:
        tables.append(bench_load(args.url, args.sizes, args.repeat))
    if "writers" in args.stages:
        tables.append(bench_writers(args.url, args.images))
    if "watch" in args.stages:
        watch_lines = []
        for size in args.watch_sizes:
            watch_lines += bench_watch(args.url, size, args.repeat_watch)[0 if not watch_lines else 2:]
        tables.append(watch_lines)
    if "extract" in args.stages:
        tables.append(bench_extract(args.url, args.copies))
    if "recogniser" in args.stages:
        tables.append(bench_recogniser(args.url, args.repeat_watch))
    reset(args.url)
    print()
    for table in tables:
        print("\n".join(table), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
