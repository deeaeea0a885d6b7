"""Console sessions: log in with an account token, keep a signed cookie.

The cookie holds `account_id.expires.signature` (HMAC with the installation secret), so
no session table is needed; the account is looked up on every request, so revoking it
ends its sessions at once. Forms carry a CSRF token derived from the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import select

from monitor.context import Context
from monitor.models import Account, Region

COOKIE = "labormon_session"


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the console, and which regions they may see."""

    account: Account | None
    #: Region codes the viewer may see (their region and everything below it).
    regions: frozenset[str]
    anonymous_read: bool = False

    @property
    def logged_in(self) -> bool:
        return self.account is not None

    @property
    def is_leader(self) -> bool:
        return self.account is not None and self.account.kind == "leader"

    @property
    def is_informant(self) -> bool:
        return self.account is not None and self.account.kind == "informant"

    @property
    def can_act(self) -> bool:
        """Leaders and duty officers acknowledge and resolve; analysts only read."""
        return self.is_leader and self.account is not None and self.account.role != "analyst"

    def sees_region(self, code: str) -> bool:
        return code in self.regions


def make_cookie(ctx: Context, account_id: str, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    payload = f"{account_id}.{expires}"
    return f"{payload}.{ctx.privacy.sign(payload.encode())}"


def read_cookie(ctx: Context, value: str | None, now: datetime) -> str | None:
    """The account id in a valid, unexpired cookie, else None."""
    if not value or value.count(".") < 2:
        return None
    payload, _, signature = value.rpartition(".")
    account_id, _, expires = payload.rpartition(".")
    if not ctx.privacy.verify(payload.encode(), signature):
        return None
    if not expires.isdigit() or int(expires) < now.timestamp():
        return None
    return account_id


def csrf_token(ctx: Context, cookie: str | None) -> str:
    return ctx.privacy.sign(b"csrf:" + (cookie or "").encode())


def check_csrf(ctx: Context, request: Request, token: str) -> bool:
    return ctx.privacy.verify(b"csrf:" + (request.cookies.get(COOKIE) or "").encode(), token)


async def regions_below(ctx: Context, code: str) -> frozenset[str]:
    """`code` and every region under it in the registry."""
    async with ctx.db.session() as session:
        rows = (await session.execute(select(Region.code, Region.parent_code))).all()
    children: dict[str | None, list[str]] = {}
    for child, parent in rows:
        children.setdefault(parent, []).append(child)
    found, stack = {code}, [code]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return frozenset(found)


async def all_regions(ctx: Context) -> frozenset[str]:
    async with ctx.db.session() as session:
        return frozenset((await session.scalars(select(Region.code))).all())


async def viewer_for(ctx: Context, request: Request, anonymous_read: bool) -> Viewer:
    account_id = read_cookie(ctx, request.cookies.get(COOKIE), ctx.clock.now())
    account = None
    if account_id:
        async with ctx.db.session() as session:
            account = await session.get(Account, account_id)
        if account is not None and account.status != "active":
            account = None
    if account is None:
        regions = await all_regions(ctx) if anonymous_read else frozenset()
        return Viewer(None, regions, anonymous_read)
    return Viewer(account, await regions_below(ctx, account.region_code), anonymous_read)
