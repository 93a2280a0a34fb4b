"""Are two photos the same person? Compare the most confident face of each, or every pair of a pairs file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_threshold_argument, models_from_args,
                         parser_for, positive_int, threshold_from_args)
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.text import printable
from facerec.verification import (PairsSummary, PhotoFace, embed_pairs_photos, read_pairs, verdict_json, verdict_line, verify,
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
    parser.add_argument("--face", type=face_ranks, default=None, metavar="N[,M]",
                        help="compare the first photo's Nth most confident face (and the second's Mth) instead of "
                             "the most confident (default: 1,1; verify.py warns when a photo holds several)")
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

    if args.face is not None and args.pairs is not None:
        parser.error("--face goes with two photos, not --pairs")

    threshold = threshold_from_args(args)
    if args.pairs is None:
        first, second = args.photos
        verdict = verify(first, second, models_from_args(args), threshold, args.face or (1, 1))
        for photo, chosen in ((first, verdict.first), (second, verdict.second)):
            if chosen.faces > 1:
                print(f"warning: {several_faces(photo, chosen, args)}", file=sys.stderr)
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


def face_ranks(text: str) -> tuple[int, int]:
    """--face N or N,M: the rank (1: most confident) of the face compared in the first photo and in the second."""
    words = text.split(",")
    if len(words) > 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or N,M")
    ranks = [int(positive_int(word)) for word in words]
    return (ranks[0], ranks[1] if len(ranks) == 2 else 1)


def several_faces(photo: Path, chosen: PhotoFace, args: argparse.Namespace) -> str:
    """`two_people.jpg holds 2 faces; compared the most confident, box (x1, y1, x2, y2); --face 1,2 for the
    next`: which face a photo of several was compared by, and the option that compares another."""
    which = "the most confident" if chosen.rank == 1 else f"face {chosen.rank} by confidence"
    ranks = list(args.face or (1, 1))
    position = 0 if photo is args.photos[0] else 1
    ranks[position] = chosen.rank % chosen.faces + 1
    return (f"{printable(str(photo))} holds {chosen.faces} faces; compared {which}, box {chosen.face.box}; "
            f"--face {ranks[0]},{ranks[1]} compares {'the next' if ranks[position] > 1 else 'the most confident'}")


if __name__ == "__main__":
    sys.exit(main())
