#!/usr/bin/env python3
"""Review the unknown faces kept with a gallery: list, show, name, ignore, merge, forget, regroup.

`facerec-unknowns` once installed (pip install .); the code is facerec/commands/unknowns.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.unknowns import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
