"""The alerts face of the HTTP API: list, acknowledge, resolve, silences, and the pages
behind the acknowledge links in emails.

Bearer tokens per account (interfaces §3). Leader accounts (and daemon accounts) read the
alerts of their region and the regions below it; leaders and duty officers act on
them; anything else is 403. The link pages are HTML in Chinese; GET only shows the
alert (mail scanners fetch links), POST acknowledges (see `monitor.alerting.acklinks`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from monitor.alerting.acklinks import LOGIN_REQUIRED, PATH, LinkRefused
from monitor.alerting.book import AlertBook, AlertError, alert_json
from monitor.alerting.contacts import may_act_on, region_covers
from monitor.alerting.handling import Handling, RecordError, RecordIn, handling_json, record_json
from monitor.alerting.silences import SilenceError, list_silences, resolve_target
from monitor.config import Duration
from monitor.context import Context
from monitor.models import Account, Alert, Silence
from monitor.web.console.auth import session_account
from monitor.web.pages import pages

_bearer = HTTPBearer(auto_error=False)
#: Link pages must not leak their token to other sites or caches.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


class ActionIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class RecordBody(BaseModel):
    """A handling record (interfaces §8); which fields apply depends on `kind`."""

    kind: str
    text: str = ""
    verdict: str | None = None
    people_now: int | None = None
    due_at: str | None = None
    due: str | None = None
    answers: int | None = None
    people_final: int | None = None
    wages_recovered: float | None = None
    workers_paid: int | None = None
    resolution: str | None = None


class SilenceIn(BaseModel):
    scope: Literal["point", "region"]
    target: str = Field(min_length=1, max_length=64)
    #: "2h", "3d", or seconds.
    duration: Duration
    reason: str = Field(min_length=1, max_length=2000)


def api_json(alert: Alert) -> dict[str, Any]:
    """The interfaces §4 fields, plus what the console needs."""
    return alert_json(alert) | {
        "people_involved": alert.people_involved,
        "score": alert.score,
        "factors": alert.factors or [],
        "tier_reached": alert.tier_reached,
        "next_escalation_at": alert.next_escalation_at.isoformat()
        if alert.next_escalation_at
        else None,
        "acknowledged_by": alert.acknowledged_by,
        "resolved_by": alert.resolved_by,
        "updated_at": alert.updated_at.isoformat(),
    }


def silence_json(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "scope": silence.scope,
        "target": silence.target,
        "region_code": silence.region_code,
        "reason": silence.reason,
        "created_by": silence.created_by,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "cancelled_at": silence.cancelled_at.isoformat() if silence.cancelled_at else None,
    }


def include_alerts(app: FastAPI, ctx: Context) -> None:
    book = AlertBook(ctx)
    handling = Handling(ctx, book)
    router = APIRouter(tags=["alerts"])

    async def account(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Account:
        found = await ctx.accounts.by_token(credentials.credentials) if credentials else None
        if found is None:
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return found

    def reader(who: Account) -> None:
        if who.kind not in ("leader", "daemon"):
            raise HTTPException(403, f"a {who.kind} account cannot read alerts")

    async def actor_on(who: Account, alert_id: int) -> None:
        async with ctx.db.session() as session:
            alert = await session.get(Alert, alert_id)
            if alert is None:
                raise HTTPException(404, f"no alert {alert_id}")
            if not await may_act_on(session, who, alert.region_code):
                raise HTTPException(
                    403, "only a leader of the alert's region or a region above it may do this"
                )

    @router.get("/api/v1/alerts")
    async def list_alerts(
        status: Literal["triggered", "acknowledged", "resolved"] | None = None,
        level: Literal["I", "II", "III", "IV"] | None = None,
        region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
        who: Account = Depends(account),
    ) -> list[dict[str, Any]]:
        """Alerts in the caller's region and below, newest first."""
        reader(who)
        if region is not None:
            async with ctx.db.session() as session:
                if not await region_covers(session, who.region_code, region):
                    raise HTTPException(403, f"region {region} is outside your jurisdiction")
        alerts = await book.list(
            status=status,
            level=level,
            region=region,
            within=who.region_code,
            limit=limit,
            offset=offset,
        )
        async with ctx.db.session() as session:
            extra = await handling_json(session, alerts, ctx.clock.now())
        return [api_json(a) | extra[a.id] for a in alerts]

    @router.get("/api/v1/alerts/{alert_id}")
    async def get_alert(alert_id: int, who: Account = Depends(account)) -> dict[str, Any]:
        """One alert with its handling records and deadlines."""
        reader(who)
        async with ctx.db.session() as session:
            alert = await session.get(Alert, alert_id)
            if alert is None:
                raise HTTPException(404, f"no alert {alert_id}")
            if not await region_covers(session, who.region_code, alert.region_code):
                raise HTTPException(403, "the alert is outside your jurisdiction")
            extra = await handling_json(session, [alert], ctx.clock.now(), full=True)
        return api_json(alert) | extra[alert.id]

    @router.post("/api/v1/alerts/{alert_id}/records", status_code=201)
    async def add_record(
        alert_id: int, body: RecordBody, who: Account = Depends(account)
    ) -> dict[str, Any]:
        """File a handling record: 201 with the record, 422 naming the bad fields."""
        await actor_on(who, alert_id)
        try:
            record = await handling.add(
                alert_id, RecordIn(**body.model_dump()), author=who.id, via="api"
            )
        except RecordError as exc:
            raise HTTPException(
                422,
                [
                    {"loc": ["body", field], "msg": reason, "type": "value_error"}
                    for field, reason in exc.errors.items()
                ],
            ) from None
        except AlertError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return record_json(record)

    @router.post("/api/v1/alerts/{alert_id}/ack")
    async def acknowledge(
        alert_id: int, body: ActionIn | None = None, who: Account = Depends(account)
    ) -> dict[str, Any]:
        """Acknowledge: escalation stops (idempotent)."""
        await actor_on(who, alert_id)
        try:
            alert = await book.acknowledge(
                alert_id, actor=who.id, reason=body.reason if body else None, via="api"
            )
        except AlertError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return api_json(alert)

    @router.post("/api/v1/alerts/{alert_id}/resolve")
    async def resolve(
        alert_id: int, body: ActionIn | None = None, who: Account = Depends(account)
    ) -> dict[str, Any]:
        """Resolve: the alert closes and those told about it get a resolved notice."""
        await actor_on(who, alert_id)
        try:
            alert = await book.resolve(
                alert_id, actor=who.id, reason=body.reason if body else None, via="api"
            )
        except AlertError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return api_json(alert)

    @router.get("/api/v1/silences")
    async def silences(who: Account = Depends(account)) -> list[dict[str, Any]]:
        reader(who)
        async with ctx.db.session() as session:
            found = await list_silences(session, ctx.clock.now())
            return [
                silence_json(s)
                for s in found
                if await region_covers(session, who.region_code, s.region_code)
            ]

    @router.post("/api/v1/silences", status_code=201)
    async def add_silence(body: SilenceIn, who: Account = Depends(account)) -> dict[str, Any]:
        if body.duration <= timedelta(0) or body.duration > timedelta(days=90):
            raise HTTPException(422, "duration must be between 1 second and 90 days")
        async with ctx.db.session() as session:
            try:
                region = await resolve_target(session, body.scope, body.target)
            except SilenceError as exc:
                raise HTTPException(422, str(exc)) from None
            if not await may_act_on(session, who, region):
                raise HTTPException(403, "you may silence only within your jurisdiction")
        try:
            silence = await book.silence(
                scope=body.scope,
                target=body.target,
                duration=body.duration,
                reason=body.reason,
                actor=who.id,
            )
        except SilenceError as exc:
            raise HTTPException(422, str(exc)) from None
        return silence_json(silence)

    @router.delete("/api/v1/silences/{silence_id}")
    async def end_silence(silence_id: int, who: Account = Depends(account)) -> dict[str, Any]:
        async with ctx.db.session() as session:
            silence = await session.get(Silence, silence_id)
            if silence is None:
                raise HTTPException(404, f"no silence {silence_id}")
            if not await may_act_on(session, who, silence.region_code):
                raise HTTPException(403, "you may end silences only within your jurisdiction")
        try:
            return silence_json(await book.end_silence(silence_id, actor=who.id))
        except SilenceError as exc:
            raise HTTPException(409, str(exc)) from None

    # ------------------------------------------------------------------ link pages

    def page(
        status: int,
        heading: str,
        message: str | None = None,
        item: dict[str, Any] | None = None,
        show_button: bool = False,
        login_url: str | None = None,
    ) -> HTMLResponse:
        html = (
            pages()
            .get_template("ack_page.html.j2")
            .render(
                heading=heading,
                message=message,
                item=item,
                show_button=show_button,
                login_url=login_url,
            )
        )
        return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)

    async def presenter(request: Request) -> Account | None:
        """Who is presenting the link, if the request says: an API token, or the console
        session of the browser that opened it. A link mailed to one leader and opened by
        another signed-in leader is then refused (the link alone names nobody else)."""
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            found = await ctx.accounts.by_token(auth[7:].strip())
            if found is None:
                raise LinkRefused("bad_token", 401, "登录凭据无效。")
            return found
        return await session_account(ctx, request)

    @router.get("/ack/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def ack_page(token: str, request: Request) -> HTMLResponse:
        """Shows the alert and one button; does NOT acknowledge (scanners fetch links)."""
        try:
            who = await presenter(request)
            async with ctx.db.session() as session:
                _claims, alert, _account = await book.links.check(session, token, presenter=who)
                item = await book.dispatcher.messages.item(session, alert, "alert", ctx.clock.now())
        except LinkRefused as refused:
            login = f"/login?next={quote(PATH + token)}" if refused is LOGIN_REQUIRED else None
            return page(refused.status, "无法确认", refused.text, login_url=login)
        if alert.status != "triggered":
            return page(200, "无需确认", f"该预警{item['status_name']}。", item)
        return page(200, "确认收到预警", None, item, show_button=True)

    @router.post("/ack/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def ack_link(token: str, request: Request) -> HTMLResponse:
        try:
            who = await presenter(request)
            async with ctx.db.session() as session:
                _claims, alert, account_ = await book.links.redeem(session, token, presenter=who)
                if alert.status == "resolved":
                    raise AlertError("already resolved")
                alert = await book.acknowledge(
                    alert.id, actor=account_.id, via="link", session=session
                )
                item = await book.dispatcher.messages.item(session, alert, "alert", ctx.clock.now())
        except LinkRefused as refused:
            return page(refused.status, "无法确认", refused.text)
        except AlertError:
            return page(409, "无需确认", "该预警已解除。")
        book.wake()
        return page(
            200, "已确认收到", "已记录您的确认，升级通报已停止。处置完毕后请在系统中办结。", item
        )

    app.include_router(router)
