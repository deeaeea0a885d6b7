"""Accounts and the broker's side of them: no one speaks for another, no one reads another's
errors, secrets kept only as hashes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select, text

from ingest.authfiles import build
from monitor.context import Context
from monitor.models import Account, InformantReport
from monitor.regions import DEMO_REGIONS
from tests.conftest import SECRET
from tests.ingest_support import running
from tests.support import publisher
from tests.support.broker import Broker
from tests.support.daemon import REPO, eventually
from tests.support.stream import import_points

V5 = aiomqtt.ProtocolVersion.V5


def cli(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env["LABORMON_SECRET_KEY"] = SECRET
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--db", db_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_accounts_cli_keeps_only_hashes_and_revokes(ctx: Context, db_url: str) -> None:
    await import_points(ctx)
    made = {}
    for args in [
        ["--kind", "informant", "--id", "inf-a", "--region", "430902", "--name", "李四"],
        ["--kind", "point", "--id", "P000", "--region", "430902"],
        ["--kind", "source", "--id", "src-12351", "--region", "430900"],
        ["--kind", "leader", "--id", "duty-1", "--region", "430900", "--role", "duty_officer"],
    ]:
        result = cli("accounts", "add", *args, "--json", db_url=db_url)
        assert result.returncode == 0, result.stderr
        new = json.loads(result.stdout)
        assert set(new) == {"id", "kind", "token", "mqtt_password"}
        made[new["id"]] = new
    listed = json.loads(cli("accounts", "list", "--json", db_url=db_url).stdout)
    by_id = {a["id"]: a for a in listed}
    assert by_id["inf-a"]["tier"] == 4
    assert by_id["duty-1"]["tier"] == 2
    assert by_id["duty-1"]["role"] == "duty_officer"
    assert "李四" not in json.dumps(listed, ensure_ascii=False)
    # Neither the token nor the MQTT password is stored anywhere, not even the name in clear.
    async with ctx.db.session() as session:
        dump = " ".join(
            str(row) for row in (await session.execute(text("SELECT * FROM accounts"))).all()
        )
    for new in made.values():
        assert new["token"] not in dump
        assert new["mqtt_password"] not in dump
    assert "李四" not in dump
    assert await ctx.accounts.by_token(made["inf-a"]["token"]) is not None
    assert cli("accounts", "revoke", "inf-a", db_url=db_url).returncode == 0
    assert await ctx.accounts.by_token(made["inf-a"]["token"]) is None
    again = cli("accounts", "revoke", "inf-a", db_url=db_url)
    assert again.returncode == 2
    assert "no active account" in again.stderr


def test_acl_rules_per_kind() -> None:
    accounts = [
        Account(id="inf-a", kind="informant", region_code="430902", mqtt_password_hash="$7$a"),
        Account(id="P000", kind="point", region_code="430902", mqtt_password_hash="$7$b"),
        Account(id="src-1", kind="source", region_code="430900", mqtt_password_hash="$7$c"),
        Account(id="boss", kind="leader", region_code="430900", mqtt_password_hash="$7$d"),
        Account(id="labormon", kind="daemon", region_code="430900", mqtt_password_hash="$7$e"),
        Account(id="odd:id", kind="informant", region_code="430902", mqtt_password_hash="$7$f"),
    ]
    files = build(accounts, [(c, p) for c, _n, p in DEMO_REGIONS], "labormon/v1")
    assert files.password_file.splitlines() == [
        "P000:$7$b",
        "boss:$7$d",
        "inf-a:$7$a",
        "labormon:$7$e",
        "src-1:$7$c",
    ]
    blocks = {
        block.splitlines()[0]: block.splitlines()[1:]
        for block in files.acl_file.split("\n\n")
        if block.startswith("user ")
    }
    assert blocks["user inf-a"] == [
        "topic write labormon/v1/reports/inf-a",
        "topic read labormon/v1/errors/inf-a",
    ]
    assert blocks["user P000"] == [
        "topic write labormon/v1/wages/P000",
        "topic read labormon/v1/errors/P000",
    ]
    assert blocks["user src-1"][0] == "topic write labormon/v1/petitions/src-1"
    # A city leader reads the city's alerts and those of each of its counties.
    assert blocks["user boss"] == [
        f"topic read labormon/v1/alerts/{code}"
        for code in sorted(c for c, _n, _p in DEMO_REGIONS if c.startswith("4309"))
    ]
    assert blocks["user labormon"] == [
        "topic read labormon/v1/wages/+",
        "topic read labormon/v1/petitions/+",
        "topic read labormon/v1/reports/+",
        "topic write labormon/v1/errors/+",
        "topic write labormon/v1/alerts/+",
        "topic write labormon/v1/wages/~doctor.labormon",
        "topic write labormon/v1/petitions/~doctor.labormon",
        "topic write labormon/v1/reports/~doctor.labormon",
    ]
    assert files.skipped == [("odd:id", "':' cannot appear in an MQTT user name")]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_broker_with_generated_auth_files_keeps_accounts_apart(
    ctx: Context, db_url: str, own_broker: Broker, tmp_path: Path
) -> None:
    await import_points(ctx)
    secrets = {}
    for kind, account_id in [
        ("daemon", "labormon-d"),
        ("informant", "inf-00"),
        ("informant", "inf-01"),
        ("informant", "inf-gone"),
        ("point", "P000"),
    ]:
        # The stream's reports come from every county: the informants cover the city.
        region = "430900" if kind == "informant" else "430902"
        new = await ctx.accounts.add(kind=kind, account_id=account_id, region_code=region)
        secrets[account_id] = new.mqtt_password
    await ctx.accounts.revoke("inf-gone")
    result = cli("mqtt", "auth-files", str(tmp_path / "auth"), db_url=db_url)
    assert result.returncode == 0, result.stderr
    password_file = tmp_path / "auth" / "password_file"
    acl_file = tmp_path / "auth" / "acl_file"
    assert "inf-gone" not in password_file.read_text()
    assert oct(password_file.stat().st_mode & 0o777) == "0o640"
    own_broker.use_auth(password_file, acl_file)
    own_broker.restart()

    def client(account: str, password: str | None = None) -> aiomqtt.Client:
        return aiomqtt.Client(
            own_broker.host,
            own_broker.port,
            username=account,
            password=password or secrets[account],
            identifier=f"c-{account}",
            protocol=V5,
        )

    ctx.settings.mqtt.url = own_broker.url_for("labormon-d", secrets["labormon-d"])
    ctx.settings.mqtt.client_id = "acl-daemon"
    a_seen: list[str] = []
    b_seen: list[str] = []

    async def watch(c: aiomqtt.Client, seen: list[str]) -> None:
        async for message in c.messages:
            seen.append(message.topic.value)

    async with running(ctx), client("inf-00") as a, client("inf-01") as b:
        # inf-00 tries to read what is not its own: inf-01's errors and everyone's reports.
        await a.subscribe("labormon/v1/errors/inf-01", qos=1)
        await a.subscribe("labormon/v1/errors/#", qos=1)
        await a.subscribe("labormon/v1/reports/#", qos=1)
        await b.subscribe("labormon/v1/errors/inf-01", qos=1)
        watchers = [
            asyncio.create_task(watch(a, a_seen)),
            asyncio.create_task(watch(b, b_seen)),
        ]
        # inf-00 speaks for inf-01 on inf-01's topic: the broker drops it.
        spoof = publisher.message("acl", 1, "reports")
        assert spoof.payload["informant_id"] == "inf-01"
        await a.publish(spoof.topic, json.dumps(spoof.payload), qos=1)
        # inf-01 sends a broken report and a good one; inf-00 sends a broken one last.
        await b.publish("labormon/v1/reports/inf-01", b"{broken", qos=1)
        good = publisher.message("acl", 21, "reports")
        assert good.topic == "labormon/v1/reports/inf-01"
        await b.publish(good.topic, json.dumps(good.payload), qos=1)
        await a.publish("labormon/v1/reports/inf-00", b"{broken too", qos=1)
        await eventually(
            _probe(a_seen), lambda s: "labormon/v1/errors/inf-00" in s, 20, what="own error"
        )
        await eventually(
            _probe(b_seen), lambda s: "labormon/v1/errors/inf-01" in s, 20, what="b's error"
        )
        for task in watchers:
            task.cancel()
    # inf-00 saw its own error only: not inf-01's error, not inf-01's report.
    assert a_seen == ["labormon/v1/errors/inf-00"]
    assert b_seen == ["labormon/v1/errors/inf-01"]
    async with ctx.db.session() as session:
        stored = set((await session.scalars(select(InformantReport.report_id))).all())
    assert stored == {good.record_id}
    # Wrong password, revoked account, no account: refused at the door.
    for account, password in [("inf-00", "wrong"), ("inf-gone", secrets["inf-gone"])]:
        with pytest.raises(aiomqtt.MqttError):
            async with client(account, password):
                pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(own_broker.host, own_broker.port, identifier="anon"):
            pass


def _probe(seen: list[str]) -> Callable[[], Awaitable[list[str]]]:
    async def probe() -> list[str]:
        return list(seen)

    return probe
