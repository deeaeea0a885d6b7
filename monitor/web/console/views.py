"""The web console (server-rendered, Chinese, no build step).

Pages: 预警 (alerts with their escalation timeline, acknowledge/resolve), 风险 (points and
counties ranked, a county grid coloured by level, each point's history), 上报 (an
informant's incident report form), 邮件 (the demo's mail sink), 报表 (monthly reports and
the Grafana boards). A leader sees their region and the regions below it; an informant
sees the report form and what became of their own reports.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from monitor import bus
from monitor import labels as glossary
from monitor.alerting.messages import PURPOSE_TITLES, scrub
from monitor.clock import local_date
from monitor.context import Context
from monitor.records import CATEGORIES, EVENT_TYPES, field_errors, parse_obj
from monitor.report import signoff
from monitor.store import Submission
from monitor.web.console import duty, queries
from monitor.web.console.auth import (
    COOKIE,
    Viewer,
    check_csrf,
    csrf_token,
    end_sessions,
    make_cookie,
    regions_below,
    same_origin,
    session_account,
    viewer_for,
)
from monitor.web.console.charts import sparkline
from monitor.web.console.handling import file_record, handling_view
from monitor.web.console.informant import consequence, contradiction, parse_people
from monitor.web.mailsink import bodies, list_mail, read_mail

HERE = Path(__file__).resolve().parent.parent  # monitor/web
CROSS_SITE = "请求来自其他网站，已拒绝。请直接在本系统页面上操作。"
REPORT_READERS = (
    "月报只向收件层级（默认为省、市两级）的领导开放；如需查看，请联系市总工会的系统管理员。"
)
LEVEL_NAMES = glossary.LEVEL_NAMES
LEVEL_COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
STATUS_NAMES = glossary.ALERT_STATUS
KIND_NAMES = glossary.ALERT_KINDS
#: The form explains what "extreme act" covers, since it decides level I by itself.
EVENT_NAMES = glossary.EVENT_TYPES | {"extreme_act": "极端行为（含扬言自伤、冲击机关）"}
CATEGORY_NAMES = glossary.CATEGORIES
INDUSTRY_NAMES = glossary.INDUSTRIES
CHANNEL_NAMES = {
    "email": "邮件",
    "wecom": "企业微信",
    "dingtalk": "钉钉",
    "feishu": "飞书",
    "webhook": "Webhook",
    "mqtt": "MQTT",
}
#: The audit log's events (monitor/alerting.py, escalation.py, dispatch.py) in Chinese.
EVENT_LOG_NAMES = {
    "AlertTriggered": "触发预警",
    "AlertUpdated": "预警更新",
    "AlertLevelRaised": "等级上调",
    "AlertNotified": "已发出通知",
    "AlertEscalated": "逐级上报",
    "AlertQueuedForDigest": "列入每日汇总",
    "IncludedInDigest": "已随每日汇总发送",
    "AlertAcknowledged": "确认收到",
    "AcknowledgementReminded": "提醒尽快处置",
    "AcknowledgementExpired": "确认后超时未处置，重新上报",
    "AlertResolved": "预警解除",
    "HandlingRecorded": "处置记录",
    "NotificationsSuppressed": "静默期内暂不通知",
    "SilenceEnded": "静默结束",
    "NotificationUndeliverable": "通知无法送达",
    "DeliveryComposeFailed": "通知无法生成（请系统管理员处理）",
    "AlertCorrected": "信息员更正报告",
    "ReportWithdrawn": "信息员撤回报告",
}
DELIVERY_STATUS = {"pending": "待发送", "sent": "已送达", "failed": "发送失败"}
#: Why a notification was sent (monitor/messages.py's headings, plus the channels' own).
PURPOSE_NAMES = PURPOSE_TITLES | {"event": "MQTT 事件推送", "overdue": "逾期提醒", "report": "月报"}


def _local_path(target: str) -> bool:
    """Only a path on this site may follow a log-in: not "//evil", nor "/\\evil", which
    browsers read as another host, nor anything with a control character."""
    return (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
    )


def _fmt_time(ctx: Context, value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(ctx.settings.organisation.zone).strftime("%Y-%m-%d %H:%M:%S")


def build_templates(ctx: Context) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates" / "console"))
    env = templates.env
    env.globals.update(
        LEVEL_NAMES=LEVEL_NAMES,
        LEVEL_COLOURS=LEVEL_COLOURS,
        STATUS_NAMES=STATUS_NAMES,
        KIND_NAMES=KIND_NAMES,
        EVENT_NAMES=EVENT_NAMES,
        CATEGORY_NAMES=CATEGORY_NAMES,
        INDUSTRY_NAMES=INDUSTRY_NAMES,
        CHANNEL_NAMES=CHANNEL_NAMES,
        EVENT_LOG_NAMES=EVENT_LOG_NAMES,
        DELIVERY_STATUS=DELIVERY_STATUS,
        PURPOSE_NAMES=PURPOSE_NAMES,
        sparkline=sparkline,
        TIERS=glossary.TIERS,
        ROLES=glossary.ROLES,
    )
    env.filters["t"] = lambda v: _fmt_time(ctx, v)
    env.filters["score"] = lambda v: "" if v is None else f"{v:.0f}"
    # Free text typed by people (report descriptions) with personal numbers masked, and
    # names after a cue (联系人王五) too unless the page says the reader may see them
    # (`names=False`: the informant's own receipt; leaders and duty officers who act).
    env.filters["scrub"] = scrub
    return templates


def include(app: FastAPI, ctx: Context) -> None:
    """Add the console to the daemon's HTTP app."""
    console = ctx.settings.console
    templates = build_templates(ctx)
    router = APIRouter(include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    async def viewer(request: Request) -> Viewer:
        return await viewer_for(ctx, request, console.anonymous_read)

    def page(
        request: Request, name: str, v: Viewer, status_code: int = 200, **data: Any
    ) -> Response:
        data.update(
            viewer=v,
            csrf=csrf_token(ctx, request.cookies.get(COOKIE)),
            grafana_url=ctx.settings.grafana.url,
            has_mail=bool(console.mail_dir),
            path=request.url.path,
        )
        return templates.TemplateResponse(request, name, data, status_code=status_code)

    def reads_reports(v: Viewer) -> bool:
        """The city-wide monthly report goes to the leaders of the tiers it is mailed to."""
        if v.account is None:
            return console.anonymous_read
        return v.is_leader and v.account.tier in ctx.settings.report.recipient_tiers

    def to_login(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)

    @router.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        v = await viewer(request)
        if v.is_informant:
            return RedirectResponse("/report", status_code=303)
        return RedirectResponse("/alerts", status_code=303)

    # ------------------------------------------------------------------ log-in

    def demo_logins() -> list[dict[str, str]]:
        if not console.demo_accounts_file:
            return []
        path = Path(console.demo_accounts_file)
        return list(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/") -> Response:
        return page(
            request,
            "login.html",
            await viewer(request),
            next=next,
            error=None,
            demo_logins=demo_logins(),
        )

    @router.post("/login")
    async def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
        if not same_origin(request, ctx.settings.http.base_url):
            # Login CSRF: another site must not sign the browser in to an account.
            return page(request, "error.html", await viewer(request), 403, message=CROSS_SITE)
        account = await ctx.accounts.by_token(token.strip())
        if account is None or account.kind not in {"leader", "informant"}:
            return page(
                request,
                "login.html",
                await viewer(request),
                status_code=401,
                next=next,
                error="令牌无效或已停用：请使用领导或信息员账号的令牌登录。",
                demo_logins=demo_logins(),
            )
        target = next if _local_path(next) else "/"
        if account.kind == "informant" and target in {"/", "/alerts"}:
            target = "/report"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            make_cookie(ctx, account.id, ctx.clock.now(), console.session_ttl),
            max_age=int(console.session_ttl.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=ctx.settings.http.base_url.startswith("https://"),
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        if not same_origin(request, ctx.settings.http.base_url):
            return page(request, "error.html", await viewer(request), 403, message=CROSS_SITE)
        account = await session_account(ctx, request)
        if account is not None:
            await end_sessions(ctx, account.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # ------------------------------------------------------------------ alerts

    @router.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(
        request: Request, status: str = "", level: str = "", fragment: int = 0
    ) -> Response:
        v = await viewer(request)
        if not v.regions or v.is_informant:
            return to_login(request) if not v.logged_in else RedirectResponse("/report", 303)
        rows = await queries.alerts_for(ctx, v.regions, status=status or None, level=level or None)
        names = await queries.region_names(ctx)
        counts = await queries.alert_counts(ctx, v.regions)
        name = "_alerts_table.html" if fragment else "alerts.html"
        return page(
            request, name, v, alerts=rows, names=names, counts=counts, status=status, level=level
        )

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_page(request: Request, alert_id: int, fragment: int = 0) -> Response:
        return await render_alert(request, alert_id, fragment)

    async def render_alert(
        request: Request,
        alert_id: int,
        fragment: int = 0,
        status_code: int = 200,
        form_kind: str = "",
        form: dict[str, str] | None = None,
        form_errors: dict[str, str] | None = None,
    ) -> Response:
        v = await viewer(request)
        alert, timeline = await queries.alert_detail(ctx, alert_id)
        if alert is None:
            return page(request, "error.html", v, status_code=404, message="没有这条预警。")
        allowed = await _own_alert(v, alert) if v.is_informant else v.sees_region(alert.region_code)
        if not allowed:
            if not v.logged_in:
                return to_login(request)
            return page(
                request, "error.html", v, status_code=403, message="这条预警不在您的管辖范围内。"
            )
        labels = await queries.account_label(
            ctx, [t.who for t in timeline if t.who] + [alert.acknowledged_by or ""]
        )
        names = await queries.region_names(ctx)
        name = "_timeline.html" if fragment else "alert.html"
        # The record's own words in full only for those who act on the alert.
        facts = await queries.alert_facts(ctx, alert, full_text=v.can_act) if not fragment else {}
        return page(
            request,
            name,
            v,
            status_code,
            alert=alert,
            facts=facts,
            timeline=timeline,
            labels=labels,
            names=names,
            message=ACTION_MESSAGES.get(request.query_params.get("msg") or ""),
            form_kind=form_kind,
            form=form or {},
            form_errors=form_errors or {},
            **(await handling_view(ctx, alert, v) if not v.is_informant else {}),
        )

    async def _own_alert(v: Viewer, alert: Any) -> bool:
        """An informant may follow an alert raised from one of their own reports, and
        no other (not even one in their county)."""
        if not v.is_informant or v.account is None:
            return False
        sources = set(alert.source_ids or [])
        for report in await queries.my_reports(ctx, v.account.id, limit=200):
            if report.report_id in sources and any(
                a.id == alert.id for a in await queries.alerts_from_report(ctx, report)
            ):
                return True
        return False

    @router.post("/alerts/{alert_id}/{action}")
    async def alert_action(
        request: Request, alert_id: int, action: str, csrf: str = Form(""), note: str = Form("")
    ) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not check_csrf(ctx, request, csrf):
            return page(
                request, "error.html", v, status_code=400, message="表单已过期，请刷新页面后重试。"
            )
        if action not in {"ack", "resolve", "records"}:
            return page(request, "error.html", v, status_code=404, message="未知操作。")
        if not v.can_act:
            return page(
                request,
                "error.html",
                v,
                status_code=403,
                message="只有领导或值班员可以确认、处置预警。",
            )
        if action == "records":
            # A handling record (核实/续报/批示/答复/终报): errors go back next to the fields.
            form = {k: str(val) for k, val in (await request.form()).items() if k != "csrf"}
            outcome, errors = await file_record(ctx, v, alert_id, form)
            if errors:
                return await render_alert(
                    request,
                    alert_id,
                    status_code=422,
                    form_kind=form.get("kind", ""),
                    form=form,
                    form_errors=errors,
                )
            return RedirectResponse(f"/alerts/{alert_id}?msg={outcome}", status_code=303)
        outcome = await act_on_alert(ctx, v, alert_id, action, note.strip() or None)
        return RedirectResponse(f"/alerts/{alert_id}?msg={outcome}", status_code=303)

    # ------------------------------------------------------------------ duty view

    @router.get("/duty", response_class=HTMLResponse)
    async def duty_page(
        request: Request,
        status: str = "needs",
        county: str = "",
        kind: str = "",
        level: str = "",
        page_no: int = Query(1, alias="page", ge=1),
        msg: str = "",
    ) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not v.is_leader:
            return page(
                request,
                "error.html",
                v,
                status_code=403,
                message="值班台只向领导和值班员开放。",
            )
        rows = await duty.duty_rows(
            ctx, v.regions, status=status, county=county, kind=kind, level=level
        )
        size = console.duty_page_size
        pages = max(1, -(-len(rows) // size))
        page_no = min(page_no, pages)
        phones = v.account.role in console.contact_phone_roles
        scope = [county] if county else sorted(v.regions)
        query = {"status": status, "county": county, "kind": kind, "level": level}
        notes = await duty.handovers(ctx, v.regions)
        return page(
            request,
            "duty.html",
            v,
            rows=rows[(page_no - 1) * size : page_no * size],
            total=len(rows),
            overdue=sum(1 for r in rows if r.overdue),
            page_no=page_no,
            pages=pages,
            filters=query,
            base_query="&".join(f"{k}={quote(val)}" for k, val in query.items() if val),
            counties=await duty.counties(ctx, v.regions),
            names=await queries.region_names(ctx),
            contacts=await duty.contacts(ctx, scope, phones=phones),
            phones=phones,
            handovers=notes,
            labels=await queries.account_label(ctx, [n.author_id for n in notes]),
            message="交接班记录已保存。" if msg == "handover" else None,
        )

    @router.post("/duty/handover")
    async def duty_handover(
        request: Request, csrf: str = Form(""), note: str = Form("")
    ) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not check_csrf(ctx, request, csrf):
            return page(
                request, "error.html", v, status_code=400, message="表单已过期，请刷新页面后重试。"
            )
        if not v.can_act:
            return page(
                request, "error.html", v, status_code=403, message="只有领导或值班员可以交接班。"
            )
        text = note.strip()
        if not text:
            return page(request, "error.html", v, status_code=422, message="请填写交接班内容。")
        await duty.hand_over(ctx, v.account, scrub(text, 2000, names=False))
        return RedirectResponse("/duty?msg=handover", status_code=303)

    # ------------------------------------------------------------------ risk

    @router.get("/risk", response_class=HTMLResponse)
    async def risk_page(request: Request, region: str = "") -> Response:
        v = await viewer(request)
        if not v.regions or v.is_informant:
            return to_login(request) if not v.logged_in else RedirectResponse("/report", 303)
        # A province's leader sees the province, each city (?region=<city>) and each county;
        # a region outside the viewer's is refused, not silently widened.
        shown = v.regions
        if region:
            if not v.sees_region(region):
                return page(
                    request,
                    "error.html",
                    v,
                    status_code=403,
                    message="这个地区不在您的管辖范围内。",
                )
            shown = await regions_below(ctx, region) & v.regions
        points = await queries.latest_risk(ctx, "point", shown)
        tiles = await queries.county_tiles(ctx, shown)
        cities = await queries.city_tiles(
            ctx, v.regions, await queries.county_tiles(ctx, v.regions)
        )
        names = await queries.region_names(ctx)
        risk_alerts = await queries.open_risk_alerts(ctx, shown)
        return page(
            request,
            "risk.html",
            v,
            points=points[:100],
            total=len(points),
            tiles=tiles,
            cities=cities if len(cities) > 1 else [],
            region=region,
            region_name=names.get(region, ""),
            risk_alerts=risk_alerts,
            names=names,
        )

    @router.get("/risk/points/{point_id}", response_class=HTMLResponse)
    async def point_page(request: Request, point_id: str) -> Response:
        v = await viewer(request)
        today = local_date(ctx.clock.now(), ctx.settings.organisation.zone)
        history = await queries.point_history(ctx, point_id, today)
        if history is None:
            return page(request, "error.html", v, status_code=404, message="没有这个监测点。")
        if not v.sees_region(history.point.region_code) or v.is_informant:
            if not v.logged_in:
                return to_login(request)
            return page(
                request, "error.html", v, status_code=403, message="这个监测点不在您的管辖范围内。"
            )
        risk = await queries.latest_risk(ctx, "point", [history.point.region_code])
        current = next((r for r in risk if r.entity_id == point_id), None)
        return page(request, "point.html", v, h=history, current=current)

    # ------------------------------------------------------------------ informant report

    @router.get("/report", response_class=HTMLResponse)
    async def report_form(request: Request, corrects: str = "") -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not v.is_informant:
            return _not_an_informant(request, v)
        values: dict[str, str] = {}
        if corrects:
            # A correction starts from what was sent (interfaces §8: full new content).
            original = await _own_report(v, corrects)
            if original is None:
                return page(
                    request, "error.html", v, status_code=404, message="没有找到要更正的报告。"
                )
            values = _values_of(original) | {"corrects": original.report_id}
        return page(request, "report.html", v, **await _report_context(v, values, {}))

    async def _own_report(v: Viewer, report_id: str) -> Any:
        assert v.account is not None
        return next(
            (
                r
                for r in await queries.my_reports(ctx, v.account.id, limit=200)
                if r.report_id == report_id
            ),
            None,
        )

    def _values_of(report: Any) -> dict[str, str]:
        local = report.occurred_at.astimezone(ctx.settings.organisation.zone)
        unlisted = bool((report.extra or {}).get("enterprise_unlisted"))
        return {
            "occurred_at": local.strftime("%Y-%m-%dT%H:%M"),
            "region_code": report.region_code,
            "point_id": report.point_id or "",
            "enterprise_name": report.enterprise_name or "",
            "unlisted": "1" if unlisted else "",
            "event_type": report.event_type,
            "category": report.category or "",
            "people_involved": str(report.people_involved),
            "description": report.description,
        }

    @router.post("/report/{report_id}/withdraw", response_class=HTMLResponse)
    async def report_withdraw(request: Request, report_id: str, csrf: str = Form("")) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not check_csrf(ctx, request, csrf):
            return page(
                request, "error.html", v, status_code=400, message="表单已过期，请刷新页面后重试。"
            )
        record = parse_obj(
            "report",
            {"report_id": _new_report_id(), "informant_id": v.account.id, "withdraws": report_id},
        )
        result = await ctx.store.store("report", [Submission(record, "web", v.account.id)])
        refused = result.rejected.get(record.record_id)
        if refused is not None:
            return page(
                request, "error.html", v, status_code=409, message=_zh_reason(refused.reason)
            )
        ctx.bus.notify(bus.RECORDS)
        ctx.bus.notify(bus.EVENTS)
        ctx.bus.hold_bulk(ctx.settings.ingest.event_hold.total_seconds())
        return RedirectResponse(f"/report/{record.record_id}", status_code=303)

    def _not_an_informant(request: Request, v: Viewer) -> Response:
        # The same rule as the API's 403: only informants file informant reports.
        return page(
            request,
            "error.html",
            v,
            status_code=403,
            message="只有信息员账号可以报送信息员报告。",
        )

    @router.post("/report", response_class=HTMLResponse)
    async def report_submit(request: Request) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not v.is_informant:
            return _not_an_informant(request, v)
        form = dict(await request.form())
        if not check_csrf(ctx, request, str(form.pop("csrf", ""))):
            return page(
                request, "error.html", v, status_code=400, message="表单已过期，请刷新页面后重试。"
            )
        values = {k: str(val).strip() for k, val in form.items()}
        data, errors = _report_payload(v, values)
        await _check_enterprise(v, values, data, errors)
        record = None
        try:
            # Validated even when the form already found a problem, so that every bad
            # field is shown at once (placeholders stand in for what the form refused).
            record = parse_obj("report", data)
        except ValidationError as exc:
            for err in field_errors(exc):
                errors.setdefault(err.field or "form", _zh_reason(err.reason))
        if errors:
            record = None
        if record is not None:
            confirm = _needs_confirmation(data)
            digest = _confirmation_digest(data)
            if confirm and values.get("confirmed") != digest:
                # Said before sending: what a level I/II report sets off, and a count
                # that the description contradicts. The same form, sent again, confirms.
                values["confirmed"] = digest
                context = await _report_context(v, values, errors)
                return page(request, "report.html", v, confirm=confirm, **context)
            result = await ctx.store.store("report", [Submission(record, "web", v.account.id)])
            rejected = result.rejected.get(record.record_id)
            if rejected is None:
                ctx.bus.notify(bus.RECORDS)
                ctx.bus.notify(bus.EVENTS)
                ctx.bus.hold_bulk(ctx.settings.ingest.event_hold.total_seconds())
                return RedirectResponse(f"/report/{record.record_id}", status_code=303)
            where = rejected.field or "form"
            errors["form" if where in {"corrects", "withdraws"} else where] = _zh_reason(
                rejected.reason
            )
        return page(
            request, "report.html", v, status_code=422, **await _report_context(v, values, errors)
        )

    @router.get("/report/enterprises")
    async def enterprise_search(request: Request, q: str = "") -> Response:
        """Search-as-you-type over the registry of the informant's counties."""
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return JSONResponse({"error": "请先登录。"}, status_code=401)
        found = await queries.enterprises(ctx, _counties(v), q)
        return JSONResponse(
            [{"point_id": p.point_id, "name": p.name, "region_code": p.region_code} for p in found]
        )

    def _counties(v: Viewer) -> list[str]:
        codes = [c for c in v.regions if len(c) == 6 and not c.endswith("00")]
        return codes or ([v.account.region_code] if v.account else [])

    async def _check_enterprise(
        v: Viewer, values: dict[str, str], data: dict[str, Any], errors: dict[str, str]
    ) -> None:
        """The enterprise comes from the county's registry; free text only when the
        informant says it is not in it (and is then marked as such)."""
        name = values.get("enterprise_name", "")
        point_id = values.get("point_id", "")
        data.pop("point_id", None)
        data.pop("enterprise_name", None)
        counties = set(_counties(v))
        point = await queries.enterprise(ctx, point_id) if point_id else None
        if point is None and name:
            exact = await queries.enterprises(ctx, counties, name, exact=True, limit=1)
            point = exact[0] if exact else None
        if point is not None and point.region_code in counties:
            data["point_id"] = point.point_id
            data["enterprise_name"] = point.name
            values["point_id"], values["enterprise_name"] = point.point_id, point.name
            return
        values["point_id"] = ""
        if point_id and not name:
            errors["enterprise_name"] = "请从列表中选择本县（市、区）名录中的企业。"
        elif name and values.get("unlisted"):
            data["enterprise_name"] = name
            data["enterprise_unlisted"] = True
        elif name:
            errors["enterprise_name"] = (
                "名录中没有这家企业：请输入名称的一部分后从列表中选择；"
                "确实不在名录中，请勾选“不在名录中的企业”。"
            )

    def _needs_confirmation(data: dict[str, Any]) -> dict[str, str]:
        from detectors.service import severity_policy
        from detectors.severity import assess

        severity = assess(
            event_type=data.get("event_type"),
            people=int(data.get("people_involved") or 0),
            category=data.get("category"),
            text=str(data.get("description") or ""),
            is_petition=False,
            policy=severity_policy(ctx.settings.detectors),
        )
        found: dict[str, str] = {}
        if (said := consequence(severity.level)) is not None:
            found["consequence"] = said
            found["level"] = str(severity.level)
        people = int(data.get("people_involved") or 0)
        if (warning := contradiction(people, str(data.get("description") or ""))) is not None:
            found["contradiction"] = warning
        return found

    def _confirmation_digest(data: dict[str, Any]) -> str:
        fields = {k: v for k, v in data.items() if k not in {"report_id", "occurred_at"}}
        text = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        return ctx.privacy.sign(("confirm:" + text).encode())[:32]

    @router.get("/report/{report_id}", response_class=HTMLResponse)
    async def report_receipt(request: Request, report_id: str, fragment: int = 0) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        mine = [
            r
            for r in await queries.my_reports(ctx, v.account.id, limit=200)
            if r.report_id == report_id
        ]
        if not mine:
            return page(
                request, "error.html", v, status_code=404, message="没有找到这份报告的回执。"
            )
        alerts = await queries.alerts_from_report(ctx, mine[0])
        if not alerts and (mine[0].corrects or mine[0].withdraws):
            # A correction's alert is the one of the report it corrects.
            first = await _own_report(v, str(mine[0].corrects or mine[0].withdraws))
            alerts = await queries.alerts_from_report(ctx, first) if first else []
        name = "_receipt_alerts.html" if fragment else "receipt.html"
        names = await queries.region_names(ctx)
        changes = await queries.correction_state(
            ctx, mine[0], ctx.settings.ingest.correction_window
        )
        return page(
            request,
            name,
            v,
            report=mine[0],
            alerts=alerts,
            names=names,
            changes=changes,
            now=ctx.clock.now(),
        )

    async def _report_context(
        v: Viewer, values: dict[str, str], errors: dict[str, str]
    ) -> dict[str, Any]:
        names = await queries.region_names(ctx)
        regions = (
            sorted(
                (code, names.get(code, code))
                for code in v.regions
                if code and len(code) == 6 and not code.endswith("00")
            )
            or [(v.account.region_code, names.get(v.account.region_code, ""))]
            if v.account
            else []
        )
        recent = await queries.my_reports(ctx, v.account.id) if v.account else []
        now_local = ctx.clock.now().astimezone(ctx.settings.organisation.zone)
        return {
            "values": values,
            "errors": errors,
            "regions": regions,
            "event_types": EVENT_TYPES,
            "categories": CATEGORIES,
            "recent": recent,
            "now_local": now_local.strftime("%Y-%m-%dT%H:%M"),
        }

    def _new_report_id() -> str:
        # The receipt number carries the local date and time (the informant's day).
        local_now = ctx.clock.now().astimezone(ctx.settings.organisation.zone)
        return "web-" + local_now.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)

    def _report_payload(v: Viewer, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The form's text as a record payload; form-level problems named by field."""
        assert v.account is not None
        errors: dict[str, str] = {}
        when = values.get("occurred_at", "")
        occurred = None
        if not when:
            errors["occurred_at"] = "请填写发生时间。"
        else:
            try:
                occurred = datetime.fromisoformat(when).replace(
                    tzinfo=ctx.settings.organisation.zone
                )
            except ValueError:
                errors["occurred_at"] = "时间格式应为 2025-01-15T09:30。"
        people_text = values.get("people_involved", "")
        people = 0
        counted = parse_people(people_text)
        if counted is not None:
            people = counted
        elif people_text == "":
            errors["people_involved"] = "请填写涉及人数（不清楚可填 0）。"
        else:
            errors["people_involved"] = "涉及人数应为人数，可写数字或汉字（如 30、三十）。"
        report_id = _new_report_id()
        data: dict[str, Any] = {
            "report_id": report_id,
            "informant_id": v.account.id,
            "occurred_at": (occurred or ctx.clock.now()).isoformat(),
            "region_code": values.get("region_code", ""),
            "event_type": values.get("event_type", ""),
            "people_involved": people,
            "description": values.get("description", ""),
        }
        for optional in ("point_id", "enterprise_name", "category", "corrects"):
            if values.get(optional):
                data[optional] = values[optional]
        return data, errors

    # ------------------------------------------------------------------ mail (demo sink)

    @router.get("/mail", response_class=HTMLResponse)
    async def mail_list(request: Request) -> Response:
        v = await viewer(request)
        if not console.mail_dir:
            return page(
                request,
                "error.html",
                v,
                status_code=404,
                message="本系统未启用本地邮件箱（仅演示模式提供）。",
            )
        # Never open to anonymous read: mails hold every leader's acknowledge links. A
        # signed-in leader sees the mail sent to their own address only.
        if not v.is_leader or v.account is None:
            return to_login(request)
        own = _own_address(v)
        mails = [m for m in list_mail(Path(console.mail_dir)) if own in {t.lower() for t in m.to}]
        return page(request, "mail.html", v, mails=mails)

    def _own_address(v: Viewer) -> str:
        return (v.account.email or "").strip().lower() if v.account else ""

    @router.get("/mail/{name}", response_class=HTMLResponse)
    async def mail_view(request: Request, name: str) -> Response:
        v = await viewer(request)
        directory = Path(console.mail_dir) if console.mail_dir else None
        path = (directory / name) if directory else None
        if path is None or "/" in name or not path.is_file():
            return page(request, "error.html", v, status_code=404, message="没有这封邮件。")
        if not v.is_leader or v.account is None:
            return to_login(request)
        message = read_mail(path)
        recipients = {
            t.strip().lower() for t in str(message.get("X-Labormon-Envelope-To", "")).split(",")
        }
        if not _own_address(v) or _own_address(v) not in recipients:
            return page(request, "error.html", v, status_code=404, message="没有这封邮件。")
        text, html = bodies(message)
        return page(request, "mail_view.html", v, message=message, text=text, html=html, mail=name)

    # ------------------------------------------------------------------ reports and boards

    @router.get("/reports", response_class=HTMLResponse)
    async def reports_page(request: Request) -> Response:
        v = await viewer(request)
        if not reads_reports(v):
            return to_login(request) if not v.logged_in else RedirectResponse("/", 303)
        docs = await queries.latest_documents(ctx, regions=v.regions if v.logged_in else None)
        drafts = await queries.latest_documents(ctx, kind="monthly_report_draft")
        signed = {d.key for d in docs}
        waiting = sorted({d.key for d in drafts} - signed, reverse=True)
        return page(
            request,
            "reports.html",
            v,
            documents=docs,
            waiting=waiting,
            may_sign=signoff.may_sign(ctx, v.account),
        )

    @router.get("/reports/sign/{key}", response_class=HTMLResponse)
    async def report_review(request: Request, key: str, msg: str = "") -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not (reads_reports(v) or signoff.may_sign(ctx, v.account)):
            return page(request, "error.html", v, status_code=403, message=REPORT_READERS)
        drafts = [
            d
            for d in await queries.latest_documents(ctx, kind="monthly_report_draft", limit=50)
            if d.key == key
        ]
        if not drafts:
            return page(request, "error.html", v, status_code=404, message="没有这个月的月报草稿。")
        run = await signoff.signed_run(ctx, key)
        signed = [d for d in await queries.latest_documents(ctx, limit=50) if d.key == key]
        return page(
            request,
            "report_review.html",
            v,
            key=key,
            drafts=drafts,
            run=run,
            signed=signed,
            may_sign=signoff.may_sign(ctx, v.account),
            message="月报已签发，正在报送收件领导。" if msg == "signed" else None,
        )

    @router.post("/reports/sign/{key}", response_class=HTMLResponse)
    async def report_sign(
        request: Request, key: str, csrf: str = Form(""), note: str = Form("")
    ) -> Response:
        v = await viewer(request)
        if not v.logged_in or v.account is None:
            return to_login(request)
        if not check_csrf(ctx, request, csrf):
            return page(
                request, "error.html", v, status_code=400, message="表单已过期，请刷新页面后重试。"
            )
        if not signoff.may_sign(ctx, v.account):
            return page(
                request, "error.html", v, status_code=403, message="只有指定的审核人可以签发月报。"
            )
        try:
            month = date.fromisoformat(key + "-01")
        except ValueError:
            return page(request, "error.html", v, status_code=404, message="没有这个月的月报。")
        try:
            await signoff.sign(ctx, month, v.account, scrub(note.strip(), 2000) or None)
        except signoff.SignError as exc:
            return page(request, "error.html", v, status_code=409, message=str(exc))
        return RedirectResponse(f"/reports/sign/{key}?msg=signed", status_code=303)

    @router.get("/documents/{document_id}")
    async def download(request: Request, document_id: int) -> Response:
        v = await viewer(request)
        if not reads_reports(v):
            if not v.logged_in:
                return to_login(request)
            return page(request, "error.html", v, status_code=403, message=REPORT_READERS)
        doc = await queries.document(ctx, document_id)
        if doc is None or doc.kind not in {"monthly_report", "monthly_report_draft"}:
            return page(request, "error.html", v, status_code=404, message="没有这份文件。")
        if v.logged_in and not v.sees_region(queries.document_region(ctx, doc.key)):
            return page(request, "error.html", v, status_code=403, message=REPORT_READERS)
        return Response(
            doc.data,
            media_type=doc.content_type,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}"},
        )

    app.include_router(router)


_REASONS = {
    "required field is missing": "必填项。",
    "needs a UTC offset": "时间需带时区。",
    "must be one of": "请从列表中选择。",
    "unknown region code": "未知的区县代码。",
    "is in the future": "发生时间不能晚于现在。",
    "Input should be greater than or equal to 0": "不能为负数。",
    "String should match pattern": "格式不正确（只能包含字母、数字和 _ . : -）。",
    "String should have at most": "内容过长。",
}


_CORRECTION_REASONS = (
    (
        re.compile(r"window to correct or withdraw report \S+ ended at (.+?) local time"),
        "更正、撤回期限已于 {0} 结束，不能再更正或撤回。如需更正，请重新上报或联系区县工会。",
    ),
    (
        re.compile(r"already corrected by report (\S+)"),
        "这份报告已由 {0} 更正，请在最新的回执上操作。",
    ),
    (re.compile(r"already withdrawn by report (\S+)"), "这份报告已撤回（{0}）。"),
    (re.compile(r"only its sender"), "只能更正或撤回自己的报告。"),
    (re.compile(r"is itself a withdrawal"), "撤回的回执不能再更正或撤回。"),
)


def _zh_reason(reason: str) -> str:
    """The validation reason in Chinese for the form (the English one when we have no
    words for it: better precise than vague)."""
    for pattern, chinese in _CORRECTION_REASONS:
        if (match := pattern.search(reason)) is not None:
            return chinese.format(*match.groups())
    for english, chinese in _REASONS.items():
        if english in reason:
            return chinese
    return reason


#: What became of an acknowledge/resolve, shown on the alert page after the redirect
#: (the URL carries only the code, so nobody can put words on the page through a link).
ACTION_MESSAGES = {
    "missing": "没有这条预警。",
    "forbidden": "只有本区域或上级区域的领导、值班员可以确认或处置这条预警。",
    "acknowledged": "已确认收到，逐级上报已停止。",
    "resolved": "已标记为处置完毕。",
    "already_resolved": "操作未完成：这条预警已处置完毕。",
    "failed": "操作未完成，请稍后重试。",
    "recorded": "处置记录已保存。",
    "invalid": "处置记录未保存，请按提示修改。",
}


async def act_on_alert(
    ctx: Context, v: Viewer, alert_id: int, action: str, note: str | None
) -> str:
    """Acknowledge or resolve through the alerting core, with the same jurisdiction rule
    as the API: a leader of the alert's region or of a region above it. Returns a key of
    `ACTION_MESSAGES`."""
    from monitor.alerting.book import AlertBook, AlertError
    from monitor.alerting.contacts import may_act_on
    from monitor.models import Alert

    assert v.account is not None
    async with ctx.db.session() as session:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return "missing"
        if not await may_act_on(session, v.account, alert.region_code):
            return "forbidden"
    book = AlertBook(ctx)
    try:
        if action == "ack":
            await book.acknowledge(alert_id, actor=v.account.id, reason=note, via="console")
            return "acknowledged"
        await book.resolve(alert_id, actor=v.account.id, reason=note, via="console")
        return "resolved"
    except AlertError as exc:
        return "already_resolved" if "already resolved" in str(exc) else "failed"
