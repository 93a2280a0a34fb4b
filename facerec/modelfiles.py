"""Model files on disk: find them, check them against the catalogue, download missing ones.

Missing files are downloaded only into the default folder (default_models_dir:
$FACEREC_MODELS_DIR, else `models/` in the project, or for an installed package
./models or the user's cache folder), and only when one is missing: a folder
whose files are all there may be read-only. What facerec derives and remembers
(files' checksums, the plain float32 model) goes to its own cache folder,
cache_dir(). A folder or path the user names is read only: a missing file
there is an error listing what was expected. All the files a run needs are
looked for first; every missing one is then downloaded, and one error lists
every download that failed with the ways out. A file is fetched from its
publisher's address, then from each known mirror in turn when one fails.
Downloads are checked against the catalogue's checksum and renamed into
place only when complete. Each is an INFO record of the "facerec" logger
(`downloading FILE to FOLDER/`), with a progress bar on stderr only while that
logger shows INFO (the scripts' errors.main_guard does): the library itself
never prints its progress. $FACEREC_MODEL_MIRROR (one or
more base URLs) replaces all those addresses, for private mirrors and for tests.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from .catalogue import PROFILES, ModelFile, Network, Profile, all_model_files
from .errors import FacerecError
from .fileio import NAME_MAX, atomic_writer

log = logging.getLogger("facerec")  # the library never prints: a program shows these records or not

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


def cache_dir() -> Path:
    """The folder facerec keeps what it derives in (the checksums of model files, the plain float32 model of
    plainonnx): $FACEREC_CACHE_DIR, else $XDG_CACHE_HOME/facerec (~/.cache/facerec). Never a models folder,
    which may be read-only or shared; what cannot be kept here is only computed again at the next start."""
    if os.environ.get("FACEREC_CACHE_DIR"):
        return Path(os.environ["FACEREC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facerec"


def download_urls(model_file: ModelFile) -> tuple[str, ...]:
    """The addresses to fetch `model_file` from, in order: its publisher's, then its mirrors'.

    $FACEREC_MODEL_MIRROR replaces them all: one base URL, or several separated by spaces, each fetched
    as <base>/<file name>.
    """
    bases = os.environ.get("FACEREC_MODEL_MIRROR", "").split()
    return tuple(f"{base.rstrip('/')}/{model_file.filename}" for base in bases) if bases else model_file.urls


def _hashers(model_file: ModelFile) -> dict[str, "hashlib._Hash"]:
    expected = {"sha256": model_file.sha256, "md5": model_file.md5}
    return {name: hashlib.new(name) for name, digest in expected.items() if digest}


def _content_problem(model_file: ModelFile, size: int, digests: dict[str, str]) -> str | None:
    """What is wrong with content of this size and these digests (hex, by hash name), or None if it is the
    catalogued file."""
    if model_file.size is not None and size != model_file.size:
        return f"it has {size:,} bytes where {model_file.size:,} are expected"
    for name, digest in digests.items():
        expected = getattr(model_file, name)
        if digest != expected:
            return f"its {name} is {digest}, expected {expected}"
    return None


# Digests of model files, remembered in cache_dir() by real path: an unchanged file is not read again at every
# start. A file is unchanged while its size, modification and change times and inode are.
CHECKSUM_CACHE = "checksums.json"
_MAX_CACHE_BYTES = 1 << 20
_remembered: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {}  # this run's, by real path: any folder


def _stamp(info: os.stat_result) -> tuple[int, ...]:
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev


def _read_cache(cache: Path) -> dict:
    """The cache file's entries; {} if there is none or it is not one (it is then rewritten)."""
    try:
        with open(cache, "rb") as handle:
            entries = json.loads(handle.read(_MAX_CACHE_BYTES + 1) or b"{}")
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def file_digests(path: Path, names: Sequence[str] = ("sha256",)) -> dict[str, str]:
    """The hex digests `names` ("sha256", "md5") of the file at `path`, computed once per content.

    Remembered for this run, and for every later run in cache_dir()/CHECKSUM_CACHE, by real path (never
    beside the file: its folder may be read-only or shared); a changed file is read again. The cache is
    written atomically; one that cannot be written is only not written.
    """
    real = os.path.realpath(path)
    stamp = _stamp(os.stat(real))
    known = _remembered.get(real)
    if known is not None and known[0] == stamp and set(names) <= set(known[1]):
        return {name: known[1][name] for name in names}
    cache = cache_dir() / CHECKSUM_CACHE
    entries = _read_cache(cache)
    entry = entries.get(real)
    if (isinstance(entry, dict) and entry.get("stamp") == list(stamp) and isinstance(entry.get("digests"), dict)
            and set(names) <= set(entry["digests"])):
        digests = entry["digests"]
    else:
        hashers = {name: hashlib.new(name) for name in dict.fromkeys(("sha256", *names))}
        with open(real, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                for hasher in hashers.values():
                    hasher.update(chunk)
        digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        # files gone since (a test's temporary folder) are forgotten, so the cache stays small
        entries = {key: value for key, value in entries.items() if os.path.exists(key)}
        entries[real] = {"stamp": list(stamp), "digests": digests}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(cache) as handle:
                handle.write(json.dumps(entries, indent=1, sort_keys=True).encode())
        except OSError:
            pass  # a read-only or full cache folder: the file is only read again at the next start
    _remembered[real] = (stamp, dict(digests))
    return {name: digests[name] for name in names}


def _identity(model_file: ModelFile) -> str:
    """What pins a file's content, for a person fetching it by hand: `sha256 ..., 28,092 bytes`."""
    digest = f"sha256 {model_file.sha256}" if model_file.sha256 else f"md5 {model_file.md5}"
    return f"{digest}, {model_file.size:,} bytes" if model_file.size is not None else digest


def verify_model_file(path: Path, model_file: ModelFile, downloadable: bool = False) -> None:
    """Raise FacerecError if the file at `path` is not the catalogued file (truncated, corrupt, other).

    `downloadable` says `path` is in the default folder, where deleting it makes the next run download it;
    a file the user named is never downloaded, so the message says where to get the right one instead.
    """
    problem = _content_problem(model_file, os.stat(path).st_size, file_digests(path, list(_hashers(model_file))))
    if problem:
        fix = (f"Delete it and run again to download it, or fetch {model_file.url} by hand to {path}" if downloadable
               else f"Replace it with {model_file.url} ({_identity(model_file)})")
        raise FacerecError(f"model file {path} is damaged or not the expected file: {problem}. {fix}")


class DownloadFailed(FacerecError):
    """A download that did not give the catalogued file; `attempts` says, for each address tried, why not."""

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


def _fetch(url: str, model_file: ModelFile, destination: Path, quiet: bool) -> str | None:
    """Download `url` to `destination` if it gives the catalogued file: None, else why not (nothing is left)."""
    from tqdm import tqdm

    hashers = _hashers(model_file)
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                atomic_writer(destination) as handle, \
                tqdm(total=int(response.headers.get("Content-Length") or 0) or model_file.size,
                     unit="B", unit_scale=True, desc=model_file.filename,
                     disable=quiet or not log.isEnabledFor(logging.INFO),
                     file=sys.stderr) as bar:
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                bar.update(len(chunk))
            problem = _content_problem(model_file, size, {name: hasher.hexdigest() for name, hasher in hashers.items()})
            if problem:  # raising inside atomic_writer discards the temporary file
                raise DownloadFailed(f"the download is corrupt: {problem}", ())
    except DownloadFailed as failure:
        return str(failure)
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return _no_answer(error.reason) if isinstance(error.reason, TimeoutError) else str(error.reason)
    except TimeoutError as error:
        return _no_answer(error)
    except (OSError, ValueError) as error:  # connection resets, bad URLs
        return str(error)
    return None


def _no_answer(error: TimeoutError) -> str:
    return f"no answer within {DOWNLOAD_TIMEOUT_SECONDS} s ({error})"


def download_model_file(model_file: ModelFile, destination: Path, quiet: bool = False) -> None:
    """Fetch `model_file` to `destination` from its first address that gives the catalogued file.

    Each address is tried in turn (see download_urls) and every download is checked against the catalogue's
    checksum. When the file comes from a fallback, one line on stderr names it and why the ones before failed.
    When every address fails: DownloadFailed listing each with its reason; nothing is left at `destination`.
    """
    attempts: list[tuple[str, str]] = []
    for url in download_urls(model_file):
        reason = _fetch(url, model_file, destination, quiet)
        if reason is None:
            if attempts:
                failed = "; ".join(f"{tried}: {why}" for tried, why in attempts)
                print(f"{model_file.filename}: downloaded from the fallback {url} ({failed})", file=sys.stderr)
            return
        attempts.append((url, reason))
    tried = "; ".join(f"{url}: {reason}" for url, reason in attempts)
    where = f"from {tried}" if len(attempts) == 1 else f"from any of its {len(attempts)} addresses ({tried})"
    # by hand: the publisher's address (the error of a run, _failed_downloads_message, also lists the mirrors)
    raise DownloadFailed(f"cannot download {model_file.filename} {where}; "
                         f"download {model_file.url} by hand and save it as {destination}", attempts)


def checked_path(path: Path, downloadable: bool = False) -> Path:
    """Verify `path` if its name is a catalogued file's; other names are the user's own models."""
    model_file = all_model_files().get(path.name)
    if model_file is not None:
        verify_model_file(path, model_file, downloadable)
    return path


def _kind(path: Path) -> str | None:
    """"file" (a regular file), "folder", "other", or None when nothing is there.

    A path the system refuses to look up (a name over NAME_MAX bytes, no permission) is a FacerecError.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        limit = f" (a file or folder name may have at most {NAME_MAX} bytes)" if error.errno == errno.ENAMETOOLONG else ""
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
            log.info("downloading %s to %s/", model_file.filename, path.parent)
            try:
                download_model_file(model_file, path)  # checked while it downloads
            except DownloadFailed as failure:
                failures.append((model_file, path, failure.attempts))
    if failures:
        raise FacerecError(_failed_downloads_message(failures, profile))
    return [path for _, path, _ in wanted]


def _failed_downloads_message(failures: Sequence[tuple[ModelFile, Path, list[tuple[str, str]]]],
                              profile: Profile | None) -> str:
    """Every file that could not be downloaded, each address tried and why it failed, and each way to go on."""
    count = f"{len(failures)} model file{'s' if len(failures) > 1 else ''}"
    lines = [f"{count} could not be downloaded:"]
    lines += [f"  {model_file.filename}: {reason} ({url})"
              for model_file, _, attempts in failures for url, reason in attempts]
    lines.append("Any one of these gets you going:")
    lines.append("  - download by hand, each file from its publisher (or a mirror shown) to the path shown:")
    for model_file, path, _ in failures:
        lines.append(f"      {model_file.url} -> {path}")
        lines += [f"        or {mirror.url}" for mirror in model_file.mirrors]
    mirror = os.environ.get("FACEREC_MODEL_MIRROR")
    lines.append("  - set FACEREC_MODEL_MIRROR to a server that holds them (fetched as <mirror>/<file name>; "
                 "several separated by spaces are tried in order)"
                 + (f"; the one set, {mirror}, failed" if mirror else ""))
    folder = failures[0][1].parent
    set_to = os.environ.get("FACEREC_MODELS_DIR")
    lines.append("  - set FACEREC_MODELS_DIR to a folder that already holds them (it may be read-only; the project's "
                 "test assets have them in ../shared/models)" + (f"; the one set is {set_to}" if set_to else ""))
    if profile is not None:
        lines += _profile_ways_out(profile, {model_file.filename for model_file, _, _ in failures}, folder)
    return "\n".join(lines)


def _complete_in(profile: Profile, folder: Path) -> bool:
    """Whether `folder` holds every file of one of the profile's detectors and its embedder's."""
    def present(network: Network) -> bool:
        return all(_kind(folder / model_file.filename) == "file" for model_file in network.files)
    return any(map(present, profile.detectors)) and present(profile.embedder)


def _profile_ways_out(profile: Profile, missing: set[str], folder: Path) -> list[str]:
    """The options that avoid the missing files of `profile`: files of your own, or another profile whose files
    are all in `folder` (one whose files are just as missing is no way out)."""
    def files_of(network: Network) -> str:
        return " + ".join(model_file.filename for model_file in network.files)

    lines = []
    first, *others = profile.detectors
    if missing & {model_file.filename for network in profile.detectors for model_file in network.files}:
        also = "".join(f", or {files_of(network)} ({network.name})" for network in others)
        lines.append(f"  - --detector DIR: a folder holding {files_of(first)}{also}; URLs in models/README.md")
    if missing & {model_file.filename for model_file in profile.embedder.files}:
        lines.append(f"  - --embedding-model PATH: your copy of {files_of(profile.embedder)}")
    lines += [f"  - --model {other.name}: another profile, whose files are in {folder}: {other.description}"
              for other in PROFILES.values() if other.name != profile.name and _complete_in(other, folder)]
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
