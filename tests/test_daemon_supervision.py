"""The daemon outlives a service's database errors and stops on anything else."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import exc as sa_exc

from monitor.context import Context
from monitor.daemon import Daemon, Service, retry_delay


class Flaky:
    """Fails `failures` times with `error`, then runs until cancelled."""

    name = "flaky"

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.runs = 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        self.running.set()
        await asyncio.Event().wait()


def _factory(service: Flaky):  # type: ignore[no-untyped-def]
    def make(ctx: Context, daemon: Daemon) -> Service:
        return service

    return make


def test_retry_delay_is_capped_before_it_is_computed() -> None:
    assert retry_delay(1, 0.5, 10) == 0.5
    assert retry_delay(3, 0.5, 10) == 2.0
    assert retry_delay(10**6, 0.5, 10) == 10  # no OverflowError
    assert [retry_delay(n, 0.2, 2) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 2, 2]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_service_failing_on_the_database_is_started_again(ctx: Context) -> None:
    ctx.settings.database.retry_min = timedelta(seconds=0.01)
    ctx.settings.database.retry_max = timedelta(seconds=0.05)
    down = sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    flaky = Flaky(5, down)
    daemon = Daemon(ctx, [_factory(flaky)])
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    async with asyncio.timeout(10):
        await flaky.running.wait()
    assert flaky.runs == 6
    assert not task.done()
    sample = ctx.metrics.registry.get_sample_value
    assert sample("labormon_database_retries_total", {"service": "flaky"}) == 5
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_any_other_failure_stops_the_daemon(ctx: Context) -> None:
    flaky = Flaky(1, ValueError("a bug"))
    daemon = Daemon(ctx, [_factory(flaky)])
    with pytest.raises(ExceptionGroup) as failed:
        await asyncio.wait_for(daemon.run(asyncio.Event()), 10)
    assert failed.group_contains(ValueError)
    assert flaky.runs == 1
