"""Recognise the faces of a webcam, video file or stream against the stored embeddings."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import argparse
import contextlib
import sys

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_event_arguments, add_matching_arguments,
                         add_store_arguments, add_threshold_argument, add_unknowns_arguments, events_from_args,
                         keeping_from_args, add_config_argument, event_urls_from_environment, models_from_args,
                         next_command, parse_arguments, parser_for, positive_int, profile_from_args)
from facerec.display import Window
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.events import close_events, log_visits
from facerec.follower import print_warning
from facerec.recognition import Recogniser
from facerec.running import run_recognition
from facerec.stores import masked, open_gallery
from facerec.text import plural
from facerec.tracking import DEFAULT_EVERY
from facerec.video import SourceSpec, VideoOutput, check_output, open_source


def build_parser() -> argparse.ArgumentParser:
    """The command's options (also what its configuration file's keys may be)."""
    parser = parser_for(__doc__, "python recognize_video.py --source 0   # webcam 0; q or ESC quits\n"
                                 "  python recognize_video.py --source clip.mp4 --no-display --json --output annotated.mp4")
    add_store_arguments(parser, sightings=True)
    parser.add_argument("--source", default="0", help="webcam index, video file or stream URL (default: 0)")
    add_matching_arguments(parser)
    parser.add_argument("--every", type=positive_int, default=DEFAULT_EVERY, metavar="N",
                        help=f"embed a followed face again at least every N frames (default: {DEFAULT_EVERY}; also when it "
                             "is new, comes back, moves, changes size or its last distance was near the threshold, until its "
                             "last 3 verdicts agree on a name); a "
                             "face's name comes from its track's recent embeddings. 1: embed and name every face of "
                             "every frame on its own")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="also write the annotated video to this file (.mp4 or .avi). It is written under a "
                             "temporary name and replaces FILE when the run ends, also on q, Ctrl-C or a read "
                             "error (then it holds the frames processed until that moment); if it cannot be "
                             "written completely (disk full) or the process is killed, FILE is left as it was. "
                             "Refused: the source itself, and a FILE that is not a video (unless --force)")
    parser.add_argument("--force", action="store_true", help="let --output replace a file that is not a video")
    parser.add_argument("--no-display", action="store_true", help="run without a window")
    parser.add_argument("--json", action="store_true", help="print one JSON line per frame on standard output")
    add_event_arguments(parser)
    add_unknowns_arguments(parser)
    add_threshold_argument(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    add_config_argument(parser, "with [cameras.NAME] tables, --camera NAME runs that camera (its source and "
                                "settings), and a file of one camera runs it")
    return parser


@command_main
def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(build_parser(), argv, one_camera=True)
    event_urls_from_environment(args)

    SourceSpec(args.source).check()  # before anything is loaded or connected
    output_path = None if args.output is None else check_output(args.output, args.source, args.force)
    with contextlib.ExitStack() as cleanup:
        # connected (and checked) first: a wrong URL, broker or login is said at once
        events = events_from_args(args, print_warning)
        cleanup.callback(lambda: close_events(events))  # the Presence `events` is at the end (log_visits may make it)
        gallery = cleanup.enter_context(open_gallery(args.embeddings, profile=profile_from_args(args).name,
                                                     sightings_camera=args.camera if args.log_sightings else None))
        events = log_visits(events, gallery.sightings, args.camera, args.away_seconds)
        if events is not None:
            cleanup.callback(events.end)  # the last departures reach the sightings log before the gallery closes it
        recogniser = Recogniser(models_from_args(args), gallery, threshold=args.threshold, match=args.match,
                                min_probability=args.min_probability, every=args.every, on_problem=print_warning,
                                margin=args.margin)
        if not len(recogniser.gallery):
            print(f"warning: {gallery.location} holds no faces: everyone is Unknown", file=sys.stderr)
        follower = cleanup.enter_context(recogniser.watching_gallery()).follower
        keeping = keeping_from_args(args, cleanup, print_warning, events, recogniser.detector)

        window = None if args.no_display else Window("facerec - q or ESC quits", hint="use --no-display to run without one")
        output = None
        try:
            with open_source(args.source) as source:
                output = VideoOutput(output_path, source.fps, source.frame_size) if output_path else None
                summary = run_recognition(source, recogniser, window, output, sys.stdout if args.json else None,
                                          events, tracker=recogniser.new_tracker(),
                                          unknowns=keeping.keeper(args.camera) if keeping else None)
        finally:
            if output is not None:
                output.close()
            if window is not None:
                window.close()
    reloads = f"; gallery reloaded {plural(follower.reloads, 'time')}" if follower.reloads else ""
    print(f"{summary.report()}{reloads}; embedder: {recogniser.embedder.description()}", file=sys.stderr)
    if keeping is not None:
        print(f"{plural(keeping.kept, 'unknown track')} kept for review", file=sys.stderr)
    if output is not None:
        if output.problem:
            raise FacerecError(output.problem)
        print(output.outcome, file=sys.stderr)
    # on standard error with the summary: standard output may be --json's lines
    print(f"next: {next_step(args, keeping is not None, masked(gallery.location))}", file=sys.stderr)
    return 0


def next_step(args: argparse.Namespace, kept: bool, gallery: str) -> str:
    """The command to run next: review the unknown faces kept, or else the web page over the same gallery."""
    if kept:
        return next_command("unknowns.py", args, "list", embeddings=gallery)
    return next_command("serve.py", args, embeddings=gallery)


if __name__ == "__main__":
    sys.exit(main())
