"""Email with aiosmtplib: HTML and plain text in Chinese, attachments from `documents`.

The Message-ID is derived from the delivery id, so a message re-sent after a crash in the
middle of a send carries the same Message-ID and the receiver (or the leader's mail
client) can drop the copy. One recipient per message: an address refused by the server
fails that delivery only.
"""

from __future__ import annotations

import asyncio
import email.utils
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from sqlalchemy import select

from monitor.alerting.messages import render_html, render_text
from monitor.alerting.notifiers.base import DeliveryError, NotifierEnv, composing
from monitor.models import Delivery, Document
from monitor.safetext import one_line

CHANNEL = "email"
#: SMTP replies that mean "this message to this recipient will never be accepted".
#: 5xx on authentication (530/534/535) is a configuration problem of ours that an
#: operator fixes: retried (and the channel shows it) rather than dropped.
_AUTH_CODES = {530, 534, 535, 538}


def message_id(delivery_id: str, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2] or "labormon.localhost"
    return f"<{delivery_id}@{domain}>"


class EmailNotifier:
    channel = CHANNEL

    def __init__(self, env: NotifierEnv) -> None:
        self.env = env

    async def compose(self, delivery: Delivery) -> EmailMessage:
        smtp = self.env.settings.smtp
        zone = self.env.settings.organisation.zone
        body: dict[str, Any] = delivery.body or {}
        msg = EmailMessage()
        msg["From"] = smtp.mail_from
        # Headers are single lines by construction (a CR/LF in a company name once made
        # Python refuse the message, and every resend of it).
        msg["To"] = one_line(delivery.address)
        msg["Subject"] = one_line(delivery.subject)
        msg["Date"] = email.utils.format_datetime(self.env.clock.now().astimezone(zone))
        msg["Message-ID"] = message_id(delivery.id, smtp.mail_from)
        msg["X-Labormon-Delivery"] = delivery.id
        # Keep out-of-office robots from answering an alarm.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        if delivery.priority <= 1:
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        if "text" in body or "html" in body:
            # Written by another stage (the monthly report): already rendered.
            text = str(body.get("text") or "")
            html = body.get("html")
        else:
            text = render_text(body, delivery.id)
            html = render_html(body, delivery.id)
        msg.set_content(text, charset="utf-8")
        if html:
            msg.add_alternative(str(html), subtype="html", charset="utf-8")
        for attachment in body.get("attachments") or []:
            await self._attach(msg, attachment)
        return msg

    async def _attach(self, msg: EmailMessage, attachment: dict[str, Any]) -> None:
        document_id = attachment.get("document_id")
        async with self.env.db.session() as session:
            document = (
                await session.scalars(select(Document).where(Document.id == document_id))
            ).first()
        if document is None:
            raise DeliveryError(f"attachment document {document_id} does not exist", permanent=True)
        maintype, _, subtype = document.content_type.partition("/")
        msg.add_attachment(
            bytes(document.data),
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=one_line(document.filename),
        )

    async def send(self, delivery: Delivery) -> None:
        smtp = self.env.settings.smtp
        if not smtp.enabled:
            raise DeliveryError("mail is off: no [smtp] url configured", permanent=True)
        with composing(CHANNEL):
            msg = await self.compose(delivery)
        limit = smtp.timeout.total_seconds()
        try:
            # aiosmtplib's timeout is per operation; the overall limit keeps a server that
            # trickles replies from holding a delivery (and its lease) for ever.
            async with asyncio.timeout(limit):
                await aiosmtplib.send(
                    msg,
                    hostname=smtp.host,
                    port=smtp.port,
                    username=smtp.username,
                    password=smtp.password,
                    use_tls=smtp.use_tls,
                    start_tls=smtp.starttls,
                    timeout=limit,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            raise DeliveryError(f"recipient refused: {codes}", permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600 and exc.code not in _AUTH_CODES
            raise DeliveryError(
                f"SMTP {exc.code}: {exc.message[:200]}", permanent=permanent
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP: {exc.__class__.__name__}: {exc}") from exc

    async def aclose(self) -> None:
        return None


def create(env: NotifierEnv) -> EmailNotifier:
    return EmailNotifier(env)
