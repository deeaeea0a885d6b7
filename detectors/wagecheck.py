"""The rules for new wage reports: read the points' history and evaluate it, in this
process for a few reports or in a worker process for a month's worth.

A province's month of wage reports (10,000 in a few seconds) keeps the wage check busy
for as long as they arrive: each batch of 500 reads 13,000 rows of history and matches
8,000 unlinked records' text. In the daemon's process that work shares the interpreter
with the alert path; bench/province.py measured level I reports at p99 1.7-2.1 s while
it ran, with the panel built in a thread. A worker process at a lower CPU priority
(`os.nice`) does the reading and the evaluation instead, so the operating system gives
the alert path the core first. The claim and the writes stay in the daemon.

The worker is started with the daemon when the installation has `EAGER_POINTS`
monitoring points or more (starting it takes seconds of CPU, which must not fall on the
first minutes of a month's reports), else on the first batch of
`detectors.wage_worker_min` reports: a city whose reports trickle in never starts it.
A worker that dies or hangs fails its batch (`WorkerFailed`, transient); the wage loop
logs it, waits and carries on with a new worker, and the events loop never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

import numpy as np
from sqlalchemy import func, select

from detectors import evidence, rules
from detectors.base import Factor
from detectors.features import compute
from detectors.load import UnlinkedRecords, load_panel
from detectors.panel import Panel, PanelView
from monitor.db import Database, is_transient
from monitor.logging import get_logger
from monitor.models import MonitoringPoint
from monitor.season import day_number

log = get_logger("labormon.detectors")


@dataclass(frozen=True)
class WageRequest:
    """What the rules need to know to check these points' new reports."""

    point_ids: list[str]
    as_of: date
    zone: tzinfo
    trust_record_dates: bool
    reliability_prior: float
    reliability_prior_weight: float


@dataclass
class WageEvaluation:
    """The floor levels the rules set, per point, with their factors and the records
    behind them (what the daemon turns into findings)."""

    point_ids: list[str]
    names: list[str]
    regions: list[str]
    floored: dict[int, str] = field(default_factory=dict)
    factors: dict[int, list[Factor]] = field(default_factory=dict)
    behind: list[list[str]] = field(default_factory=list)


def evaluate(panel: Panel, as_of: date) -> WageEvaluation:
    """The rules on a loaded panel (CPU only: run it off the event loop)."""
    view = PanelView(panel, day_number(as_of))
    features = compute(view)
    hits = rules.evaluate(features)
    floored = {i: level for i in range(panel.n) if (level := hits.floor(i)) is not None}
    factors = {i: rules.floor_factors(hits, i) for i in floored}
    behind: list[list[str]] = [[] for _ in range(panel.n)]
    evidence.point_sources(
        view,
        features,
        np.array(list(floored), dtype=np.int64),
        [factors.get(i, []) for i in range(panel.n)],
        behind,
    )
    return WageEvaluation(
        point_ids=list(panel.point_ids),
        names=list(panel.names),
        regions=[panel.counties[c] for c in panel.county],
        floored=floored,
        factors=factors,
        behind=behind,
    )


async def load_and_evaluate(
    db: Database, request: WageRequest, unlinked: UnlinkedRecords
) -> WageEvaluation:
    panel = await load_panel(
        db,
        as_of=request.as_of,
        point_ids=request.point_ids,
        zone=request.zone,
        trust_record_dates=request.trust_record_dates,
        reliability_prior=request.reliability_prior,
        reliability_prior_weight=request.reliability_prior_weight,
        unlinked=unlinked,
    )
    return await asyncio.to_thread(evaluate, panel, request.as_of)


#: Monitoring points from which the worker is started with the daemon.
EAGER_POINTS = 1000


class WorkerFailed(ConnectionError):
    """The worker could not read the database (transient: the daemon retries), or died."""


# ---------------------------------------------------------------- the worker's side

_worker: dict[str, Any] = {}


def _start_worker(url: str, niceness: int) -> None:
    with contextlib.suppress(OSError):
        os.nice(niceness)
    # A daemon killed with SIGKILL cannot stop its worker, which would wait forever
    # holding database connections: the worker leaves when its parent is gone.
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    _worker["loop"] = asyncio.new_event_loop()
    _worker["db"] = Database(url, pool_size=2)
    _worker["unlinked"] = UnlinkedRecords()


def _ready() -> bool:
    return "db" in _worker


def _run_in_worker(request: WageRequest) -> WageEvaluation | tuple[bool, str]:
    """The evaluation, or (transient, message) when it failed: exceptions from the
    database driver do not always survive pickling."""
    loop: asyncio.AbstractEventLoop = _worker["loop"]
    try:
        return loop.run_until_complete(
            load_and_evaluate(_worker["db"], request, _worker["unlinked"])
        )
    except Exception as exc:
        return is_transient(exc), f"{exc.__class__.__name__}: {exc}"[:500]


# ---------------------------------------------------------------- the daemon's side


class WageChecker:
    """Runs a wage check here or in the worker process, by its size."""

    def __init__(self, db: Database, *, worker: bool, worker_min: int, niceness: int) -> None:
        self.db = db
        # An in-memory SQLite database exists only in this process.
        self.use_worker = worker and ":memory:" not in db.url and db.url != "sqlite://"
        self.worker_min = worker_min
        #: Longest one batch may take in the worker before it is taken as stuck.
        self.timeout = 300.0
        self.niceness = niceness
        self.unlinked = UnlinkedRecords()
        self._pool: ProcessPoolExecutor | None = None
        self.in_worker = 0

    async def start_if_large(self) -> None:
        """Start the worker now if the installation is big enough to need it."""
        if not self.use_worker or self._pool is not None:
            return
        async with self.db.engine.connect() as conn:
            points = await conn.scalar(select(func.count()).select_from(MonitoringPoint))
        if (points or 0) >= EAGER_POINTS:
            pool = self._start_pool()
            # Spawned and initialised (imports, database engine) before any batch.
            try:
                await asyncio.get_running_loop().run_in_executor(pool, _ready)
            except BrokenProcessPool as exc:
                self.close()
                raise WorkerFailed(f"the wage check worker did not start: {exc}") from None

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.db.url, self.niceness),
            )
            log.info("wage check worker started", niceness=self.niceness)
        return self._pool

    async def check(self, request: WageRequest) -> WageEvaluation:
        if not self.use_worker or len(request.point_ids) < self.worker_min:
            return await load_and_evaluate(self.db, request, self.unlinked)
        pool = self._start_pool()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                result = await loop.run_in_executor(pool, _run_in_worker, request)
        except BrokenProcessPool as exc:
            self.close()
            raise WorkerFailed(f"the wage check worker died: {exc}") from None
        except TimeoutError:
            self.close()  # a worker stuck on a dead connection: a new one next time
            raise WorkerFailed(
                f"the wage check worker did not answer in {self.timeout:.0f} s"
            ) from None
        if isinstance(result, tuple):
            transient, message = result
            if transient:
                raise WorkerFailed(message)
            raise RuntimeError(f"wage check failed in the worker: {message}")
        self.in_worker += 1
        return result

    def close(self) -> None:
        """Stop the worker, also in the middle of a batch (the batch's reports stay
        unchecked and are checked again)."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
