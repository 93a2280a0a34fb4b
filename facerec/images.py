"""Reading a photo from disk without trusting it: regular files only, size and pixels checked before decoding.

A photo is read only from a regular file (a FIFO would block, a device never
ends) of at most MAX_PHOTO_BYTES. Its width and height are read from its
header by Pillow before OpenCV decodes it, and an image of more than
MAX_PHOTO_PIXELS is refused: a 1 MB PNG can declare 32000 x 32000 pixels,
which OpenCV would decode into 3 GB. Files Pillow does not recognise as an
image are not decoded at all.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from .errors import FacerecError
from .fileio import FileTooLarge, NotRegularFile, read_regular_file

MAX_PHOTO_BYTES = 100 * 2**20  # a 100 MP JPEG is about 30 MiB; camera photos are far smaller
MAX_PHOTO_PIXELS = 100_000_000  # 100 MP: decoded as 8-bit BGR that is 300 MB

NOT_AN_IMAGE = "not a readable image"


class UnusablePhoto(Exception):
    """A photo that is skipped; the message is the reason, for the user."""


def _bytes_text(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def _read_regular_file(path: Path) -> bytes:
    """The content of `path` if it is a regular file of at most MAX_PHOTO_BYTES, else UnusablePhoto."""
    try:
        return read_regular_file(path, MAX_PHOTO_BYTES)
    except FileNotFoundError:
        raise UnusablePhoto("does not exist") from None
    except NotRegularFile as error:
        raise UnusablePhoto(f"not a regular file ({error.kind})") from None
    except FileTooLarge as error:
        size = "" if error.grew else f"{_bytes_text(error.size)}: "  # grown since fstat: its size is unknown
        raise UnusablePhoto(f"{size}larger than the {_bytes_text(MAX_PHOTO_BYTES)} a photo may be") from None
    except OSError as error:
        raise UnusablePhoto(f"cannot be read: {error.strerror or error}") from None


def _too_many_pixels_text(pixels: int, limit: int, what: str) -> str:
    return f"{pixels / 1e6:.0f} MP: more than the {limit / 1e6:.0f} MP {what} may have"


def _too_many_pixels(pixels: int, limit: int, what: str) -> UnusablePhoto:
    return UnusablePhoto(_too_many_pixels_text(pixels, limit, what))


def _check_header(data: bytes, limit: int = MAX_PHOTO_PIXELS, what: str = "a photo") -> None:
    """Refuse `data` unless Pillow reads an image header in it declaring at most `limit` pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
    except Image.DecompressionBombError as error:  # Pillow's own limit is above ours: this is too large
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        if pixels:
            raise _too_many_pixels(int(pixels[1]), limit, what) from None
        raise UnusablePhoto(f"too many pixels: {error}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UnusablePhoto(NOT_AN_IMAGE) from None
    if width * height > limit:
        raise _too_many_pixels(width * height, limit, what)


def load_photo(path: str | os.PathLike) -> np.ndarray:
    """The photo at `path` as 8-bit BGR (grey, 16-bit and alpha images converted), or UnusablePhoto saying why not."""
    return decode_photo(_read_regular_file(Path(path)))


def decode_photo(data: bytes, max_pixels: int = MAX_PHOTO_PIXELS, what: str = "a photo") -> np.ndarray:
    """An encoded photo (a file's bytes, an upload) as 8-bit BGR, its pixels checked in its header before
    decoding (at most `max_pixels`, `what` naming the limit); UnusablePhoto saying why not."""
    _check_header(data, max_pixels, what)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or not image.size:
        raise UnusablePhoto(NOT_AN_IMAGE)
    return image


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """The photo at `path` as 8-bit BGR, or None if it cannot be used (see load_photo for why)."""
    try:
        return load_photo(path)
    except UnusablePhoto:
        return None


def bgr_image(image: object, what: str = "the image") -> np.ndarray:
    """An image given to the library (Recogniser.recognise, follow's frames, verify) as 8-bit BGR, as the networks
    take it: grey (H×W or H×W×1) and BGRA are converted, bool, uint16 and float (0 to 1, clipped) scaled to
    uint8. FacerecError naming the shape and type of anything else: None (what cv2.imread gives for a file it
    cannot read), not an array, other channel counts or number types, no pixel, more than MAX_PHOTO_PIXELS."""
    if image is None:
        raise FacerecError(f"{what} is None, not an image (cv2.imread gives None for a file it cannot read)")
    if not isinstance(image, np.ndarray):
        raise FacerecError(f"{what} is a {type(image).__name__}, not an image: give a numpy array of H×W×3 "
                           "(BGR, OpenCV's convention)")
    described = f"{what} ({'×'.join(map(str, image.shape)) or 'a scalar'}, {image.dtype})"
    channels = image.shape[2] if image.ndim == 3 else 1 if image.ndim == 2 else 0
    if channels not in (1, 3, 4):
        raise FacerecError(f"{described} is not an image: give H×W×3 (BGR), H×W×4 (BGRA) or H×W (grey)")
    if not image.shape[0] or not image.shape[1]:
        raise FacerecError(f"{described} has no pixel")
    if image.shape[0] * image.shape[1] > MAX_PHOTO_PIXELS:
        raise FacerecError(f"{described} has "
                           + _too_many_pixels_text(image.shape[0] * image.shape[1], MAX_PHOTO_PIXELS, "an image"))
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise FacerecError(f"{described} holds numbers that are not finite")
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise FacerecError(f"{described} is not of a pixel type this takes: uint8, uint16, bool or float (0 to 1)")
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image

