"""Serve the web page: the browser's camera named live, enrolment and the gallery, for one gallery store."""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from pathlib import Path

from facerec.cli import (add_detector_arguments, add_embedder_arguments, add_matching_arguments, add_store_arguments,
                         add_threshold_argument, models_from_args, parser_for, profile_from_args)
from facerec.errors import FacerecError, main_guard
from facerec.follower import print_warning
from facerec.recognition import Recogniser
from facerec.stores import open_gallery
from facerec.video import open_source
from facerec.web.app import create_app
from facerec.web.engine import Engine
from facerec.web.protocol import FRAME_HEADER, MAX_UPLOAD_BYTES
from facerec.web.security import is_loopback, new_token


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


@main_guard
def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__, "python serve.py --model sface   # then open the URL it prints")
    add_store_arguments(parser, "; the page recognises with it and learns into it", sightings=True)
    parser.add_argument("--dataset", type=Path, default=Path("dataset"),
                        help="folder with one sub-folder of photos per person, where the page enrols (default: dataset)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this computer only); any other needs a token")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    parser.add_argument("--token", default=None,
                        help="access token required on every request (default: generated when --host is not loopback)")
    parser.add_argument("--source", default=None,
                        help="also show this webcam index, video file or stream URL, recognised by the server")
    add_threshold_argument(parser)
    add_matching_arguments(parser)
    add_detector_arguments(parser)
    add_embedder_arguments(parser)
    args = parser.parse_args(argv)
    if args.token is not None and len(args.token) < 8:
        raise FacerecError("--token must be at least 8 characters long")
    if not 0 <= args.port <= 65535:
        raise FacerecError(f"--port {args.port} is not a port number (0 to 65535)")

    if args.source is not None:
        open_source(args.source).close()  # a bad --source is refused now, not when a page first asks for it
    with contextlib.ExitStack() as cleanup:
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
        engine = Engine(recogniser, models.reloaded(), args.dataset, gallery.sightings)
        cleanup.enter_context(recogniser.watching_gallery())
        serve(engine, args)
    return 0


def serve(engine: Engine, args: argparse.Namespace) -> None:
    """Listen as the arguments say, print the page's URL, and serve until Ctrl-C."""
    import uvicorn  # only once the arguments are good: --help stays quick

    loopback = is_loopback(args.host)
    token = args.token or (None if loopback else new_token())
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"facerec web page: http://{shown_host}:{port}/" + (f"?token={token}" if token else ""), flush=True)
    if token and not args.token:
        print("the token was generated for this run: every request and WebSocket without it is refused", flush=True)
    config = uvicorn.Config(create_app(engine, token, loopback, args.source), log_level="warning",
                            ws_max_size=MAX_UPLOAD_BYTES + FRAME_HEADER.size, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
