"""Accounts: secrets shown once and stored as hashes, revocation, and Mosquitto's hash format."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.accounts import AccountError, check_mosquitto_hash, hash_token
from monitor.cli import app
from monitor.context import Context
from monitor.models import Account
from tests.conftest import SECRET
from tests.support.broker import Broker

# The installation's key (a PostgreSQL store refuses to make one of its own).
runner = CliRunner(env={"LABORMON_SECRET_KEY": SECRET})


async def test_add_stores_only_hashes_and_encrypts_identity(ctx: Context) -> None:
    new = await ctx.accounts.add(
        kind="informant",
        account_id="inf-430902-001",
        region_code="430902",
        name="李四",
        phone="13700001111",
    )
    async with ctx.db.session() as session:
        row = (await session.scalars(select(Account))).one()
    assert row.tier == 4  # a county's informant is grassroots unless told otherwise
    assert row.token_hash == hash_token(new.token)
    assert new.token not in row.token_hash
    assert check_mosquitto_hash(new.mqtt_password, row.mqtt_password_hash)
    assert not check_mosquitto_hash("wrong", row.mqtt_password_hash)
    assert row.name_enc is not None
    assert "李四".encode() not in row.name_enc
    assert ctx.privacy.decrypt(row.name_enc) == "李四"
    assert (await ctx.accounts.by_token(new.token)) is not None
    await ctx.accounts.revoke("inf-430902-001")
    assert await ctx.accounts.by_token(new.token) is None
    with pytest.raises(AccountError, match="no active account"):
        await ctx.accounts.revoke("inf-430902-001")


async def test_add_refuses_bad_requests(ctx: Context) -> None:
    await ctx.accounts.add(kind="leader", account_id="lead-city", region_code="430900")
    cases = [
        (dict(kind="boss", account_id="x", region_code="430902"), "--kind must be one of"),
        (dict(kind="leader", account_id="a/b", region_code="430902"), "--id must be"),
        (dict(kind="leader", account_id="x", region_code="999999"), "unknown region code 999999"),
        (dict(kind="leader", account_id="x", region_code="43090"), "not a 6-digit"),
        (dict(kind="leader", account_id="lead-city", region_code="430900"), "already exists"),
        (
            dict(kind="leader", account_id="x", region_code="430902", tier=2),
            "--tier 2 does not fit",
        ),
        (dict(kind="leader", account_id="x", region_code="430902", role="boss"), "--role must be"),
    ]
    for kwargs, message in cases:
        with pytest.raises(AccountError, match=message):
            await ctx.accounts.add(**kwargs)  # type: ignore[arg-type]
    # A point's account may come before the point's registry entry (interfaces §4 sets no
    # order); the operator is told, and wage reports wait for the point to be imported.
    early = await ctx.accounts.add(kind="point", account_id="P404", region_code="430902")
    assert any("not registered yet" in w for w in early.warnings)


def test_cli_add_json_list_and_revoke(db_url: str, settings: object) -> None:
    result = runner.invoke(
        app,
        [
            "accounts",
            "add",
            "--kind",
            "leader",
            "--id",
            "lead-1",
            "--region",
            "430902",
            "--email",
            "lead1@example.cn",
            "--json",
            "--db",
            db_url,
        ],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"id", "kind", "token", "mqtt_password"}
    assert (data["id"], data["kind"]) == ("lead-1", "leader")
    listed = json.loads(runner.invoke(app, ["accounts", "list", "--json", "--db", db_url]).stdout)
    assert [(a["id"], a["tier"], a["role"], a["email"]) for a in listed] == [
        ("lead-1", 3, "leader", "lead1@example.cn")
    ]
    assert "token" not in json.dumps(listed)
    bad = runner.invoke(
        app,
        [
            "accounts",
            "add",
            "--kind",
            "leader",
            "--id",
            "lead-1",
            "--region",
            "430902",
            "--db",
            db_url,
        ],
    )
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "labormon: --id: account lead-1 already exists"
    assert runner.invoke(app, ["accounts", "revoke", "lead-1", "--db", db_url]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["accounts", "list", "--json", "--db", db_url]).stdout)
    assert listed == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_mosquitto_accepts_our_password_hash(
    ctx: Context, tmp_path: object, own_broker: Broker
) -> None:
    """The stored hash is Mosquitto's own format: a real broker checks a password with it."""
    new = await ctx.accounts.add(kind="source", account_id="src-hotline", region_code="430900")
    async with ctx.db.session() as session:
        row = await session.get(Account, "src-hotline")
    assert row is not None
    password_file = own_broker.workdir / "passwords"
    password_file.write_text(f"src-hotline:{row.mqtt_password_hash}\n")
    own_broker.use_auth(password_file, None)
    own_broker.restart()
    pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"

    def publish(password: str) -> int:
        return subprocess.run(
            [
                pub,
                "-h",
                "127.0.0.1",
                "-p",
                str(own_broker.port),
                "-u",
                "src-hotline",
                "-P",
                password,
                "-t",
                "labormon/v1/petitions/src-hotline",
                "-m",
                "{}",
                "-q",
                "1",
            ],
            capture_output=True,
            timeout=20,
        ).returncode

    assert publish(new.mqtt_password) == 0
    assert publish("not-the-password") != 0
