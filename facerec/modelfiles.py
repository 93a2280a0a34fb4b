"""Model files on disk: find them, check them against the catalogue, download missing ones.

Only the default folder (`models/` in the project, or $FACEREC_MODELS_DIR) is
ever written to. A folder or path the user names is read only: a missing file
there is an error listing what was expected. Downloads show a progress bar,
are checked against the catalogue's checksum and are renamed into place only
when complete. $FACEREC_MODEL_MIRROR (a base URL) replaces the publishers'
addresses, for mirrors and for tests.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from .catalogue import ModelFile, Network, all_model_files
from .errors import FacerecError
from .fileio import atomic_writer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_SECONDS = 30


def default_models_dir() -> Path:
    """The folder where missing model files are downloaded to."""
    return Path(os.environ.get("FACEREC_MODELS_DIR") or PROJECT_ROOT / "models")


def download_url(model_file: ModelFile) -> str:
    """The address to fetch `model_file` from: its publisher's, or the mirror's if one is set."""
    mirror = os.environ.get("FACEREC_MODEL_MIRROR")
    return f"{mirror.rstrip('/')}/{model_file.filename}" if mirror else model_file.url


def _hashers(model_file: ModelFile) -> dict[str, "hashlib._Hash"]:
    expected = {"sha256": model_file.sha256, "md5": model_file.md5}
    return {name: hashlib.new(name) for name, digest in expected.items() if digest}


def _content_problem(model_file: ModelFile, size: int, hashers: dict) -> str | None:
    """What is wrong with content of this size and these digests, or None if it is the catalogued file."""
    if model_file.size is not None and size != model_file.size:
        return f"it has {size:,} bytes where {model_file.size:,} are expected"
    for name, hasher in hashers.items():
        expected = getattr(model_file, name)
        if hasher.hexdigest() != expected:
            return f"its {name} is {hasher.hexdigest()}, expected {expected}"
    return None


def verify_model_file(path: Path, model_file: ModelFile) -> None:
    """Raise FacerecError if the file at `path` is not the catalogued file (truncated, corrupt, other)."""
    hashers = _hashers(model_file)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    problem = _content_problem(model_file, size, hashers)
    if problem:
        raise FacerecError(
            f"model file {path} is damaged or not the expected file: {problem}. "
            f"Delete it and run again to download it, or fetch {download_url(model_file)} by hand to {path}"
        )


def download_model_file(model_file: ModelFile, destination: Path, quiet: bool = False) -> None:
    """Fetch `model_file` to `destination`, checking its checksum; on any failure nothing is left behind."""
    from tqdm import tqdm

    url = download_url(model_file)
    by_hand = f"download {url} by hand and save it as {destination}"
    hashers = _hashers(model_file)
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                atomic_writer(destination) as handle, \
                tqdm(total=int(response.headers.get("Content-Length") or 0) or model_file.size,
                     unit="B", unit_scale=True, desc=model_file.filename, disable=quiet,
                     file=sys.stderr) as bar:
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                bar.update(len(chunk))
            problem = _content_problem(model_file, size, hashers)
            if problem:  # raising inside atomic_writer discards the temporary file
                raise FacerecError(f"the download of {model_file.filename} from {url} is corrupt: {problem}; {by_hand}")
    except urllib.error.HTTPError as error:
        raise FacerecError(f"cannot download {model_file.filename} from {url}: HTTP {error.code} {error.reason}; {by_hand}") from None
    except urllib.error.URLError as error:
        raise FacerecError(f"cannot download {model_file.filename} from {url}: {error.reason}; {by_hand}") from None
    except (OSError, ValueError) as error:  # timeouts, connection resets, bad URLs
        raise FacerecError(f"cannot download {model_file.filename} from {url}: {error}; {by_hand}") from None


def checked_path(path: Path) -> Path:
    """Verify `path` if its name is a catalogued file's; other names are the user's own models."""
    model_file = all_model_files().get(path.name)
    if model_file is not None:
        verify_model_file(path, model_file)
    return path


def network_files(candidates: Sequence[Network], folder: Path | None) -> tuple[Network, list[Path]]:
    """The first candidate network whose files are all in `folder`, with their checked paths.

    With `folder` None the default folder is used, and if no candidate is
    complete there the first candidate's missing files are downloaded.
    """
    may_download = folder is None
    folder = default_models_dir() if folder is None else Path(folder)
    if not may_download and not folder.is_dir():
        raise FacerecError(f"model folder {folder} does not exist")
    for network in candidates:
        paths = [folder / model_file.filename for model_file in network.files]
        if all(path.is_file() for path in paths):
            return network, [checked_path(path) for path in paths]
    if not may_download:
        expected = " or ".join(" + ".join(f.filename for f in network.files) for network in candidates)
        raise FacerecError(f"model folder {folder} does not hold the files expected: {expected}")
    network = candidates[0]
    return network, [model_path(model_file, None) for model_file in network.files]


def model_path(model_file: ModelFile, path: Path | None) -> Path:
    """The checked path of a single-file model: `path` as given (never written), or the default one (downloaded if missing)."""
    if path is not None:
        if not Path(path).is_file():
            raise FacerecError(f"model file {path} does not exist (expected {model_file.filename}, from {model_file.url})")
        return checked_path(Path(path))
    destination = default_models_dir() / model_file.filename
    if not destination.is_file():
        print(f"downloading {model_file.filename} to {destination.parent}/", file=sys.stderr)
        download_model_file(model_file, destination)  # checked while it downloads
        return destination
    return checked_path(destination)
