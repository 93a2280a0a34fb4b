"""Model files on disk: find them, check them against the catalogue, download missing ones.

Only the default folder (default_models_dir: $FACEREC_MODELS_DIR, else `models/`
in the project, or for an installed package ./models or the user's cache folder) is
ever written to. A folder or path the user names is read only: a missing file
there is an error listing what was expected. All the files a run needs are
looked for first; every missing one is then downloaded, and one error lists
every download that failed with the ways out. Downloads show a progress bar,
are checked against the catalogue's checksum and are renamed into place only
when complete. $FACEREC_MODEL_MIRROR (a base URL) replaces the publishers'
addresses, for mirrors and for tests.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from .catalogue import PROFILES, ModelFile, Network, Profile, all_model_files
from .errors import FacerecError
from .fileio import atomic_writer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_SECONDS = 30


def in_checkout() -> bool:
    """Whether the package runs from the project's folder (its scripts beside it), not installed by pip."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "recognize_video.py").is_file()


def default_models_dir() -> Path:
    """The folder where model files are looked for and missing ones downloaded to: $FACEREC_MODELS_DIR; else,
    from a checkout, its models/; else (installed) ./models if the current folder has one, else the
    user's cache folder, $XDG_CACHE_HOME/facerec/models (~/.cache/facerec/models)."""
    if os.environ.get("FACEREC_MODELS_DIR"):
        return Path(os.environ["FACEREC_MODELS_DIR"])
    if in_checkout():
        return PROJECT_ROOT / "models"
    if Path("models").is_dir():
        return Path("models")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facerec" / "models"


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


def _identity(model_file: ModelFile) -> str:
    """What pins a file's content, for a person fetching it by hand: `sha256 ..., 28,092 bytes`."""
    digest = f"sha256 {model_file.sha256}" if model_file.sha256 else f"md5 {model_file.md5}"
    return f"{digest}, {model_file.size:,} bytes" if model_file.size is not None else digest


def verify_model_file(path: Path, model_file: ModelFile, downloadable: bool = False) -> None:
    """Raise FacerecError if the file at `path` is not the catalogued file (truncated, corrupt, other).

    `downloadable` says `path` is in the default folder, where deleting it makes the next run download it;
    a file the user named is never downloaded, so the message says where to get the right one instead.
    """
    hashers = _hashers(model_file)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    problem = _content_problem(model_file, size, hashers)
    if problem:
        fix = (f"Delete it and run again to download it, or fetch {model_file.url} by hand to {path}" if downloadable
               else f"Replace it with {model_file.url} ({_identity(model_file)})")
        raise FacerecError(f"model file {path} is damaged or not the expected file: {problem}. {fix}")


class DownloadFailed(FacerecError):
    """A download that did not give the catalogued file; `reason` says why in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def download_model_file(model_file: ModelFile, destination: Path, quiet: bool = False) -> None:
    """Fetch `model_file` to `destination`, checking its checksum; on failure (DownloadFailed) nothing is left."""
    from tqdm import tqdm

    url = download_url(model_file)
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
                raise DownloadFailed("", f"the download is corrupt: {problem}")
    except DownloadFailed as failure:
        reason = failure.reason
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        reason = str(error.reason)
    except (OSError, ValueError) as error:  # timeouts, connection resets, bad URLs
        reason = str(error)
    else:
        return
    # by hand, the publisher's address: a mirror that failed is no place to send a person to
    raise DownloadFailed(f"cannot download {model_file.filename} from {url}: {reason}; "
                         f"download {model_file.url} by hand and save it as {destination}", reason)


def checked_path(path: Path, downloadable: bool = False) -> Path:
    """Verify `path` if its name is a catalogued file's; other names are the user's own models."""
    model_file = all_model_files().get(path.name)
    if model_file is not None:
        verify_model_file(path, model_file, downloadable)
    return path


def _kind(path: Path) -> str | None:
    """"file" (a regular file), "folder", "other", or None when nothing is there.

    A path the system refuses to look up (a name over 255 bytes, no permission) is a FacerecError.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        limit = " (a file or folder name may have at most 255 bytes)" if error.errno == errno.ENAMETOOLONG else ""
        raise FacerecError(f"cannot use the model path {path}: {error.strerror}{limit}") from None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _not_a_folder(kind: str) -> str:
    return "a file, not a folder" if kind == "file" else "not a folder"


def _models_folder(folder: Path | None, models_dir: Path | None = None) -> tuple[Path, bool]:
    """The folder to look in, and whether missing files may be downloaded into it (only into the default one:
    `models_dir` if given, else default_models_dir())."""
    if folder is None:
        folder = default_models_dir() if models_dir is None else Path(models_dir)
        kind = _kind(folder)
        if kind not in (None, "folder"):
            named_by = ("models_dir" if models_dir is not None else "FACEREC_MODELS_DIR"
                        if os.environ.get("FACEREC_MODELS_DIR") else "the default model folder")
            raise FacerecError(f"{folder} ({named_by}) is {_not_a_folder(kind)}: model files cannot be downloaded "
                               "into it; point FACEREC_MODELS_DIR at a folder (it is created if missing)")
        return folder, True
    kind = _kind(Path(folder))
    if kind is None:
        raise FacerecError(f"model folder {folder} does not exist")
    if kind != "folder":
        raise FacerecError(f"model folder {folder} is {_not_a_folder(kind)}: name the folder that holds the files")
    return Path(folder), False


# What a run needs: each file, where it is (or goes), and whether it may be downloaded there.
Wanted = tuple[ModelFile, Path, bool]


