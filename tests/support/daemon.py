"""`labormon run` in a subprocess, as systemd would run it: start, SIGKILL, restart,
read its JSON log and scrape its /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def toml(config: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for table, values in config.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


class DaemonProcess:
    """One daemon with its own config file, HTTP port and log file."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_url: str,
        mqtt_url: str,
        client_id: str,
        secret: str,
        topic_prefix: str = "labormon/v1",
        extra: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config: dict[str, dict[str, Any]] = {
            "database": {"url": db_url},
            "mqtt": {
                "url": mqtt_url,
                "client_id": client_id,
                "topic_prefix": topic_prefix,
                "reconnect_min": "0.2s",
                "reconnect_max": "1s",
            },
            "http": {"bind": f"127.0.0.1:{self.port}"},
            "security": {"secret_key": secret},
            "logging": {"level": "info", "format": "json"},
        }
        for table, values in (extra or {}).items():
            self.config.setdefault(table, {}).update(values)
        self.config_path = workdir / "labormon.toml"
        self.config_path.write_text(toml(self.config))
        self.log_path = workdir / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config_path)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /healthz answers and the daemon is connected to the broker."""

        async def health() -> dict[str, Any] | None:
            self._check_alive()
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    response = await client.get(self.url + "/healthz")
            except httpx.TransportError:
                return None
            return response.json() if response.status_code == 200 else None

        await eventually(
            health,
            lambda h: bool(h and h.get("services", {}).get("mqtt", {}).get("connected")),
            timeout,
            what=f"daemon on port {self.port} ready",
        )

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.log()}")

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(self.url + "/metrics")).text
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    async def metric_sum(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels`."""
        total = 0.0
        for (sample, sample_labels), value in (await self.metrics()).items():
            if sample == name and set(labels.items()) <= set(sample_labels):
                total += value
        return total

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last commit, no DISCONNECT."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (other lines, such as the start banner, are skipped)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout: float,
    *,
    what: str = "condition",
    interval: float = 0.1,
) -> T:
    """Probe until `done(value)` holds, under a deadline (rows and processes have no
    events to wait on). Raises TimeoutError with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached after {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)
