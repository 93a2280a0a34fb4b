#!/usr/bin/env python3
"""Find the face in every photo of dataset/<person>/ and store its embedding for recognize_video.py."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import sys
from pathlib import Path

from facerec.cli import add_detector_arguments, add_embedder_arguments, models_from_args, next_command, parser_for
from facerec.enrolment import enrol, models_identity
from facerec.errors import FacerecError, main_guard
from facerec.stores import open_store_target, save_store
from facerec.text import plural


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python extract_embeddings.py --dataset dataset --embeddings output/embeddings.pickle")
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="folder with one sub-folder of photos per person (default: dataset)")
    parser.add_argument("--embeddings", type=Path, default=Path("output/embeddings.pickle"),
                        help="the embeddings file to write (default: output/embeddings.pickle); it replaces only "
                             "an embeddings file (or an empty one); a symbolic link is followed: the file it "
                             "points to is replaced")
    parser.add_argument("--force", action="store_true",
                        help="replace the --embeddings file even if it is not an embeddings file "
                             "(never a folder, device or FIFO)")
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    target = open_store_target(args.embeddings, force=args.force)  # before any work: refuse what cannot be written
    if target.warning:
        print(f"warning: {target.warning}", file=sys.stderr)
    detector, embedder = models_from_args(args)
    store, report = enrol(args.dataset, target.previous, detector, embedder,
                          models_identity(args.model, detector, embedder), progress=not args.quiet)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.lines():
        print(line)
    if not len(store):
        raise FacerecError(f"no usable face in {args.dataset}: nothing written to {args.embeddings}")
    save_store(store, target.path)
    print(f"wrote {plural(len(store), 'embedding')} of {plural(len(store.people), 'person', 'people')} "
          f"to {args.embeddings}")
    print(f"next: {next_command('recognize_video.py', args, embeddings=args.embeddings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
