"""Command-line pieces shared by the scripts: argument types, the options, and the API calls they make.

Only the commands (facerec/commands/, the scripts' code) import this module: nothing else in the package does."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .catalogue import DEFAULT_PROFILE, PROFILES, Profile
from .commands import COMMANDS, as_run, installed
from .config import Camera, Config, config_path, load_config
from .detection import MIN_CONFIDENCE, Detector
from .embedding import FLOAT32, PRECISIONS
from .events.sink import MAX_SEEN_MINUTES
from .matching import DEFAULT_MIN_PROBABILITY, MATCHERS, MAX_DISTANCE
from .modelfiles import PROJECT_ROOT, default_models_dir
from .models import Models, load_models
from .errors import FacerecError
from .events.presence import AWAY_SECONDS
from .names import camera_problem, normalise_name
from .stores import LOCATION_HELP
from .text import printable

if TYPE_CHECKING:
    from .events import Presence
    from .unknowns.keeping import KeptTracks

WEBHOOK_SECRET_VARIABLE = "FACEREC_WEBHOOK_SECRET"
MAX_SECRET_BYTES = 4096  # a webhook secret is a few dozen bytes; a larger file is a mistake
MAX_AWAY_SECONDS = 86_400.0  # --away-seconds: a day at most (a visit longer than that is a camera left on someone)


def bounded_number(kind: Callable[[str], float], low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True, why: str = "") -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` within [low, high] (low excluded if not low_inclusive).

    NaN and infinities are always refused (NaN passes every comparison). `why`, if
    given, is added to the out-of-range message in brackets.
    """

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        if too_low or (high is not None and value > high):
            bracket = "[" if low_inclusive else "("
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: must be in {bracket}{'-inf' if low is None else f'{low:g}'}, "
                f"{'inf' if high is None else f'{high:g}'}]" + (f" ({why})" if why else "")
            )
        return value

    parse.number_kind = kind  # type: ignore[attr-defined]  # what a configuration file's value must be
    return parse


probability = bounded_number(float, 0.0, 1.0)
positive_int = bounded_number(int, 0, None, low_inclusive=False)
# A detector's confidence: below MIN_CONFIDENCE the detectors box hundreds of non-faces a frame.
confidence = bounded_number(float, MIN_CONFIDENCE, 1.0,
                            why="below it the detectors find hundreds of non-faces: docs/scripts.md")
# An L2 distance between unit vectors: never more than MAX_DISTANCE.
distance_threshold = bounded_number(float, 0.0, MAX_DISTANCE, why="unit vectors are never more than 2 apart")


def camera_name(text: str) -> str:
    """--camera: a name names.camera_problem accepts (in NFC), refused at the door, once for every use of it
    (a FacerecError, not argparse's error: one `error:` line without the usage)."""
    name = normalise_name(text)
    problem = camera_problem(name)
    if problem:
        raise FacerecError(f"--camera '{printable(name)[:80]}' cannot name a camera (in sightings, events and kept "
                           f"faces): {problem}")
    return name


