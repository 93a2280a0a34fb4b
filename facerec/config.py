"""The configuration file (TOML, read with tomllib): the same settings the scripts' options make, set once.

Top-level keys are the scripts' long options with `_` for `-` (`model = "sface"`,
`embeddings = "postgresql://..."`); one table per camera, `[cameras.NAME]`, with
`source` (required) and the camera's own `threshold`, `every` and `confidence`.
A value is checked by the very argparse type its option uses, so the file
accepts exactly what the command line accepts. Every mistake is found before
anything starts and reported as one line naming the file, the key and its line;
an option given on the command line overrides the file (cli.parse_arguments).
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import FacerecError

CONFIG_VARIABLE = "FACEREC_CONFIG"
# Keys of the file that are not options of one script: the cameras' tables.
CAMERAS_KEY = "cameras"
# A camera's name is part of MQTT topics, URLs and log lines: plain characters only.
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_CONFIG_BYTES = 1 << 20
# Options that make no sense in the file: the file itself.
NOT_IN_FILE = {"config", "help"}
# One file serves serve.py and recognize_video.py: a key only the other takes is accepted and left alone
# (tests/test_config.py checks this is exactly what one of them takes and the other does not).
OTHER_COMMAND_KEYS = {"dataset", "host", "port", "token", "token_file",  # serve.py's
                      "force", "json", "no_display", "output"}  # recognize_video.py's


@dataclass(frozen=True)
class Camera:
    """One `[cameras.NAME]` table: where its frames come from and its own settings (None: the file's or profile's)."""

    name: str
    source: str
    threshold: float | None = None
    every: int | None = None
    confidence: float | None = None


@dataclass
class Config:
    """A checked file: option dest -> value (already converted), and the cameras in the file's order."""

    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, Camera] = field(default_factory=dict)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """(table..., key) -> the line (from 1) where the key is set; tables map to their header's line.

    tomllib gives values but no positions; this reads the lines the simple way TOML is
    written by hand (headers, `key = value`), enough to point at the line of a mistake.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\](\s*#.*)?", stripped)
        if header:
            table = tuple(part.strip().strip('"\'') for part in header.group(1).split("."))
            lines.setdefault(table, number)
            continue
        key = re.match(r"""("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""", stripped)
        if key:
            path = tuple(part.strip().strip('"\'') for part in key.group(1).split("."))
            lines.setdefault(table + path, number)
    return lines


def _kind(value: Any) -> str:
    return {bool: "true or false", str: "a string", int: "a number", float: "a number", dict: "a table",
            list: "a list"}.get(type(value), type(value).__name__)


def convert(action: argparse.Action, value: Any) -> Any:
    """`value` from the file as the option `action` would have made it, or ValueError saying what is wrong."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {_kind(value)}")
        return value if not isinstance(action, argparse._StoreFalseAction) else not value
    if action.nargs == 0 or not isinstance(action, argparse._StoreAction):
        raise ValueError("cannot be set in a configuration file")
    return _chosen(action, typed(action.type, value))


def typed(kind: Any, value: Any) -> Any:
    """`value` made by an option's argparse type `kind` (None: a string), refusing a value of the wrong TOML type
    (a string for a number: the file says what it means) with ValueError."""
    number = kind if kind in (int, float) else getattr(kind, "number_kind", None)  # cli.bounded_number's
    if number is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (number is int and isinstance(value, float)):
            raise ValueError(f"must be {'a whole number' if number is int else 'a number'}, not {_kind(value)}")
    elif not isinstance(value, str):
        raise ValueError(f"must be a string, not {_kind(value)}")
    if kind is None:
        return value
    try:
        return kind(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(str(error)) from None
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a valid {getattr(kind, '__name__', 'value')}") from None


def _chosen(action: argparse.Action, converted: Any) -> Any:
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"{converted!r} is not one of {', '.join(map(str, action.choices))}")
    return converted


def read_toml(path: Path) -> tuple[dict, str]:
    """The file's tables and its text, or FacerecError naming the file (and the line of a syntax error)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise FacerecError(f"cannot read the configuration file {path}: {error.strerror or error}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise FacerecError(f"{path}: a configuration file of more than {MAX_CONFIG_BYTES // 1024} KB is not one")
    try:
        import tomllib  # Python 3.11 on; the package still runs on 3.10 without a configuration file
    except ImportError:
        raise FacerecError(f"{path}: reading a configuration file needs Python 3.11 or later (tomllib)") from None
    try:
        text = data.decode("utf-8")
        return tomllib.loads(text), text
    except UnicodeDecodeError:
        raise FacerecError(f"{path}: not UTF-8 text, as TOML must be") from None
    except tomllib.TOMLDecodeError as error:
        raise FacerecError(f"{path}: not valid TOML: {error}") from None


