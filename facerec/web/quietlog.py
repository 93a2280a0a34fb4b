"""The server's log under attack: one line per known condition, at most once a minute, never a traceback.

A client can make the same thing go wrong thousands of times a second (accepts failing
for lack of open files, invalid UTF-8 text frames, a full server): logging each with a
traceback fills the disk. Each such condition is logged once on one line, then again at
most every REPEAT_SECONDS with how many times it happened meanwhile.
"""

from __future__ import annotations

import logging
import time

REPEAT_SECONDS = 60.0
# the start of a log message -> the line logged for it
CONDITIONS = {
    "socket.accept() out of system resource": "cannot accept new connections: {error} (open files or memory exhausted)",
    "Invalid UTF-8 sequence received from client": "a WebSocket text message that is not UTF-8 was refused",
    # asyncio retries accepting 1 s after such a failure: at shutdown, on a socket already closed
    "Exception in callback BaseSelectorEventLoop._start_serving": "accepting was to resume on a closed socket: {error}",
    "server full:": None,  # already one line: rate-limited as it is
}


class OneLinePerCondition(logging.Filter):
    """A logging filter applying the rule above to the records of the loggers it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, tuple[float, int]] = {}  # condition -> (when last logged, times since)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        condition = next((start for start in CONDITIONS if message.startswith(start)), None)
        if condition is None:
            return True
        now = time.monotonic()
        logged, since = self.last.get(condition, (float("-inf"), 0))
        if now - logged < REPEAT_SECONDS:
            self.last[condition] = (logged, since + 1)
            return False
        self.last[condition] = (now, 0)
        error = record.exc_info[1] if record.exc_info else None
        line = (CONDITIONS[condition] or message.splitlines()[0]).format(error=error)
        record.msg = line + (f" ({since} more times in the last {now - logged:.0f} s)" if since else "")
        record.args, record.exc_info, record.exc_text, record.stack_info = (), None, None, None
        return True


def quiet(*loggers: str) -> None:
    """Apply the rule to these loggers (by name)."""
    rule = OneLinePerCondition()
    for name in loggers:
        logging.getLogger(name).addFilter(rule)
