"""Take photos of one person from a webcam, video file or stream: SPACE saves a frame with one face, ESC quits."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import sys
from pathlib import Path

from facerec.capture import PHOTO_FORMATS, case_twin_folders, person_folder, run_capture
from facerec.cli import add_detector_arguments, models_from_args, next_command, parser_for, positive_int
from facerec.display import Window
from facerec.commands import command_main
from facerec.video import open_source


@command_main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, 'python imagecapture.py --name "$USER" --count 5   # webcam 0; SPACE saves, ESC quits')
    parser.add_argument("--name", required=True,
                        help="the person's name: their photos go to DATASET/NAME/ (a plain folder name)")
    parser.add_argument("--source", default="0", help="webcam index, video file or stream URL (default: 0)")
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="folder with one sub-folder of photos per person (default: dataset)")
    parser.add_argument("--count", type=positive_int, default=None,
                        help="quit by itself after saving this many photos (default: only ESC or q quits)")
    parser.add_argument("--format", choices=sorted(PHOTO_FORMATS), default="jpg",
                        help="photo file format: jpg (quality 95, default) or png (lossless)")
    add_detector_arguments(parser)
    args = parser.parse_args(argv)

    folder = person_folder(args.dataset, args.name)  # a bad name is refused before anything is opened
    name = folder.name  # the name as checked, in NFC
    for twin in case_twin_folders(args.dataset, name):
        print(f"warning: the dataset already has {twin}: {name} differs only by case and will be another person",
              file=sys.stderr)
    detector = models_from_args(args, with_embedder=False).detector
    with open_source(args.source) as source:
        window = Window(f"facerec capture: {name} - SPACE saves, ESC quits",
                        hint="capture needs a screen to show what it saves")
        try:
            summary = run_capture(source, detector, window, folder, name, count=args.count,
                                  fps=None if source.spec.is_live else source.fps, photo_format=args.format)
        finally:
            window.close()
    for line in summary.lines(next_command("extract_embeddings.py", args, dataset=args.dataset)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
