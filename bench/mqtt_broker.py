"""A private MQTT broker for the events' tests and bench: Debian's mosquitto on 127.0.0.1, in a temporary folder.

It listens on a free loopback port, optionally with logins (a password file made by
mosquitto_passwd), and persists its state to its folder, so that `stop()` and `start()`
again (same port) keep retained messages and the listeners' sessions, as a real broker
restarted by its service manager does.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

START_SECONDS = 30  # a bound on waiting, never a measure


def mosquitto_tool(name: str) -> str | None:
    """The path of mosquitto or mosquitto_passwd (Debian puts the broker in /usr/sbin, not on every PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """mosquitto in `folder`; `users` ({name: password}) makes logins required."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {self.folder}/",
                 f"user {getpass.getuser()}"]  # as root, mosquitto would switch to the user mosquitto
        if users:
            passwords = self.folder / "passwords"
            passwords.touch(mode=0o600)
            for name, password in users.items():
                subprocess.run([mosquitto_tool("mosquitto_passwd"), "-b", str(passwords), name, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines += ["allow_anonymous true"]
        self.config = self.folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.start()

    def url(self, login: str = "", prefix: str = "") -> str:
        """mqtt://[login@]127.0.0.1:PORT[/prefix]; `login` is `user:password`."""
        return f"mqtt://{login + '@' if login else ''}127.0.0.1:{self.port}" + (f"/{prefix}" if prefix else "")

    def start(self) -> None:
        with open(self.folder / "log", "ab") as log:
            self.process = subprocess.Popen([mosquitto_tool("mosquitto"), "-c", str(self.config)],
                                            stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start: {(self.folder / 'log').read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as a service manager does (SIGTERM: it saves its state first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=START_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def broker_available() -> bool:
    return all(mosquitto_tool(name) for name in ("mosquitto", "mosquitto_passwd")) and os.name == "posix"
