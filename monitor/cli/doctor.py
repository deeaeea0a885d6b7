"""`labormon doctor`: is this installation ready to run? One line per check, ✓ or ✗ with
the fix in words; exit 0 when every check passes, 1 when one fails.

Each check uses the real thing the daemon will use: a connection, a write (rolled back),
a subscription and a round trip as the daemon's broker account, an SMTP EHLO/STARTTLS/
login, matplotlib's font list. `--quick` (the systemd unit's ExecStartPre) checks only
what is local and fast (the key, the configuration, the time zone), so that a database or
broker still starting does not fail the start: the daemon waits for those itself.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from sqlalchemy import text

from monitor.cli.common import ConfigOpt, DbOpt, safe_url, settings_from
from monitor.config import Settings, find_config
from monitor.db import Database
from monitor.keycheck import stored_fingerprint
from monitor.privacy import Privacy, SecretKeyError, load_secret

OK, FAIL, SKIP = "✓", "✗", "-"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix and self.status == FAIL else ""
        return f"{self.status} {self.name}: {self.detail}{fix}"


def passed(name: str, detail: str) -> Check:
    return Check(name, OK, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, FAIL, detail, fix)


def skipped(name: str, detail: str) -> Check:
    return Check(name, SKIP, detail)


def one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig or exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- the checks


def check_key(settings: Settings, *, sqlite: bool) -> tuple[Check, Privacy | None]:
    security = settings.security
    path = Path(security.secret_key_file)
    if not security.secret_key and not path.exists() and sqlite:
        # The doctor makes nothing: on SQLite the daemon's first start creates the key.
        return passed("secret key", f"{path} will be created (0600) at the first start"), None
    try:
        secret = load_secret(security, create=False)
    except (SecretKeyError, OSError) as exc:
        return failed(
            "secret key",
            one_line(exc),
            "create it once (openssl rand -hex 32 > FILE; chown labormon: FILE; chmod 600 FILE) "
            "and use the same key on every host",
        ), None
    privacy = Privacy(secret)
    if security.secret_key:
        where = "LABORMON_SECRET_KEY" if os.environ.get("LABORMON_SECRET_KEY") else "config"
        return passed("secret key", f"from {where}, fingerprint {privacy.fingerprint}"), privacy
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return failed(
            "secret key",
            f"{path} is readable by others (mode {mode:04o})",
            f"chmod 600 {path}",
        ), privacy
    return passed("secret key", f"{path} (mode 0600), fingerprint {privacy.fingerprint}"), privacy


async def check_database(settings: Settings, privacy: Privacy | None) -> list[Check]:
    from alembic.script import ScriptDirectory

    from monitor.db import alembic_config

    url = safe_url(settings.database.url)
    db = Database(settings.database.url, pool_size=1)
    checks: list[Check] = []
    try:
        try:
            async with asyncio.timeout(15), db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return [
                failed(
                    "database",
                    f"cannot reach {url}: {one_line(exc)}",
                    "start the database server and check database.url (user, password, "
                    "pg_hba line, file permissions)",
                )
            ]
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        try:
            async with db.engine.connect() as conn:
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:
            current = None
        if current != head:
            checks.append(
                failed(
                    "database",
                    f"{url} is at migration {current or '(empty)'}, the code's head is {head}",
                    "start the daemon once (it migrates at start), or run `labormon stats`",
                )
            )
            return checks
        try:
            async with db.engine.connect() as conn, conn.begin() as tx:
                await conn.execute(
                    text("INSERT INTO leases (name, holder, expires_at) VALUES (:n, :h, :e)"),
                    {"n": f"doctor-{uuid.uuid4().hex[:12]}", "h": "doctor", "e": datetime.now(UTC)},
                )
                await tx.rollback()
        except Exception as exc:
            return [
                failed(
                    "database",
                    f"{url} cannot be written: {one_line(exc)}",
                    "give the service user write access (SQLite: the file and its directory; "
                    "PostgreSQL: the role owns the database)",
                )
            ]
        checks.append(passed("database", f"{url} reachable, at migration head {head}, writable"))
        if privacy is not None:
            stored = await stored_fingerprint(db)
            if stored is None:
                checks.append(passed("key check", "not recorded yet (the first start records it)"))
            elif stored != privacy.fingerprint:
                checks.append(
                    failed(
                        "key check",
                        f"the secret key {privacy.fingerprint} is not the one the database was "
                        f"written with ({stored})",
                        "use the installation's key file (compare `labormon config` on the "
                        "daemon's host)",
                    )
                )
            else:
                checks.append(
                    passed("key check", "the key is the one the database was written with")
                )
        return checks
    finally:
        await db.dispose()


async def check_broker(settings: Settings) -> Check:
    import aiomqtt
    from paho.mqtt.reasoncodes import ReasonCode

    from ingest.topics import (
        KIND_SEGMENT,
        alerts_topic,
        errors_topic,
        input_filters,
        probe_topic,
    )

    cfg = settings.mqtt
    name = "broker"
    if not cfg.enabled:
        return skipped(name, "MQTT intake is off (mqtt.enabled = false)")
    where = f"{cfg.host}:{cfg.port}"
    user = cfg.username or "(anonymous)"
    prefix = cfg.topic_prefix.rstrip("/")
    v5 = cfg.protocol == "5"
    client = aiomqtt.Client(
        cfg.host,
        cfg.port,
        username=cfg.username,
        password=cfg.password,
        identifier=f"{cfg.client_id}-doctor-{uuid.uuid4().hex[:6]}",
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        timeout=10,
        tls_context=ssl.create_default_context() if cfg.tls else None,
    )
    acked: dict[int, Any] = {}
    try:
        async with asyncio.timeout(20):
            try:
                await client.__aenter__()
            except aiomqtt.MqttCodeError as exc:
                return failed(
                    name,
                    f"the broker at {where} refused user {user}: {exc}",
                    "put the daemon account's password in mqtt.url (labormon accounts add "
                    "--kind daemon prints it once), regenerate the auth files "
                    "(labormon mqtt auth-files) and reload Mosquitto",
                )
            except (aiomqtt.MqttError, OSError) as exc:
                return failed(
                    name,
                    f"no broker answers at {where}: {exc}",
                    "start Mosquitto (systemctl start mosquitto) and check mqtt.url",
                )
            try:
                # Publishing rights: MQTT 5 brokers answer a refused publish in its PUBACK.
                paho_client = client._client
                original = paho_client.on_publish

                def on_publish(c: Any, userdata: Any, mid: int, *rest: Any) -> None:
                    acked[mid] = rest[0] if rest else None
                    if original is not None:
                        original(c, userdata, mid, *rest)

                paho_client.on_publish = on_publish

                async def publish_refused(topic: str, payload: bytes) -> str | None:
                    await client.publish(topic, payload, qos=1)
                    code = acked.get(max(acked)) if acked else None
                    if isinstance(code, ReasonCode) and code.is_failure:
                        return str(code)
                    return None

                for topic in (errors_topic(prefix, "~doctor"), alerts_topic(prefix, "~doctor")):
                    refused = await publish_refused(topic, b'{"doctor":true}')
                    if refused:
                        return failed(
                            name,
                            f"the ACL forbids {user} to publish to {topic} ({refused})",
                            "regenerate the auth files (labormon mqtt auth-files DIR) and "
                            "reload Mosquitto",
                        )
                # Reading rights: Mosquitto grants every SUBSCRIBE and applies the ACL when
                # delivering, so a probe must come back through each input filter. Plain
                # subscriptions: joining the daemon's share group would take live input.
                filters = zip(KIND_SEGMENT.values(), input_filters(prefix), strict=True)
                for segment, filter_ in filters:
                    probe = probe_topic(prefix, segment, cfg.username or "anonymous")
                    await client.subscribe(filter_, qos=1)
                    token = uuid.uuid4().hex.encode()
                    refused = await publish_refused(probe, token)
                    if refused:
                        return failed(
                            name,
                            f"the ACL forbids {user} to publish the probe {probe} ({refused})",
                            "regenerate the auth files (labormon mqtt auth-files DIR) and "
                            "reload Mosquitto",
                        )
                    if not await _received(client, probe, token):
                        return failed(
                            name,
                            f"the ACL forbids {user} to subscribe to {filter_} (the probe "
                            "sent there never arrived)",
                            f"regenerate the auth files with {user} as a daemon account "
                            "(labormon mqtt auth-files DIR), then reload Mosquitto",
                        )
                    await client.unsubscribe(filter_)
            except TimeoutError:
                raise
            except aiomqtt.MqttError as exc:
                return failed(name, f"{where}: {exc}", "check the broker's log")
            finally:
                try:
                    await client.__aexit__(None, None, None)
                except aiomqtt.MqttError:
                    pass
    except TimeoutError:
        return failed(
            name,
            f"no answer from the broker at {where} within 20 s (round trip as {user})",
            "check that Mosquitto runs and that the ACL lets the daemon read its doctor topic",
        )
    return passed(
        name,
        f"{where} accepts {user}: publishes errors and alerts, reads every input "
        "(probe round trip ok)",
    )


async def _received(client: Any, topic: str, token: bytes, wait: float = 5.0) -> bool:
    try:
        async with asyncio.timeout(wait):
            async for message in client.messages:
                if message.topic.value == topic and message.payload == token:
                    return True
    except TimeoutError:
        return False
    return False


async def check_smtp(settings: Settings) -> Check:
    import aiosmtplib

    smtp = settings.smtp
    name = "smtp"
    if not smtp.enabled:
        return skipped(name, "email is off (smtp.url empty)")
    where = f"{smtp.host}:{smtp.port}"
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.use_tls,
        start_tls=False,
        timeout=10,
    )
    steps = ["EHLO"]
    try:
        await client.connect()
        try:
            await client.ehlo()
            if smtp.starttls:
                await client.starttls()
                steps.append("STARTTLS")
            if smtp.username:
                await client.login(smtp.username, smtp.password or "")
                steps.append(f"login as {smtp.username}")
        finally:
            client.close()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return failed(
            name,
            f"{where} refused the login of {smtp.username}: {one_line(exc)}",
            "put the mail account's password in smtp.url",
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return failed(
            name,
            f"no SMTP server answers at {where}: {one_line(exc)}",
            "check smtp.url (host, port, starttls) and that the mail server is up",
        )
    return passed(name, f"{where}: {', '.join(steps)} ok")


def check_public_url(settings: Settings) -> Check:
    if settings.smtp.enabled and not settings.http.public_url:
        return failed(
            "public url",
            "email is on but http.public_url is empty: links in mails would point to "
            f"{settings.http.base_url}",
            "set http.public_url to the address leaders' browsers reach the console at",
        )
    return passed("public url", settings.http.public_url or "(email off: not needed)")


def check_fonts() -> Check:
    from monitor.report.charts import cjk_font
    from monitor.report.figures import ReportError

    try:
        family = cjk_font()
    except ReportError as exc:
        return failed(
            "CJK font", str(exc), "apt-get install fonts-noto-cjk (then run doctor again)"
        )
    return passed("CJK font", f"{family} (for the report's charts)")


def check_time(settings: Settings) -> Check:
    zone = settings.organisation.zone
    now = datetime.now(UTC)
    if now.year < 2025:
        return failed(
            "time", f"the clock says {now:%Y-%m-%d}", "set the clock (NTP: timedatectl set-ntp 1)"
        )
    local = now.astimezone(zone)
    return passed(
        "time", f"{local:%Y-%m-%d %H:%M} {settings.organisation.timezone} ({now:%H:%M} UTC)"
    )


async def check_db_clock(settings: Settings) -> Check | None:
    """On PostgreSQL: this host's clock against the database server's."""
    if not settings.database.url.startswith(("postgresql", "postgres")):
        return None
    db = Database(settings.database.url, pool_size=1)
    try:
        async with asyncio.timeout(10), db.engine.connect() as conn:
            server = await conn.scalar(text("SELECT now()"))
    except Exception:
        return None  # the database check says why
    finally:
        await db.dispose()
    skew = abs((datetime.now(UTC) - server).total_seconds())
    if skew > 60:
        return failed(
            "clock",
            f"this host's clock is {skew:.0f} s off the database server's",
            "run NTP on both (timedatectl set-ntp 1)",
        )
    return passed("clock", f"within {skew:.1f} s of the database server's")


async def check_webhooks(settings: Settings) -> list[Check]:
    import httpx

    groups = settings.alerting.groups
    if not groups:
        return [skipped("alert groups", "none configured")]
    checks = []
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        for group in groups:
            name = f"alert group {group.id}"
            host = urlsplit(group.url).netloc
            try:
                response = await client.head(group.url)
            except httpx.HTTPError as exc:
                checks.append(
                    failed(
                        name,
                        f"{group.kind} robot at {host} unreachable: {one_line(exc)}",
                        "check the URL and this host's way out (proxy, firewall)",
                    )
                )
                continue
            checks.append(
                passed(
                    name,
                    f"{group.kind} robot host {host} answers (HTTP {response.status_code}); "
                    "the vendor has no dry run, so the robot key is proven by the first alert",
                )
            )
    return checks


# --------------------------------------------------------------------------- the command


async def run_checks(settings: Settings, *, quick: bool) -> list[Check]:
    checks: list[Check] = []
    key, privacy = check_key(settings, sqlite=settings.database.url.startswith("sqlite"))
    checks.append(key)
    checks.append(check_public_url(settings))
    checks.append(check_time(settings))
    if quick:
        return checks
    checks += await check_database(settings, privacy)
    clock = await check_db_clock(settings)
    if clock is not None:
        checks.append(clock)
    steps: list[Callable[[], Awaitable[Check]]] = [
        lambda: check_broker(settings),
        lambda: check_smtp(settings),
    ]
    for step in steps:
        checks.append(await step())
    checks.append(check_fonts())
    checks += await check_webhooks(settings)
    return checks


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Local checks only (key, configuration, time zone): for ExecStartPre."
        ),
    ] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Check the installation: database, broker, SMTP, fonts, key, public URL, time, robots.
    Exit 0 when all pass, 1 when one fails."""
    path, why = find_config(config)
    settings = settings_from(config, db)
    print(f"  configuration: {path or '(none: defaults)'} ({why})", flush=True)
    checks = asyncio.run(run_checks(settings, quick=quick))
    for check in checks:
        print(check.line(), flush=True)
    failures = [c for c in checks if c.status == FAIL]
    if failures:
        print(f"{len(failures)} of {len(checks)} checks failed", flush=True)
        raise typer.Exit(1)
