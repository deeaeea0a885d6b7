"""The pipeline's writer: batches, answers after commit, survives the database going away
and a record the database refuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.engine import make_url

from ingest.pipeline import Envelope, IngestPipeline, Outcome, is_transient
from monitor.context import Context
from monitor.models import RejectedMessage
from tests.support import publisher
from tests.support.daemon import eventually
from tests.support.stream import assert_exactly_once, prepare, stored_count, stored_ids


def length(items: list[Any]) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return len(items)

    return probe


def envelope(i: int, prefix: str = "pl", **changes: Any) -> Envelope:
    m = publisher.message(prefix, i, "reports")
    body = json.dumps(m.payload | changes, ensure_ascii=False).encode()
    sender = str(m.payload["informant_id"])
    return Envelope("mqtt", m.topic, "report", sender, body, check_sender=True)


@pytest.fixture
async def pipeline(ctx: Context) -> Any:
    await prepare(ctx)
    pipe = IngestPipeline(ctx)
    task = asyncio.create_task(pipe.run())
    yield pipe
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_answers_come_after_the_commit_in_arrival_order(
    ctx: Context, pipeline: IngestPipeline
) -> None:
    answered: list[tuple[str | None, int]] = []
    counts: list[int] = []

    def listener(batch: Sequence[Envelope], outcomes: Sequence[Outcome]) -> None:
        counts.append(len(batch))

    pipeline.add_listener(listener)

    def on_done(outcome: Outcome) -> None:
        answered.append((outcome.record_id, len(answered)))

    envs = [envelope(i) for i in range(300)]
    for env in envs:
        env.on_done = on_done
        pipeline.submit(env)
    last = envs[-1]
    await eventually(length(answered), lambda n: n == 300, 20, what="answers")
    assert [rid for rid, _ in answered] == [f"pl-R{i}" for i in range(300)]
    assert await stored_count(ctx.db) == 300
    assert sum(counts) == 300
    assert max(counts) > 1, "queued messages are committed together"
    assert last.record is not None


async def test_same_id_twice_in_flight_gets_stored_then_duplicate(
    ctx: Context, pipeline: IngestPipeline
) -> None:
    outcomes: list[str] = []
    for _ in range(3):
        env = envelope(7)
        env.on_done = lambda o: outcomes.append(o.status)
        pipeline.submit(env)
    await eventually(length(outcomes), lambda n: n == 3, 20)
    assert outcomes == ["stored", "duplicate", "duplicate"]


async def test_unknown_or_revoked_sender_is_refused(ctx: Context, pipeline: IngestPipeline) -> None:
    await ctx.accounts.revoke("inf-03")
    got: list[Outcome] = []
    for env in [envelope(3), envelope(4)]:  # inf-03 revoked, inf-04 active
        env.on_done = got.append
        pipeline.submit(env)
    stranger = Envelope(
        "mqtt",
        "labormon/v1/reports/stranger",
        "report",
        "stranger",
        json.dumps(
            publisher.message("x", 5, "reports").payload | {"informant_id": "stranger"}
        ).encode(),
        check_sender=True,
    )
    stranger.on_done = got.append
    pipeline.submit(stranger)
    await eventually(length(got), lambda n: n == 3, 20)
    assert [(o.status, o.code) for o in got] == [
        ("rejected", "unknown_account"),
        ("stored", None),
        ("rejected", "unknown_account"),
    ]


async def test_a_record_the_database_refuses_does_not_block_the_others(
    ctx: Context, pipeline: IngestPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch the database refuses for its contents is split and stored one by one."""
    real = ctx.store.store

    async def refusing(kind: str, items: Sequence[Any], conn: Any = None) -> Any:
        if any(i.record.record_id == "pl-R5" for i in items):
            raise sa_exc.DataError("INSERT ...", {}, ValueError("value too long"))
        return await real(kind, items, conn)

    monkeypatch.setattr(ctx.store, "store", refusing)
    got: list[Outcome] = []
    for i in range(10):
        env = envelope(i)
        env.on_done = got.append
        pipeline.submit(env)
    await eventually(length(got), lambda n: n == 10, 20)
    assert [o.status for o in got] == ["stored"] * 5 + ["rejected"] + ["stored"] * 4
    assert got[5].code == "unstorable"
    async with ctx.db.session() as session:
        row = (await session.scalars(select(RejectedMessage))).one()
    assert row.record_id == "pl-R5"
    assert "DataError" in row.reason


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_database_connections_killed_mid_stream_lose_nothing(
    ctx: Context, pipeline: IngestPipeline
) -> None:
    """PostgreSQL kills our connections in the middle of transactions while messages
    arrive: nothing is answered until it is committed, and nothing is lost."""
    url = make_url(ctx.settings.database.url)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    answered: list[Outcome] = []
    sent = 0
    done = asyncio.Event()

    def retries() -> float:
        return ctx.metrics.registry.get_sample_value("labormon_ingest_db_retries_total") or 0

    async def feed() -> None:
        nonlocal sent
        while not done.is_set():
            env = envelope(sent, "pg")
            env.on_done = answered.append
            pipeline.submit(env)
            sent += 1
            if sent % 20 == 0:
                await asyncio.sleep(0.002)

    feeder = asyncio.create_task(feed())
    try:
        # Kill whatever of ours is inside a transaction until the writer has had to
        # retry twice (an idle pooled connection is just replaced, which proves less).
        async with asyncio.timeout(30):
            while retries() < 2:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle'",
                    url.database,
                )
                await asyncio.sleep(0.003)
        done.set()
        await feeder
        await eventually(length(answered), lambda n: n == sent, 60, what="all answered")
    finally:
        done.set()
        await admin.close()
    # "duplicate" when a COMMIT went through but its answer was lost with the connection.
    assert {o.status for o in answered} <= {"stored", "duplicate"}
    assert_exactly_once(await stored_ids(ctx.db), publisher.expected_ids("pg", 0, sent, "reports"))
    print(f"{sent} messages, {retries():.0f} batches retried after killed connections")


