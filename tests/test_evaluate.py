"""evaluate.py and facerec.evaluation: exact figures on a hand-made set, the LFW figures, the plots."""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from conftest import run_script, shared_path
from facerec.errors import FacerecError
from facerec.evaluation import (PairDistances, best_accuracy_threshold, leave_one_out, load_labelled_vectors,
                                pair_distances, rates_at, threshold_for_far)
from facerec.stores import Gallery, save_store

# Hand-made set: unit vectors on a circle, at these angles (degrees). Two vectors
# `a` degrees apart are 2*sin(a/2) apart: 10 -> 0.1743, 14 -> 0.2437, 16 -> 0.2783,
# 22 -> 0.3816, 24 -> 0.4158, 30 -> 0.5176, 34.9 -> 0.6, 38 -> 0.6511, 52 -> 0.8767,
# 62 -> 1.0301. No angle is within 1 degree of the threshold 0.6 (34.9 degrees).
CIRCLE = [("ann", 0), ("ann", 14), ("ann", 30), ("bob", 350), ("bob", 298), ("dan", 52), ("cat", 120)]
# Same-person pairs (4): ann 14, 16, 30 degrees; bob 52.
# Different-person pairs (17), sorted: 10 (ann0-bob350), 22 (ann30-dan), 24 (ann14-bob350), 38, 40, 52 (ann0-dan),
# 62, 62, 68, 76, 90, 92, 106, 114, 120, 130, 178.
SAME_DEGREES = [14, 16, 30, 52]
DIFFERENT_DEGREES = [10, 22, 24, 38, 40, 52, 62, 62, 68, 76, 90, 92, 106, 114, 120, 130, 178]


def chord(degrees: float) -> float:
    return 2 * math.sin(math.radians(degrees) / 2)


def circle_vectors() -> tuple[np.ndarray, list[str]]:
    vectors = np.array([[math.cos(math.radians(a)), math.sin(math.radians(a))] for _, a in CIRCLE], np.float32)
    return vectors, [name for name, _ in CIRCLE]


def write_csvs(directory, vectors, names) -> tuple[str, str]:
    reps, labels = directory / "reps.csv", directory / "labels.csv"
    reps.write_text("".join(",".join(f"{x:.9f}" for x in row) + "\n" for row in vectors))
    labels.write_text("".join(f"{i + 1},data/{name}/{name}_{i:04d}.png\n" for i, name in enumerate(names)))
    return str(reps), str(labels)


