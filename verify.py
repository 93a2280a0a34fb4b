#!/usr/bin/env python3
"""Are two photos the same person? Compare the most confident face of each, or every pair of a pairs file.

`facerec-verify` once installed (pip install .); the code is facerec/commands/verify.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.verify import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
