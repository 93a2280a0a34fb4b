"""Command-line pieces shared by the scripts: argument types, model options and model loading."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .catalogue import DEFAULT_PROFILE, PROFILES, Profile
from .detection import Detector, load_detector
from .embedding import Embedder, load_embedder
from .errors import FacerecError
from .modelfiles import model_path, network_files
from .store import EmbeddingStore


def bounded_number(kind: Callable[[str], float], low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a number of `kind` within [low, high] (low excluded if not low_inclusive)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        if too_low or (high is not None and value > high):
            bracket = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be in {bracket}{low if low is not None else '-inf'}, "
                f"{high if high is not None else 'inf'}]"
            )
        return value

    return parse


probability = bounded_number(float, 0.0, 1.0)
positive_int = bounded_number(int, 0, None, low_inclusive=False)
non_negative_float = bounded_number(float, 0.0)


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
    parser.add_argument("--confidence", type=probability, default=None,
                        help="minimum detection confidence, 0 to 1 (default: the profile's: "
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


def check_store_fits(store: EmbeddingStore, path: Path, profile: Profile, embedder: Embedder) -> None:
    """Raise FacerecError unless the store at `path` was made by `profile` with vectors as long as the embedder's."""
    if store.profile != profile.name:
        raise FacerecError(f"{path} was made with the {store.profile!r} profile: "
                           f"recognise with --model {store.profile}, or re-run extract_embeddings.py --model {profile.name}")
    if len(store) and store.vectors.shape[1] != embedder.dimension:
        raise FacerecError(f"{path} holds {store.vectors.shape[1]}-d vectors but the embedder makes "
                           f"{embedder.dimension}-d ones: re-run extract_embeddings.py")
