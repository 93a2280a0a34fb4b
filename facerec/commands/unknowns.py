"""Review the unknown faces kept with a gallery (--keep-unknowns): list the candidate people, look at one,
name, ignore, merge or forget a group, or regroup them all; and correct a wrong name (`not PERSON PHOTO`).
The options before the subcommand choose the gallery and the model; docs/unknown-people.md says what is
kept, where, and for how long, docs/negatives.md how a correction works."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_store_arguments, add_threshold_argument,
                         model_from_store, models_from_args, parser_for, positive_int, profile_from_args,
                         threshold_from_args)
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.gallery import check_store_fits, shown
from facerec.names import normalise_name
from facerec.stores import open_gallery
from facerec.text import plural, printable
from facerec.unknowns.negatives import (keep_negative, kept_when, listed_negatives, photo_face_vector,
                                       remove_negative)
from facerec.unknowns.review import group_json, group_line, looks_like, name_group, search_groups, show_group
from facerec.unknowns import UnknownStore, open_unknowns

group_id = positive_int


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its name, help, its own arguments, and what it does (with the unknown-face store opened:
    `not` and `negatives` work on the gallery, but the retention kept with the unknowns ages the negatives)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, argparse.Namespace], None]


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per group and line: group, faces, "
                                                            "tracks, first_seen, last_seen (UTC), cameras, looks_like "
                                                            "({name, distance} of a gallery person it is near, or null)")


def _list(store: UnknownStore, args: argparse.Namespace) -> None:
    groups = store.groups()
    suggested = _looks_like(store, args) if args.json and groups else {}
    for group in groups:
        print(json.dumps({**group_json(group), "looks_like": suggested.get(group.group)}) if args.json
              else group_line(group))
    if not groups and not args.json:
        print("no unknown group to review", file=sys.stderr)


def _looks_like(store: UnknownStore, args: argparse.Namespace) -> dict[int, dict[str, Any] | None]:
    """review.looks_like against the gallery beside the unknowns (none yet: nobody to look like)."""
    profile = profile_from_args(args)
    with open_gallery(args.embeddings, profile=profile.name, missing_ok=True) as gallery:
        snapshot = gallery.snapshot
    if snapshot is None or not len(snapshot):
        return {}
    threshold = args.threshold if args.threshold is not None else profile.threshold
    return looks_like(store, snapshot.vectors, list(snapshot.names), threshold, profile.margin)


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", type=group_id, metavar="GROUP")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder the best crops are written to, as group-GROUP-N.jpg (made if missing)")


def _show(store: UnknownStore, args: argparse.Namespace) -> None:
    for path in show_group(store, args.group, args.out):
        print(printable(path))


def _name_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", type=group_id, metavar="GROUP")
    parser.add_argument("person", metavar="PERSON", help="who they are: a folder name of the dataset")
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="the dataset the gallery is enrolled from (default: dataset)")


def _name(store: UnknownStore, args: argparse.Namespace) -> None:
    naming = name_group(store, args.group, args.person, args.dataset, args.embeddings, models_from_args(args),
                        on_warning=lambda warning: print(f"warning: {warning}", file=sys.stderr))
    for warning in naming.report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"unknown group {args.group} is {printable(naming.person)}: {plural(len(naming.photos), 'photo')} added to "
          f"{printable(args.dataset / naming.person)}, learned into the gallery")


def _one_group(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("group", type=group_id, metavar="GROUP")


def _ignore(store: UnknownStore, args: argparse.Namespace) -> None:
    store.ignore(args.group)
    print(f"unknown group {args.group} ignored: its crops are deleted, its faces are not kept again")


def _merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("into", type=group_id, metavar="GROUP", help="the group that stays")
    parser.add_argument("other", type=group_id, metavar="GROUP", help="the group that joins it")


def _merge(store: UnknownStore, args: argparse.Namespace) -> None:
    store.merge(args.into, args.other)
    print(f"unknown group {args.other} merged into {args.into}")


def _forget_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("group", type=group_id, metavar="GROUP", nargs="?")
    which.add_argument("--all", action="store_true", help="every group, ignored and named ones included")


def _forget(store: UnknownStore, args: argparse.Namespace) -> None:
    faces = store.forget(None if args.all else args.group)
    what = "every unknown group" if args.all else f"unknown group {args.group}"
    print(f"forgot {what}: {plural(faces, 'face')} deleted for good")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _regroup(store: UnknownStore, args: argparse.Namespace) -> None:
    store.regroup()
    print(f"regrouped: {plural(len(store.groups()), 'group')} to review")


def _not_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", metavar="PERSON", help="the name the face was wrongly given (a person of the gallery)")
    parser.add_argument("photo", type=Path, metavar="PHOTO",
                        help="a photo or crop showing that face, and no other (exactly one face is found in it)")
    parser.add_argument("--force", action="store_true",
                        help="keep it even if the face looks like PERSON themself (nearer one of their photos than "
                             "half the threshold): it would stop PERSON being named")


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
        kept = keep_negative(gallery.store, person, vector, models.identity, threshold_from_args(args), args.force)
    print(f"kept the face of {printable(str(args.photo))} as not {printable(kept.person)} "
          f"({plural(kept.negatives, 'negative example')} of {printable(kept.person)} in {gallery.location}): "
          f"a face is named {printable(kept.person)} only if it is nearer {printable(kept.person)}'s photos than these")


def _negatives_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", metavar="PERSON", nargs="?", help="only the negative examples of PERSON")
    parser.add_argument("--remove", type=positive_int, metavar="ID", help="remove the negative example ID (as listed)")


def _negatives(store: Any, args: argparse.Namespace) -> None:
    """List the negative examples (numbered), or remove one: a correction undone."""
    with open_gallery(args.embeddings, profile=profile_from_args(args).name) as gallery:
        assert gallery.snapshot is not None  # (missing_ok is False: no gallery is an error)
        if args.remove is not None:
            removed = remove_negative(gallery.store, args.remove)
            print(f"negative example {args.remove} removed: {printable(removed.person)} may be named so again by "
                  "that face")
            return
        listed = listed_negatives(gallery.snapshot, None if args.person is None else normalise_name(args.person))
    now = time.time()
    for negative in listed:
        near = "" if negative.to_photo is None else f", {negative.to_photo:.3f} from their nearest photo"
        print(f"{negative.number}: not {printable(negative.person)} ({kept_when(negative.made, now)}{near})")
    if not listed:
        print("no negative example", file=sys.stderr)


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", type=Path, metavar="PHOTO", help="a photo or crop showing the face, and no other")
    parser.add_argument("--json", action="store_true", help="one JSON list of the groups found, nearest first: "
                                                            "list --json's objects with their distance")


def _search(store: UnknownStore, args: argparse.Namespace) -> None:
    """The groups whose kept faces match PHOTO's face (under the threshold), nearest first."""
    models = models_from_args(args)
    vector = photo_face_vector(args.photo, models.detector, models.needs_embedder())
    threshold = args.threshold if args.threshold is not None else models.threshold
    found = search_groups(store, vector, threshold)
    if args.json:
        print(json.dumps([item.json() for item in found]))
        return
    for item in found:
        print(f"distance {item.distance:.3f}: {group_line(item.group)}")
    if not found:
        print(f"no kept group has a face within {threshold:g} of {printable(str(args.photo))}'s", file=sys.stderr)


