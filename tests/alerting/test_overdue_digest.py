"""Overdue monthly wage reports (a heartbeat on the monitoring points) and the daily
level IV digest, exactly once across daemons."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from monitor.alerting.book import AlertBook
from monitor.alerting.digest import DailyDigest
from monitor.alerting.overdue import OverdueCheck
from monitor.clock import SHANGHAI
from monitor.context import Context
from monitor.daemon import make_context
from monitor.records import parse_row
from monitor.store import Submission
from tests.alerting.conftest import OTHER_COUNTY, Leader, Pipeline, add_point
from tests.support.mail import MailSink

S = timedelta(seconds=1)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


async def file_report(ctx: Context, point_id: str, period: str) -> None:
    row = {
        "report_id": f"W-{point_id}-{period}",
        "point_id": point_id,
        "period": period,
        "headcount": 300,
        "frontline_headcount": 250,
        "avg_frontline_wage": 4300.0,
        "arrears_amount": 0,
        "arrears_workers": 0,
        "arrears_months": 0,
        "production_status": "normal",
    }
    result = await ctx.store.store("wage", [Submission(parse_row("wage", row), "mqtt", point_id)])
    assert result.stored == [row["report_id"]]


async def test_a_missing_report_reminds_the_point_then_tells_its_county(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    ctx = pipeline.ctx
    pipeline.clock.set(local(2024, 12, 20, 10, 0))
    for point, name in (("P1", "资阳建工"), ("P2", "资阳纺织"), ("P3", "资阳物流")):
        await add_point(ctx, point, name=name)
    await ctx.accounts.add(kind="point", account_id="P1", region_code="430902", email="hr@p1.cn")
    await file_report(ctx, "P3", "2024-12")
    check = OverdueCheck(ctx)
    # Due by the end of the 15th; reminders from 09:00 on the 16th.
    pipeline.clock.set(local(2025, 1, 16, 8, 59, 59))
    assert await check.run_once() == (0, 0)
    start = local(2025, 1, 16, 9, 0)
    pipeline.clock.set(start)
    assert await check.run_once() == (2, 0)
    await pipeline.run()
    (reminder,) = mail.to("hr@p1.cn")
    assert reminder.subject == "【报告逾期提醒】资阳建工 2024-12 月度报告逾期未报"
    assert "2025-01-15 前报送" in reminder.text()
    assert mail.to(leaders["county"].email) == []
    assert await check.run_once() == (0, 0)  # one alert per point and month, ever
    # P1 files on the 18th: its alert resolves; P2 stays silent.
    pipeline.clock.set(local(2025, 1, 18, 15, 0))
    await file_report(ctx, "P1", "2024-12")
    assert await check.run_once() == (0, 1)
    await pipeline.run()
    await pipeline.at(start + timedelta(days=5) - S)
    assert mail.to(leaders["county"].email) == []
    await pipeline.at(start + timedelta(days=5))
    (told,) = mail.to(leaders["county"].email)
    assert "资阳纺织" in told.subject
    assert "资阳建工" not in told.text()
    statuses = {a.point_id: a.status for a in await pipeline.alerts()}
    assert statuses == {"P1": "resolved", "P2": "triggered"}
    assert {a.kind for a in await pipeline.alerts()} == {"overdue_report"}


async def test_the_daily_digest_goes_out_once_across_two_daemons(
    actx: Context, pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    pipeline.clock.set(local(2025, 1, 15, 14, 0))
    await pipeline.finding("IV", key="event:A", title="甲公司6名工人讨薪")
    await pipeline.finding("IV", key="event:B", title="乙公司社保断缴")
    await pipeline.finding("IV", key="event:C", region=OTHER_COUNTY, title="丙公司拖欠工资")
    await pipeline.run()
    assert mail.inbox == []
    pipeline.clock.set(local(2025, 1, 16, 8, 0))
    other = make_context(actx.settings, clock=actx.clock)
    try:
        first, second = DailyDigest(actx), DailyDigest(other, AlertBook(other))
        written = await asyncio.gather(first.run_once(), second.run_once())
        assert sorted(written) in ([0, 2], [1, 1])
        assert await first.run_once() == 0
    finally:
        await other.close()
    await pipeline.sender.run_once()
    (zy,) = mail.to(leaders["county"].email)
    assert zy.subject == "【一般预警日报】资阳区 2025-01-16 共2条"
    assert "甲公司6名工人讨薪" in zy.text()
    assert "乙公司社保断缴" in zy.text()
    (hs,) = mail.to(leaders["other"].email)
    assert "丙公司拖欠工资" in hs.text()
    assert len(mail.inbox) == 2
