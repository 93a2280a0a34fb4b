"""The commands: each script's main, run by the script of a checkout (python recognize_video.py) and by
the command `pip install` makes of it (facerec-recognize); see COMMANDS.

Which of the two is running is decided here, once (`installed`): hints, --help examples and error
messages then name the commands the user can type (`as_run`)."""

from __future__ import annotations

import os
import re
import sys

from ..errors import ScriptMain, main_guard

# script of a checkout -> (module here, installed command)
COMMANDS = {
    "imagecapture.py": ("capture", "facerec-capture"),
    "extract_embeddings.py": ("extract", "facerec-extract"),
    "recognize_video.py": ("recognize", "facerec-recognize"),
    "verify.py": ("verify", "facerec-verify"),
    "evaluate.py": ("evaluate", "facerec-evaluate"),
    "serve.py": ("serve", "facerec-serve"),
    "unknowns.py": ("unknowns", "facerec-unknowns"),
}

# `python verify.py`, `verify.py` (not bench/unknowns.py nor facerec/commands/verify.py)
_SCRIPT = re.compile(r"(?<![\w/.-])(?:python3? )?(" + "|".join(map(re.escape, COMMANDS)) + r")(?![\w-])")


def installed() -> bool:
    """True when the running program is one of the installed commands (facerec-verify, ...), not a script of
    the checkout: the name it was started by says so."""
    return os.path.basename(sys.argv[0] if sys.argv else "") in {command for _, command in COMMANDS.values()}


def as_run(text: str) -> str:
    """`text` with every script of the checkout (`python verify.py`, `extract_embeddings.py`) named by its
    installed command when the running program is installed; unchanged otherwise."""
    if not installed():
        return text
    return _SCRIPT.sub(lambda match: COMMANDS[match.group(1)][1], text)


def command_main(main: ScriptMain) -> ScriptMain:
    """main_guard for a command: its one `error:` line names the commands as the user runs them (as_run)."""
    return main_guard(main, shown=as_run)

