"""Command-line pieces shared by the scripts: argument types, model options and model loading."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

from .catalogue import DEFAULT_PROFILE, PROFILES, Profile
from .detection import MIN_CONFIDENCE, Detector, load_detector
from .embedding import Embedder, load_embedder
from .matching import MAX_DISTANCE
from .modelfiles import model_path, network_files


def bounded_number(kind: Callable[[str], float], low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True, why: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` within [low, high] (low excluded if not low_inclusive).

    NaN and infinities are always refused (NaN passes every comparison). `why`, if
    given, is added to the out-of-range message in brackets.
    """

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        if too_low or (high is not None and value > high):
            bracket = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be in {bracket}{'-inf' if low is None else f'{low:g}'}, "
                f"{'inf' if high is None else f'{high:g}'}]" + (f" ({why})" if why else "")
            )
        return value

    return parse


probability = bounded_number(float, 0.0, 1.0)
positive_int = bounded_number(int, 0, None, low_inclusive=False)
non_negative_float = bounded_number(float, 0.0)
# A detector's confidence: below MIN_CONFIDENCE the detectors box hundreds of non-faces a frame.
confidence = bounded_number(float, MIN_CONFIDENCE, 1.0,
                            why="below it the detectors find hundreds of non-faces: README, \"Model profiles\"")
# An L2 distance between unit vectors: never more than MAX_DISTANCE.
distance_threshold = bounded_number(float, 0.0, MAX_DISTANCE, why="unit vectors are never more than 2 apart")


def parser_for(description: str, example: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose --help ends with an example command."""
    return argparse.ArgumentParser(
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --detector and --confidence: what every script needs to find faces."""
    parser.add_argument("--model", choices=sorted(PROFILES), default=DEFAULT_PROFILE,
                        help=f"model profile (default: {DEFAULT_PROFILE}): "
                             + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    parser.add_argument("--detector", type=Path, default=None, metavar="DIR",
                        help="folder holding the face detector's files (default: models/, "
                             "where missing files are downloaded)")
    parser.add_argument("--confidence", type=confidence, default=None,
                        help=f"minimum detection confidence, {MIN_CONFIDENCE:g} to 1 (lower finds hundreds of "
                             "non-faces; default: the profile's: "
                             + ", ".join(f"{p.confidence} for {p.name}" for p in PROFILES.values()) + ")")


def add_embedder_arguments(parser: argparse.ArgumentParser) -> None:
    """--embedding-model: the network that turns a face into a vector."""
    parser.add_argument("--embedding-model", type=Path, default=None, metavar="PATH",
                        help="the embedder's model file (default: models/" + PROFILES[DEFAULT_PROFILE].embedder.files[0].filename
                             + " for the default profile, downloaded if missing)")


def profile_from_args(args: argparse.Namespace) -> Profile:
    return PROFILES[args.model]


def detector_from_args(args: argparse.Namespace) -> Detector:
    """Find (or download), check and load the detector the arguments name."""
    profile = profile_from_args(args)
    network, paths = network_files(profile.detectors, args.detector)
    confidence = profile.confidence if args.confidence is None else args.confidence
    return load_detector(network, paths, confidence)


def embedder_from_args(args: argparse.Namespace) -> Embedder:
    """Find (or download), check and load the embedder the arguments name."""
    network = profile_from_args(args).embedder
    return load_embedder(network, model_path(network.files[0], args.embedding_model))
