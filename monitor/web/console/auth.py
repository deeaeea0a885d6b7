"""Console sessions: log in with an account token, keep a signed cookie.

The cookie holds `account_id.issued.expires.signature` (HMAC with the installation
secret), so no session table is needed. The account is looked up on every request:
revoking it ends its sessions at once, and logging out moves the account's
`sessions_valid_after` past every cookie issued so far (copies of the cookie included).
Forms carry a CSRF token derived from the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

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


def _micros(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def make_cookie(ctx: Context, account_id: str, now: datetime, ttl: timedelta) -> str:
    expires = int((now + ttl).timestamp())
    payload = f"{account_id}.{_micros(now)}.{expires}"
    return f"{payload}.{ctx.privacy.sign(payload.encode())}"


@dataclass(frozen=True)
class Session:
    account_id: str
    #: When the cookie was issued, in microseconds since the epoch.
    issued: int


def read_cookie(ctx: Context, value: str | None, now: datetime) -> Session | None:
    """The session in a valid, unexpired cookie, else None."""
    if not value or value.count(".") < 3:
        return None
    payload, _, signature = value.rpartition(".")
    if not ctx.privacy.verify(payload.encode(), signature):
        return None
    rest, _, expires = payload.rpartition(".")
    account_id, _, issued = rest.rpartition(".")
    if not expires.isdigit() or not issued.isdigit() or int(expires) < now.timestamp():
        return None
    return Session(account_id, int(issued))


async def session_account(ctx: Context, request: Request) -> Account | None:
    """The active account of the request's console session, if it has a valid one."""
    session_ = read_cookie(ctx, request.cookies.get(COOKIE), ctx.clock.now())
    if session_ is None:
        return None
    async with ctx.db.session() as session:
        account = await session.get(Account, session_.account_id)
    if account is None or account.status != "active":
        return None
    ended = account.sessions_valid_after
    if ended is not None and session_.issued <= _micros(ended):
        return None
    return account


async def end_sessions(ctx: Context, account_id: str) -> None:
    """Log out everywhere: every cookie issued until now stops working."""
    async with ctx.db.session() as session:
        account = await session.get(Account, account_id)
        if account is not None:
            account.sessions_valid_after = ctx.clock.now()


def same_origin(request: Request, base_url: str | None = None) -> bool:
    """False when a browser says the form was posted from another site (its Origin
    header names another host than the one it sent the request to). Requests without
    Origin (non-browser clients) pass: they cannot carry a victim's cookies across sites."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = urlsplit(origin).netloc
    if not host:  # "null": a sandboxed frame or a privacy-stripped origin
        return False
    allowed = {request.headers.get("host", "")}
    if base_url:
        allowed.add(urlsplit(base_url).netloc)
    return host in allowed


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
    account = await session_account(ctx, request)
    if account is None:
        regions = await all_regions(ctx) if anonymous_read else frozenset()
        return Viewer(None, regions, anonymous_read)
    return Viewer(account, await regions_below(ctx, account.region_code), anonymous_read)
