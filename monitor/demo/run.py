"""`labormon demo`: broker, mail sink, daemon, console and a simulated demo region, in one
process on embedded defaults.

Everything lives under one directory (default `./var/demo`): the SQLite store, the
broker's configuration, persistence and auth files, the mail sink's messages, and the
demo accounts' tokens (`accounts.json`; demo only: real tokens are shown once and never
stored). The user's configuration (`--config` or `LABORMON_CONFIG`, the `LABORMON_*`
variables) is the base the demo overrides: its own broker, mail sink, secret and store.
The store is `--db` if given, never `LABORMON_DB` or the file's `database.url`, so a
demo cannot write into a production database by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import signal
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy.engine import make_url

from detectors.service import DetectorService
from ingest.authfiles import generate, write_atomically
from monitor import __version__
from monitor.accounts import NewAccount, mosquitto_hash
from monitor.clock import AcceleratedClock, SystemClock, add_months, local_date
from monitor.config import Settings, load_settings
from monitor.context import Context
from monitor.daemon import SERVICES, Daemon, make_context
from monitor.demo.broker import Mosquitto, find_mosquitto
from monitor.demo.feed import (
    HOTLINE,
    MONTH_SECONDS,
    ONLINE,
    Feed,
    demo_start,
    informant_ids,
    office,
)
from monitor.logging import configure
from monitor.models import Alert
from monitor.records import parse_row
from monitor.regionload import load_regions
from monitor.regions import COUNTY, DEMO_CITY, catalogue
from monitor.simulator.export import Exporter
from monitor.simulator.world import Simulator
from monitor.store import Submission
from monitor.web.mailsink import MailSink

FEED_USER = "demo-feed"
DAEMON_USER = "labormon-demo"
MAIL_DOMAIN = "demo.labormon.cn"
SECRET = "labormon-demo-secret-not-for-production-use-0000"


@dataclass
class DemoOptions:
    directory: Path = Path("var/demo")
    bind: str = "127.0.0.1:8080"
    speed: float = 1.0
    months_back: int = 12
    points: int = 160
    seed: int = 7
    duration: float | None = None
    keep: bool = False
    #: Base settings (TOML) the demo overrides; None: `LABORMON_CONFIG`, if set.
    config: Path | None = None
    #: The demo's store; None: SQLite in `directory`.
    db: str | None = None
    #: The simulated region and the installation's scope: a city (default Yiyang) or a
    #: province (430000: 14 cities, 122 counties).
    region: str = DEMO_CITY


class DemoError(Exception):
    """The demo cannot start as asked (message says why, in one line)."""


def demo_settings(opts: DemoOptions, mqtt_url: str, smtp_url: str) -> Settings:
    d = opts.directory.resolve()
    return load_settings(
        opts.config,
        overrides={
            "database": {"url": opts.db or f"sqlite:///{d / 'labormon.db'}"},
            "mqtt": {"url": mqtt_url, "client_id": "labormon-demo", "enabled": True},
            "http": {"bind": opts.bind, "public_url": f"http://{opts.bind}"},
            "smtp": {"url": smtp_url, "mail_from": f"劳动关系预警 <alerts@{MAIL_DOMAIN}>"},
            "security": {"secret_key": SECRET, "secret_key_file": str(d / "secret.key")},
            "logging": {"level": "warning", "format": "console"},
            "organisation": {"scope_code": opts.region},
            # The feed replays a year of history in minutes: its records count from their
            # own dates, and the detectors look at them as of the simulated day.
            "detectors": {"trust_record_dates": True, "retrain_every": "60d"},
            "report": {
                "notice": "说明：本报告为演示系统生成，所用信访、预警等数据均为模拟数据，"
                "时间为模拟时间，不反映真实情况。"
            },
            "console": {
                "anonymous_read": True,
                "mail_dir": str(d / "mail"),
                "demo_accounts_file": str(d / "accounts.json"),
            },
        },
    )


class Demo:
    def __init__(self, opts: DemoOptions, out: Console | None = None) -> None:
        self.opts = opts
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.dir = opts.directory.resolve()
        self.broker = Mosquitto(self.dir / "mosquitto")
        self.sink = MailSink(self.dir / "mail")
        self.ctx: Context | None = None
        self.feed: Feed | None = None
        self.daemon: Daemon | None = None
        self.logins: list[dict[str, str]] = []

    def say(self, text: str) -> None:
        self.out.print(text, markup=True)

    # ------------------------------------------------------------------ set-up

    def prepare_directory(self) -> None:
        if self.dir.exists() and not self.opts.keep:
            self.say(
                f"[dim]· starting fresh: clearing {self.dir} (--keep continues the last demo)[/dim]"
            )
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    async def seed(self, ctx: Context, sim: Simulator) -> dict[str, int]:
        """The demo region's monitoring points and accounts for everyone in it."""
        exporter = Exporter(sim)
        points = [Submission(parse_row("point", row), "file") for row in exporter.point_rows()]
        await ctx.store.store("point", points)
        counts = {"points": len(points), "informants": 0, "sources": 0, "leaders": 0}
        accounts: list[NewAccount] = []
        # A leader for every region of the scope and above it (province, each city, each
        # county), and a duty officer at the scope's top.
        scope = self.opts.region
        regions = catalogue().scope(scope)
        leaders = [(f"lead-{e.code}", e.code, "leader") for e in regions if e.tier < COUNTY]
        leaders.append((f"duty-{scope}", scope, "duty_officer"))
        leaders += [(f"lead-{e.code}", e.code, "leader") for e in regions if e.tier == COUNTY]
        names = {e.code: e.name for e in regions}
        for account_id, region, role in leaders:
            new = await ctx.accounts.add(
                kind="leader",
                account_id=account_id,
                region_code=region,
                role=role,
                email=f"{account_id}@{MAIL_DOMAIN}",
            )
            accounts.append(new)
            self.logins.append(
                {
                    "id": account_id,
                    "kind": "leader",
                    "role": role,
                    "region": names[region],
                    "region_code": region,
                    "token": new.token,
                }
            )
            counts["leaders"] += 1
        for informant in informant_ids(sim):
            region = informant.split("-")[1]
            new = await ctx.accounts.add(kind="informant", account_id=informant, region_code=region)
            if informant.endswith("-000"):
                self.logins.append(
                    {
                        "id": informant,
                        "kind": "informant",
                        "role": "informant",
                        "region": names[region],
                        "region_code": region,
                        "token": new.token,
                    }
                )
            counts["informants"] += 1
        sources = [(HOTLINE, scope), (ONLINE, scope)]
        sources += [(office(e.code), e.code) for e in regions if e.tier == COUNTY]
        for source, region in sources:
            await ctx.accounts.add(kind="source", account_id=source, region_code=region)
            counts["sources"] += 1
        for row in exporter.point_rows():
            await ctx.accounts.add(
                kind="point", account_id=row["point_id"], region_code=row["region_code"]
            )
        self.daemon_password = (
            await ctx.accounts.add(kind="daemon", account_id=DAEMON_USER, region_code=scope)
        ).mqtt_password
        # Demo only, so that `--keep` can start the same demo again: a real installation
        # never keeps a password or a token (only their hashes).
        write_atomically(self.dir / "daemon-password", self.daemon_password + "\n", mode=0o600)
        (self.dir / "accounts.json").write_text(
            json.dumps(self.logins, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        return counts

    async def broker_files(self, ctx: Context) -> None:
        """Mosquitto's password and ACL files from the accounts, plus the demo feed: a
        gateway that may publish on every input topic (it speaks for the simulated
        points, sources and informants; the daemon still checks each topic's account)."""
        files = await generate(ctx.db, ctx.accounts, ctx.settings.mqtt.topic_prefix)
        self.feed_password = "demo-feed-" + SECRET[-12:]
        prefix = ctx.settings.mqtt.topic_prefix
        password = files.password_file + f"{FEED_USER}:{mosquitto_hash(self.feed_password)}\n"
        acl = files.acl_file + (
            f"\n# The demo's simulator publishes for every simulated sender.\nuser {FEED_USER}\n"
            f"topic write {prefix}/wages/+\ntopic write {prefix}/petitions/+\n"
            f"topic write {prefix}/reports/+\ntopic read {prefix}/errors/#\n"
        )
        write_atomically(self.broker.password_file, password, mode=0o600)
        write_atomically(self.broker.acl_file, acl, mode=0o600)

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        opts = self.opts
        self.say(
            f"[bold]labormon {__version__} demo[/bold] — 劳动关系风险监测预警 · "
            f"{catalogue().name(opts.region)} ({opts.region})"
        )
        self.prepare_directory()
        configure("warning", "console")
        self.sink.start()
        self.say(
            f"· mail sink: {self.sink.url} keeps every email in {self.dir / 'mail'} (console: 邮件)"
        )
        self.broker.binary = find_mosquitto(say=self.say)
        settings = demo_settings(
            opts,
            mqtt_url=f"mqtt://{DAEMON_USER}:x@127.0.0.1:{self.broker.port}",
            smtp_url=self.sink.url,
        )
        clock = SystemClock()
        ctx = make_context(settings, clock=clock)
        self.ctx = ctx
        await ctx.db.migrate()
        await load_regions(ctx.db, ctx.store.catalogue, opts.region)
        url = make_url(settings.database.url)
        self.say(
            f"· store: SQLite {url.database}"
            if url.get_backend_name() == "sqlite"
            else f"· store: {url.render_as_string(hide_password=True)}"
        )
        today = local_date(clock.now(), settings.organisation.zone)
        start = demo_start(opts.months_back, today)
        sim = Simulator(opts.points, opts.seed, start, region=opts.region)
        if self.opts.keep and (self.dir / "daemon-password").is_file():
            # The same demo again: accounts and data are there; the feed replays what was
            # published before (stored once: duplicates) and goes on from there.
            self.logins = json.loads((self.dir / "accounts.json").read_text(encoding="utf-8"))
            self.daemon_password = (self.dir / "daemon-password").read_text().strip()
            self.say(f"· continuing the demo in {self.dir} (its accounts and data are kept)")
        else:
            if opts.db and await self._has_accounts(ctx):
                self.sink.stop()
                await ctx.close()
                raise DemoError(
                    f"--db {make_url(opts.db).render_as_string(hide_password=True)} already "
                    "holds accounts: give an empty database, or --keep with the same --dir "
                    "to continue the demo in it"
                )
            counts = await self.seed(ctx, sim)
            self.say(
                f"· demo region: {counts['points']} monitoring points in {len(sim.counties)} "
                f"counties; accounts "
                f"for {counts['leaders']} leaders, {counts['informants']} informants, "
                f"{counts['sources']} petition sources → tokens in {self.dir / 'accounts.json'}"
            )
        await self.broker_files(ctx)
        self.broker.write_config(auth=True)
        self.broker.start()
        self.say(
            f"· broker: {self.broker.version()} on 127.0.0.1:{self.broker.port}, persistence on, "
            f"password + ACL files generated by labormon ({self.broker.config_file})"
        )
        settings.mqtt.url = (
            f"mqtt://{DAEMON_USER}:{self.daemon_password}@127.0.0.1:{self.broker.port}"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # The detectors look at the data as of the simulated day (a re-score as of today
        # would see months of "missing" reports the simulation has not reached yet); the
        # rest of the daemon (escalation deadlines, sessions, mail) keeps the wall clock.
        sim_clock = AcceleratedClock(
            datetime.combine(start, datetime.min.time(), settings.organisation.zone),
            factor=opts.speed * MONTH_SECONDS / 60.0,
            wall=clock,
        )
        sim_ctx = dataclasses.replace(ctx, clock=sim_clock)
        factories = dict(SERVICES, detectors=lambda _c, _d: DetectorService(sim_ctx))
        self.daemon = Daemon(ctx, list(factories.values()))
        daemon_task = asyncio.create_task(self.daemon.run(stop), name="daemon")
        await self._wait_ready(daemon_task)
        self.say(
            f"· daemon: ingest, detectors, alerting, escalation, outbox, reports; console at "
            f"[bold]http://{opts.bind}[/bold]"
        )
        self._print_logins()
        self.feed = Feed(
            sim,
            host="127.0.0.1",
            port=self.broker.port,
            username=FEED_USER,
            password=self.feed_password,
            prefix=settings.mqtt.topic_prefix,
            speed=opts.speed,
            clock=sim_clock,
        )
        sim_clock.begin()
        self.say(
            f"· simulator: from {start:%Y-%m} at {opts.speed:g} simulated month(s) per minute "
            "until today, "
            "then in real time; real incidents from the China Labour Bulletin strike map are "
            "replayed as informant reports"
        )
        tasks = [
            asyncio.create_task(self.feed.run(stop), name="feed"),
            asyncio.create_task(self._status(stop), name="status"),
            asyncio.create_task(self._monthly_report_when_caught_up(stop), name="report"),
        ]
        if opts.duration:
            tasks.append(
                asyncio.create_task(self._stop_after(stop, opts.duration), name="duration")
            )
        try:
            done, _ = await asyncio.wait([daemon_task, *tasks], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await stop.wait()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(daemon_task, 15)
            self.broker.stop()
            self.sink.stop()
            await ctx.close()
            self.say(
                "demo stopped: broker, daemon and mail sink are down; the data stays in "
                f"{self.dir} (labormon demo --keep continues it)"
            )

    @staticmethod
    async def _has_accounts(ctx: Context) -> bool:
        from sqlalchemy import select

        from monitor.models import Account

        async with ctx.db.session() as session:
            return (await session.scalars(select(Account.id).limit(1))).first() is not None

    async def _wait_ready(self, daemon_task: asyncio.Task[Any]) -> None:
        assert self.daemon is not None
        ready = asyncio.create_task(self.daemon.ready.wait())
        done, _ = await asyncio.wait([ready, daemon_task], return_when=asyncio.FIRST_COMPLETED)
        if daemon_task in done:
            ready.cancel()
            daemon_task.result()
            raise RuntimeError("the daemon stopped during start-up")
        for service in self.daemon.services:
            started = getattr(service, "server", None)
            if started is not None:
                for _ in range(200):
                    if started.started:
                        break
                    await asyncio.sleep(0.05)

    def _print_logins(self) -> None:
        self.say(
            "· log in to the console with these demo tokens (also on the console's log-in page):"
        )
        for login in self.logins:
            who = {"leader": "领导", "duty_officer": "值班员", "informant": "信息员"}[login["role"]]
            self.say(f"    {login['region']}{who:<4} {login['id']:<16} {login['token']}")

    async def _monthly_report_when_caught_up(self, stop: asyncio.Event) -> None:
        """The monthly report for last month, once the simulation has reached today (the
        daemon itself makes it on the 1st at 09:00)."""
        from monitor.report.service import ReportService

        assert self.ctx is not None and self.feed is not None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 10)
            if stop.is_set() or not self.feed.clock.caught_up:
                continue
            today = local_date(self.ctx.clock.now(), self.ctx.settings.organisation.zone)
            last_month = add_months(today.replace(day=1), -1)
            try:
                await ReportService(self.ctx).produce(last_month)
                self.say(f"· monthly report for {last_month:%Y-%m} made (console: 报表) and mailed")
            except Exception as exc:  # the demo goes on; say what failed
                self.say(
                    f"[yellow]· monthly report failed: {exc.__class__.__name__}: {exc}[/yellow]"
                )
            return

    async def _stop_after(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        stop.set()

    async def _status(self, stop: asyncio.Event) -> None:
        """One line every 10 s: simulated date, records, alerts by level, emails."""
        from sqlalchemy import func, select

        assert self.ctx is not None and self.feed is not None
        first_alert_seen = False
        started = asyncio.get_running_loop().time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2 if not first_alert_seen else 10)
            async with self.ctx.db.session() as session:
                rows = await session.execute(
                    select(Alert.level, func.count()).group_by(Alert.level)
                )
                by_level = {level: n for level, n in rows}
            mails = len(list((self.dir / "mail").glob("*.eml")))
            published = self.feed.stats.published
            sim = self.feed.stats.sim_time
            if by_level and not first_alert_seen:
                first_alert_seen = True
                took = asyncio.get_running_loop().time() - started
                self.say(
                    f"[bold red]· first alert after {took:.1f} s[/bold red] — see http://{self.opts.bind}/alerts"
                )
            if first_alert_seen:
                self.say(
                    f"[dim]{sim:%Y-%m-%d} simulated · published {published['wage']} wage reports, "
                    f"{published['petition']} petitions, {published['report']} informant reports"
                    " · alerts "
                    + " ".join(f"{lv}:{by_level.get(lv, 0)}" for lv in ("I", "II", "III", "IV"))
                    + f" · emails {mails}[/dim]"
                    if sim
                    else "[dim]waiting for the first simulated records[/dim]"
                )


def run_demo(opts: DemoOptions) -> None:
    asyncio.run(Demo(opts).run())
