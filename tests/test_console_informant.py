"""The informant's report form (both databases): the enterprise from the county's
registry, head-counts in Chinese numerals, a count the text contradicts, the
confirmation of a level I/II report, and a receipt that repeats what was sent."""

from __future__ import annotations

import re
from datetime import UTC

import httpx
from sqlalchemy import select

from monitor.accounts import NewAccount
from monitor.clock import FrozenClock
from monitor.context import Context
from monitor.models import InformantReport, MonitoringPoint
from tests import test_console as base
from tests.test_console import Console, add_point

# The console and its accounts, as in the console's own tests.
console = base.console
people = base.people

FORM = {
    "occurred_at": "2025-01-15T08:00",
    "region_code": "430902",
    "event_type": "gathering",
    "people_involved": "12",
    "description": "工人聚集讨薪",
}


async def _post(console: Console, **fields: str) -> httpx.Response:
    data = {"csrf": await console.csrf("/report")} | FORM | fields
    return await console.client.post("/report", data=data)


def _confirmation(answer: httpx.Response) -> str:
    found = re.search(r'name="confirmed" value="([^"]+)"', answer.text)
    assert found, answer.text[:500]
    return found.group(1)


async def _other_county_point(ctx: Context) -> None:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        session.add(
            MonitoringPoint(
                point_id="P2",
                name="赫山建工集团",
                region_code="430903",
                industry="construction",
                headcount=100,
                payload_hash="x",
                source="file",
                created_at=now,
                updated_at=now,
            )
        )


