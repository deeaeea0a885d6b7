"""The objects every part of labormon shares, built once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from monitor.accounts import Accounts
from monitor.bus import Bus
from monitor.clock import Clock, SystemClock
from monitor.config import Settings
from monitor.db import Database
from monitor.metrics import Metrics
from monitor.privacy import Privacy, load_secret
from monitor.regions import catalogue
from monitor.store import CategoryInferrer, PeopleReader, RecordStore


@dataclass
class Context:
    settings: Settings
    db: Database
    clock: Clock
    privacy: Privacy
    store: RecordStore
    accounts: Accounts
    bus: Bus = field(default_factory=Bus)
    metrics: Metrics = field(default_factory=lambda: Metrics(CollectorRegistry()))

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        infer_category: CategoryInferrer,
        read_people: PeopleReader | None = None,
        clock: Clock | None = None,
        db: Database | None = None,
    ) -> Context:
        """The context; `infer_category` reads a petition's category from its summary when
        the sender gave none (the detectors' classifier, handed in by `monitor.daemon`);
        `read_people` reads the number of people from the text when the field is missing
        or 0."""
        clock = clock or SystemClock()
        db = db or Database(settings.database.url, pool_size=settings.database.pool_size)
        # SQLite lives on one host: a first start may make its key. PostgreSQL is shared by
        # hosts, so its key must be given (a missing one is SecretKeyError, not a new key).
        privacy = Privacy(load_secret(settings.security, create=db.dialect == "sqlite"))
        store = RecordStore(
            db,
            privacy,
            clock,
            zone=settings.organisation.zone,
            infer_category=infer_category,
            correction_window=settings.ingest.correction_window,
            read_people=read_people,
            catalogue=catalogue(settings.organisation.regions_file),
        )
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            privacy=privacy,
            store=store,
            accounts=Accounts(db, clock, privacy),
        )

    def __post_init__(self) -> None:
        self.privacy.on_decrypt_failure = self.metrics.decrypt_failures.inc

    async def close(self) -> None:
        await self.db.dispose()