def test_transient_errors_are_told_apart_from_refusals() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(sa_exc.OperationalError("x", {}, Exception("database is locked")))
    assert not is_transient(sa_exc.DataError("x", {}, Exception("value too long")))
    assert not is_transient(sa_exc.IntegrityError("x", {}, Exception("violates")))
    assert not is_transient(ValueError("bug"))
    # A service of several tasks fails with their errors in a group.
    assert is_transient(ExceptionGroup("tasks", [ConnectionRefusedError(), TimeoutError()]))
    assert not is_transient(ExceptionGroup("tasks", [ConnectionRefusedError(), ValueError()]))


async def test_the_writer_serves_events_before_queued_wage_reports() -> None:
    """Issue 17: an informant's report or a petition goes ahead of wage reports already
    queued; within each lane the order of arrival is kept."""
    from ingest.pipeline import LaneQueue

    queue = LaneQueue()

    def env(kind: str, n: int) -> Envelope:
        return Envelope("mqtt", f"{kind}/{n}", kind, None, b"{}")

    for n in range(3):
        queue.put_nowait(env("wage", n))
    queue.put_nowait(env("report", 0))
    queue.put_nowait(env("petition", 1))
    queue.put_nowait(env("report", 2))
    assert queue.qsize() == 6
    urgent = [queue.get_nowait(urgent_only=True).origin for _ in range(3)]
    assert urgent == ["report/0", "petition/1", "report/2"]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait(urgent_only=True)  # a batch of events does not wait for wages
    assert [queue.get_nowait().origin for _ in range(3)] == ["wage/0", "wage/1", "wage/2"]
    queue = LaneQueue()
    for item in [env("wage", 0), env("report", 0), env("wage", 1), env("petition", 1)]:
        queue.put_nowait(item)
    taken = [await queue.get() for _ in range(4)]
    assert [e.origin for e in taken] == ["report/0", "petition/1", "wage/0", "wage/1"]
    # A connection that carries every kind keeps its order (acknowledgements follow it),
    # in a lane of its own between the events and the bulk.
    queue = LaneQueue()
    mixed = [env("wage", 5), env("report", 6), env("wage", 7)]
    for item in mixed:
        item.in_order = True
    for item in [env("wage", 4), *mixed, env("report", 8)]:
        queue.put_nowait(item)
    assert queue.has_unheld()
    taken = [queue.get_nowait(unheld_only=True).origin for _ in range(4)]
    assert taken == ["report/8", "wage/5", "report/6", "wage/7"]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait(unheld_only=True)  # the bulk lane waits out a hold
    assert not queue.has_unheld()
    assert queue.get_nowait().origin == "wage/4"
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put_nowait(env("wage", 9))
    assert (await asyncio.wait_for(waiter, 1)).origin == "wage/9"


async def test_an_event_hold_stops_the_bulk_lane_but_not_a_connection_of_every_kind(
    ctx: Context, pipeline: IngestPipeline
) -> None:
    """The hold after an event (`ingest.event_hold`) pauses wage reports from their own
    lane. A connection carrying every kind (a rescued session, `mqtt.wage_lane` off) holds
    events in its order, so it goes on: held, it drained 50 messages a second and a
    daemon took a minute to take over a killed peer's session (CI, stop 22)."""
    answered: list[str] = []

    def message(i: int, *, in_order: bool) -> Envelope:
        m = publisher.message("hold", i)
        sender = str(m.payload.get("informant_id") or m.payload.get("point_id") or "")
        if m.kind == "petition":
            sender = m.topic.rsplit("/", 1)[1]
        env = Envelope(
            "mqtt",
            m.topic,
            m.kind,
            sender,
            json.dumps(m.payload, ensure_ascii=False).encode(),
            check_sender=True,
            in_order=in_order,
        )
        env.on_done = lambda outcome: answered.append(f"{outcome.status}:{outcome.record_id}")
        return env

    # A long hold, as if an event had just been stored; nothing here waits it out.
    ctx.bus.hold_bulk(30)
    pipeline.submit(message(1, in_order=False))  # a wage report on the wage lane
    for _ in range(10):
        await asyncio.sleep(0)  # the idle writer wakes for it, and puts it back
    assert answered == []
    rescued = [message(i, in_order=True) for i in range(10, 22)]  # every kind, in order
    for env in rescued:
        pipeline.submit(env)
    await eventually(length(answered), lambda n: n >= len(rescued), 10, what="mixed lane")
    assert ctx.bus.bulk_wait() > 0, "the hold ran out; the test shows nothing"
    assert answered == [f"stored:{publisher.message('hold', i).record_id}" for i in range(10, 22)]
    assert {publisher.message("hold", i).kind for i in range(10, 22)} == {
        "wage",
        "petition",
        "report",
    }
    # The hold lifted, the next event wakes the writer and the wage report follows it.
    ctx.bus.bulk_held_until = 0.0
    pipeline.submit(message(2, in_order=False))
    await eventually(length(answered), lambda n: n == len(rescued) + 2, 10, what="bulk")
    assert answered[-2:] == ["stored:hold-R2", "stored:hold-W1"]
