#!/usr/bin/env python3
"""Find the face in every photo of dataset/<person>/ and store its embedding for recognize_video.py.

`facerec-extract` once installed (pip install .); the code is facerec/commands/extract.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.extract import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
