"""The demo's data feed: the simulator's monitoring-point reports, petitions and
informant reports, published over MQTT in accelerated time.

Simulated time starts some months back and runs at `speed` simulated months per real
minute until it reaches the present; from then on events are published when they
happen. Every record therefore carries a time in the past, as a real one would. Now and
then a real incident from the China Labour Bulletin strike map, retold as a report of a
demo county's informant, is published too; the first one a few seconds after the start,
so that the first alert is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiomqtt

from monitor.clock import AcceleratedClock
from monitor.demo import incidents
from monitor.simulator.export import Exporter
from monitor.simulator.world import Simulator

#: Seconds of simulated time per simulated month (the mean Gregorian month).
MONTH_SECONDS = 30.436875 * 86400

#: Petition channel -> the source account that passes such petitions on.
HOTLINE = "hotline-12351"
ONLINE = "online-portal"


def office(region: str) -> str:
    """A county petition office's source account (visits and letters)."""
    return f"office-{region}"


def source_for(channel: str, region: str) -> str:
    if channel == "hotline_12351":
        return HOTLINE
    if channel == "online":
        return ONLINE
    return office(region)


def informant_ids(sim: Simulator) -> list[str]:
    """Every informant id the simulator can name (a few per county)."""
    codes = [c for c, _ in sim.counties]
    per_county = int(sim.points.informant_of.max()) + 1 if sim.n else 0
    return [f"INF-{code}-{k:03d}" for code in codes for k in range(per_county)]


@dataclass
class FeedStats:
    published: Counter[str] = field(default_factory=Counter)
    sim_time: datetime | None = None
    replayed: int = 0


class Feed:
    def __init__(
        self,
        sim: Simulator,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        prefix: str,
        speed: float,
        clock: AcceleratedClock,
        replay_every: timedelta = timedelta(days=45),
        first_replay_after: float = 4.0,
    ) -> None:
        """`clock` is the simulation's AcceleratedClock, shared with the detectors so that
        they score as of the simulated day."""
        self.sim = sim
        self.exporter = Exporter(sim)
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.prefix = prefix.rstrip("/")
        self.speed = speed
        self.clock = clock
        self.replay_every = replay_every
        self.first_replay_after = first_replay_after
        self.stats = FeedStats()
        self._incidents = incidents.load()
        self._rng = random.Random(sim.seed)
        self._counties = [c for c, _ in sim.counties]

    @property
    def factor(self) -> float:
        """Simulated seconds per real second."""
        return self.speed * MONTH_SECONDS / 60.0

    def topic(self, kind: str, payload: dict[str, Any]) -> str:
        if kind == "wage":
            return f"{self.prefix}/wages/{payload['point_id']}"
        if kind == "report":
            return f"{self.prefix}/reports/{payload['informant_id']}"
        return f"{self.prefix}/petitions/{source_for(payload['channel'], payload['region_code'])}"

    async def run(self, stop: asyncio.Event) -> None:
        clock = self.clock
        start_sim = clock.now()

        async def until(when: datetime) -> bool:
            """Sleep until simulated `when` has come (False when asked to stop)."""
            while not stop.is_set():
                now_sim = clock.now()
                if when <= now_sim:
                    return True
                wait = (when - now_sim).total_seconds()
                if not clock.caught_up:
                    wait /= self.factor
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.01, min(wait, 1.0)))
            return False

        async with aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier="labormon-demo-feed",
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as client:
            next_replay = start_sim + timedelta(seconds=self.first_replay_after * self.factor)
            while not stop.is_set():
                batch = self.sim.step()
                for when, kind, payload in self.exporter.stream(batch):
                    when = when.astimezone(UTC)
                    while next_replay <= when and not stop.is_set():
                        if not await until(next_replay):
                            return
                        await self._replay(client, next_replay)
                        next_replay += self.replay_every
                    if not await until(when):
                        return
                    body = {k: v for k, v in payload.items() if v is not None}
                    await client.publish(
                        self.topic(kind, body), json.dumps(body, ensure_ascii=False), qos=1
                    )
                    self.stats.published[kind] += 1
                    self.stats.sim_time = when

    async def _replay(self, client: aiomqtt.Client, when: datetime) -> None:
        """One real incident, retold as a demo informant's report happening at `when`."""
        if not self._incidents:
            return
        told = self._incidents[self.stats.replayed % len(self._incidents)]
        county = self._counties[self._rng.randrange(len(self._counties))]
        informant = f"INF-{county}-000"
        when_local = when.astimezone(self.sim_zone())
        report = {
            "report_id": f"CLB-{self.sim.seed}-{self.stats.replayed:04d}",
            "informant_id": informant,
            "occurred_at": when_local.isoformat(timespec="seconds"),
            "region_code": county,
            "enterprise_name": told["enterprise_name"],
            "event_type": told["event_type"],
            "category": told["category"],
            "people_involved": told["people_involved"],
            "description": told["description"],
        }
        await client.publish(
            f"{self.prefix}/reports/{informant}", json.dumps(report, ensure_ascii=False), qos=1
        )
        self.stats.replayed += 1
        self.stats.published["report"] += 1

    @staticmethod
    def sim_zone() -> Any:
        from monitor.clock import SHANGHAI

        return SHANGHAI


def demo_start(months_back: int, today: date) -> date:
    """The first simulated month: `months_back` months before the current one."""
    index = today.year * 12 + today.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)
