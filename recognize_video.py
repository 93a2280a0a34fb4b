#!/usr/bin/env python3
"""Recognise the faces of a webcam, video file or stream against the stored embeddings."""

from __future__ import annotations

import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_threshold_argument, detector_from_args,
                         embedder_from_args, parser_for, probability, profile_from_args, threshold_from_args)
from facerec.display import Window
from facerec.errors import FacerecError, main_guard
from facerec.matching import DEFAULT_MIN_PROBABILITY, MATCHERS, make_matcher
from facerec.recognition import Recogniser, run_recognition
from facerec.store import load_store
from facerec.video import VideoOutput, open_source


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python recognize_video.py --source 0   # webcam 0; q or ESC quits\n"
                                 "  python recognize_video.py --source clip.mp4 --no-display --json --output annotated.mp4")
    parser.add_argument("--embeddings", type=Path, default=Path("output/embeddings.pickle"),
                        help="embeddings file from extract_embeddings.py (default: output/embeddings.pickle)")
    parser.add_argument("--source", default="0", help="webcam index, video file or stream URL (default: 0)")
    parser.add_argument("--match", choices=sorted(MATCHERS), default="nearest",
                        help="nearest stored vector (default), nearest person centroid, a vote of the 5 nearest, "
                             "or an SVM trained on the gallery at start")
    parser.add_argument("--min-probability", type=probability, default=DEFAULT_MIN_PROBABILITY, metavar="P",
                        help="--match svm: smallest probability of the SVM's top name that names a face, 0 to 1 "
                             f"(default: {DEFAULT_MIN_PROBABILITY})")
    parser.add_argument("--output", type=Path, default=None, help="also write the annotated video to this file (.mp4 or .avi)")
    parser.add_argument("--no-display", action="store_true", help="run without a window")
    parser.add_argument("--json", action="store_true", help="print one JSON line per frame on standard output")
    add_threshold_argument(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    args = parser.parse_args(argv)

    profile = profile_from_args(args)
    store = load_store(args.embeddings)
    if store.profile != profile.name:
        raise FacerecError(f"{args.embeddings} was made with the {store.profile!r} profile: "
                           f"recognise with --model {store.profile}, or re-run extract_embeddings.py --model {profile.name}")
    threshold = threshold_from_args(args)
    embedder = embedder_from_args(args)
    if len(store) and store.vectors.shape[1] != embedder.dimension:
        raise FacerecError(f"{args.embeddings} holds {store.vectors.shape[1]}-d vectors but the embedder makes "
                           f"{embedder.dimension}-d ones: re-run extract_embeddings.py")
    recogniser = Recogniser(detector_from_args(args), embedder,
                            make_matcher(args.match, store.vectors, store.names, threshold, store.paths,
                                         args.min_probability))
    if not len(store):
        print(f"warning: {args.embeddings} holds no faces: everyone is Unknown", file=sys.stderr)

    window = None if args.no_display else Window("facerec - q or ESC quits", hint="use --no-display to run without one")
    output = None
    try:
        with open_source(args.source) as source:
            output = VideoOutput(args.output, source.fps, source.frame_size) if args.output else None
            summary = run_recognition(source, recogniser, window, output, sys.stdout if args.json else None)
    finally:
        if output is not None:
            output.close()
        if window is not None:
            window.close()
    print(summary.report(), file=sys.stderr)
    if output is not None:
        print(f"annotated video: {args.output} ({output.frames} frames)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
