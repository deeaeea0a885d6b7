"""Risk alerts are forecasts (interfaces §5): colour bands named 风险提示, the county at once
and the city in a weekly digest, never the province by themselves; they open and close
only after the score has stayed in (or below) a band for several scorings."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from detectors.base import Factor, FindingDraft, risk_heading
from detectors.persist import latest_findings, write_risk_findings
from detectors.scoring import surge_text
from detectors.service import scoring_policy
from detectors.surge import evaluate
from monitor.alerting.digest import DailyDigest
from monitor.config import DetectorsConfig
from tests.alerting.conftest import COUNTY, Leader, Pipeline, add_point
from tests.support.mail import MailSink

N = 3  # the default risk_open_after / risk_close_after


def risk_draft(level: str | None, score: float = 72.0) -> FindingDraft:
    title = (
        f"{risk_heading(level)}资阳建工劳资冲突风险{score:.0f}分"
        if level
        else "资阳建工劳资冲突风险已回落"
    )
    return FindingDraft(
        detector="combiner",
        kind="enterprise_risk",
        entity_type="point",
        entity_id="P1",
        region_code=COUNTY,
        score=score,
        level=level,
        title=title,
        factors=[Factor("wage_delay", "工资发放连续推迟", 40.0)],
        source_ids=["W1"],
        point_id="P1",
        extra={"enterprise_name": "资阳建工"},
    )


async def scoring(pipeline: Pipeline, level: str | None) -> int:
    """One nightly scoring of P1 through the detectors' write path, then the alerting."""
    cfg = pipeline.ctx.settings.detectors
    now = pipeline.clock.now()
    async with pipeline.ctx.db.connect() as conn:
        previous = await latest_findings(conn, ["enterprise_risk"])
        chosen, _ = await write_risk_findings(
            conn,
            [risk_draft(level)],
            previous,
            now,
            open_after=cfg.risk_open_after,
            close_after=cfg.risk_close_after,
        )
    await pipeline.run()
    pipeline.clock.advance(timedelta(days=1))
    return len(chosen)


def inbox(mail: MailSink, leader: Leader) -> list[str]:
    return [m.subject for m in mail.to(leader.email)]


async def test_a_band_crossed_once_opens_nothing_one_held_opens_and_closes_after_n(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    assert pipeline.ctx.settings.detectors.risk_open_after == N
    await add_point(pipeline.ctx)
    # Crosses into the orange band and falls back at the next scoring: nothing.
    assert await scoring(pipeline, "II") == 0
    assert await scoring(pipeline, None) == 0
    assert await pipeline.alerts() == []
    # Stays N scorings (orange, red, orange): opens at the mildest band it held.
    assert [await scoring(pipeline, lv) for lv in ("II", "I", "II")] == [0, 0, 1]
    [alert] = await pipeline.alerts()
    assert (alert.kind, alert.level, alert.status) == ("enterprise_risk", "II", "triggered")
    county = inbox(mail, leaders["county"])
    assert county == ["【橙色风险提示】资阳区 资阳建工劳资冲突风险72分"]
    assert "特别重大" not in county[0] and "重大" not in county[0]
    # A forecast never pages the city or the province by itself, however long it stays.
    for _ in range(N + 2):
        await scoring(pipeline, "II")
    assert inbox(mail, leaders["city"]) == []
    assert inbox(mail, leaders["province"]) == []
    # Below for N-1 scorings, back in the band once, then below for N: closes only then.
    for level in [None] * (N - 1) + ["II"] + [None] * (N - 1):
        await scoring(pipeline, level)  # (a refresh of the unchanged band may be written)
        [alert] = await pipeline.alerts()
        assert (alert.status, alert.level) == ("triggered", "II")
    assert await scoring(pipeline, None) == 1
    [alert] = await pipeline.alerts()
    assert alert.status == "resolved"
    assert inbox(mail, leaders["province"]) == []


async def test_the_city_reads_risk_in_a_weekly_digest(
    pipeline: Pipeline, leaders: dict[str, Leader], mail: MailSink
) -> None:
    await add_point(pipeline.ctx)
    # Wednesday 2025-01-15 onwards: opens on the third scoring (Friday).
    for _ in range(N):
        await scoring(pipeline, "III")
    assert len(inbox(mail, leaders["county"])) == 1
    digest = DailyDigest(pipeline.ctx, pipeline.book)
    # Sunday evening: no risk digest; Monday 08:30 China time: one, once.
    pipeline.clock.set(datetime(2025, 1, 19, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    await digest.run_once()
    await pipeline.sender.run_once()
    assert not [s for s in inbox(mail, leaders["city"]) if "风险提示周报" in s]
    pipeline.clock.set(datetime(2025, 1, 20, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")))
    await digest.run_once()
    await digest.run_once()
    await pipeline.sender.run_once()
    weekly = [m for m in mail.to(leaders["city"].email) if "风险提示周报" in m.subject]
    assert [m.subject for m in weekly] == ["【风险提示周报】益阳市 2025-01-20 共1条"]
    assert "资阳建工劳资冲突风险" in weekly[0].text()
    assert inbox(mail, leaders["province"]) == []


def test_a_surge_over_a_near_zero_normal_needs_the_minimum_count_and_prints_no_ratio() -> None:
    policy = scoring_policy(DetectorsConfig()).surge
    days = policy.window + policy.baseline
    first_day = 20_000  # mid-2024: no festival lull in the series
    # A normal of 0.2 petitions a month: 0.6 in the 91-day baseline, about one.
    counts = np.zeros((1, days))
    counts[0, 10] = 1
    for n in range(1, policy.min_count + 1):
        window = counts.copy()
        window[0, days - n :] = 1
        result = evaluate(window, window, first_day, policy, reference_rate=0.2 / 30)
        assert bool(result.surge[0]) == (n >= policy.min_count), n
    text = surge_text(5, 0.2)
    assert text == "近28天5件，常态不足1件"
    assert "倍" not in surge_text(5, 0.2, ratio=True)
    assert surge_text(12, 3.0, ratio=True) == "近28天12件，常态约3.0件（4.0倍）"