def load_config(path: Path, options: dict[str, argparse.Action],
                camera_types: dict[str, Callable[[str], Any]]) -> Config:
    """Read and check the file against a script's options (dest -> action) and the camera keys' types.

    Every mistake found is one line of the FacerecError: FILE:LINE: key: what is wrong.
    """
    table, text = read_toml(path)
    lines = _key_lines(text)
    config = Config(path)
    problems: list[str] = []

    def problem(key_path: tuple[str, ...], message: str) -> None:
        line = lines.get(key_path) or lines.get(key_path[:1]) or 1
        problems.append(f"{path}:{line}: {'.'.join(key_path)}: {message}")

    for key, value in table.items():
        if key == CAMERAS_KEY:
            config.cameras = _cameras(value, camera_types, problem)
            continue
        action = options.get(key)
        if action is None and key in OTHER_COMMAND_KEYS:
            continue
        if action is None or key in NOT_IN_FILE:
            near = [name for name in options if name not in NOT_IN_FILE]
            problem((key,), "unknown key (the keys are the long options with _ for -, and [cameras.NAME] tables; "
                            f"this command takes: {', '.join(sorted(near))})")
            continue
        try:
            config.settings[action.dest] = convert(action, value)
        except ValueError as error:
            problem((key,), str(error))
    if problems:
        raise FacerecError("\nerror: ".join(problems))
    return config


def _cameras(value: Any, types: dict[str, Callable[[str], Any]],
             problem: Callable[[tuple[str, ...], str], None]) -> dict[str, Camera]:
    if not isinstance(value, dict):
        problem((CAMERAS_KEY,), f"must be tables [cameras.NAME], not {_kind(value)}")
        return {}
    cameras: dict[str, Camera] = {}
    for name, settings in value.items():
        where = (CAMERAS_KEY, name)
        if not CAMERA_NAME.fullmatch(name):
            problem(where, "a camera's name is 1 to 64 letters, digits, _, . or - (it is part of topics and URLs)")
            continue
        if not isinstance(settings, dict):
            problem(where, f"must be a table [cameras.{name}] with source = ..., not {_kind(settings)}")
            continue
        known: dict[str, Any] = {}
        for key, item in settings.items():
            if key == "source":
                if not isinstance(item, (str, int)) or isinstance(item, bool):
                    problem(where + (key,), f"must be a string (camera index, file or URL), not {_kind(item)}")
                else:
                    known[key] = str(item)
                continue
            kind = types.get(key)
            if kind is None:
                problem(where + (key,), f"unknown key (a camera takes: source, {', '.join(sorted(types))})")
                continue
            try:
                known[key] = typed(kind, item)
            except ValueError as error:
                problem(where + (key,), str(error))
        if "source" not in settings:
            problem(where, "has no source (a camera index, video file or stream URL): it is required")
        elif "source" in known:
            cameras[name] = Camera(name=name, **known)
    return cameras


def config_path(given: Path | None) -> Path | None:
    """--config if given, else $FACEREC_CONFIG if set, else None."""
    if given is not None:
        return given
    text = os.environ.get(CONFIG_VARIABLE)
    return Path(text) if text else None
