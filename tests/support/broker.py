"""A real Mosquitto broker on a free port, which a test may stop, restart or lock down.

The binary comes from Debian's mosquitto package; when it is missing and we run as
root (CI), it is installed with apt-get.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

from tests.support.ports import free_port, wait_port

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), *MOSQUITTO_CANDIDATES):
        if candidate and Path(candidate).exists():
            return candidate
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            [
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "mosquitto",
                "mosquitto-clients",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        for candidate in MOSQUITTO_CANDIDATES:
            if Path(candidate).exists():
                return candidate
    raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")


class Broker:
    """One mosquitto process with persistence in `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.password_file: Path | None = None
        self.acl_file: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def url_for(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@{self.host}:{self.port}"

    def write_config(self) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            "message_size_limit 1048576",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.password_file:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        config = self.write_config()
        self._log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=self._log, stderr=self._log
        )
        wait_port(self.port)

    def stop(self) -> None:
        """Stop gracefully (the broker saves its persistent sessions)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        # The port must really be free before a restart binds it again.
        time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def use_auth(self, password_file: Path | None, acl_file: Path | None) -> None:
        """Load (or drop) password and ACL files; takes effect on the next (re)start."""
        self.password_file = password_file
        self.acl_file = acl_file

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
