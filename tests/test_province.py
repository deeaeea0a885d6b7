"""One installation for a whole province: a report per city and one for the province,
each mailed to its own leaders once across two daemons; the console's scope by tier."""

from __future__ import annotations

import asyncio
import io
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import httpx
import pytest
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.config import Settings
from monitor.context import Context
from monitor.daemon import Daemon, make_context
from monitor.models import Account, Delivery, Document, JobRun, RiskScore
from monitor.records import parse_row
from monitor.regionload import load_regions
from monitor.regions import CITY, COUNTY, catalogue
from monitor.report import make_document, signoff
from monitor.report.document import Paragraph
from monitor.report.service import JOB
from monitor.store import Submission
from monitor.web.app import create_app
from tests.support.mail import MailSink

PROVINCE = "430000"
CST = ZoneInfo("Asia/Shanghai")


def _province_settings(settings: Settings, mail: MailSink) -> Settings:
    org = settings.organisation.model_copy(update={"scope_code": PROVINCE})
    return settings.model_copy(
        update={
            "organisation": org,
            # Sign-off (审核/签发) is shown in tests/test_report_signoff.py; here the
            # reports go out as made, so that who receives each one is what is tested.
            "report": settings.report.model_copy(update={"attach": ["docx"], "sign_off": False}),
            "smtp": settings.smtp.model_copy(update={"url": mail.url}),
        }
    )


