"""Review the unknown faces kept with a gallery (--keep-unknowns): list the candidate people, look at one,
name, ignore, merge or forget a group, or regroup them all. The options before the subcommand choose the
gallery and the model; docs/unknown-people.md says what is kept, where, and for how long."""

from __future__ import annotations

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_store_arguments, add_threshold_argument,
                         models_from_args, parser_for, positive_int)
from facerec.errors import main_guard
from facerec.text import plural, printable
from facerec.unknowns.review import group_json, group_line, name_group, show_group
from facerec.unknowns.store import UnknownStore, open_unknowns

group_id = positive_int


@dataclass(frozen=True)
class Subcommand:
    """One subcommand: its name, help, its own arguments, and what it does with the store opened."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[UnknownStore, argparse.Namespace], None]


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per group and line: group, faces, "
                                                            "tracks, first_seen, last_seen (UTC), cameras")


def _list(store: UnknownStore, args: argparse.Namespace) -> None:
    groups = store.groups()
    for group in groups:
        print(json.dumps(group_json(group)) if args.json else group_line(group))
    if not groups and not args.json:
        print("no unknown group to review", file=sys.stderr)


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
]


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python unknowns.py --model sface --embeddings output/embeddings.pickle list --json\n"
                                 "  python unknowns.py --model sface name 3 alice --dataset dataset")
    add_store_arguments(parser)
    add_threshold_argument(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in SUBCOMMANDS:
        subcommand.arguments(commands.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help))
    args = parser.parse_args(argv)
    run = next(subcommand.run for subcommand in SUBCOMMANDS if subcommand.name == args.command)
    with open_unknowns(args.embeddings, args.model, threshold=args.threshold) as store:
        run(store, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
