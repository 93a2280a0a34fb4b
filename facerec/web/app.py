"""The web application: the pages, the HTTP API and the live WebSocket, over one Engine.

Routes (every answer of /api is JSON; a refusal is {"error": "..."} with its status):
    GET  /                        the live page          GET /gallery   the gallery page
    POST /api/recognize           JPEG/PNG body -> one recognize_video.py --json line
    GET  /api/people              the gallery: people, their photos and each photo's status
    GET  /api/people/NAME/photos/FILE, DELETE /api/people/NAME, DELETE /api/people/NAME/photos/FILE
    POST /api/enrolment {"name"}  hold the enrolment -> {"key"}; DELETE /api/enrolment cancels it
    POST /api/enrolment/photos    a photo for the held enrolment (header X-Enrolment: key)
    POST /api/learn, GET /api/learn   learn the dataset (header X-Enrolment ends that enrolment); progress
    POST /api/negatives {"face", "name"}   "Not PERSON": the face (an id of a live answer) is not NAME
    WS   /ws                      frames in, answers out (protocol.py)
    GET  /video?camera=NAME       the annotated --source (or camera NAME of serve.py --config) as MJPEG
    GET  /api/health              each camera's state, frames, fps, last frame, reconnects: 200 if all run, else 503
    GET  /metrics                 the service's counters in Prometheus' text format (facerec/service/metrics.py)
    GET  /unknown                 the Unknown tab (serve.py --keep-unknowns: 404 from its API without)
    GET  /api/unknowns            the groups to review (unknowns.py list --json's objects, "crops") and "people"
    GET  /api/unknowns/GROUP/faces/N   the group's Nth best crop (0: the best), from the unknown store only
    POST /api/unknowns/search     a photo (JPEG or PNG) of one face: {"found": unknowns.py search --json's list}
    POST /api/unknowns/GROUP/name {"person"}, POST .../ignore, POST .../merge {"other": GROUP}, DELETE .../GROUP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import mimetypes
import time
from pathlib import Path
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..events import Presence
from ..service import Service
from ..service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..tracking import Tracker
from ..unknowns.keeping import UnknownKeeper
from .engine import Engine, shown
from .limits import ClientSlots, Turns
from .protocol import (MAX_FRAME_BYTES, MAX_IMAGE_PIXELS, MAX_UPLOAD_BYTES, Refusal, decode_image, frame_record,
                       unpack_frame)
from .security import AccessGuard
from .source import BOUNDARY, SourceStream

STATIC = Path(__file__).parent / "static"
ENROLMENT_HEADER = "x-enrolment"


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes MAX_UPLOAD_BYTES, and (400) when empty."""
    limit_mb = MAX_UPLOAD_BYTES // (1024 * 1024)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise Refusal(413, f"the upload is larger than {limit_mb} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise Refusal(413, f"the upload is larger than {limit_mb} MB")
        chunks.append(chunk)
    if not size:
        raise Refusal(400, "the body is empty: send a JPEG or PNG image")
    return b"".join(chunks)


async def read_json(request: Request) -> dict:
    try:
        content = json.loads(await read_body(request))
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "the body is not JSON") from None
    except RecursionError:  # nested deeper than the parser goes (a body of 100 KB holds 50,000 levels)
        raise Refusal(400, "the body is JSON nested too deeply") from None
    if not isinstance(content, dict):
        raise Refusal(400, "the body must be a JSON object")
    return content