def parser_for(description: str, example: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose --help ends with an example command (both naming the commands as they are run:
    `python verify.py` in a checkout, `facerec-verify` once installed)."""
    return argparse.ArgumentParser(
        description=as_run(description),
        epilog=as_run(f"example:\n  {example}"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


MODEL_VARIABLE = "FACEREC_MODEL"


def default_profile() -> str:
    """$FACEREC_MODEL if set (FacerecError if it names no profile), else the default profile."""
    name = os.environ.get(MODEL_VARIABLE) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise FacerecError(f"${MODEL_VARIABLE}={name!r} is not a model profile: one of {', '.join(sorted(PROFILES))}")
    return name


def add_detector_arguments(parser: argparse.ArgumentParser, model_from_store: bool = False) -> None:
    """--model, --detector and --confidence: what every script needs to find faces. With `model_from_store`
    and no $FACEREC_MODEL, --model defaults to None: the command reads it from the store (model_from_store below)."""
    default = default_profile() if not model_from_store or os.environ.get(MODEL_VARIABLE) else None
    shown = f"the gallery's, else {DEFAULT_PROFILE}" if model_from_store else DEFAULT_PROFILE
    parser.add_argument("--model", choices=sorted(PROFILES), default=default,
                        help=f"model profile (default: ${MODEL_VARIABLE} if set, else {shown}): "
                             + "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    parser.add_argument("--detector", type=Path, default=None, metavar="DIR",
                        help=f"folder holding the face detector's files (default: {_models_folder()}, "
                             "where missing files are downloaded)")
    parser.add_argument("--confidence", type=confidence, default=None,
                        help=f"minimum detection confidence, {MIN_CONFIDENCE:g} to 1 (lower finds hundreds of "
                             "non-faces; default: the profile's: "
                             + ", ".join(f"{p.confidence} for {p.name}" for p in PROFILES.values()) + ")")


def _models_folder() -> str:
    """The default models folder as --help says it: models/ in a checkout, else the folder itself."""
    folder = default_models_dir()
    return "models/" if folder == PROJECT_ROOT / "models" and not installed() else str(folder)


def add_embedder_arguments(parser: argparse.ArgumentParser) -> None:
    """--embedding-model: the network that turns a face into a vector."""
    parser.add_argument("--embedding-model", type=Path, default=None, metavar="PATH",
                        help=f"the embedder's model file (default: {_models_folder()}/"
                             + PROFILES[DEFAULT_PROFILE].embedder.files[0].filename
                             + " for the default profile, downloaded if missing)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="what the embedder computes in (default: float32, in which the thresholds were measured). "
                             "bfloat16: faster with OpenVINO on a processor that has it, vectors within about 6e-3, "
                             "names checked in docs/benchmarks.md")


def add_store_arguments(parser: argparse._ActionsContainer, more_help: str = "",
                        sightings: bool = False) -> None:
    """--embeddings PATH_OR_URL (see stores.open_store); with `sightings`, --log-sightings and --camera."""
    parser.add_argument("--embeddings", default=None, metavar="PATH_OR_URL", help=LOCATION_HELP + more_help)
    if sightings:
        parser.add_argument("--log-sightings", action="store_true",
                            help="record each visit (--camera, name, arrived, left: the visits --mqtt and --webhook "
                                 "are told) in the gallery's database, table facerec_visits: needs a postgresql:// "
                                 "--embeddings")
        parser.add_argument("--camera", default=socket.gethostname(), metavar="NAME", type=camera_name,
                            help="the camera's name in the sightings and events (default: this machine's name, "
                                 f"{socket.gethostname()})")


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    """--mqtt, --webhook and their options: who arrived and who left, told to other systems (facerec.events)."""
    parser.add_argument("--mqtt", default=None, metavar="URL",
                        help="publish who arrives and leaves to this MQTT broker: mqtt://[user:password@]host[:port]"
                             "[/prefix] (mqtts:// for TLS; prefix default: facerec), on PREFIX/CAMERA/events, "
                             "/people, /status: docs/events.md")
    parser.add_argument("--mqtt-discovery", action=argparse.BooleanOptionalAction, default=True,
                        help="with --mqtt, make the camera a device in Home Assistant (discovery under "
                             "homeassistant/: the last person seen, and a sensor per known person; default: on)")
    parser.add_argument("--seen-minutes", type=bounded_number(float, 0, MAX_SEEN_MINUTES, low_inclusive=False,
                                                              why="a year"),
                        default=5.0, metavar="N", help="a person's Home Assistant sensor stays on N minutes after "
                                                       "they were last in view (default: 5; at most a year)")
    parser.add_argument("--webhook", default=None, metavar="URL",
                        help="POST each arrival and departure as JSON to this http(s) URL (retried for a while)")
    parser.add_argument("--webhook-secret-file", default=None, metavar="FILE",
                        help=f"sign each POST with the secret in FILE (or ${WEBHOOK_SECRET_VARIABLE}): header "
                             "X-Facerec-Signature: sha256=HMAC-SHA256 of the body (docs/events.md)")
    parser.add_argument("--away-seconds", type=bounded_number(float, 0, MAX_AWAY_SECONDS, low_inclusive=False),
                        default=AWAY_SECONDS, metavar="S",
                        help=f"a person unseen this long by the camera has left it: one arrival and one departure "
                             f"per visit, not per track (default: {AWAY_SECONDS:g}; the source's end also counts)")


def events_from_args(args: argparse.Namespace, warn: Callable[[str], None],
                     camera: str | None = None) -> Presence | None:
    """open_events with the options of add_event_arguments (FacerecError for a secret that cannot be read), for
    `camera` (default: --camera)."""
    from .events import open_events

    return open_events(args.camera if camera is None else camera, warn, args.mqtt, args.webhook, args.mqtt_discovery, args.seen_minutes,
                       away_seconds=args.away_seconds, webhook_secret=webhook_secret(args))


def webhook_secret(args: argparse.Namespace) -> bytes | None:
    """The bytes of --webhook-secret-file (one trailing newline dropped) or of $FACEREC_WEBHOOK_SECRET, or None."""
    from .fileio import read_regular_file

    if args.webhook_secret_file is None:
        variable = os.environb.get(WEBHOOK_SECRET_VARIABLE.encode())
        return variable or None
    try:
        secret = read_regular_file(args.webhook_secret_file, MAX_SECRET_BYTES)
    except OSError as error:
        raise FacerecError(f"--webhook-secret-file {args.webhook_secret_file!r} cannot be read: "
                           f"{getattr(error, 'strerror', None) or error}") from None
    secret = secret[:-1] if secret.endswith(b"\n") else secret
    secret = secret[:-1] if secret.endswith(b"\r") else secret
    if not secret:
        raise FacerecError(f"--webhook-secret-file {args.webhook_secret_file!r} is empty")
    return secret


MQTT_VARIABLE = "FACEREC_MQTT_URL"
WEBHOOK_VARIABLE = "FACEREC_WEBHOOK_URL"


def event_urls_from_environment(args: argparse.Namespace) -> None:
    """--mqtt and --webhook, when neither the line nor the file gave them, from $FACEREC_MQTT_URL and
    $FACEREC_WEBHOOK_URL: a password there is not shown to every user of the computer by `ps`."""
    for dest, variable in (("mqtt", MQTT_VARIABLE), ("webhook", WEBHOOK_VARIABLE)):
        if getattr(args, dest, None) is None and os.environ.get(variable):
            setattr(args, dest, os.environ[variable])


def add_unknowns_arguments(parser: argparse.ArgumentParser) -> None:
    """--keep-unknowns and its bounds: the faces nobody has named yet, kept for review (facerec.unknowns)."""
    from .unknowns.store import FACES_PER_TRACK, MAX_FACES, MAX_RETENTION_DAYS, RETENTION_DAYS

    parser.add_argument("--keep-unknowns", action="store_true",
                        help=f"keep the best {FACES_PER_TRACK} face crops (with their vectors, camera, first and last "
                             "seen) of every face that stays Unknown until it leaves, grouped into candidate people, "
                             "beside --embeddings (a folder EMBEDDINGS.unknowns/, or tables of the database) to "
                             "review, name, ignore or forget with unknowns.py or the web page's Unknown tab. Off by "
                             "default: these are faces of people who agreed to nothing (docs/unknown-people.md)")
    parser.add_argument("--unknowns-max-faces", type=positive_int, default=MAX_FACES, metavar="N",
                        help=f"with --keep-unknowns, keep at most N unknown faces, all groups together; beyond, the "
                             f"oldest are deleted, with one warning (default: {MAX_FACES})")
    parser.add_argument("--unknowns-days", type=bounded_number(float, 0, MAX_RETENTION_DAYS, low_inclusive=False),
                        default=None, metavar="DAYS",
                        help="with --keep-unknowns, delete an unknown face DAYS after it was seen, and a "
                             "negative example (unknowns.py not) DAYS after it was kept; kept with the faces: every "
                             "later writer and unknowns.py apply it (default: the one kept with them, else "
                             f"{RETENTION_DAYS:g})")


def keeping_from_args(args: argparse.Namespace, cleanup: contextlib.ExitStack,
                      warn: Callable[[str], None], events: Presence | None = None,
                      detector: Detector | None = None) -> KeptTracks | None:
    """With --keep-unknowns, the unknown store beside --embeddings, opened (FacerecError if it cannot be) and
    fed off the video loop; both closed by `cleanup` (the queue first: what waits is kept). Else None.
    `events` then tell Unknown faces of a kept group by their group (strangers seen before). `detector`: the run's,
    to keep only crops it finds a face in again (unknowns/keeping.py)."""
    if not args.keep_unknowns:
        return None
    from .unknowns.keeping import KeptTracks
    from .unknowns import open_unknowns

    store = cleanup.enter_context(open_unknowns(args.embeddings, profile_from_args(args).name,
                                                threshold=args.threshold, max_faces=args.unknowns_max_faces,
                                                retention_days=args.unknowns_days, on_warning=warn))
    store.groups()  # read once: one kept with another model, or damaged, is refused now, not at each track kept
    store.expire_negatives()  # the unknowns' retention applies to the negatives too (unknowns/aging.py)
    keeping = KeptTracks(store, warn, detector=detector)
    cleanup.callback(keeping.close)
    if events is not None:
        from .unknowns.strangers import KeptStrangers

        events.strangers = KeptStrangers(store, warn)
    return keeping


def add_threshold_argument(parser: argparse.ArgumentParser) -> None:
    """--threshold: the L2 distance where two faces stop being the same person."""
    parser.add_argument("--threshold", type=distance_threshold, default=None,
                        help="L2 distance at or above which two faces are not the same person, and a face is Unknown, "
                             "0 to 2 (default: the profile's: "
                             + ", ".join(f"{p.threshold} for {p.name}" for p in PROFILES.values()) + ")")


def add_matching_arguments(parser: argparse.ArgumentParser) -> None:
    """--match and --min-probability: how a face's vector is named from the gallery."""
    parser.add_argument("--match", choices=sorted(MATCHERS), default="nearest",
                        help="nearest stored vector (default), nearest person centroid, a vote of the 5 nearest, "
                             "or an SVM trained on the gallery when it is loaded (and again whenever it changes)")
    parser.add_argument("--min-probability", type=probability, default=DEFAULT_MIN_PROBABILITY, metavar="P",
                        help="--match svm: smallest probability of the SVM's top name that names a face, 0 to 1 "
                             f"(default: {DEFAULT_MIN_PROBABILITY})")
    parser.add_argument("--margin", type=distance_threshold, default=None,
                        help="look-alikes: a face keeps its name only if everyone else's nearest photo is at least "
                             "this much further, 0 (off) to 2 (default: the profile's: "
                             + ", ".join(f"{p.margin:g} for {p.name}" for p in PROFILES.values()) + ")")


def add_config_argument(parser: argparse.ArgumentParser, cameras: str) -> None:
    """--config FILE: the settings of a TOML file (facerec.example.toml), the command line's options winning."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="read settings from this TOML file (default: $FACEREC_CONFIG if set): its top-level keys "
                             "are these long options with _ for -, an option given here wins; " + cameras
                             + ": docs/service.md, facerec.example.toml")


# What a camera's table may set besides its source, with the types of the options of the same names.
CAMERA_TYPES: dict[str, Callable[[str], float]] = {"threshold": distance_threshold, "every": positive_int,
                                                     "confidence": confidence}


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None = None,
                    one_camera: bool = False) -> argparse.Namespace:
    """The parser's arguments over the configuration file's settings (--config or $FACEREC_CONFIG, when the parser
    takes --config). `args.config` is the checked Config or None.

    With a file that has cameras and `one_camera` (recognize_video.py): `--camera NAME` picks
    the file's camera NAME (its source, threshold, every and confidence, unless given on the line); without
    --camera or --source, the file's only camera is the one.
    """
    options = {action.dest: action for action in parser._actions if action.option_strings}
    config = None
    if "config" in options:
        early = argparse.ArgumentParser(add_help=False)
        early.add_argument("--config", type=Path, default=None)
        early.add_argument("--camera", default=None)
        early.add_argument("--source", default=None)
        given, _ = early.parse_known_args(argv)
        path = config_path(given.config)
        if path is not None:
            config = load_config(path, options, CAMERA_TYPES)
            parser.set_defaults(**config.settings)
            if config.cameras and one_camera:
                camera = chosen_camera(config, given.camera, given.source)
                if camera is not None:
                    own = {key: getattr(camera, key) for key in ("source", *CAMERA_TYPES)}
                    parser.set_defaults(camera=camera.name, **{k: v for k, v in own.items() if v is not None})
    args = parser.parse_args(argv)
    args.config = config
    return args


def chosen_camera(config: Config, name: str | None, source: str | None) -> Camera | None:
    """The file's camera a one-camera script runs: --camera NAME's, else the only one; None with its own --source."""
    if name is not None and name in config.cameras:
        return config.cameras[name]
    if source is not None:
        return None
    names = ", ".join(config.cameras)
    if name is not None:
        raise FacerecError(f"{config.path} has no camera {name!r} (it has: {names}): give one of them or --source")
    if len(config.cameras) > 1:
        raise FacerecError(f"{config.path} has {len(config.cameras)} cameras ({names}): pick one with --camera NAME "
                           "(or run them all with serve.py --config)")
    return next(iter(config.cameras.values()))


def model_from_store(args: argparse.Namespace) -> None:
    """Fill in --model, when not given, with the profile the gallery at --embeddings was made with (the
    unknown faces beside it were kept with the same), else the default profile."""
    if args.model is not None:
        return
    from .stores import open_gallery

    with open_gallery(args.embeddings, missing_ok=True) as gallery:
        args.model = gallery.snapshot.profile if gallery.snapshot is not None else default_profile()


def profile_from_args(args: argparse.Namespace) -> Profile:
    return PROFILES[args.model]


def threshold_from_args(args: argparse.Namespace) -> float:
    """--threshold if given, else the profile's."""
    return profile_from_args(args).threshold if args.threshold is None else args.threshold


def models_from_args(args: argparse.Namespace, with_embedder: bool = True,
                     embedder_threads: int | None = None) -> Models:
    """Find (or download) at once, check and load the models the arguments name (the detector only without
    `with_embedder`: imagecapture.py takes no --embedding-model; `embedder_threads`: as load_models)."""
    return load_models(args.model, detector=args.detector, embedder=getattr(args, "embedding_model", None),
                       confidence=args.confidence, with_embedder=with_embedder,
                       precision=getattr(args, "precision", None) or FLOAT32, embedder_threads=embedder_threads)


# The options that chose the models: a hint for the next script repeats those that were given.
_MODEL_OPTIONS = ("detector", "embedding_model", "confidence", "precision")


def next_command(script: str, args: argparse.Namespace, *then: str, **options: object) -> str:
    """The command line that runs `script` next with the same models, ready to copy into a shell.

    `options` (e.g. embeddings=path) come first, as given; then --model unless it is the
    default, and --detector, --embedding-model and --confidence when they were given
    (imagecapture.py takes no --embedding-model); then the words `then` (a subcommand). Every word is
    quoted for the shell. The
    script is named as the running one was (`python extract_embeddings.py` from the project folder,
    `facerec-extract` once installed).
    """
    if installed():  # an installed command: the next one too
        words = [COMMANDS[script][1]]
    else:
        running = Path(sys.argv[0])
        folder = running.parent if (running.parent / script).is_file() else PROJECT_ROOT
        words = ["python", str(folder / script)]
    for name, value in options.items():
        words += [f"--{name.replace('_', '-')}", str(value)]
    if args.model != DEFAULT_PROFILE:
        words += ["--model", args.model]
    for name in _MODEL_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join([*words, *then])