# The subcommands, in the order --help lists them: one line each.
SUBCOMMANDS = [
    Subcommand("list", "the groups to review, largest first", _list_arguments, _list),
    Subcommand("show", "write a group's best crops to a folder as JPEG files", _show_arguments, _show),
    Subcommand("name", "the group is PERSON: its crops become photos of PERSON, learned into the gallery",
               _name_arguments, _name),
    Subcommand("ignore", "never propose the group again; its faces are not kept again", _one_group, _ignore),
    Subcommand("merge", "the second group joins the first", _merge_arguments, _merge),
    Subcommand("forget", "delete a group (or --all) for good: crops, vectors, sightings of it", _forget_arguments,
               _forget),
    Subcommand("regroup", "group every kept track again from scratch (ids kept where groups survive)",
               _no_arguments, _regroup),
    Subcommand("not", "the face of PHOTO is not PERSON: keep it as a negative example of PERSON",
               _not_arguments, _not),
    Subcommand("negatives", "list the negative examples (of PERSON), or --remove ID one", _negatives_arguments,
               _negatives),
    Subcommand("search", "have I seen this face? the groups with a face matching PHOTO's, nearest first",
               _search_arguments, _search),
]


@command_main
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python unknowns.py --embeddings output/embeddings.pickle list --json\n"
                                 "  python unknowns.py name 3 alice --dataset dataset\n"
                                 "  python unknowns.py not obama stranger.jpg")
    add_store_arguments(parser)
    add_threshold_argument(parser)
    add_detector_arguments(parser, model_from_store=True)
    add_embedder_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in SUBCOMMANDS:
        subcommand.arguments(commands.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help))
    args = parser.parse_args(argv)
    model_from_store(args)
    chosen = next(subcommand for subcommand in SUBCOMMANDS if subcommand.name == args.command)
    with open_unknowns(args.embeddings, args.model, threshold=args.threshold) as store:
        store.expire_negatives()  # the unknowns' retention applies to the negatives too, whatever the command
        chosen.run(store, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