async def test_the_enterprise_is_picked_from_the_county_registry(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await add_point(ctx)
    await _other_county_point(ctx)
    await console.login(people["informant"])
    # Search as you type: part of the name, only the informant's county.
    found = (await console.client.get("/report/enterprises", params={"q": "建工"})).json()
    assert found == [{"point_id": "P1", "name": "资阳建工", "region_code": "430902"}]
    # A picked enterprise is stored under its point and registered name.
    done = await _post(console, point_id="P1", enterprise_name="资阳建工")
    assert done.status_code == 303
    report_id = done.headers["location"].rsplit("/", 1)[1]
    async with ctx.db.session() as session:
        stored = await session.get(InformantReport, report_id)
    assert stored is not None and (stored.point_id, stored.enterprise_name) == ("P1", "资阳建工")
    # Another county's point is not the informant's to pick; unknown free text is refused
    # unless marked as not in the registry.
    other = await _post(console, point_id="P2", enterprise_name="赫山建工集团")
    assert other.status_code == 422 and "名录中没有这家企业" in other.text
    free = await _post(console, enterprise_name="某某劳务队")
    assert free.status_code == 422 and "不在名录中的企业" in free.text
    marked = await _post(console, enterprise_name="某某劳务队", unlisted="1")
    assert marked.status_code == 303
    receipt = (await console.client.get(marked.headers["location"])).text
    assert re.search(
        r'id="receipt-enterprise">某某劳务队 <span class="unlisted">（不在名录中）', receipt
    )


async def test_chinese_numerals_contradictions_and_confirmation(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["informant"])
    # "三十" is a count; the receipt repeats it in figures.
    done = await _post(console, people_involved="十二", description="十二名工人聚集讨薪")
    assert done.status_code == 303
    receipt = (await console.client.get(done.headers["location"])).text
    assert 'id="receipt-people">12 人' in receipt
    assert "十二名工人聚集讨薪" in receipt
    # 300 against "三十多名": flagged before sending, and level I asks for confirmation.
    text = "工地三十多名农民工在项目部门口聚集讨要工资"
    asked = await _post(console, people_involved="300", description=text)
    assert asked.status_code == 200
    assert "填写的涉及人数为 300 人，情况说明中写的是 30 人左右" in asked.text
    assert "将立即报告县、市、省三级" in asked.text
    async with ctx.db.session() as session:
        held = await session.scalars(
            select(InformantReport).where(InformantReport.people_involved == 300)
        )
        assert held.all() == []  # nothing sent yet
    # Corrected to 30 people: level II, asked again with the new consequence, no warning.
    fixed = await _post(
        console, people_involved="30", description=text, confirmed=_confirmation(asked)
    )
    assert fixed.status_code == 200
    assert "县、市两级" in fixed.text and "相差较大" not in fixed.text
    sent = await _post(
        console, people_involved="30", description=text, confirmed=_confirmation(fixed)
    )
    assert sent.status_code == 303
    # Under ten people nothing urgent: sent at once.
    assert (await _post(console, people_involved="5")).status_code == 303


async def test_the_receipt_number_carries_the_local_day(
    ctx: Context, clock: FrozenClock, console: Console, people: dict[str, NewAccount]
) -> None:
    # 17:30 UTC is 01:30 the next day in China.
    clock.set(clock.now().astimezone(UTC).replace(hour=17, minute=30))
    await console.login(people["informant"])
    local = clock.now().astimezone(ctx.settings.organisation.zone)
    done = await _post(console, occurred_at=local.strftime("%Y-%m-%dT%H:%M"))
    assert done.status_code == 303
    assert f"/report/web-{local:%Y%m%d%H%M}" in done.headers["location"]


async def test_an_informant_corrects_then_cannot_withdraw_after_the_window(
    ctx: Context, clock: FrozenClock, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["informant"])
    text = "工地三十多名农民工聚集讨薪"
    asked = await _post(console, people_involved="300", description=text)
    sent = await _post(
        console, people_involved="300", description=text, confirmed=_confirmation(asked)
    )
    assert sent.status_code == 303
    first = sent.headers["location"]
    receipt = (await console.client.get(first)).text
    assert "09:30:00 前更正或撤回" in receipt  # 30 minutes from 09:00 local
    # The correction form starts from what was sent.
    original_id = first.rsplit("/", 1)[1]
    form = (await console.client.get("/report", params={"corrects": original_id})).text
    assert f'name="corrects" value="{original_id}"' in form
    assert 'value="300"' in form and text in form
    clock.advance(minutes=5)
    fields = {"people_involved": "30", "description": text, "corrects": original_id}
    asked = await _post(console, **fields)
    fixed = await _post(console, **fields, confirmed=_confirmation(asked))
    assert fixed.status_code == 303, fixed.text[:500]
    receipt = (await console.client.get(fixed.headers["location"])).text
    assert f'已更正报告 <a href="/report/{original_id}">{original_id}</a>' in receipt
    assert 'id="receipt-people">30 人' in receipt
    old = (await console.client.get(first)).text
    assert "这份报告已更正" in old and 'id="correct"' not in old
    # After the window: refused, with the time it ended, in Chinese.
    correction_id = fixed.headers["location"].rsplit("/", 1)[1]
    clock.advance(minutes=25, seconds=1)
    late = await console.client.post(
        f"/report/{correction_id}/withdraw", data={"csrf": await console.csrf("/report")}
    )
    assert late.status_code == 409
    assert "更正、撤回期限已于 2025-01-15 09:30 结束" in late.text
    assert "期限已过" in (await console.client.get(fixed.headers["location"])).text


async def test_an_informant_withdraws_a_report(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["informant"])
    sent = await _post(console, people_involved="5")
    report_id = sent.headers["location"].rsplit("/", 1)[1]
    gone = await console.client.post(
        f"/report/{report_id}/withdraw", data={"csrf": await console.csrf("/report")}
    )
    assert gone.status_code == 303
    receipt = (await console.client.get(gone.headers["location"])).text
    assert "撤回已收到" in receipt and f'已撤回报告 <a href="/report/{report_id}">' in receipt
    async with ctx.db.session() as session:
        withdrawal = await session.get(InformantReport, gone.headers["location"].rsplit("/")[-1])
    assert withdrawal is not None and withdrawal.withdraws == report_id
    assert withdrawal.people_involved == 5
