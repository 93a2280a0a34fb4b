"""Find the face in every photo of dataset/<person>/ and store its embedding for recognize_video.py."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_store_arguments, models_from_args,
                         next_command, parser_for, positive_int)
from facerec.embedding import usable_cores
from facerec.enrolment import EnrolmentReport, enrol
from facerec.commands import command_main
from facerec.stores import masked, open_store
from facerec.text import plural


def show(report: EnrolmentReport) -> None:
    """The warnings on standard error, the counts and skipped images on standard output."""
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in report.lines():
        print(line)


@command_main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python extract_embeddings.py --dataset dataset --embeddings output/embeddings.pickle")
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="folder with one sub-folder of photos per person (default: dataset)")
    add_store_arguments(parser, ". A file is replaced only if it is an embeddings file (or an empty one); a "
                                "symbolic link is followed: the file it points to is replaced")
    parser.add_argument("--force", action="store_true",
                        help="replace the --embeddings file even if it is not an embeddings file "
                             "(never a folder, device or FIFO)")
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    parser.add_argument("--jobs", type=positive_int, default=usable_cores(), metavar="N",
                        help="photos read and their faces found at once, each by its own thread (default: the cores, "
                             f"{usable_cores()} here)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    with open_store(args.embeddings) as store:
        store.check_writable(args.force)  # before a model is loaded (or downloaded): refuse what cannot be written
        # another run (or a web page) writing this gallery now is waited for, not undone
        # with --jobs threads finding faces on the cores, the embedder beside them runs on one thread
        # (enrolment.photo_embeddings): made so at once, not made on two and then again on one
        models = models_from_args(args, embedder_threads=1 if args.jobs > 1 else None)
        report = enrol(args.dataset, store, models, force=args.force, progress=not args.quiet,
                       on_warning=lambda warning: print(f"warning: {warning}", file=sys.stderr), on_report=show,
                       jobs=args.jobs, wait=None, load_gallery=False)
        counts = report.counts
        assert counts is not None
        print(f"wrote {plural(counts.vectors, 'embedding')} of {plural(counts.people, 'person', 'people')} "
              f"to {store.location}")
        print(f"next: {next_command('recognize_video.py', args, embeddings=masked(store.location))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