def _locate_network(candidates: Sequence[Network], folder: Path | None,
                    models_dir: Path | None = None) -> tuple[Network, list[Wanted]]:
    """The first candidate whose files are all in the folder; in the default folder, else the first candidate."""
    folder, downloadable = _models_folder(folder, models_dir)
    for network in candidates:
        wanted = [(model_file, folder / model_file.filename, downloadable) for model_file in network.files]
        if all(_kind(path) == "file" for _, path, _ in wanted):
            return network, wanted
    if not downloadable:
        expected = " or ".join(" + ".join(f.filename for f in network.files) for network in candidates)
        raise FacerecError(f"model folder {folder} does not hold the files expected: {expected}")
    network = candidates[0]
    return network, [(model_file, folder / model_file.filename, True) for model_file in network.files]


def _locate_file(model_file: ModelFile, path: Path | None, models_dir: Path | None = None) -> Wanted:
    """A single-file model: `path` as given (it must be there), or its place in the default folder."""
    if path is None:
        folder, _ = _models_folder(None, models_dir)
        return model_file, folder / model_file.filename, True
    kind = _kind(Path(path))
    if kind is None:
        raise FacerecError(f"model file {path} does not exist (expected {model_file.filename}, from {model_file.url})")
    if kind != "file":
        what = "a folder" if kind == "folder" else "not a regular file"
        raise FacerecError(f"model file {path} is {what} (expected the file {model_file.filename})")
    return model_file, Path(path), False


def _obtain(wanted: Sequence[Wanted], profile: Profile | None = None) -> list[Path]:
    """The paths of `wanted`: present files checked first, then every missing one downloaded.

    Only the default folder can lack a file here (a named one is refused when located). Every
    download that fails is listed in one FacerecError, with what to do (`profile` adds its ways out).
    """
    for model_file, path, downloadable in wanted:
        if _kind(path) == "file":
            checked_path(path, downloadable)
    failures = []
    for model_file, path, _ in wanted:
        if _kind(path) != "file":
            print(f"downloading {model_file.filename} to {path.parent}/", file=sys.stderr)
            try:
                download_model_file(model_file, path)  # checked while it downloads
            except DownloadFailed as failure:
                failures.append((model_file, path, failure.reason))
    if failures:
        raise FacerecError(_failed_downloads_message(failures, profile))
    return [path for _, path, _ in wanted]


def _failed_downloads_message(failures: Sequence[tuple[ModelFile, Path, str]], profile: Profile | None) -> str:
    """Every file that could not be downloaded, why, and each way to go on."""
    count = f"{len(failures)} model file{'s' if len(failures) > 1 else ''}"
    lines = [f"{count} could not be downloaded:"]
    lines += [f"  {model_file.filename}: {reason} ({download_url(model_file)})" for model_file, _, reason in failures]
    lines.append("Any one of these gets you going:")
    lines.append("  - download by hand, each file from its publisher to the path shown:")
    lines += [f"      {model_file.url} -> {path}" for model_file, path, _ in failures]
    mirror = os.environ.get("FACEREC_MODEL_MIRROR")
    lines.append("  - set FACEREC_MODEL_MIRROR to a server that holds them (fetched as <mirror>/<file name>)"
                 + (f"; the one set, {mirror}, failed" if mirror else ""))
    if profile is not None:
        lines += _profile_ways_out(profile, {model_file.filename for model_file, _, _ in failures})
    return "\n".join(lines)


def _profile_ways_out(profile: Profile, missing: set[str]) -> list[str]:
    """The options that avoid the missing files of `profile`: files of your own, or another profile."""
    def files_of(network: Network) -> str:
        return " + ".join(model_file.filename for model_file in network.files)

    lines = []
    first, *others = profile.detectors
    if missing & {model_file.filename for network in profile.detectors for model_file in network.files}:
        also = "".join(f", or {files_of(network)} ({network.name})" for network in others)
        lines.append(f"  - --detector DIR: a folder holding {files_of(first)}{also}; URLs in models/README.md")
    if missing & {model_file.filename for model_file in profile.embedder.files}:
        lines.append(f"  - --embedding-model PATH: your copy of {files_of(profile.embedder)}")
    lines += [f"  - --model {other.name}: another profile, {other.description}"
              for other in PROFILES.values() if other.name != profile.name]
    return lines


def network_files(candidates: Sequence[Network], folder: Path | None) -> tuple[Network, list[Path]]:
    """The first candidate network whose files are all in `folder`, with their checked paths.

    With `folder` None the default folder is used, and if no candidate is
    complete there the first candidate's missing files are downloaded.
    """
    network, wanted = _locate_network(candidates, folder)
    return network, _obtain(wanted)


def model_path(model_file: ModelFile, path: Path | None) -> Path:
    """The checked path of a single-file model: `path` as given (never written), or the default one (downloaded if missing)."""
    return _obtain([_locate_file(model_file, path)])[0]


def profile_files(profile: Profile, detector_folder: Path | None, embedder_path: Path | None,
                  with_embedder: bool = True, models_dir: Path | None = None) -> tuple[Network, list[Path], Path | None]:
    """Every file a run of `profile` needs, found, downloaded and checked at once.

    `models_dir` replaces the default folder (where missing files are downloaded) for this call.

    Returns the detector network chosen, its file paths, and the embedder's path (None
    without `with_embedder`). Fails with one FacerecError listing every file that could not be had.
    """
    network, wanted = _locate_network(profile.detectors, detector_folder, models_dir)
    if with_embedder:
        wanted.append(_locate_file(profile.embedder.files[0], embedder_path, models_dir))
    paths = _obtain(wanted, profile)
    return network, paths[:len(network.files)], paths[len(network.files)] if with_embedder else None
