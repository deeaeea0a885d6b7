"""Sign-off of the monthly report (both databases): a draft on schedule and the reviewer
told, nothing to the recipients before signing, a reminder on the configured day (once),
and on signing one email per recipient with the signatory, the 报/送/发 lines and the
内部资料 mark in the PDF and the Word file; a second signature sends nothing."""

from __future__ import annotations

import asyncio
import io
import subprocess
from datetime import date, datetime

import docx
import httpx
import pytest
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.daemon import make_context
from monitor.models import Account, Alert, Delivery, Document
from monitor.report import signoff
from monitor.report.service import ReportService
from monitor.web.app import create_app
from tests.test_console import Console
from tests.test_report import CST, _report_settings


async def deliveries(ctx: Context) -> list[Delivery]:
    async with ctx.db.session() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.created_at)))


async def test_the_report_is_mailed_once_on_signing(ctx: Context, clock: FrozenClock) -> None:
    settings = _report_settings(
        ctx.settings,
        sign_off=True,
        attach=["pdf", "docx"],
        bao="省总工会",
        song="市委、市政府",
        fa="各区县（市）总工会",
        remind_day=5,
    )
    service_ctx = make_context(settings, clock=clock, db=ctx.db)
    await ctx.accounts.add(
        kind="leader",
        account_id="city-lead",
        region_code="430900",
        email="city@x.example",
        name="赵主席",
    )
    await ctx.accounts.add(
        kind="leader", account_id="prov-1", region_code="430000", email="prov@x.example"
    )
    service = ReportService(service_ctx, holder="me")

    # 1 February 09:00: January's report is made as a draft; only its reviewer hears.
    clock.set(datetime(2025, 2, 1, 9, 0, tzinfo=CST))
    made = await service.run_due()
    assert made is not None and made.status == "done"
    sent = await deliveries(ctx)
    assert [(d.address, d.subject.startswith("【待签发】")) for d in sent] == [
        ("city@x.example", True)
    ]
    assert "/reports/sign/2025-01" in sent[0].body["text"]
    assert not sent[0].body.get("attachments")
    async with ctx.db.session() as session:
        kinds = {d.kind for d in await session.scalars(select(Document))}
    assert kinds == {"monthly_report_draft"}

    # Not signed by the 5th: the reviewer is reminded, once.
    clock.set(datetime(2025, 2, 4, 23, 59, tzinfo=CST))
    await service.run_due()
    assert len(await deliveries(ctx)) == 1
    clock.set(datetime(2025, 2, 5, 0, 0, tzinfo=CST))
    await service.run_due()
    await service.run_due()
    reminders = [d for d in await deliveries(ctx) if d.subject.startswith("【提醒】")]
    assert [d.address for d in reminders] == ["city@x.example"]

    # Only the reviewer signs; signing mails the report to its recipients, once.
    async with ctx.db.session() as session:
        reviewer = await session.get(Account, "city-lead")
        other = await session.get(Account, "prov-1")
    assert reviewer is not None and other is not None
    with pytest.raises(signoff.SignError, match="审核人"):
        await signoff.sign(service_ctx, date(2025, 1, 1), other, None)
    signed = await signoff.sign(
        service_ctx,
        date(2025, 1, 1),
        reviewer,
        "春节前欠薪信访增多，请各区县提前排查。信访人张三（13812345678）已回访。",
    )
    out = [d for d in await deliveries(ctx) if d.id in signed.delivery_ids]
    assert sorted(d.address for d in out) == ["city@x.example", "prov@x.example"]
    assert all(len(d.body["attachments"]) == 2 for d in out)
    with pytest.raises(signoff.SignError, match="不会重复发送"):
        await signoff.sign(service_ctx, date(2025, 1, 1), reviewer, None)
    assert len(await deliveries(ctx)) == 4  # review, reminder, two recipients
    clock.set(datetime(2025, 2, 6, 9, 0, tzinfo=CST))
    assert not await signoff.remind_if_due(service_ctx)

    # The signed files carry the signatory, the note, the distribution and the mark.
    async with ctx.db.session() as session:
        files = {
            d.filename.rsplit(".", 1)[1]: d.data
            for d in await session.scalars(
                select(Document).where(Document.id.in_(signed.document_ids))
            )
        }
    pdftotext = ["pdftotext", "-layout", "-", "-"]
    done = await asyncio.to_thread(
        subprocess.run, pdftotext, input=files["pdf"], capture_output=True, check=True
    )
    pdf = done.stdout.decode("utf-8")
    word = "\n".join(p.text for p in docx.Document(io.BytesIO(files["docx"])).paragraphs)
    for text in (pdf, word):
        flat = "".join(text.split())
        assert "内部资料" in flat
        assert "签发：赵主席" in flat
        assert "春节前欠薪信访增多" in flat
        # The note is part of the report: no names or phones in it (interfaces §7).
        assert "信访人张某（138****5678）已回访" in flat
        assert "张三" not in flat and "13812345678" not in flat
        assert "报：省总工会" in flat
        assert "送：市委、市政府" in flat
        assert "发：各区县（市）总工会" in flat