def _petitions() -> list[Submission]:
    """January 2025: in every city, petitions in its counties; more in bigger cities."""
    rows = []
    cat = catalogue()
    for i, city in enumerate(cat.children(PROVINCE)):
        counties = [c.code for c in cat.children(city.code)]
        for j in range(2 + (i % 4)):
            county = counties[j % len(counties)]
            rows.append(
                {
                    "petition_id": f"P-{county}-{j}",
                    "received_at": f"2025-01-{10 + j:02d}T10:00:00+08:00",
                    "channel": "hotline_12351",
                    "region_code": county,
                    "category": "wage_arrears",
                    "people_involved": 1 + j,
                    "summary": "工地欠薪三个月",
                }
            )
    return [Submission(parse_row("petition", r), "file") for r in rows]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_each_city_and_the_province_get_their_report_once_across_two_daemons(
    ctx: Context, clock: FrozenClock, mail: MailSink
) -> None:
    settings = _province_settings(ctx.settings, mail)
    cat = catalogue()
    cities = [c.code for c in cat.children(PROVINCE)]
    assert len(cities) == 14
    await load_regions(ctx.db, cat, PROVINCE)
    stored = await ctx.store.store("petition", _petitions())
    assert not stored.rejected, stored.rejected
    await ctx.accounts.add(
        kind="leader", account_id="lead-430000", region_code=PROVINCE, email="p@hn.example"
    )
    for city in cities:
        await ctx.accounts.add(
            kind="leader", account_id=f"lead-{city}", region_code=city, email=f"{city}@hn.example"
        )
    # A county leader is not a recipient by default ([report] recipient_tiers = [1, 2]).
    await ctx.accounts.add(
        kind="leader", account_id="lead-430102", region_code="430102", email="c@hn.example"
    )

    clock.set(datetime(2025, 2, 1, 9, 5, tzinfo=CST))
    first = make_context(settings, clock=clock)
    second = make_context(settings, clock=clock)
    daemons = [Daemon(first, only=["report", "outbox"]), Daemon(second, only=["report", "outbox"])]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(stop)) for d in daemons]
    try:
        received = await asyncio.to_thread(mail.wait_for, 15, 300)
        # A mail is in the inbox before its delivery row says "sent": wait for the rows
        # (a condition, not a timer) so that stopping does not cut the last commit short.
        async with asyncio.timeout(60):
            while True:
                async with ctx.db.session() as session:
                    statuses = set(await session.scalars(select(Delivery.status)))
                if statuses == {"sent"}:
                    break
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        for task in tasks:
            await asyncio.wait_for(task, 60)
        await first.close()
        await second.close()

    assert len(mail.inbox) == 15
    to = Counter(r for m in received for r in m.rcpt_tos)
    assert set(to.values()) == {1}
    names = {c: cat.name(c) for c in [PROVINCE, *cities]}
    by_address = {m.rcpt_tos[0]: m.subject for m in received}
    assert by_address["p@hn.example"] == "【月报】湖南省2025年1月职工信访定量分析月报"
    for city in cities:
        assert (
            by_address[f"{city}@hn.example"]
            == f"【月报】{names[city]}2025年1月职工信访定量分析月报"
        )
    assert "c@hn.example" not in to

    async with ctx.db.session() as session:
        runs = list(await session.scalars(select(JobRun).where(JobRun.job == JOB)))
        documents = list(await session.scalars(select(Document)))
        deliveries = list(await session.scalars(select(Delivery)))
    assert sorted(r.key for r in runs) == sorted(["2025-01", *(f"2025-01/{c}" for c in cities)])
    assert {r.status for r in runs} == {"done"}
    assert len({r.holder for r in runs}) >= 1
    assert len(documents) == 15
    assert len(deliveries) == 15 and {d.status for d in deliveries} == {"sent"}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_city_report_holds_its_counties_and_the_province_compares_cities(
    ctx: Context,
) -> None:
    cat = catalogue()
    await load_regions(ctx.db, cat, PROVINCE)
    assert not (await ctx.store.store("petition", _petitions())).rejected
    settings = ctx.settings.model_copy(
        update={
            "organisation": ctx.settings.organisation.model_copy(update={"scope_code": PROVINCE})
        }
    )
    now = datetime(2025, 2, 3, 9, 0, tzinfo=CST)
    month = date(2025, 1, 1)
    changsha = await make_document(ctx.db, settings, month, now, "430100")
    f = changsha.figures
    assert f.city_name == "长沙市"
    assert {r.key for r in f.by_county} == {c.code for c in cat.children("430100")}
    assert f.totals.current.petitions == 2  # Changsha's own, nobody else's
    province = await make_document(ctx.db, settings, month, now)
    p = province.figures
    assert p.city_name == "湖南省"
    assert [r.key for r in p.by_county] == [c.code for c in cat.children(PROVINCE)]
    assert p.totals.current.petitions == sum(2 + (i % 4) for i in range(14))
    assert sum(r.current.petitions for r in p.by_county) == p.totals.current.petitions
    ranking = p.county_ranking
    assert ranking[0].current.petitions >= ranking[-1].current.petitions
    assert all(cat.get(r.key).tier == COUNTY for r in ranking)
    assert ranking[0].label.startswith(cat.name(cat.get(ranking[0].key).parent_code or ""))
    tables = {t.id: t for t in province.tables()}
    assert tables["t-county"].header[0] == "市州"
    assert tables["t-county-rank"].rows[0][0] == "1"
    assert cat.get("430100").tier == CITY
    # The words follow the scope: a province's report compares 市州 as 全省, a city's
    # report compares 区县（市） as 全市.
    for doc, areas, whole, other in (
        (province, "各市州", "全省", "各区县（市）"),
        (changsha, "各区县（市）", "全市", "各市州"),
    ):
        text = "\n".join(
            [doc.title, doc.analysis.summary, *doc.analysis.suggestions]
            + [t for _h, t in doc.analysis.points]
            + [b.text for b in doc.blocks if isinstance(b, Paragraph)]
        )
        assert f"根据{areas}工会" in text and f"居{areas}首位" in text
        assert f"{whole}共受理职工信访" in text and whole in doc.title
        assert other not in text, other


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_console_shows_a_province_leader_every_city_and_a_city_leader_its_own(
    ctx: Context, tmp_path: Path
) -> None:
    cat = catalogue()
    await load_regions(ctx.db, cat, PROVINCE)
    ctx.settings.organisation.scope_code = PROVINCE
    ctx.settings.console.mail_dir = str(tmp_path / "mail")
    counties = [e for e in cat.subtree(PROVINCE) if e.tier == COUNTY]
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        # Every county scored; the higher the code, the riskier (so ranks are known).
        session.add_all(
            RiskScore(
                entity_type="county",
                entity_id=c.code,
                region_code=c.code,
                score=float(i),
                level="III" if i > 100 else None,
                factors=[],
                as_of=now,
                scored_at=now,
            )
            for i, c in enumerate(counties)
        )
        session.add_all(
            Document(
                kind="monthly_report",
                key=key,
                filename=f"{name}.docx",
                content_type="application/octet-stream",
                data=b"x",
                created_at=now,
            )
            for key, name in [
                ("2025-01", "湖南省月报"),
                ("2025-01/430100", "长沙市月报"),
                ("2025-01/430800", "张家界市月报"),
            ]
        )
    province = await ctx.accounts.add(kind="leader", account_id="lead-430000", region_code=PROVINCE)
    changsha = await ctx.accounts.add(kind="leader", account_id="lead-430100", region_code="430100")
    app = create_app(ctx)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        await client.post("/login", data={"token": province.token})
        page = (await client.get("/risk")).text
        shown_cities = re.findall(r'data-city="(\d{6})"', page)
        assert shown_cities == [c.code for c in cat.children(PROVINCE)]
        assert len(re.findall(r'data-county="(\d{6})"', page)) == 122
        one = (await client.get("/risk?region=430800")).text
        assert "风险 · 张家界市" in one
        assert len(re.findall(r'data-county="(\d{6})"', one)) == 4
        reports = (await client.get("/reports")).text
        for name in ("湖南省月报.docx", "长沙市月报.docx", "张家界市月报.docx"):
            assert name in reports

        client.cookies.clear()
        await client.post("/login", data={"token": changsha.token})
        page = (await client.get("/risk")).text
        assert re.findall(r'data-city="(\d{6})"', page) == []  # one city: no city tiles
        shown = re.findall(r'data-county="(\d{6})"', page)
        assert shown == [c.code for c in cat.children("430100")]
        # Each county in context: its rank in Changsha (9 counties) and in Hunan (122).
        last = cat.children("430100")[-1]
        rank_in_province = 122 - counties.index(last)
        assert f"长沙市第 1/9 · 全省第 {rank_in_province}/122" in page
        assert (await client.get("/risk?region=430800")).status_code == 403
        reports = (await client.get("/reports")).text
        assert "长沙市月报.docx" in reports
        assert "湖南省月报.docx" not in reports and "张家界市月报.docx" not in reports


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_province_report_is_reviewed_by_the_province_by_default(ctx: Context) -> None:
    """The reviewer's tier follows the installation's scope unless configured: a province
    installation's report is signed by the province's leaders, not a city's."""
    await load_regions(ctx.db, catalogue(), PROVINCE)
    ctx.settings.organisation.scope_code = PROVINCE
    add = ctx.accounts.add
    await add(kind="leader", account_id="lead-430000", region_code=PROVINCE, email="hn@x.cn")
    await add(kind="leader", account_id="lead-430100", region_code="430100", email="cs@x.cn")
    async with ctx.db.session() as session:
        assert ctx.settings.report.reviewer_tier is None
        assert await signoff.reviewers(ctx, session) == [("lead-430000", "hn@x.cn")]
        # Configured, the tier is taken as given: a city's leaders review nothing here
        # (their region is below the scope).
        ctx.settings.report.reviewer_tier = 2
        assert await signoff.reviewers(ctx, session) == []