def table_rows(output: str, header_start: str) -> list[list[str]]:
    """The rows of the table whose header line starts with `header_start`, split into cells."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


# --- the functions, on the hand-made set ----------------------------------------------------------

def test_pair_distances_are_the_chords():
    pairs = pair_distances(*circle_vectors())
    assert pairs.same == pytest.approx([chord(a) for a in SAME_DEGREES], abs=1e-6)
    assert pairs.different == pytest.approx([chord(a) for a in DIFFERENT_DEGREES], abs=1e-6)


def test_rates_count_distances_strictly_below():
    pairs = pair_distances(*circle_vectors())
    rates = rates_at(pairs, 0.6)
    assert (rates.true_matches, rates.same_pairs, rates.false_matches, rates.different_pairs) == (3, 4, 3, 17)
    assert rates.true_match_rate == 0.75 and rates.false_match_rate == 3 / 17
    assert rates.balanced_accuracy == pytest.approx((0.75 + 14 / 17) / 2)
    exact = PairDistances(np.array([0.25, 0.5]), np.array([0.5, 0.75]))
    at_half = rates_at(exact, 0.5)  # a distance equal to the threshold is not a match
    assert (at_half.true_matches, at_half.false_matches) == (1, 0)


def test_threshold_for_far_is_the_largest_grid_point_allowed():
    pairs = pair_distances(*circle_vectors())
    # 17 different pairs: 0.1% allows none (threshold at the smallest, 10 degrees),
    # 10% allows floor(1.7) = 1 (threshold at the second, 22 degrees), rounded down to 4 decimals.
    assert threshold_for_far(pairs, 0.001) == 0.1743
    assert threshold_for_far(pairs, 0.1) == 0.3816
    assert rates_at(pairs, 0.3816).false_matches == 1
    exact = PairDistances(np.array([0.1, 0.2]), np.array([0.4, 0.6, 0.7, 0.8]))
    assert threshold_for_far(exact, 0.0) == 0.4  # strict: 0.4 itself is not a false match
    assert threshold_for_far(exact, 0.25) == 0.6
    assert threshold_for_far(exact, 0.5) == 0.7
    with pytest.raises(ValueError):
        threshold_for_far(exact, 1.0)


def test_best_accuracy_threshold_is_the_middle_of_the_best_run():
    pairs = pair_distances(*circle_vectors())
    # 17 * true matches - 4 * false matches is largest (68 - 24 = 44) for t in (52, 62] degrees,
    # = (0.87674, 1.03008]: grid points 0.8768 .. 1.0300, middle (8768 + 10300) // 2 = 9534.
    assert best_accuracy_threshold(pairs) == 0.9534
    exact = PairDistances(np.array([0.2, 0.4]), np.array([0.6, 0.8]))
    assert best_accuracy_threshold(exact) == 0.5  # run 0.4001 .. 0.6000


@pytest.mark.parametrize("strategy, expected", [
    # (queries, right, wrong, rejected, singletons, false accepts) at 0.6 (34.9 degrees).
    # nearest: ann0 -> bob350 (10) wrong; ann14 -> ann0 right; ann30 -> ann14 right; bob350 -> ann0 wrong;
    #          bob298 -> bob350 (52) rejected; dan -> ann30 (22) false accept; cat (68 away) rejected.
    ("nearest", (5, 2, 2, 1, 2, 1)),
    # centroid: ann0 -> ann (22, mean of 14 and 30) right; ann14 -> ann (1) right; ann30 -> dan (22) before ann (23)
    #           wrong; bob350 -> ann (24.7) wrong; bob298 rejected; dan -> ann (37.3) rejected; cat rejected.
    ("centroid", (5, 2, 2, 1, 2, 0)),
    # vote: ann0 sees bob350 (10), ann14, ann30 under the threshold: ann wins 2 to 1, right; otherwise as nearest.
    ("vote", (5, 3, 1, 1, 2, 1)),
])
def test_leave_one_out_counts(strategy, expected):
    vectors, names = circle_vectors()
    result = leave_one_out(vectors, names, strategy, 0.6)
    counts = (result.queries, result.right, result.wrong, result.rejected, result.singletons, result.false_accepts)
    assert counts == expected


# --- the script, on the hand-made set -------------------------------------------------------------

def test_every_printed_figure_is_exact(tmp_path):
    reps, labels = write_csvs(tmp_path, *circle_vectors())
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels, "--threshold", "0.6",
                        "--target-far", "0.2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("7 vectors of 4 people, 2 dimensions: "
                                             "4 same-person pairs, 17 different-person pairs")
    assert table_rows(result.stdout, "threshold") == [
        ["0.6000", "--threshold", "3 (75.0%)", "3 (17.65%)", "78.7%"],
        ["0.6511", "false-match rate <= 20%", "3 (75.0%)", "3 (17.65%)", "78.7%"],  # 3 of 17 allowed: 38 degrees
        ["0.9534", "best balanced accuracy", "4 (100.0%)", "6 (35.29%)", "82.4%"],
    ]
    assert table_rows(result.stdout, "strategy") == [
        ["nearest", "0.6000", "5", "2 (40.0%)", "2 (40.0%)", "1 (20.0%)", "2", "1 (50.0%)", "3 (42.9%)"],
        ["centroid", "0.6000", "5", "2 (40.0%)", "2 (40.0%)", "1 (20.0%)", "2", "0 (0.0%)", "4 (57.1%)"],
        ["vote", "0.6000", "5", "3 (60.0%)", "1 (20.0%)", "1 (20.0%)", "2", "1 (50.0%)", "4 (57.1%)"],
    ]


def test_embeddings_file_and_one_strategy(tmp_path):
    vectors, names = circle_vectors()
    store = Gallery(vectors, names, [f"dataset/{n}/{i}.jpg" for i, n in enumerate(names)])
    save_store(store, tmp_path / "embeddings.pickle")
    result = run_script("evaluate.py", "--embeddings", str(tmp_path / "embeddings.pickle"), "--threshold", "0.6",
                        "--match", "vote", "--target-far", "0.2")
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout, "threshold")[1][:2] == ["0.6511", "false-match rate <= 20%"]
    assert table_rows(result.stdout, "strategy") == [
        ["vote", "0.6000", "5", "3 (60.0%)", "1 (20.0%)", "1 (20.0%)", "2", "1 (50.0%)", "4 (57.1%)"]]


def test_plots_are_pngs_made_without_a_display(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    reps, labels = write_csvs(tmp_path, *circle_vectors())
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels, "--match", "nearest",
                        "--plots", str(tmp_path / "plots"), "--plot-prefix", "circle-")
    assert result.returncode == 0, result.stderr
    for name in ("circle-distances.png", "circle-roc.png"):
        path = tmp_path / "plots" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = cv2.imread(str(path))
        assert image is not None
        height, width = image.shape[:2]
        assert 300 <= width <= 4000 and 300 <= height <= 4000
        assert image.std() > 10  # not a blank canvas
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name.endswith(".tmp")]


# --- bad input ------------------------------------------------------------------------------------

def bad_input_cases(tmp_path):
    vectors, names = circle_vectors()
    reps, labels = write_csvs(tmp_path, vectors, names)
    (tmp_path / "text.csv").write_text("0.1,0.2\n0.3,zero\n")
    (tmp_path / "ragged.csv").write_text("0.1,0.2\n0.3\n")
    (tmp_path / "one_rep.csv").write_text("0.6,0.8\n")
    (tmp_path / "one_label.csv").write_text("1,data/ann/a.png\n")
    (tmp_path / "no_folder.csv").write_text("".join(f"{i},x{i}.png\n" for i in range(len(names))))
    (tmp_path / "fields.csv").write_text("".join(f"{i},a,data/{n}/x.png\n" for i, n in enumerate(names)))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "garbage.pickle").write_bytes(b"not a pickle")
    t = str(tmp_path)
    return [
        (["--vectors", f"{t}/missing.csv", "--labels", labels], "does not exist"),
        (["--vectors", reps, "--labels", f"{t}/missing.csv"], "does not exist"),
        (["--vectors", f"{t}/text.csv", "--labels", labels], "line 2: not a row of numbers"),
        (["--vectors", f"{t}/ragged.csv", "--labels", labels], "line 2: a row of length 1"),
        (["--vectors", reps, "--labels", f"{t}/one_label.csv"], "has 7 vectors but"),
        (["--vectors", f"{t}/one_rep.csv", "--labels", f"{t}/one_label.csv"], "at least two people"),
        (["--vectors", reps, "--labels", f"{t}/no_folder.csv"], "has no folder"),
        (["--vectors", reps, "--labels", f"{t}/fields.csv"], "expected 'index,path'"),
        (["--vectors", f"{t}/empty.csv", "--labels", labels], "is empty"),
        (["--embeddings", f"{t}/garbage.pickle"], "garbage.pickle"),
        (["--vectors", reps, "--labels", labels, "--match", "nearest", "--plots", f"{reps}/plots"],
         "cannot write the plots"),
    ]


def test_bad_input_is_a_clear_message_and_exit_2(tmp_path):
    for arguments, message in bad_input_cases(tmp_path):
        result = run_script("evaluate.py", *arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert message in result.stderr, (arguments, result.stderr)
        assert "Traceback" not in result.stderr


def test_loader_rejects_everyone_seen_once_and_bad_arguments(tmp_path):
    reps, labels = write_csvs(tmp_path, np.eye(3, dtype=np.float32), ["ann", "bob", "cat"])
    assert load_labelled_vectors(reps, labels)[1] == ["ann", "bob", "cat"]
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels)
    assert result.returncode == 2 and "two or more" in result.stderr
    for arguments in (["--vectors", reps], ["--vectors", reps, "--labels", labels, "--target-far", "1"],
                      ["--embeddings", reps, "--labels", labels], []):
        result = run_script("evaluate.py", *arguments)
        assert result.returncode == 2 and "Traceback" not in result.stderr, arguments
    with pytest.raises(FacerecError, match="does not exist"):
        load_labelled_vectors(tmp_path / "nope.csv", labels)


def test_vectors_not_of_unit_length_are_evaluated_with_a_warning(tmp_path):
    vectors, names = circle_vectors()
    reps, labels = write_csvs(tmp_path, vectors * 2, names)
    result = run_script("evaluate.py", "--vectors", reps, "--labels", labels, "--threshold", "1.2", "--match", "nearest")
    assert result.returncode == 0 and "warning: vector lengths range from 2 to 2" in result.stderr
    assert table_rows(result.stdout, "threshold")[0][:4] == ["1.2000", "--threshold", "3 (75.0%)", "3 (17.65%)"]


def test_help_has_an_example():
    result = run_script("evaluate.py", "--help")
    assert result.returncode == 0 and "example:" in result.stdout and "--target-far" in result.stdout


# --- the LFW figures of issue 7 -------------------------------------------------------------------

LFW_REPS, LFW_LABELS = "embeddings/lfw_openface_reps.csv", "embeddings/lfw_openface_labels.csv"


@pytest.fixture(scope="module")
def lfw_counted():
    """The LFW set counted without facerec.evaluation: numpy reads the CSVs, scipy's pdist gives every pair's
    distance, and a function counts (same, different) pairs strictly below t and leave-one-out answers by the
    nearest other vector."""
    vectors = np.loadtxt(shared_path(LFW_REPS), delimiter=",").astype(np.float32)  # stored as the pipeline does
    people = [line.split(",", 1)[1].strip().split("/")[-2]
              for line in shared_path(LFW_LABELS).read_text().splitlines() if line.strip()]
    codes = np.unique(people, return_inverse=True)[1]
    distances = pdist(vectors.astype(np.float64))
    same = pdist(codes[:, None].astype(np.float64)) == 0

    def pairs_below(threshold: float) -> tuple[int, int]:
        return int((distances[same] < threshold).sum()), int((distances[~same] < threshold).sum())

    everyone = squareform(distances)
    np.fill_diagonal(everyone, np.inf)
    nearest, nearest_distance = everyone.argmin(axis=1), everyone.min(axis=1)
    known = np.bincount(codes)[codes] > 1

    def leave_one_out_counts(threshold: float) -> tuple[int, ...]:
        named = nearest_distance < threshold
        right = known & named & (codes[nearest] == codes)
        return (int(known.sum()), int(right.sum()), int((known & named).sum() - right.sum()),
                int((known & ~named).sum()), int((~known).sum()), int((~known & named).sum()))

    return (len(vectors), len(set(people)), vectors.shape[1], int(same.sum()), int((~same).sum()),
            np.sort(distances[~same]), pairs_below, leave_one_out_counts)


def count(cell: str) -> int:
    """1,922 of a cell "1,922 (26.6%)"."""
    return int(cell.split()[0].replace(",", ""))


def test_lfw_figures(lfw_counted):
    vectors, people, dimensions, same, different, sorted_different, pairs_below, leave_one_out_counts = lfw_counted
    assert (vectors, people, dimensions, same, different) == (1000, 410, 128, 7234, 492266)
    result = run_script("evaluate.py", "--vectors", str(shared_path(LFW_REPS)), "--labels", str(shared_path(LFW_LABELS)),
                        "--threshold", "0.55", "0.8", "1.0", "--match", "nearest")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("1,000 vectors of 410 people, 128 dimensions: "
                                             "7,234 same-person pairs, 492,266 different-person pairs")
    pair_rows = table_rows(result.stdout, "threshold")
    assert [row[:4] for row in pair_rows[:3]] == [
        ["0.5500", "--threshold", "1,922 (26.6%)", "50 (0.01%)"],
        ["0.8000", "--threshold", "5,166 (71.4%)", "4,036 (0.82%)"],
        ["1.0000", "--threshold", "6,653 (92.0%)", "31,764 (6.45%)"],
    ]
    # 0.1% of 492,266 pairs allows 492 false matches: the 493rd smallest different-person distance, on the grid
    assert pair_rows[3][1:4] == ["false-match rate <= 0.1%", "3,344 (46.2%)", "492 (0.10%)"]
    assert float(pair_rows[3][0]) == math.floor(sorted_different[492] * 10_000) / 10_000
    for row in pair_rows:  # every printed row, the best balanced accuracy's too, counted independently
        assert (count(row[2]), count(row[3])) == pairs_below(float(row[0])), row
    identification = table_rows(result.stdout, "strategy")
    assert identification[0] == ["nearest", "0.5500", "717", "383 (53.4%)", "19 (2.6%)", "315 (43.9%)",
                                 "283", "13 (4.6%)", "653 (65.3%)"]
    for row in identification:
        assert tuple(count(cell) for cell in row[2:8]) == leave_one_out_counts(float(row[1])), row
        assert count(row[8]) == count(row[3]) + count(row[6]) - count(row[7])


def test_lfw_functions_agree(lfw_counted):
    _, _, _, same, different, _, pairs_below, leave_one_out_counts = lfw_counted
    vectors, names = load_labelled_vectors(shared_path(LFW_REPS), shared_path(LFW_LABELS))
    pairs = pair_distances(vectors, names)
    assert (len(pairs.same), len(pairs.different)) == (same, different) == (7234, 492266)
    figures = {t: (r.true_matches, r.false_matches) for t in (0.55, 0.8, 1.0) for r in [rates_at(pairs, t)]}
    assert figures == {t: pairs_below(t) for t in figures} == {0.55: (1922, 50), 0.8: (5166, 4036),
                                                               1.0: (6653, 31764)}
    result = leave_one_out(vectors, names, "nearest", 0.55)
    assert (result.queries, result.right, result.wrong, result.rejected, result.singletons,
            result.false_accepts) == leave_one_out_counts(0.55) == (717, 383, 19, 315, 283, 13)
