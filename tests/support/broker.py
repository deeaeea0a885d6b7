"""A real Mosquitto broker on a free port, which a test may stop, restart or lock down.

The binary comes from Debian's mosquitto package; when it is missing and we run as
root (CI), it is installed with apt-get.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

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
        if os.geteuid() == 0:
            # As root, mosquitto drops to the `mosquitto` user, which cannot write the
            # persistence file into our root-owned temp directory; sessions and queued
            # messages would then not survive a restart.
            lines.append("user root")
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
        # The child keeps its own descriptor; ours is closed (an unclosed file would be a
        # ResourceWarning, which the suite treats as an error).
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(config)], stdout=log, stderr=log
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


SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


class DebianBroker(Broker):
    """Mosquitto started the way Debian's package starts it: `/usr/sbin/mosquitto -c
    main.conf` as root, with no `user` line, so that it drops to the `mosquitto` user.
    `main.conf` is Debian's (persistence in a directory the broker owns, `include_dir`);
    the include directory holds the shipped `deploy/mosquitto/labormon.conf` (or nothing
    with `shipped=False`: Mosquitto's defaults) and the site file with the listener and
    the auth files, which `labormon mqtt auth-files` writes into `auth_dir`.

    Everything lives under a directory of /tmp that the `mosquitto` user may enter
    (pytest's own temporary directories are 0700)."""

    def __init__(self, *, shipped: bool = True, port: int | None = None) -> None:
        base = Path(tempfile.mkdtemp(prefix="labormon-debian-broker-"))
        os.chmod(base, 0o755)
        super().__init__(base, port)
        self.shipped = shipped
        self.state = base / "lib"  # /var/lib/mosquitto
        self.state.mkdir()
        self.conf_d = base / "conf.d"  # /etc/mosquitto/conf.d
        self.conf_d.mkdir()
        self.auth_dir = base / "labormon"  # /etc/mosquitto/labormon (made by the command)
        self.run_dir = base / "run"  # /run/mosquitto: the pid file is written after the drop
        self.run_dir.mkdir()
        pw = pwd.getpwnam("mosquitto")
        for owned in (self.state, self.run_dir):
            os.chown(owned, pw.pw_uid, pw.pw_gid)
            os.chmod(owned, 0o750)

    @staticmethod
    def available() -> str | None:
        """Why this cannot run here, or None."""
        if os.geteuid() != 0:
            return "needs root (Mosquitto must start as root and drop to its user)"
        try:
            pwd.getpwnam("mosquitto")
        except KeyError:
            return "no mosquitto user (Debian's mosquitto package makes it)"
        return None

    def write_config(self) -> Path:
        site = (SHIPPED / "labormon-site.conf").read_text()
        site = site.replace("listener 1883 127.0.0.1", f"listener {self.port} {self.host}")
        site = site.replace("/etc/mosquitto/labormon/", f"{self.auth_dir}/")
        (self.conf_d / "labormon-site.conf").write_text(site)
        shipped = self.conf_d / "labormon.conf"
        if self.shipped:
            shutil.copyfile(SHIPPED / "labormon.conf", shipped)
        else:
            shipped.unlink(missing_ok=True)
        main = self.workdir / "main.conf"
        main.write_text(
            "\n".join(
                [
                    "# Debian's /etc/mosquitto/mosquitto.conf, with this test's paths.",
                    f"pid_file {self.pid_file}",
                    "persistence true",
                    f"persistence_location {self.state}/",
                    "log_dest stderr",
                    f"include_dir {self.conf_d}",
                    "",
                ]
            )
        )
        return main

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "mosquitto.pid"

    def start(self) -> None:
        config = self.write_config()
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.process = subprocess.Popen(
                ["/usr/sbin/mosquitto", "-c", str(config)], stdout=log, stderr=log
            )
        try:
            wait_port(self.port)
        except Exception:
            self.stop()
            raise RuntimeError(f"mosquitto did not start:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: no last save of the persistence file."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        time.sleep(0.05)

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
