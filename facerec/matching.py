"""Naming faces: compare query vectors with the stored gallery by L2 distance.

Four strategies share one interface (`Matcher.match`):
- `nearest`: the name of the closest stored vector (the classic rule);
- `centroid`: the closest person's mean vector (re-normalised);
- `vote`: the majority name among the k closest vectors under the threshold;
- `svm`: a support vector machine trained on the gallery's vectors when the
  matcher is built (never stored), its top name kept only when its
  probability is high enough and the face is near a photo of that person.

A face whose best distance is at or above the threshold is `UNKNOWN`.

Negative examples (faces the user said are not PERSON: "Not PERSON" on the live page, `unknowns.py not`)
apply one rule after every strategy alike (`Matcher.match`): a face the strategy names PERSON keeps that
name only if its distance to PERSON's nearest photo is smaller than its distance to PERSON's nearest
negative; otherwise it is `UNKNOWN` (with the strategy's distance and photo as evidence). A person without
negatives is named as before, at no cost. See docs/negatives.md.

Look-alikes (`margin`, the profile's default: 0.05 for sface, 0 for openface): a face the strategy names PERSON keeps
that name only if the nearest photo of anyone else is at least `margin` further than PERSON's nearest photo; else it
is `UNKNOWN` (with the strategy's distance and photo as evidence). Applied in `Matcher.match` after every strategy
and before the negatives' rule. Chosen with bench/openset.py on lfw-dev (docs/thresholds.md, "Strangers").
Every match also says which stored photo is its evidence (`Match.photo`):
the photo of the nearest vector, or for `centroid` the nearest photo of the
person whose distance is reported; Unknown faces get it too.
Distances for a whole batch of queries against the whole gallery come from
one matrix product; the few candidates near the minimum are then measured
again in float64 so reported distances and ties are exact.

From APPROXIMATE_FROM rows on, when FAISS is installed (`pip install
faiss-cpu`), the candidates come from an inverted-file index instead: each
query scans only the stored vectors of the cells closest to it. Its
candidates are measured again in float64 too, so distances stay exact, but
the nearest row can be missed (rarely: see docs/large-galleries.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .errors import FacerecError

# Unit vectors are never more than 2 apart (opposite points of the sphere): a larger threshold means nothing.
MAX_DISTANCE = 2.0

UNKNOWN = "Unknown"
DEFAULT_VOTE_K = 5
# svm: the smallest probability of its top name that may name a face; chosen in docs/thresholds.md, "Which matching strategy".
DEFAULT_MIN_PROBABILITY = 0.0
# svm: "rbf" or "linear". A linear SVM trains no faster on large galleries (docs/thresholds.md, "Which matching strategy").
SVM_KERNEL = "rbf"
# Look-alike margin: photos asked of the index at first when looking for the nearest photo of someone else.
_OTHER_PERSON_CANDIDATES = 8
# Squared-distance slack inside which float32 candidates are re-measured exactly.
_NEAR_TIE_SLACK = 1e-4
# Exact search computes at most this many float32 distances at once (64 MB): queries go in blocks.
_BLOCK_DISTANCES = 2**24

SEARCHES = ("auto", "exact", "approximate")
# "auto" searches approximately from this many rows on (if FAISS is installed): below it exact
# search takes under ~4 ms for a frame of 5 faces on 2 cores; measured in docs/large-galleries.md.
APPROXIMATE_FROM = 50_000
# The index: round(sqrt(N)) cells, trained on up to this many rows a cell; a query scans its closest cells.
_TRAINING_ROWS_PER_CELL = 64
_PROBED_CELLS = 48
# The index is asked for this many rows beyond k, so that float32 near-ties are settled in float64.
_EXTRA_CANDIDATES = 8


@dataclass(frozen=True)
class Match:
    """The name given to one face, its distance to the evidence (None: empty gallery),
    and the stored photo the evidence came from (None: empty gallery, or the gallery knows no paths)."""

    name: str
    distance: float | None
    photo: str | None = None


class VectorIndex:
    """A gallery's vectors as one float32 matrix, searchable by L2 distance, with one name per row and optionally the photo of each row.

    `search`: "exact", "approximate" (a FAISS index; FacerecError without FAISS) or
    "auto": approximate from APPROXIMATE_FROM rows on when FAISS is installed, else exact.
    The attribute `search` says which one the gallery uses.
    """

    def __init__(self, vectors: np.ndarray | Sequence[Sequence[float]], names: Sequence[str],
                 search: str = "auto", paths: Sequence[str] | None = None) -> None:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size == 0:
            matrix = matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0)
        if matrix.ndim != 2 or matrix.shape[0] != len(names):
            raise ValueError(f"gallery needs an (N, D) matrix and N names, got {matrix.shape} and {len(names)}")
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        if paths is not None and len(paths) != len(names):
            raise ValueError(f"gallery needs one path per name, got {len(paths)} paths and {len(names)} names")
        self.vectors = np.ascontiguousarray(matrix)
        self.names = list(names)
        # "" is what a file from the seed scripts records: no path
        self.paths: list[str | None] = [path or None for path in paths] if paths is not None else [None] * len(names)
        self._squared_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
        self._largest_squared_norm = float(self._squared_norms.max(initial=0.0))
        wanted = search == "approximate" or (search == "auto" and len(self) >= APPROXIMATE_FROM)
        faiss = _import_faiss(required=search == "approximate") if wanted else None
        self.search = "exact" if faiss is None else "approximate"
        self._index = _inverted_file_index(faiss, self.vectors) if faiss is not None and len(self) else None

    def __len__(self) -> int:
        return len(self.names)

    def nearest(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, distances), each (M, min(k, N)), the k closest rows of each query, closest first.

        Ties go to the row stored first. Distances are exact; with approximate
        search the rows are the closest the index found.
        """
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(k, len(self))
        indices = np.empty((len(queries), k), np.int64)
        distances = np.empty((len(queries), k), np.float64)
        if k == 0:
            return indices, distances
        candidates = self._approximate_candidates if self._index is not None else self._exact_candidates
        for row, (query, rows) in enumerate(zip(queries, candidates(queries, k))):
            exact = np.linalg.norm(self.vectors[rows].astype(np.float64) - query.astype(np.float64), axis=1)
            order = np.lexsort((rows, exact))[:k]
            indices[row] = rows[order]
            distances[row] = exact[order]
        return indices, distances

    def _exact_candidates(self, queries: np.ndarray, k: int) -> Iterator[np.ndarray]:
        """For each query, the rows within slack of its k-th smallest float32 distance: float32 error cannot pick wrong."""
        block = max(1, _BLOCK_DISTANCES // len(self))
        for start in range(0, len(queries), block):
            part = queries[start : start + block]
            squared = part @ self.vectors.T  # in place from here: one (block, N) array, plus the partition's
            squared *= -2.0
            squared += self._squared_norms
            query_norms = np.einsum("ij,ij->i", part, part)
            squared += query_norms[:, None]
            kth = np.partition(squared, k - 1, axis=1)[:, k - 1]
            # float32 error grows with the vectors' lengths; unit vectors get about 2 * slack
            slack = _NEAR_TIE_SLACK * (query_norms + self._largest_squared_norm)
            for row, limit, margin in zip(squared, kth, slack):
                yield np.flatnonzero(row <= limit + margin)

    def _approximate_candidates(self, queries: np.ndarray, k: int) -> Iterator[np.ndarray]:
        """For each query, the k + _EXTRA_CANDIDATES closest rows the index finds (exact search if it finds under k)."""
        assert self._index is not None  # chosen only when there is an index (see search)
        _, found = self._index.search(queries, min(len(self), k + _EXTRA_CANDIDATES))
        for query, rows in zip(queries, found):
            rows = rows[rows >= 0]
            yield rows if len(rows) >= k else next(self._exact_candidates(query[None], k))


def _import_faiss(required: bool):
    """The faiss module, or None when it is not installed (a FacerecError if `required`)."""
    try:
        import faiss
    except ImportError:
        if required:
            raise FacerecError("approximate search needs FAISS: pip install faiss-cpu") from None
        return None
    return faiss


def _inverted_file_index(faiss, vectors: np.ndarray):
    """A FAISS IVF-Flat index of `vectors`: k-means cells, each query scanning its _PROBED_CELLS closest."""
    cells = max(1, round(math.sqrt(len(vectors))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(vectors.shape[1]), vectors.shape[1], cells)
    index.cp.max_points_per_centroid = _TRAINING_ROWS_PER_CELL
    index.cp.min_points_per_centroid = 1  # small forced galleries: no warning about few training rows
    index.nprobe = min(_PROBED_CELLS, cells)
    index.train(vectors)
    index.add(vectors)
    return index


def person_centroids(vectors: np.ndarray, names: Sequence[str]) -> VectorIndex:
    """A gallery with one row per person: the mean of their unit vectors, scaled to unit length."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.size:
        lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(lengths == 0, 1.0, lengths)
    people = list(dict.fromkeys(names))
    if not people:
        return VectorIndex(np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32), [])
    person_index = {person: index for index, person in enumerate(people)}
    rows = np.array([person_index[name] for name in names])
    sums = np.zeros((len(people), vectors.shape[1]))
    np.add.at(sums, rows, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return VectorIndex(sums / np.where(norms == 0, 1.0, norms), people)


class Matcher(ABC):
    """Names query vectors against a gallery; `threshold` is the L2 distance where Unknown begins."""

    def __init__(self, index: VectorIndex, threshold: float) -> None:
        self.index = index
        self.photos = index  # one row per stored photo: where Match.photo comes from
        self.threshold = threshold
        self.margin = 0.0  # look-alikes (see the top of this module); make_matcher sets it
        self._rows_by_name: dict[str, np.ndarray] | None = None
        # person -> the faces that are not them, searched as photos are (exact, in blocks: a face named someone
        # with 500,000 negatives never makes a 500,000 x D array of its own)
        self.negatives: dict[str, VectorIndex] = {}

    def with_negatives(self, vectors: np.ndarray, names: Sequence[str]) -> Matcher:
        """Apply the negative examples' rule (see the top of this module) with these faces that are not
        `names[i]`; returns the matcher."""
        vectors = np.asarray(vectors, np.float32)
        rows: dict[str, list[int]] = {}
        for row, person in enumerate(names):
            rows.setdefault(person, []).append(row)
        self.negatives = {person: VectorIndex(vectors[taken], [person] * len(taken), search="exact")
                          for person, taken in rows.items()}
        return self

    def match(self, queries: np.ndarray) -> list[Match]:
        """One Match per row of `queries` (an (M, D) array); the negative examples' rule applied."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if len(self.index) == 0:
            return [Match(UNKNOWN, None) for _ in queries]
        matches = self._match(queries)
        if self.margin > 0:
            matches = [self._unless_look_alike(match, query) for match, query in zip(matches, queries)]
        if self.negatives:
            matches = [self._unless_negative(match, query) for match, query in zip(matches, queries)]
        return matches

    def _unless_negative(self, match: Match, query: np.ndarray) -> Match:
        """`match`, or Unknown when the face is at least as near one of the person's negatives as their nearest photo."""
        negatives = self.negatives.get(match.name)
        if negatives is None:
            return match
        photo = self.photos.vectors[self.nearest_photo_of(match.name, query)].astype(np.float64)
        to_photo = float(np.linalg.norm(photo - np.asarray(query, np.float64)))
        to_negative = float(negatives.nearest(query, 1)[1][0, 0])  # exact, as the photos' distances are
        return match if to_photo < to_negative else Match(UNKNOWN, match.distance, match.photo)

    def _unless_look_alike(self, match: Match, query: np.ndarray) -> Match:
        """`match`, or Unknown when someone else's nearest photo is less than `margin` further than the person's."""
        if match.name == UNKNOWN:
            return match
        query64 = np.asarray(query, np.float64)
        photo = self.photos.vectors[self.nearest_photo_of(match.name, query)].astype(np.float64)
        to_person = float(np.linalg.norm(photo - query64))
        return match if self.nearest_other(match.name, query) - to_person >= self.margin else \
            Match(UNKNOWN, match.distance, match.photo)

    def nearest_other(self, name: str, query: np.ndarray) -> float:
        """The distance from `query` to the nearest stored photo of anyone but `name` (inf: nobody else)."""
        rows = min(len(self.photos), _OTHER_PERSON_CANDIDATES)
        while True:
            indices, distances = self.photos.nearest(query[None], k=rows)
            others = [float(d) for i, d in zip(indices[0], distances[0]) if self.photos.names[i] != name]
            if others:
                return others[0]
            if rows == len(self.photos):
                return math.inf
            rows = min(len(self.photos), rows * 8)  # a person with many photos: look further

    @abstractmethod
    def _match(self, queries: np.ndarray) -> list[Match]: ...

    def _named(self, name: str, distance: float, photo_row: int) -> Match:
        return Match(name if distance < self.threshold else UNKNOWN, distance, self.photos.paths[photo_row])

    def nearest_photo_of(self, name: str, query: np.ndarray) -> int:
        """The row of `self.photos` closest to `query` among the rows of `name` (ties: the row stored first)."""
        if self._rows_by_name is None:
            names = np.array(self.photos.names, dtype=object)
            self._rows_by_name = {person: np.flatnonzero(names == person) for person in dict.fromkeys(self.photos.names)}
        rows = self._rows_by_name[name]
        distances = np.linalg.norm(self.photos.vectors[rows].astype(np.float64) - np.asarray(query, np.float64), axis=1)
        return int(rows[np.argmin(distances)])


class NearestMatcher(Matcher):
    """The name of the single closest stored vector."""

    def _match(self, queries: np.ndarray) -> list[Match]:
        indices, distances = self.index.nearest(queries, k=1)
        return [self._named(self.index.names[i], float(d), self._photo_row(i, query))
                for i, d, query in zip(indices[:, 0], distances[:, 0], queries)]

    def _photo_row(self, index: int, query: np.ndarray) -> int:
        """The stored photo behind gallery row `index`: the row itself."""
        return int(index)


class CentroidMatcher(NearestMatcher):
    """The closest person, each person represented by the normalised mean of their vectors."""

    def __init__(self, index: VectorIndex, threshold: float) -> None:
        super().__init__(index, threshold)
        self.index = person_centroids(index.vectors, index.names)

    def _photo_row(self, index: int, query: np.ndarray) -> int:
        """The stored photo behind a centroid: that person's photo nearest the query."""
        return self.nearest_photo_of(self.index.names[index], query)


class VoteMatcher(Matcher):
    """The majority name among the k closest vectors that are under the threshold.

    Equal votes go to the name with the closer vector; the distance reported is
    the winner's closest one. With no vector under the threshold: Unknown and
    the overall nearest distance.
    """

    def __init__(self, index: VectorIndex, threshold: float, k: int = DEFAULT_VOTE_K) -> None:
        super().__init__(index, threshold)
        self.k = k

    def _match(self, queries: np.ndarray) -> list[Match]:
        indices, distances = self.index.nearest(queries, k=self.k)
        matches = []
        for row_indices, row_distances in zip(indices, distances):
            voters = [(self.index.names[i], d, i) for i, d in zip(row_indices, row_distances) if d < self.threshold]
            if not voters:
                matches.append(self._named(UNKNOWN, float(row_distances[0]), row_indices[0]))
                continue
            votes = Counter(name for name, _, _ in voters)
            best: dict[str, tuple[float, int]] = {}
            for name, distance, row in voters:  # voters are closest first
                best.setdefault(name, (distance, row))
            winner = min(votes, key=lambda name: (-votes[name], best[name][0]))
            matches.append(self._named(winner, float(best[winner][0]), best[winner][1]))
        return matches


class SvmMatcher(Matcher):
    """A classifier over the gallery: label encoder, SVM, class probabilities (one temperature fitted on a held-out half).

    A face gets the SVM's top name only when that name's probability is at
    least `min_probability` and the face is closer than the threshold to a
    stored photo of that person (the distance and photo reported); otherwise
    Unknown. A plain classifier names everyone, strangers too: the distance
    check refuses them as the other strategies do.

    Calibration cannot split one sample, so a person with one photo is learnt
    from that vector entered twice: on LFW it made fewer errors than deciding
    one-photo people by distance (docs/thresholds.md, "Which matching strategy").
    Training takes a fraction of a second for 10^3 vectors, half a minute for 10^4 (docs/thresholds.md).
    A gallery of fewer than two people is refused.
    """

    trains = True

    def __init__(self, index: VectorIndex, threshold: float, min_probability: float = DEFAULT_MIN_PROBABILITY) -> None:
        super().__init__(index, threshold)
        if not 0.0 <= min_probability <= 1.0:
            raise ValueError(f"min_probability must be in [0, 1], got {min_probability}")
        self.min_probability = min_probability
        people = list(dict.fromkeys(index.names))
        if len(people) < 2:
            held = f"only {people[0]!r}" if people else "nobody"
            raise FacerecError(f"the svm strategy needs at least two people to tell apart, the gallery holds {held}: "
                               "enrol more people, or use --match nearest")
        self._encoder, self._classifier = self._train()

    def _train(self):
        """Label encoder and probabilistic SVM fitted on the gallery (one-photo people's vector twice)."""
        try:
            from sklearn.preprocessing import LabelEncoder

            from .classifier import ProbabilisticSvm
        except ImportError:
            raise FacerecError("the svm strategy needs scikit-learn: pip install -r requirements.txt") from None
        encoder = LabelEncoder().fit(self.index.names)
        labels = encoder.transform(self.index.names)
        counts = np.bincount(labels)
        rows = np.concatenate([np.arange(len(labels)), np.flatnonzero(counts[labels] == 1)])
        return encoder, ProbabilisticSvm(self.index.vectors[rows], labels[rows], SVM_KERNEL)

    def _match(self, queries: np.ndarray) -> list[Match]:
        probabilities = self._classifier.probabilities(queries)
        matches = []
        for query, row in zip(queries, probabilities):
            best = int(np.argmax(row))
            person = str(self._encoder.classes_[best])
            photo = self.nearest_photo_of(person, query)
            distance = float(np.linalg.norm(self.photos.vectors[photo].astype(np.float64) - query.astype(np.float64)))
            matches.append(self._named(person if row[best] >= self.min_probability else UNKNOWN, distance, photo))
        return matches


MATCHERS: dict[str, type[Matcher]] = {
    "nearest": NearestMatcher,
    "centroid": CentroidMatcher,
    "vote": VoteMatcher,
    "svm": SvmMatcher,
}


def needs_training(strategy: str) -> bool:
    """Whether the strategy fits a model to the gallery (evaluate it by k-fold, not leave-one-out)."""
    return getattr(MATCHERS[strategy], "trains", False)


def make_matcher(strategy: str, vectors: np.ndarray, names: Sequence[str], threshold: float,
                 paths: Sequence[str] | None = None, min_probability: float | None = None,
                 negatives: tuple[np.ndarray, Sequence[str]] | None = None, margin: float = 0.0) -> Matcher:
    """Build the matcher called `strategy` (a key of MATCHERS) over the stored vectors (and the photo of each).

    `min_probability` is for `svm` (None: its default); the other strategies ignore it. `negatives`:
    (vectors, names) of faces that are not names[i] (Matcher.with_negatives). `margin`: the look-alikes' rule
    (see the top of this module; 0: off).
    """
    if not 0.0 <= margin <= MAX_DISTANCE:
        raise ValueError(f"margin must be in [0, {MAX_DISTANCE:g}], got {margin}")
    index = VectorIndex(vectors, names, paths=paths)
    if strategy == "svm" and min_probability is not None:
        matcher: Matcher = SvmMatcher(index, threshold, min_probability)
    else:
        matcher = MATCHERS[strategy](index, threshold)
    matcher.margin = margin
    if negatives is not None and len(negatives[1]):
        matcher.with_negatives(*negatives)
    return matcher
