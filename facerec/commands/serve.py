"""Serve the web page: the browser's camera named live, enrolment and the gallery, for one gallery store."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_event_arguments, add_matching_arguments,
                         add_store_arguments, add_threshold_argument, add_unknowns_arguments, events_from_args,
                         keeping_from_args, add_config_argument, event_urls_from_environment, models_from_args,
                         parse_arguments, parser_for, positive_int, profile_from_args)
from facerec.config import Camera
from facerec.embedding import usable_cores
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.events import Presence, close_events, log_visits
from facerec.follower import print_warning
from facerec.recognition import Recogniser
from facerec.service import Service, camera_warning, log_line
from facerec.stores import SightingLog, open_gallery
from facerec.text import plural
from facerec.unknowns.strangers import KeptStrangers
from facerec.tracking import DEFAULT_EVERY
from facerec.video import SourceSpec, open_source
from facerec.web.app import create_app
from facerec.web.engine import Engine
from facerec.web.limits import (ACCEPT_BURST, WebSocketProtocol, connection_cap, give_back_freed_memory,
                                http_protocol, limit_malloc_arenas, raise_file_limit)
from facerec.web.protocol import FRAME_HEADER, MAX_FRAME_BYTES
from facerec.web.quietlog import quiet
from facerec.web.security import is_loopback, new_token

TOKEN_VARIABLE = "FACEREC_TOKEN"


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound and listening on host:port (port 0: a free one), or FacerecError saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        raise FacerecError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def build_parser() -> argparse.ArgumentParser:
    """The command's options (also what its configuration file's keys may be)."""
    parser = parser_for(__doc__, "python serve.py --model sface   # then open the URL it prints")
    add_store_arguments(parser, "; the page recognises with it and learns into it", sightings=True)
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="folder with one sub-folder of photos per person, where the page enrols (default: dataset)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only); any other needs a token")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    parser.add_argument("--token", default=None,
                        help="access token required on every request (default: generated when --host is not "
                             "loopback); shown to every user of this computer by `ps`: prefer --token-file or "
                             f"${TOKEN_VARIABLE}")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="read the access token from the first line of this file")
    parser.add_argument("--source", default=None,
                        help="also show this webcam index, video file or stream URL, recognised by the server")
    add_event_arguments(parser)
    add_unknowns_arguments(parser)
    add_threshold_argument(parser)
    add_matching_arguments(parser)
    add_detector_arguments(parser)
    parser.add_argument("--every", type=positive_int, default=DEFAULT_EVERY, metavar="N",
                        help=f"embed a followed face of a --source or camera again at least every N frames (default: "
                             f"{DEFAULT_EVERY}; as recognize_video.py --every)")
    add_embedder_arguments(parser)
    add_config_argument(parser, "every [cameras.NAME] table is a camera served at once, reconnected when it drops "
                                "(--source instead serves that one)")
    return parser


@command_main
def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(build_parser(), argv)
    args.token = given_token(args)
    if not 0 <= args.port <= 65535:
        raise FacerecError(f"--port {args.port} is not a port number (0 to 65535)")

    cameras = served_cameras(args)
    limit_malloc_arenas(usable_cores())  # before the models' and cameras' threads (docs/service.md, "How it scales")
    if (args.mqtt or args.webhook or args.log_sightings) and not cameras:
        raise FacerecError("--mqtt, --webhook and --log-sightings tell who arrives in the server's own video: "
                           "give --source too (or cameras in --config)")
    if cameras:
        event_urls_from_environment(args)  # $FACEREC_MQTT_URL, $FACEREC_WEBHOOK_URL: only where there is video
    if args.source is not None:
        open_source(args.source).close()  # a bad --source is refused now, not when a page first asks for it
    service_mode = args.source is None and bool(cameras)
    if service_mode and any(camera.confidence is not None for camera in cameras):
        # one detector for every camera, at the lowest confidence any asks for; each keeps its own faces
        asked = [camera.confidence for camera in cameras if camera.confidence is not None]
        args.confidence = min(asked + ([args.confidence] if args.confidence is not None else
                                       [profile_from_args(args).confidence]))
    with contextlib.ExitStack() as cleanup:
        # connected (and checked) first: a wrong URL, broker or login is said at once
        events = None if service_mode else events_from_args(args, print_warning)
        cleanup.callback(lambda: close_events(events))  # the Presence `events` is at the end (log_visits may make it)
        gallery = cleanup.enter_context(open_gallery(
            args.embeddings, profile=profile_from_args(args).name, missing_ok=True,
            sightings_camera=args.camera if args.log_sightings and not service_mode else None))
        if not service_mode:
            events = log_visits(events, gallery.sightings, args.camera, args.away_seconds)
            if events is not None:
                cleanup.callback(events.end)  # the last departures reach the sightings log before the gallery closes it
        models = models_from_args(args)
        if gallery.snapshot is None:
            print(f"note: {gallery.location} holds no gallery yet: everyone is Unknown until you enrol someone "
                  "from the page", file=sys.stderr)
        recogniser = Recogniser(models, gallery, threshold=args.threshold, match=args.match,
                                min_probability=args.min_probability, every=args.every, on_problem=print_warning,
                                margin=args.margin)
        # learning has its own networks (OpenCV's are not shared between threads), loaded at the first enrolment
        engine = Engine(recogniser, models.reloaded, args.dataset,
                        keeping_from_args(args, cleanup, print_warning, events, models.detector))
        cleanup.enter_context(recogniser.watching_gallery())
        service = None
        if service_mode:
            def events_for(camera: str) -> Presence | None:
                presence = events_from_args(args, camera_warning(camera), camera)
                if presence is not None and engine.keeping is not None:  # strangers told by their kept group
                    presence.strangers = KeptStrangers(engine.keeping.store, camera_warning(camera))
                return presence

            def sightings_for(camera: str) -> SightingLog | None:
                return gallery.store.sighting_log(camera) if args.log_sightings else None

            # a set of networks a usable core (at most one a camera): one set recognises one frame at a time
            for _ in range(min(usable_cores(), len(cameras)) - 1):
                engine.add_networks(models.reloaded())
            service = Service(engine, cameras, args.every, events_for, sightings_for, args.away_seconds)
            cleanup.callback(service.close)  # after stop: the events are delivered, the sightings written
            cleanup.callback(service.stop)
            log_line(None, f"serving {plural(len(cameras), 'camera')}: {', '.join(camera.name for camera in cameras)} "
                           f"({plural(engine.networks.size, 'set')} of networks)")
        serve(engine, args, events, service)
    return 0


def served_cameras(args: argparse.Namespace) -> list[Camera]:
    """--source as the one camera (named --camera), else the configuration's cameras (a file source checked now:
    a camera that is a stream may be down at the start, and is waited for)."""
    if args.source is not None:
        return [Camera(args.camera, args.source)]
    cameras = list(args.config.cameras.values()) if args.config is not None else []
    for camera in cameras:
        path = SourceSpec(camera.source).file_path
        if path is not None and not path.is_file():
            raise FacerecError(f"{args.config.path}: camera {camera.name}: source {camera.source!r} is neither a "
                               "camera index, an existing file nor a URL")
    return cameras


def given_token(args: argparse.Namespace) -> str | None:
    """The access token from --token, else --token-file, else $FACEREC_TOKEN; None if none is given."""
    if args.token is not None:
        token, where = args.token, "--token"
    elif args.token_file is not None:
        try:
            lines = args.token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise FacerecError(f"cannot read --token-file {args.token_file}: {reason}") from None
        token, where = (lines[0].strip() if lines else ""), f"the first line of --token-file {args.token_file}"
    elif os.environ.get(TOKEN_VARIABLE):
        token, where = os.environ[TOKEN_VARIABLE].strip(), f"${TOKEN_VARIABLE}"
    else:
        return None
    if len(token) < 8 or not token.isascii() or not token.isprintable():
        raise FacerecError(f"{where}: the token must be at least 8 characters long (printable ASCII)")
    return token


def serve(engine: Engine, args: argparse.Namespace, events: Presence | None = None,
          service: Service | None = None) -> None:
    """Listen as the arguments say, print the page's URL, and serve until Ctrl-C (`events`, `service`: see
    create_app). The service ends on SIGTERM or SIGINT with exit 0, having flushed (docs/service.md)."""
    import uvicorn  # only once the arguments are good: --help stays quick

    loopback = is_loopback(args.host)
    token = args.token or (None if loopback else new_token())
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"facerec web page: http://{shown_host}:{port}/" + (f"?token={token}" if token else ""), flush=True)
    if token and not args.token:
        print("the token was generated for this run: every request and WebSocket without it is refused", flush=True)
    give_back_freed_memory()  # frames of closed WebSockets: measured 60 MB kept for 16 of 4 MB without it
    app = create_app(engine, token, loopback, args.source, events, args.camera, service)
    config = uvicorn.Config(app, log_level="warning",
                            http=http_protocol(connection_cap(raise_file_limit())), backlog=ACCEPT_BURST,
                            ws=WebSocketProtocol, ws_max_size=MAX_FRAME_BYTES + FRAME_HEADER.size,
                            timeout_graceful_shutdown=2,
                            proxy_headers=False)  # the peer's own address: never X-Forwarded-For (issue 31 item 3)
    quiet("asyncio", "uvicorn.error")  # after the Config: it sets up uvicorn's logging
    server = uvicorn.Server(config)
    if service is None:
        server.run(sockets=[sock])
        return
    # uvicorn stops gracefully on SIGTERM and SIGINT, then raises the signal again for the default action (killed
    # by SIGTERM, KeyboardInterrupt): a service that stopped as asked ends normally, flushed by the caller.
    stopping: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: stopping.append(signum))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    log_line(None, f"stopping ({signal.Signals(stopping[0]).name})" if stopping else "stopping")


if __name__ == "__main__":
    sys.exit(main())
