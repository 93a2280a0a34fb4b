"""Are two photos the same person? Compare the most confident face of each, or every pair of a pairs file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_threshold_argument, models_from_args,
                         parser_for, threshold_from_args)
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.text import printable
from facerec.verification import (PairsSummary, embed_pairs_photos, read_pairs, verdict_json, verdict_line, verify,
                                  verify_pairs)


@command_main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python verify.py --model sface photo1.jpg photo2.jpg\n"
                                 "  python verify.py --model sface --pairs pairs.csv --images photos/")
    parser.add_argument("photos", nargs="*", type=Path, metavar="PHOTO", help="the two photos to compare")
    parser.add_argument("--pairs", type=Path, metavar="CSV",
                        help="compare every row photo_x,photo_y[,label] of this file instead (label: yes/no, 1/0, "
                             "same/different; a header row is allowed)")
    parser.add_argument("--images", type=Path, metavar="DIR",
                        help="folder the pairs file's relative photo names are in (default: the pairs file's folder)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: one object for two photos; with --pairs one line per pair, then the summary")
    add_threshold_argument(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    args = parser.parse_args(argv)
    if args.pairs is None and len(args.photos) != 2:
        parser.error("give two photos, or --pairs FILE")
    if args.pairs is not None and args.photos:
        parser.error("give two photos or --pairs FILE, not both")
    if args.images is not None and args.pairs is None:
        parser.error("--images goes with --pairs")

    threshold = threshold_from_args(args)
    if args.pairs is None:
        first, second = args.photos
        verdict = verify(first, second, models_from_args(args), threshold)
        print(json.dumps(verdict_json(verdict, str(first), str(second))) if args.json
              else verdict_line(verdict, str(first), str(second)))
        return 0

    images = args.pairs.parent if args.images is None else args.images
    pairs = read_pairs(args.pairs, images)  # every row checked before a photo is read
    models = models_from_args(args)
    faces, unusable = embed_pairs_photos(pairs, models.detector, models.needs_embedder())
    summary = PairsSummary(threshold=threshold, unusable=unusable)
    for result in verify_pairs(pairs, faces, unusable, threshold):  # the file read again, a row at a time
        summary.add(result)
        print(json.dumps(result.as_json()) if args.json else result.line())
    if args.json:
        print(json.dumps({"summary": summary.as_json()}))
    else:
        print("\n".join(summary.lines()))
    if not summary.compared:
        raise FacerecError(f"none of the {pairs.count} pairs of {printable(args.pairs)} could be compared: "
                           f"is --images the folder their photos are in?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
