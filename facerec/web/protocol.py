"""What travels between the page and the server: uploads, frames over the WebSocket, answers.

A frame on the WebSocket is one binary message: a 4-byte big-endian frame number
chosen by the page, then the JPEG (or PNG) bytes. The answer is one text message,
the JSON line recognize_video.py --json prints for a frame, with the page's frame
number, plus `dropped` (frames replaced by newer ones since the previous answer)
and `server_ms` (time spent on the frame). A named face of a followed video also carries `face`, the id
"Not PERSON" sends back (recent.py).
"""

from __future__ import annotations

import struct
import threading
from typing import Iterable, Sequence

import numpy as np

from ..images import NOT_AN_IMAGE, UnusablePhoto, decode_photo
from ..faces import Face
from .limits import MAX_DECODES

# Larger uploads are refused (413) before they are read: a 4K JPEG is about 3 MB.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# A WebSocket frame is a camera frame: a 4K JPEG fits; each open page holds at most a few of these.
MAX_FRAME_BYTES = 4 * 1024 * 1024
# A frame or an uploaded photo is a camera picture, not a 100 MP enrolment file (images.MAX_PHOTO_PIXELS):
# 16 MP holds 4K video and a 12 MP phone photo, and decodes into 48 MB (a 100 KB PNG can declare 100 MP).
MAX_IMAGE_PIXELS = 16_000_000
_decoding = threading.BoundedSemaphore(MAX_DECODES)
FRAME_HEADER = struct.Struct(">I")
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png"}


class Refusal(Exception):
    """A request the server refuses: an HTTP status and a message for the person or script that sent it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def image_format(data: bytes) -> str:
    """"jpg" or "png" from the file's first bytes; Refusal (415) for anything else."""
    if not data:
        raise Refusal(400, "the body is empty: send a JPEG or PNG image")
    for signature, name in IMAGE_SIGNATURES.items():
        if data.startswith(signature):
            return name
    raise Refusal(415, "the body is not a JPEG or PNG image")


def decode_image(data: bytes) -> np.ndarray:
    """The BGR image in a JPEG or PNG body; Refusal (400, 413 or 415) saying what is wrong."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise Refusal(413, f"the image is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    image_format(data)
    try:
        with _decoding:
            return decode_photo(data, MAX_IMAGE_PIXELS, "an uploaded image")
    except UnusablePhoto as why:
        reason = "truncated or damaged" if str(why) == NOT_AN_IMAGE else str(why)
        raise Refusal(400, f"the image cannot be decoded ({reason})") from None


def pack_frame(number: int, data: bytes) -> bytes:
    """A WebSocket frame message: the page's frame number, then the encoded image."""
    return FRAME_HEADER.pack(number & 0xFFFFFFFF) + data


def unpack_frame(message: bytes) -> tuple[int, bytes]:
    """(frame number, image bytes) of a frame message; Refusal (400) if it is too short to hold a number."""
    if len(message) < FRAME_HEADER.size:
        raise Refusal(400, f"a frame message starts with a {FRAME_HEADER.size}-byte frame number")
    (number,) = FRAME_HEADER.unpack_from(message)
    return number, message[FRAME_HEADER.size:]


def frame_record(number: int, recognised: Iterable[Face], face_ids: Sequence[str | None] = ()) -> dict:
    """The JSON line recognize_video.py --json prints for frame `number`; `face_ids` (RecentFaces.remember)
    add each named face's "face" id."""
    faces = [item.as_json() for item in recognised]
    for face, face_id in zip(faces, face_ids):
        if face_id is not None:
            face["face"] = face_id
    return {"frame": number, "faces": faces}
