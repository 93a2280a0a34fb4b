#!/usr/bin/env python3
"""Take photos of one person from a webcam, video file or stream: SPACE saves a frame with one face, ESC quits.

`facerec-capture` once installed (pip install .); the code is facerec/commands/capture.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.capture import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