async def test_the_reviewer_signs_in_the_console(ctx: Context, clock: FrozenClock) -> None:
    ctx.settings.report.attach = ["docx"]
    reviewer = await ctx.accounts.add(
        kind="leader", account_id="city-lead", region_code="430900", email="city@x.example"
    )
    county = await ctx.accounts.add(
        kind="leader", account_id="lead-430902", region_code="430902", email="zy@x.example"
    )
    clock.set(datetime(2025, 2, 1, 9, 0, tzinfo=CST))
    assert (await ReportService(ctx, holder="me").run_due()) is not None
    app = create_app(ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console"
    ) as client:
        console = Console(client)
        await console.login(county)
        assert (await client.get("/reports/sign/2025-01")).status_code == 403
        await console.login(reviewer)
        listing = (await client.get("/reports")).text
        assert "待签发的月报" in listing and "/reports/sign/2025-01" in listing
        token = await console.csrf("/reports/sign/2025-01")
        done = await client.post(
            "/reports/sign/2025-01", data={"csrf": token, "note": "同意报送。"}
        )
        assert done.status_code == 303
        page = (await client.get(done.headers["location"])).text
        assert "已由 city-lead" in page and "月报已签发" in page
        twice = await client.post("/reports/sign/2025-01", data={"csrf": token, "note": ""})
        assert twice.status_code == 409 and "不会重复发送" in twice.text
    recipients = [d.address for d in await deliveries(ctx) if d.body.get("attachments")]
    assert recipients == ["city@x.example"]


async def test_alerts_count_in_the_month_of_their_event(ctx: Context, clock: FrozenClock) -> None:
    """An alert raised on 3 February from a report of an event on 20 January is one of
    January's alerts, as the console shows it (the demo's simulated events too)."""
    from monitor.records import parse_obj
    from monitor.report import collect_figures, options_from
    from monitor.store import Submission

    clock.set(datetime(2025, 2, 3, 10, 0, tzinfo=CST))
    record = parse_obj(
        "report",
        {
            "report_id": "late-1",
            "informant_id": "inf-1",
            "occurred_at": "2025-01-20T15:00:00+08:00",
            "region_code": "430902",
            "event_type": "gathering",
            "people_involved": 40,
        },
    )
    await ctx.store.store("report", [Submission(record, "file")])
    raised = clock.now()
    async with ctx.db.session() as session:
        session.add(
            Alert(
                dedup_key="k",
                kind="event",
                level="II",
                status="triggered",
                region_code="430902",
                title="聚集",
                source_ids=["late-1"],
                created_at=raised,
                updated_at=raised,
                tier_reached=3,
                escalation_step=0,
                repeats_done=0,
            )
        )
    options = options_from(ctx.settings)
    january = await collect_figures(ctx.db, date(2025, 1, 1), options=options, now=raised)
    february = await collect_figures(ctx.db, date(2025, 2, 1), options=options, now=raised)
    level_ii = {f.month: next(r for r in f.alerts if r.level == "II") for f in (january, february)}
    assert (level_ii[date(2025, 1, 1)].opened, level_ii[date(2025, 1, 1)].open_at_end) == (1, 1)
    assert level_ii[date(2025, 2, 1)].opened == 0


async def test_a_notice_is_said_first_and_in_the_notes(ctx: Context, clock: FrozenClock) -> None:
    from monitor.report import make_document
    from monitor.report.render import render_html

    ctx.settings.report.notice = "说明：本报告所用数据均为模拟数据。"
    doc = await make_document(ctx.db, ctx.settings, date(2024, 12, 1), clock.now())
    html = render_html(doc)
    assert html.index("本报告所用数据均为模拟数据") < html.index('<table class="data')
    assert doc.notes[0] == "说明：本报告所用数据均为模拟数据。"


async def test_only_a_reviewer_of_this_installations_scope_may_sign(ctx: Context) -> None:
    """Role and tier are not enough: a leader of the same tier elsewhere (another city of
    the province) may not sign this city's report."""
    from monitor.models import Account
    from monitor.report import signoff

    cfg = ctx.settings.report
    scope = ctx.settings.organisation.scope_code

    def leader(region: str) -> Account:
        return Account(
            id=f"lead-{region}",
            kind="leader",
            role=cfg.reviewer_role,
            tier=signoff.reviewer_tier(ctx),
            region_code=region,
        )

    assert signoff.may_sign(ctx, leader(scope))
    other_city = "430100" if scope != "430100" else "430200"
    assert not signoff.may_sign(ctx, leader(other_city))
