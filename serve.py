#!/usr/bin/env python3
"""Serve the web page: the browser's camera named live, enrolment and the gallery, for one gallery store.

`facerec-serve` once installed (pip install .); the code is facerec/commands/serve.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.serve import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
