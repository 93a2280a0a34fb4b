"""Serve the web page: the browser's camera named live, enrolment and the gallery, for one gallery store."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_event_arguments, add_matching_arguments,
                         add_store_arguments, add_threshold_argument, add_unknowns_arguments, events_from_args,
                         keeping_from_args, models_from_args, parser_for, profile_from_args)
from facerec.commands import command_main
from facerec.errors import FacerecError
from facerec.events import Presence, close_events
from facerec.follower import print_warning
from facerec.recognition import Recogniser
from facerec.stores import open_gallery
from facerec.video import open_source
from facerec.web.app import create_app
from facerec.web.engine import Engine
from facerec.web.limits import (ACCEPT_BURST, WebSocketProtocol, connection_cap, give_back_freed_memory,
                                http_protocol, raise_file_limit)
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


@command_main
def main(argv: list[str] | None = None) -> int:
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
    add_embedder_arguments(parser)
    args = parser.parse_args(argv)
    args.token = given_token(args)
    if not 0 <= args.port <= 65535:
        raise FacerecError(f"--port {args.port} is not a port number (0 to 65535)")

    if (args.mqtt or args.webhook) and args.source is None:
        raise FacerecError("--mqtt and --webhook tell who arrives in the server's own video: give --source too")
    if args.source is not None:
        open_source(args.source).close()  # a bad --source is refused now, not when a page first asks for it
    with contextlib.ExitStack() as cleanup:
        # connected (and checked) first: a wrong URL, broker or login is said at once
        events = events_from_args(args, print_warning)
        cleanup.callback(close_events, events)
        gallery = cleanup.enter_context(open_gallery(args.embeddings, profile=profile_from_args(args).name,
                                                     missing_ok=True,
                                                     sightings_camera=args.camera if args.log_sightings else None))
        models = models_from_args(args)
        if gallery.snapshot is None:
            print(f"note: {gallery.location} holds no gallery yet: everyone is Unknown until you enrol someone "
                  "from the page", file=sys.stderr)
        recogniser = Recogniser(models, gallery, threshold=args.threshold, match=args.match,
                                min_probability=args.min_probability, on_problem=print_warning)
        # learning has its own networks (OpenCV's are not shared between threads), from the files just found and checked
        engine = Engine(recogniser, models.reloaded(), args.dataset, gallery.sightings,
                        keeping_from_args(args, cleanup, print_warning, events))
        cleanup.enter_context(recogniser.watching_gallery())
        serve(engine, args, events)
    return 0


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


def serve(engine: Engine, args: argparse.Namespace, events: Presence | None = None) -> None:
    """Listen as the arguments say, print the page's URL, and serve until Ctrl-C (`events`: see create_app)."""
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
    config = uvicorn.Config(create_app(engine, token, loopback, args.source, events, args.camera), log_level="warning",
                            http=http_protocol(connection_cap(raise_file_limit())), backlog=ACCEPT_BURST,
                            ws=WebSocketProtocol, ws_max_size=MAX_FRAME_BYTES + FRAME_HEADER.size,
                            timeout_graceful_shutdown=2)
    quiet("asyncio", "uvicorn.error")  # after the Config: it sets up uvicorn's logging
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