def create_app(engine: Engine, token: str | None = None, loopback: bool = True, source: str | None = None,
               events: Presence | None = None, camera: str = "", service: Service | None = None) -> AccessGuard:
    """The ASGI application serving `engine`; `token` (required off loopback) guards every request;
    `events` hears who arrives and leaves in `source` (which then runs from the start); `camera` names
    `source` where its Unknown tracks are kept (a page's are kept as "page ADDRESS"). With `service`
    (serve.py --config) its cameras are the sources, stopped with the server."""
    streams: dict[str, SourceStream] = (dict(service.cameras) if service is not None
                                        else {camera: SourceStream(source, engine, events, camera)} if source else {})
    turns, live_pages = Turns(), ClientSlots()

    async def recognise_bytes(data: bytes, number: int, tracker: Tracker | None = None, client: str = "",
                              keeper: UnknownKeeper | None = None) -> dict:
        def work() -> dict:
            faces = engine.recognise(decode_image(data), tracker, number, keeper)
            return frame_record(number, faces, engine.recent.remember(faces, tracker))

        async with turns.of(client):  # a client sending many images waits for its own, not everyone
            return await run_in_threadpool(work)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def gallery_page(request: Request) -> Response:
        return FileResponse(STATIC / "gallery.html")

    async def info(request: Request) -> Response:
        return JSONResponse({"profile": engine.gallery.profile, "threshold": engine.threshold,
                             "people": len(engine.gallery.people), "source": source or (True if streams else None),
                             "cameras": list(streams), "embedder": engine.recogniser.embedder.description(),
                             "max_upload_bytes": MAX_UPLOAD_BYTES, "max_frame_bytes": MAX_FRAME_BYTES,
                             "max_image_pixels": MAX_IMAGE_PIXELS})

    async def recognize(request: Request) -> Response:
        record = await recognise_bytes(await read_body(request), 0, client=client_address(request))
        return Response(json.dumps(record) + "\n", media_type="application/json")

    async def people(request: Request) -> Response:
        listing = await run_in_threadpool(engine.people)
        return JSONResponse({"profile": engine.gallery.profile, "embeddings": shown(engine.store.location),
                             "people": listing})

    async def photo(request: Request) -> Response:
        name, file = request.path_params["name"], request.path_params["file"]
        data = await run_in_threadpool(engine.photo, name, file)
        return Response(data, media_type=mimetypes.guess_type(file)[0] or "application/octet-stream",
                        headers={"Cache-Control": "no-store"})

    async def delete_person(request: Request) -> Response:
        await run_in_threadpool(engine.delete_person, request.path_params["name"])
        return JSONResponse({"deleted": request.path_params["name"]})

    async def delete_photo(request: Request) -> Response:
        name, file = request.path_params["name"], request.path_params["file"]
        await run_in_threadpool(engine.delete_photo, name, file)
        return JSONResponse({"deleted": f"{name}/{file}"})

    async def start_enrolment(request: Request) -> Response:
        name = (await read_json(request)).get("name")
        if not isinstance(name, str):
            raise Refusal(400, 'send {"name": "..."}')
        key = await run_in_threadpool(engine.start_enrolment, name)
        return JSONResponse({"name": name, "key": key}, status_code=201)

    async def cancel_enrolment(request: Request) -> Response:
        await run_in_threadpool(engine.cancel_enrolment, request.headers.get(ENROLMENT_HEADER, ""))
        return JSONResponse({"cancelled": True})

    async def enrolment_photo(request: Request) -> Response:
        data = await read_body(request)
        file, count = await run_in_threadpool(engine.add_photo, request.headers.get(ENROLMENT_HEADER, ""), data)
        return JSONResponse({"saved": file, "photos": count}, status_code=201)

    async def learn(request: Request) -> Response:
        progress = await run_in_threadpool(engine.learn, request.headers.get(ENROLMENT_HEADER) or None)
        return JSONResponse(progress.as_json(), status_code=202)

    async def not_person(request: Request) -> Response:
        content = await read_json(request)
        face, name = content.get("face"), content.get("name")
        if not isinstance(face, str) or not isinstance(name, str):
            raise Refusal(400, 'send {"face": "<the id of a named face in a live answer>", "name": "<its name>"} '
                               '(and "force": true to keep a face that looks like that person themself)')
        kept = await run_in_threadpool(engine.not_person, face, name, content.get("force") is True)
        return JSONResponse({"not": shown(kept.person), "negatives": kept.negatives}, status_code=201)

    async def learn_progress(request: Request) -> Response:
        return JSONResponse(engine.progress.as_json())

    def chosen_stream(request: Request) -> SourceStream:
        name = request.query_params.get("camera")
        if not streams:
            raise Refusal(404, "no --source was given to serve.py")
        if name is None:
            return next(iter(streams.values()))
        if name not in streams:
            raise Refusal(404, f"no camera {shown(name)}: the cameras are {', '.join(streams)}")
        return streams[name]

    async def video(request: Request) -> Response:
        stream = chosen_stream(request)

        async def parts():
            stream.watch()
            try:
                number = 0
                while True:
                    number, jpeg = await stream.next_jpeg(number)
                    if jpeg is not None:
                        yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                               .encode() + jpeg + b"\r\n")
                    elif stream.problem:
                        return
            finally:
                stream.leave()

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})

    async def unknown_page(request: Request) -> Response:
        return FileResponse(STATIC / "unknown.html")

    async def unknowns(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(engine.unknown_groups))

    async def search_unknowns(request: Request) -> Response:
        image = decode_image(await read_body(request))
        return JSONResponse({"found": await run_in_threadpool(engine.search_unknowns, image)})

    async def unknown_crop(request: Request) -> Response:
        group, number = request.path_params["group"], request.path_params["number"]
        data = await run_in_threadpool(engine.unknown_crop, group, number)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def name_unknown(request: Request) -> Response:
        person = (await read_json(request)).get("person")
        if not isinstance(person, str):
            raise Refusal(400, 'send {"person": "..."}')
        return JSONResponse(await run_in_threadpool(engine.name_unknown, request.path_params["group"], person))

    async def ignore_unknown(request: Request) -> Response:
        await run_in_threadpool(engine.ignore_unknown, request.path_params["group"])
        return JSONResponse({"ignored": request.path_params["group"]})

    async def merge_unknowns(request: Request) -> Response:
        other = (await read_json(request)).get("other")
        if not isinstance(other, int) or isinstance(other, bool):
            raise Refusal(400, 'send {"other": GROUP}, the id of the group that joins this one')
        await run_in_threadpool(engine.merge_unknowns, request.path_params["group"], other)
        return JSONResponse({"merged": other, "into": request.path_params["group"]})

    async def forget_unknown(request: Request) -> Response:
        faces = await run_in_threadpool(engine.forget_unknown, request.path_params["group"])
        return JSONResponse({"forgotten": request.path_params["group"], "faces": faces})

    async def source_problem(request: Request) -> Response:
        stream = chosen_stream(request) if streams else None
        return JSONResponse({"source": source, "problem": stream.problem if stream else ""})

    async def health(request: Request) -> Response:
        if service is None:
            raise Refusal(404, "health is the service's: serve.py --config with cameras")
        state, running = service.health()
        return JSONResponse(state, status_code=200 if running else 503)

    async def metrics(request: Request) -> Response:
        if service is None:
            raise Refusal(404, "metrics are the service's: serve.py --config with cameras")
        return Response(service.metrics.text(), media_type=METRICS_CONTENT_TYPE)

    async def live(websocket: WebSocket) -> None:
        client = client_address(websocket)
        refusal = live_pages.refusal(client)
        if refusal:
            status, message = refusal
            await websocket.send_denial_response(JSONResponse({"error": message}, status_code=status))
            return
        try:
            await websocket.accept()
            await LiveSession(websocket, functools.partial(recognise_bytes, client=client),
                              engine.keeper(f"page {client}")).run()
        finally:
            live_pages.release(client)

    async def refused(request: Request, error: Refusal) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> Response:  # 404, 405: JSON like every answer
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    routes = [
        Route("/", page), Route("/gallery", gallery_page), Route("/api/info", info),
        Route("/api/recognize", recognize, methods=["POST"]), Route("/api/people", people),
        Route("/api/people/{name}/photos/{file}", photo), Route("/api/people/{name}", delete_person, methods=["DELETE"]),
        Route("/api/people/{name}/photos/{file}", delete_photo, methods=["DELETE"]),
        Route("/api/enrolment", start_enrolment, methods=["POST"]),
        Route("/api/enrolment", cancel_enrolment, methods=["DELETE"]),
        Route("/api/enrolment/photos", enrolment_photo, methods=["POST"]),
        Route("/api/learn", learn, methods=["POST"]), Route("/api/learn", learn_progress),
        Route("/api/negatives", not_person, methods=["POST"]),
        Route("/video", video), Route("/api/source", source_problem),
        Route("/api/health", health), Route("/metrics", metrics),
        Route("/unknown", unknown_page), Route("/api/unknowns", unknowns),
        Route("/api/unknowns/search", search_unknowns, methods=["POST"]),
        Route("/api/unknowns/{group:int}/faces/{number:int}", unknown_crop),
        Route("/api/unknowns/{group:int}/name", name_unknown, methods=["POST"]),
        Route("/api/unknowns/{group:int}/ignore", ignore_unknown, methods=["POST"]),
        Route("/api/unknowns/{group:int}/merge", merge_unknowns, methods=["POST"]),
        Route("/api/unknowns/{group:int}", forget_unknown, methods=["DELETE"]),
        WebSocketRoute("/ws", live), Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if service is not None:
            await run_in_threadpool(service.stop)  # the cameras' readers end, their tracks leave
        for stream in streams.values():
            stream.stop()

    # starlette types every handler as taking any Exception; each of ours takes only the one it is registered for
    app = Starlette(routes=routes, exception_handlers={Refusal: refused, HTTPException: http_error},  # type: ignore[dict-item]
                    lifespan=lifespan)
    return AccessGuard(app, token, loopback)


def client_address(connection: Request | WebSocket) -> str:
    """The client's address: its limits (limits.py) are counted per address."""
    return connection.client.host if connection.client else ""


class LiveSession:
    """One page's WebSocket: a reader keeps only the newest frame, a worker answers it; older frames are dropped."""

    def __init__(self, websocket: WebSocket, recognise_bytes, keeper: UnknownKeeper | None = None) -> None:
        self.websocket = websocket
        self.recognise_bytes = recognise_bytes
        self.tracker = Tracker()  # this page's faces followed from frame to frame, as recognize_video.py does
        self.keeper = keeper  # serve.py --keep-unknowns: this page's Unknown tracks
        self.newest: bytes | None = None
        self.dropped = 0
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        worker = asyncio.create_task(self.answer())
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None:
                    data = b""  # a text message is not a frame: the worker says so
                if self.newest is not None:
                    self.dropped += 1
                self.newest = data
                self.arrived.set()
        except WebSocketDisconnect:
            return
        finally:
            worker.cancel()
            if self.keeper is not None:
                self.keeper.end()  # the page is gone: so are its tracks

    async def answer(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            message, self.newest = self.newest, None
            if message is None:  # never: a frame is stored before the event is set
                continue
            dropped, self.dropped = self.dropped, 0
            started = time.perf_counter()
            number = None
            try:
                number, data = unpack_frame(message)
                reply = await self.recognise_bytes(data, number, self.tracker, keeper=self.keeper)
            except Refusal as error:
                reply = {"frame": number, "error": error.message}
            reply["dropped"] = dropped
            reply["server_ms"] = round((time.perf_counter() - started) * 1000, 1)
            try:
                await self.websocket.send_text(json.dumps(reply))
            except Exception:  # the page went away while its frame was worked on
                return