async def test_the_signed_reports_distribution_follows_its_scope(ctx: Context) -> None:
    """报 goes one tier up and 发 to the regions the report compares: a province's report
    to 中华全国总工会 and 各市州总工会, a city's to 湖南省总工会 and 各区县（市）总工会."""
    await load_regions(ctx.db, catalogue(), PROVINCE)
    month = date(2025, 1, 1)
    # Signed by the province's reviewer: the file says so.
    ctx.settings.organisation.scope_code = PROVINCE
    ctx.settings.report.attach = ["docx"]
    await ctx.accounts.add(
        kind="leader", account_id="lead-430000", region_code=PROVINCE, email="hn@x.cn"
    )
    async with ctx.db.session() as session:
        account = await session.get(Account, "lead-430000")
    assert account is not None
    signed = await signoff.sign(ctx, month, account, None)
    async with ctx.db.session() as session:
        [data] = [
            d.data
            for d in await session.scalars(
                select(Document).where(Document.id.in_(signed.document_ids))
            )
        ]
    text = "".join("\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs).split())
    assert "报：中华全国总工会" in text
    assert "发：各市州总工会" in text
    assert "各区县（市）总工会" not in text

    # The rule itself, for the province's report and one of its cities'.
    settings = ctx.settings
    now = datetime(2025, 2, 3, 9, 0, tzinfo=CST)
    province = await make_document(ctx.db, settings, month, now)
    changsha = await make_document(ctx.db, settings, month, now, "430100")
    assert signoff.distribution(settings, province.figures) == [
        ("报", "中华全国总工会"),
        ("发", "各市州总工会"),
    ]
    assert signoff.distribution(settings, changsha.figures) == [
        ("报", "湖南省总工会"),
        ("发", "各区县（市）总工会"),
    ]
    # What is configured is kept; "" leaves a line out.
    configured = settings.model_copy(
        update={"report": settings.report.model_copy(update={"bao": "", "fa": "各市州总工会"})}
    )
    assert signoff.distribution(configured, changsha.figures) == [("发", "各市州总工会")]
