#!/usr/bin/env python3
"""Recognise the faces of a webcam, video file or stream against the stored embeddings.

`facerec-recognize` once installed (pip install .); the code is facerec/commands/recognize.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.recognize import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
