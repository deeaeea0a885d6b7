"""The duty view (值班台) on both databases: what needs action by default, overdue ones
first and marked, filters by county and kind, 50 to a page, contacts' phones only to the
roles allowed, and the shift handover note the next officer sees."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from monitor.accounts import NewAccount
from monitor.context import Context
from monitor.models import Alert, ShiftHandover
from tests import test_console as base
from tests.test_console import Console

console = base.console
people = base.people


async def alerts(ctx: Context) -> None:
    """130 alerts in 资阳区 and 赫山区 of each status, kind and age."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        for i in range(130):
            status = ("triggered", "acknowledged", "resolved")[i % 3]
            created = now - timedelta(minutes=5 if i % 2 else 300)
            session.add(
                Alert(
                    dedup_key=f"k{i}",
                    kind=("event", "enterprise_risk")[i % 2],
                    level=("I", "II", "III", "IV")[i % 4],
                    status=status,
                    region_code=("430902", "430903")[(i // 2) % 2],
                    title=f"预警{i}",
                    created_at=created,
                    updated_at=created,
                    acknowledged_at=created + timedelta(minutes=1)
                    if status != "triggered"
                    else None,
                    acknowledged_by="lead-430902" if status != "triggered" else None,
                    tier_reached=3,
                    escalation_step=1,
                    repeats_done=0,
                )
            )


def ids(page: str) -> list[str]:
    return re.findall(r'data-alert-id="(\d+)"', page)


async def test_the_duty_view(ctx: Context, console: Console, people: dict[str, NewAccount]) -> None:
    await alerts(ctx)
    duty = await ctx.accounts.add(
        kind="leader",
        account_id="duty-430900",
        region_code="430900",
        role="duty_officer",
        name="王值班",
        phone="13900001111",
    )
    await ctx.accounts.add(
        kind="leader",
        account_id="lead-zy-2",
        region_code="430902",
        name="李主席",
        phone="13700002222",
    )
    await console.login(duty)
    page = (await console.client.get("/duty")).text
    async with ctx.db.session() as session:
        every = (await session.scalars(select(Alert))).all()
    # By default: unacknowledged, and acknowledged but overdue for handling.
    triggered = [a for a in every if a.status == "triggered"]
    # Acknowledged 299 minutes ago: past the reminder of level I (1 h) and II (2 h), not
    # of III (12 h) or IV (3 days); acknowledged 4 minutes ago: nothing overdue.
    old = ctx.clock.now() - timedelta(hours=2)
    overdue_handling = [
        a
        for a in every
        if a.status == "acknowledged" and a.level in ("I", "II") and a.created_at < old
    ]
    needs = len(triggered) + len(overdue_handling)
    assert f"待处置 {needs} 条" in page
    shown = ids(page)
    assert len(shown) == 50  # the first page
    assert not {str(a.id) for a in every if a.status == "resolved"} & set(shown)
    # Overdue ones first, marked.
    rows = re.findall(r'<tr class="([^"]+)" data-alert-id', page)
    overdue = [c for c in rows if "overdue" in c]
    assert overdue and rows[: len(overdue)] == overdue
    assert "超时未确认" in page
    second = (await console.client.get("/duty", params={"page": 2})).text
    assert set(ids(second)).isdisjoint(shown)
    assert needs == 55 and len(ids(second)) == 5 and "第 2 / 2 页" in second
    # Filters: county and kind.
    filtered = (
        await console.client.get("/duty", params={"county": "430903", "kind": "event"})
    ).text
    counties = set(re.findall(r'data-county="(\d+)" data-kind="(\w+)"', filtered))
    assert counties == {("430903", "event")}
    # Contacts with phones for a duty officer.
    assert "13700002222" in page and "李主席" in page
    # A leader in the analyst role sees the contacts but not their phones.
    await console.login(people["analyst"])
    assert "13700002222" not in (await console.client.get("/duty")).text
    # An informant does not see the duty view at all.
    await console.login(people["informant"])
    refused = await console.client.get("/duty")
    assert refused.status_code == 403 and "13700002222" not in refused.text


async def test_shift_handover(
    ctx: Context, console: Console, people: dict[str, NewAccount]
) -> None:
    await console.login(people["city"])
    token = await console.csrf("/duty")
    sent = await console.client.post(
        "/duty/handover", data={"csrf": token, "note": "资阳建工堵路已到场，待县里续报"}
    )
    assert sent.status_code == 303
    async with ctx.db.session() as session:
        (note,) = (await session.scalars(select(ShiftHandover))).all()
    assert (note.author_id, note.region_code) == ("lead-430900", "430900")
    # The next officer of the city sees it; a county, below, keeps its own notes.
    following = await ctx.accounts.add(
        kind="leader", account_id="duty-430900", region_code="430900", role="duty_officer"
    )
    await console.login(following)
    page = (await console.client.get("/duty")).text
    assert "资阳建工堵路已到场，待县里续报" in page and "lead-430900" in page
    await console.login(people["ziyang"])
    assert "资阳建工堵路已到场" not in (await console.client.get("/duty")).text
    # Analysts read; they do not hand over.
    await console.login(people["analyst"])
    refused = await console.client.post(
        "/duty/handover", data={"csrf": base.session_csrf(ctx, console), "note": "x"}
    )
    assert refused.status_code == 403
