"""The outbox back-off stays finite and capped however often a delivery fails."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from monitor.alerting.outbox import backoff
from monitor.models import ChannelHealth, Delivery, DeliveryAttempt
from tests.alerting.conftest import COUNTY, Pipeline
from tests.alerting.fakes import ChatServer
from tests.alerting.test_outbox import chat, use_group  # noqa: F401  (fixture)

delivery_ids = st.uuids().map(str)
durations = st.integers(min_value=1, max_value=7 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@settings(max_examples=500, deadline=None)
@given(
    attempts=st.integers(min_value=0, max_value=10**6),
    initial=durations,
    cap=durations,
    delivery_id=delivery_ids,
    retry_after=st.none() | st.floats(min_value=0, max_value=1e300, allow_nan=False),
)
def test_backoff_never_overflows_and_never_exceeds_its_cap(
    attempts: int,
    initial: timedelta,
    cap: timedelta,
    delivery_id: str,
    retry_after: float | None,
) -> None:
    delay = backoff(
        attempts, initial=initial, cap=cap, delivery_id=delivery_id, retry_after=retry_after
    )
    assert timedelta(0) <= delay <= (cap * 2 if retry_after else cap)
    if retry_after is None and attempts > 64:
        # Long past the doubling that reaches it: exactly the cap, whatever the jitter.
        assert delay == cap


@settings(max_examples=200, deadline=None)
@given(attempts=st.integers(min_value=1, max_value=10**6), delivery_id=delivery_ids)
def test_backoff_grows_until_the_cap(attempts: int, delivery_id: str) -> None:
    initial, cap = timedelta(seconds=10), timedelta(hours=1)
    this = backoff(attempts, initial=initial, cap=cap, delivery_id=delivery_id)
    following = backoff(attempts + 1, initial=initial, cap=cap, delivery_id=delivery_id)
    assert this <= following
    if attempts <= 8:  # 10 s * 2^8 * 1.15 < 1 h: still doubling
        assert abs(following.total_seconds() - 2 * this.total_seconds()) < 1e-5


def test_backoff_of_the_overflowing_attempt_of_the_issue() -> None:
    # `initial * 2**(attempts-1)` overflowed timedelta from about 43 attempts.
    for attempts in (42, 43, 44, 1000, 10**6):
        delay = backoff(
            attempts,
            initial=timedelta(seconds=30),
            cap=timedelta(hours=6),
            delivery_id=str(uuid.uuid4()),
        )
        assert delay == timedelta(hours=6)


async def test_10000_failed_attempts_of_one_delivery_then_the_next_is_at_the_cap(
    pipeline: Pipeline,
    chat: ChatServer,  # noqa: F811
) -> None:
    use_group(pipeline, id="zy-hook", region=COUNTY, kind="webhook", url=f"{chat.base}/hook/zy")
    chat.hook_statuses["zy"] = [500] * 3
    await pipeline.finding("III")
    await pipeline.run()
    (delivery,) = await pipeline.deliveries(channel="webhook")
    assert delivery.status == "pending" and delivery.attempts == 1
    # 9,999 failed attempts behind it (sending them one by one would only test the clock).
    now = pipeline.clock.now()
    async with pipeline.ctx.db.session() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id)
            .values(attempts=9_999, next_attempt_at=now, claimed_until=None)
        )
    await pipeline.at(now + timedelta(seconds=1))  # attempt 10,000: HTTP 500
    config = pipeline.ctx.settings.alerting.outbox
    (after,) = await pipeline.deliveries(channel="webhook")
    assert after.status == "pending"
    assert after.attempts == 10_000
    assert after.last_error is not None and "500" in after.last_error
    assert after.next_attempt_at == pipeline.clock.now() + config.backoff_max
    async with pipeline.ctx.db.session() as session:
        tries = list(
            (
                await session.scalars(
                    select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id)
                )
            ).all()
        )
        health = (await session.scalars(select(ChannelHealth))).all()
    # Attempts and the channel's health are still recorded.
    assert [t.ok for t in tries] == [False, False]
    assert [h.consecutive_failures for h in health] == [2]
    # And the one after that, at the cap, is made and succeeds.
    chat.hook_statuses["zy"] = []
    await pipeline.at(after.next_attempt_at)
    (sent,) = await pipeline.deliveries(channel="webhook")
    assert sent.status == "sent" and sent.attempts == 10_001
