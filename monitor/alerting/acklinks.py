"""One-click acknowledge links: HMAC-signed, expiring, single-use, tied to one leader.

A link is `{base_url}/ack/{payload}.{signature}` where the payload (base64url JSON) names
the alert, the leader's account, the expiry and a random nonce, and the signature is the
installation's HMAC over it (`Privacy.sign`). The nonce is also stored (`ack_links`), so
that a link works once: using it sets `used_at` with a conditional update.

Refusals, each with its own reason: a link whose signature or contents do not check out
(forged), one past its expiry (expired), one already used (used), one presented by a
signed-in leader other than the one it was sent to (other leader), one whose leader has
since been revoked or moved out of the alert's region (not allowed), and, for the levels
in `alerting.ack_link_login_levels` (I and II by default), one presented by nobody
signed in (login required): a link in a forwarded mail then acknowledges nothing.

Why the link does not acknowledge on GET: mail security scanners (Defender Safe Links,
Mimecast, Proofpoint, ...) fetch every link in a message before the person reads it.
A GET that acknowledged would let a scanner stop the escalation of an alert nobody has
seen. The GET shows the alert and one "确认收到" button; only the POST acknowledges.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from monitor.alerting.contacts import may_act_on
from monitor.clock import Clock
from monitor.models import Account, AckLink, Alert
from monitor.privacy import Privacy

PATH = "/ack/"
_SIGNING_CONTEXT = b"labormon/ack-link/v1:"


@dataclass(frozen=True)
class LinkClaims:
    alert_id: int
    account_id: str
    expires_at: datetime
    nonce: str


class LinkRefused(Exception):
    """A link that must not acknowledge; `reason` is for logs and tests, `text` for people."""

    def __init__(self, reason: str, status: int, text: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.text = text


FORGED = LinkRefused("forged", 403, "链接无效（签名不符），请使用邮件中的原始链接。")
EXPIRED = LinkRefused("expired", 410, "链接已过期，请登录系统或使用最新邮件中的链接确认。")
USED = LinkRefused("used", 410, "该链接已使用过，每个链接只能确认一次。")
OTHER_LEADER = LinkRefused("other_leader", 403, "该链接是发给其他负责人的，不能代为确认。")
NOT_ALLOWED = LinkRefused("not_allowed", 403, "您的账号已无权处置该地区的预警。")
NO_ALERT = LinkRefused("no_alert", 404, "预警不存在。")
LOGIN_REQUIRED = LinkRefused(
    "login_required", 401, "重大及以上预警须由收件负责人登录后确认：请先登录，再打开邮件中的链接。"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AckLinks:
    def __init__(
        self,
        privacy: Privacy,
        clock: Clock,
        base_url: str,
        ttl: timedelta,
        *,
        login_levels: frozenset[str] = frozenset(),
    ) -> None:
        self.privacy = privacy
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        #: Levels whose links need the addressee signed in (`alerting.ack_link_login_levels`).
        self.login_levels = login_levels

    def token(self, claims: LinkClaims) -> str:
        payload = json.dumps(
            {
                "a": claims.alert_id,
                "u": claims.account_id,
                "e": int(claims.expires_at.timestamp()),
                "n": claims.nonce,
            },
            separators=(",", ":"),
        ).encode()
        encoded = _b64(payload)
        return f"{encoded}.{self.privacy.sign(_SIGNING_CONTEXT + encoded.encode())}"

    def url(self, token: str) -> str:
        return f"{self.base_url}{PATH}{token}"

    async def issue(
        self, session: AsyncSession, alert_id: int, account_id: str
    ) -> tuple[str, AckLink]:
        """A new link for one leader and one alert; the nonce is stored in `session`
        (set `delivery_id` on the returned row once the message is written)."""
        now = self.clock.now()
        # Whole seconds: the expiry travels as a Unix time in the token.
        expires = (now + self.ttl).replace(microsecond=0)
        claims = LinkClaims(alert_id, account_id, expires, secrets.token_hex(16))
        link = AckLink(
            nonce=claims.nonce,
            alert_id=alert_id,
            account_id=account_id,
            created_at=now,
            expires_at=expires,
        )
        session.add(link)
        return self.url(self.token(claims)), link

    def parse(self, token: str) -> LinkClaims:
        """The claims of a token whose signature checks out, or LinkRefused(forged)."""
        encoded, sep, signature = token.partition(".")
        if not sep or not self.privacy.verify(_SIGNING_CONTEXT + encoded.encode(), signature):
            raise FORGED
        try:
            data = json.loads(_unb64(encoded))
            return LinkClaims(
                alert_id=int(data["a"]),
                account_id=str(data["u"]),
                expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
                nonce=str(data["n"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise FORGED from None

    async def check(
        self, session: AsyncSession, token: str, *, presenter: Account | None = None
    ) -> tuple[LinkClaims, Alert, Account]:
        """Everything that must hold before the link may acknowledge (nothing is changed)."""
        claims = self.parse(token)
        link = await session.get(AckLink, claims.nonce)
        if link is None or link.alert_id != claims.alert_id or link.account_id != claims.account_id:
            raise FORGED  # signed by us but never issued: the key leaked or was reused
        if self.clock.now() >= link.expires_at:
            raise EXPIRED
        if link.used_at is not None:
            raise USED
        if presenter is not None and presenter.id != claims.account_id:
            raise OTHER_LEADER
        account = await session.get(Account, claims.account_id)
        alert = await session.get(Alert, claims.alert_id)
        if alert is None:
            raise NO_ALERT
        if presenter is None and alert.level in self.login_levels:
            # A forwarded mail or a private window: neither acknowledges nor reads.
            raise LOGIN_REQUIRED
        if account is None or not await may_act_on(session, account, alert.region_code):
            raise NOT_ALLOWED
        return claims, alert, account

    async def redeem(
        self, session: AsyncSession, token: str, *, presenter: Account | None = None
    ) -> tuple[LinkClaims, Alert, Account]:
        """Check the link and mark it used (once: a second redeem raises USED)."""
        claims, alert, account = await self.check(session, token, presenter=presenter)
        result = await session.execute(
            update(AckLink)
            .where(AckLink.nonce == claims.nonce, AckLink.used_at.is_(None))
            .values(used_at=self.clock.now())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise USED  # a concurrent request used it first
        return claims, alert, account
