"""Correct a wrong name: `not PERSON PHOTO` keeps the face of PHOTO as a negative example of PERSON, and from then
on a face is named PERSON only if it is nearer PERSON's photos than PERSON's negatives (docs/negatives.md). The
options before the subcommand choose the gallery and the model."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_store_arguments, add_threshold_argument,
                         models_from_args, parser_for, profile_from_args)
from facerec.errors import FacerecError, main_guard
from facerec.gallery import check_store_fits, shown
from facerec.names import normalise_name
from facerec.stores import open_gallery
from facerec.text import plural, printable
from facerec.unknowns.negatives import keep_negative, photo_face_vector


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its name, help, its own arguments, and what it does (given the unknown-face store where the
    subcommand needs one; `not` does not)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, argparse.Namespace], None]


def _not_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", metavar="PERSON", help="the name the face was wrongly given (a person of the gallery)")
    parser.add_argument("photo", type=Path, metavar="PHOTO",
                        help="a photo or crop showing that face, and no other (exactly one face is found in it)")


def _not(store: Any, args: argparse.Namespace) -> None:
    """Keep PHOTO's face as a negative example of PERSON (the gallery is checked before any model is loaded)."""
    person = normalise_name(args.person)
    with open_gallery(args.embeddings, profile=profile_from_args(args).name) as gallery:
        assert gallery.snapshot is not None  # (missing_ok is False: no gallery is an error)
        if person not in gallery.snapshot.names:
            raise FacerecError(f"{shown(person)} is not in the gallery {gallery.location}: a negative example is of "
                               f"a known person ({plural(len(gallery.snapshot.people), 'person', 'people')} known: "
                               f"{', '.join(map(shown, gallery.snapshot.people[:10]))})")
        models = models_from_args(args)
        embedder = models.needs_embedder()
        check_store_fits(gallery.snapshot, gallery.location, embedder)
        vector = photo_face_vector(args.photo, models.detector, embedder)
        kept = keep_negative(gallery.store, person, vector, models.identity)
    print(f"kept the face of {printable(str(args.photo))} as not {printable(kept.person)} "
          f"({plural(kept.negatives, 'negative example')} of {printable(kept.person)} in {gallery.location}): "
          f"a face is named {printable(kept.person)} only if it is nearer {printable(kept.person)}'s photos than these")


# The subcommands, in the order --help lists them: one line each (the others: branch h21store).
SUBCOMMANDS = [
    Subcommand("not", "the face of PHOTO is not PERSON: keep it as a negative example of PERSON",
               _not_arguments, _not),
]


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python unknowns.py --model sface --embeddings output/embeddings.pickle "
                                 "not obama stranger.jpg")
    add_store_arguments(parser)
    add_threshold_argument(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in SUBCOMMANDS:
        subcommand.arguments(commands.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help))
    args = parser.parse_args(argv)
    run = next(subcommand.run for subcommand in SUBCOMMANDS if subcommand.name == args.command)
    run(None, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
