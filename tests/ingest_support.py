"""Running the ingest services inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from ingest.mqtt import MqttIngest
from monitor.context import Context
from monitor.daemon import Daemon
from monitor.web.app import HttpService
from tests.support.daemon import eventually


@asynccontextmanager
async def running(ctx: Context, *, mqtt: bool = True, http: bool = False) -> AsyncIterator[Daemon]:
    """The daemon with the ingest services, until the block ends."""
    services = ["ingest"]
    if mqtt:
        ctx.settings.mqtt.enabled = True  # the fixture's settings leave it off
        services.append("mqtt")
    if http:
        services.append("http")
    daemon = Daemon(ctx, only=services)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(15):
            await daemon.ready.wait()
            for service in daemon.services:
                if isinstance(service, MqttIngest):
                    await service.wait_connected()
                if isinstance(service, HttpService):
                    await eventually(
                        _started(service), bool, 10, what="HTTP server up", interval=0.01
                    )
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def _started(http: HttpService) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return http.started

    return probe


def service(daemon: Daemon, kind: type) -> object:
    return next(s for s in daemon.services if isinstance(s, kind))
