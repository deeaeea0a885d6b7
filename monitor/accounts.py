"""Accounts: who may send (informants, monitoring points, petition sources) and who is
told (leaders and duty officers), with their tier, region and role.

A new account gets a bearer token (HTTP) and an MQTT password; only hashes are kept:
SHA-256 of the 256-bit random token (a slow hash adds nothing for random secrets and
keeps the per-request lookup cheap), and the MQTT password in Mosquitto's own PBKDF2
format, so that `labormon mqtt auth-files` can write a password file without ever
knowing the passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from monitor.clock import Clock
from monitor.db import Database
from monitor.models import Account, MonitoringPoint, Region
from monitor.privacy import Privacy
from monitor.regions import COUNTY, GRASSROOTS, tier_of

AccountKind = Literal["informant", "point", "source", "leader", "daemon"]
KINDS: tuple[str, ...] = ("informant", "point", "source", "leader", "daemon")
#: Roles a leader-kind account may have; other kinds have their kind as role.
LEADER_ROLES = ("leader", "duty_officer", "analyst")
TOKEN_PREFIX = "lm_"
MQTT_PBKDF2_ITERATIONS = 20_000
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class AccountError(ValueError):
    """A request about accounts that cannot be carried out (message says why)."""


@dataclass(frozen=True)
class NewAccount:
    """What `add` returns once: the secrets are not stored and cannot be shown again."""

    id: str
    kind: str
    token: str
    mqtt_password: str
    #: What the caller should be told although the account was made (one line each).
    warnings: tuple[str, ...] = ()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mosquitto_hash(password: str, *, iterations: int = MQTT_PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2 password-file hash: `$7$<iterations>$<salt>$<PBKDF2-SHA512>`."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(password: str, stored: str) -> bool:
    try:
        _, version, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if version != "7":
        return False
    computed = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt), int(iterations), 64
    )
    return hmac.compare_digest(base64.b64encode(computed).decode(), digest)


class Accounts:
    """Create, list, revoke and authenticate accounts."""

    def __init__(self, db: Database, clock: Clock, privacy: Privacy) -> None:
        self.db = db
        self.clock = clock
        self.privacy = privacy

    async def add(
        self,
        *,
        kind: str,
        account_id: str,
        region_code: str,
        tier: int | None = None,
        role: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        webhook_url: str | None = None,
    ) -> NewAccount:
        if kind not in KINDS:
            raise AccountError(f"--kind must be one of {', '.join(KINDS)}")
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise AccountError(
                "--id must be 1-64 letters, digits, '_', '.', ':' or '-' "
                "(it is used in MQTT topics)"
            )
        try:
            region_tier = tier_of(region_code)
        except ValueError as exc:
            raise AccountError(f"--region: {exc}") from None
        if tier is None:
            # Informants of a county are grassroots (tier 4) unless said otherwise.
            tier = GRASSROOTS if kind == "informant" and region_tier == COUNTY else region_tier
        if tier < region_tier or tier > GRASSROOTS:
            raise AccountError(
                f"--tier {tier} does not fit region {region_code} (tier {region_tier})"
            )
        if role is None:
            role = "leader" if kind == "leader" else kind
        if kind == "leader" and role not in LEADER_ROLES:
            raise AccountError(f"--role must be one of {', '.join(LEADER_ROLES)}")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise AccountError(f"--email {email!r} is not an email address")
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            raise AccountError("--webhook must be an http:// or https:// URL")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        password = secrets.token_urlsafe(18)
        async with self.db.session() as session:
            if await session.get(Region, region_code) is None:
                raise AccountError(f"--region: unknown region code {region_code}")
            warnings: tuple[str, ...] = ()
            if kind == "point" and await session.get(MonitoringPoint, account_id) is None:
                # Allowed in either order; wage reports are refused until the point is
                # in the registry (the store checks every report's point).
                warnings = (
                    f"monitoring point {account_id} is not registered yet: its wage reports "
                    "are refused until it is imported (points.csv)",
                )
            session.add(
                Account(
                    id=account_id,
                    kind=kind,
                    region_code=region_code,
                    tier=tier,
                    role=role,
                    name_enc=self.privacy.encrypt(name),
                    phone_enc=self.privacy.encrypt(phone),
                    email=email,
                    webhook_url=webhook_url,
                    token_hash=hash_token(token),
                    mqtt_password_hash=mosquitto_hash(password),
                    status="active",
                    created_at=self.clock.now(),
                )
            )
            try:
                await session.flush()
            except IntegrityError:
                raise AccountError(f"--id: account {account_id} already exists") from None
        return NewAccount(
            id=account_id, kind=kind, token=token, mqtt_password=password, warnings=warnings
        )

    async def list(
        self, *, kind: str | None = None, include_revoked: bool = False
    ) -> list[Account]:
        query = select(Account).order_by(Account.kind, Account.id)
        if kind:
            query = query.where(Account.kind == kind)
        if not include_revoked:
            query = query.where(Account.status == "active")
        async with self.db.session() as session:
            return list((await session.scalars(query)).all())

    async def revoke(self, account_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                update(Account)
                .where(Account.id == account_id, Account.status == "active")
                .values(status="revoked", revoked_at=self.clock.now())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise AccountError(f"no active account {account_id}")

    async def by_token(self, token: str) -> Account | None:
        """The active account a bearer token belongs to, or None."""
        if not token:
            return None
        async with self.db.session() as session:
            return (
                await session.scalars(
                    select(Account).where(
                        Account.token_hash == hash_token(token), Account.status == "active"
                    )
                )
            ).first()
