#!/usr/bin/env python3
"""Write a labelled pairs file for verify.py --pairs from ../shared/faces.

Photos: every photo of faces/known (the person is its folder) and the probe
photos that show one face, as ../shared/README.md describes them. Pairs:
every two of these photos, labelled `same` or `different`, except two cuts
of one picture (obama.jpg with obama-240p.jpg and the partial faces; obama2.jpg
with 32bit.png), which tell nothing about identity. Names are relative to
faces/, so verify.py needs `--images ../shared/faces`.

Example:
  python bench/face_pairs.py > pairs.csv
  python verify.py --model sface --pairs pairs.csv --images ../shared/faces
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))

# The probe photos with one face, and who it is (../shared/README.md); lin is enrolled nowhere.
ONE_FACE_PROBES = {
    "alex_lacamoire1.jpg": "alex_lacamoire", "alex-lacamoire.png": "alex_lacamoire",
    "obama1.jpg": "obama", "obama3.jpg": "obama", "obama_small.jpg": "obama",
    "obama-240p.jpg": "obama", "obama_partial_face.jpg": "obama", "obama_partial_face2.jpg": "obama",
    "32bit.png": "obama", "johnsnow_test1.jpg": "kit_harington", "lin-manuel-miranda.png": "lin",
}
# Photos cut from one picture: each set is one picture.
SAME_PICTURES = (
    {"known/obama/obama.jpg", "probe/obama-240p.jpg", "probe/obama_partial_face.jpg", "probe/obama_partial_face2.jpg"},
    {"known/obama/obama2.jpg", "probe/32bit.png"},
)


def labelled_photos(faces: Path) -> list[tuple[str, str]]:
    """(photo relative to `faces`, person) for faces/known and the one-face probe photos."""
    known = [(path.relative_to(faces).as_posix(), path.parent.name) for path in sorted(faces.glob("known/*/*"))]
    return known + [(f"probe/{name}", person) for name, person in sorted(ONE_FACE_PROBES.items())]


def face_pairs(faces: Path) -> list[tuple[str, str, str]]:
    """(photo_x, photo_y, "same" or "different") for every two photos that are not cuts of one picture."""
    pairs = []
    for (first, person1), (second, person2) in itertools.combinations(labelled_photos(faces), 2):
        if not any({first, second} <= picture for picture in SAME_PICTURES):
            pairs.append((first, second, "same" if person1 == person2 else "different"))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=SHARED / "faces", help="the faces folder (default: ../shared/faces)")
    args = parser.parse_args(argv)
    if not (args.faces / "known").is_dir() or not (args.faces / "probe").is_dir():
        parser.error(f"{args.faces} has no known/ and probe/ folders: give --faces or set FACEREC_SHARED")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["photo_x", "photo_y", "label"])
    writer.writerows(face_pairs(args.faces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
