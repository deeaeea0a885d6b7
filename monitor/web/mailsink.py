"""A local mail sink (aiosmtpd) that keeps every message as an .eml file.

The demo runs one so that emails "arrive" without a mail server, and the console lists
them. Files are named by arrival time and Message-ID, so nothing is overwritten and a
restart keeps what arrived.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredMail:
    name: str
    received_at: datetime
    mail_from: str
    to: list[str]
    subject: str
    message_id: str


class _Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        mid = _SAFE.sub("_", str(message.get("Message-ID", "")))[:80] or "no-id"
        with self.lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{stamp}-{mid}.eml"
            headers = f"X-Labormon-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
            path.write_bytes(headers + envelope.original_content)
        return "250 Message accepted for delivery"


class MailSink:
    """SMTP on host:port; every accepted message lands in `directory`."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            import socket

            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = int(sock.getsockname()[1])
        self.controller = Controller(_Handler(self.directory), hostname=self.host, port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def list_mail(directory: Path, limit: int = 200) -> list[StoredMail]:
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.eml"), reverse=True)[:limit]:
        message = read_mail(path)
        stamp = path.name.split("-", 1)[0]
        try:
            received = datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        except ValueError:
            received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        out.append(
            StoredMail(
                name=path.name,
                received_at=received,
                mail_from=str(message.get("From", "")),
                to=[
                    t.strip()
                    for t in str(message.get("X-Labormon-Envelope-To", "")).split(",")
                    if t.strip()
                ],
                subject=str(message.get("Subject", "")),
                message_id=str(message.get("Message-ID", "")),
            )
        )
    return out


def read_mail(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(plain text, html) of a message; either may be empty."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return (
        plain.get_content() if plain is not None else "",
        html.get_content() if html is not None else "",
    )
