"""A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts."""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    inbox: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    #: When set, the server answers every DATA with this (e.g. "451 try later").
    fail_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_with:
            return self.fail_with
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.inbox.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class MailSink:
    """Start/stop-able SMTP server; `inbox` holds every accepted message."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = _Handler()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def inbox(self) -> list[Received]:
        return self.handler.inbox

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def clear(self) -> None:
        with self.handler.arrived:
            self.handler.inbox.clear()

    def to(self, address: str) -> list[Received]:
        return [m for m in self.inbox if address in m.rcpt_tos]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` messages arrived (a deadline, not a sleep)."""
        with self.handler.arrived:
            ok = self.handler.arrived.wait_for(lambda: len(self.handler.inbox) >= count, timeout)
        if not ok:
            raise TimeoutError(f"{len(self.inbox)} of {count} messages after {timeout}s")
        return list(self.inbox)
