#!/usr/bin/env python3
"""Measure how well a threshold and a matching strategy separate the people of a set of embeddings.

`facerec-evaluate` once installed (pip install .); the code is facerec/commands/evaluate.py."""

from facerec.errors import exit_quietly_on_interrupt

exit_quietly_on_interrupt()  # first: a Ctrl-C during the slow imports below ends quietly

from facerec.commands.evaluate import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
