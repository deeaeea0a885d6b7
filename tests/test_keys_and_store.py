"""One store, one key (issues 18 and 19 item 6) and a private store (19 item 11).

The key's check value is kept in the database at first start; a daemon or command with
another key refuses to run with one line. PostgreSQL needs an explicit key. Decryption
failures are counted and logged. The CLI finds the installed daemon's configuration, so
`accounts add` on the host writes to the daemon's store with the daemon's key. SQLite
stores and key files are created private.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from monitor.config import SecurityConfig, Settings, load_settings
from monitor.context import Context
from monitor.daemon import Daemon, make_context
from monitor.db import Database
from monitor.keycheck import KeyMismatch, stored_fingerprint, verify_key
from monitor.privacy import Privacy, SecretKeyError, load_secret
from tests.conftest import SECRET
from tests.support.database import fetch_all

ROOT = Path(__file__).resolve().parents[1]
OTHER = "another-secret-0123456789abcdef0123456789abcdef"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
    env.update(extra)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str], wrap: list[str] | None = None):
    return subprocess.run(
        [*(wrap or []), sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_key_check_is_stored_at_first_start_and_another_key_refused(ctx: Context) -> None:
    assert await stored_fingerprint(ctx.db) is None
    assert await verify_key(ctx.db, ctx.privacy, ctx.clock) is True
    assert await verify_key(ctx.db, ctx.privacy, ctx.clock) is False
    assert await stored_fingerprint(ctx.db) == ctx.privacy.fingerprint
    with pytest.raises(KeyMismatch) as caught:
        await verify_key(ctx.db, Privacy(OTHER.encode()), ctx.clock)
    message = str(caught.value)
    assert "\n" not in message
    assert Privacy(OTHER.encode()).fingerprint in message and ctx.privacy.fingerprint in message


async def test_the_daemon_refuses_to_start_with_another_key(
    settings: Settings, ctx: Context
) -> None:
    await ctx.db.migrate()
    await verify_key(ctx.db, ctx.privacy, ctx.clock)
    other = settings.model_copy(deep=True)
    other.security.secret_key = OTHER
    stranger = make_context(other, clock=ctx.clock)
    try:
        with pytest.raises(KeyMismatch):
            async with asyncio.timeout(30):
                await Daemon(stranger, only=["ingest"]).run(asyncio.Event())
    finally:
        await stranger.close()


async def test_postgresql_needs_an_explicit_key(tmp_path: Path) -> None:
    security = SecurityConfig(secret_key_file=tmp_path / "none" / "secret.key")
    with pytest.raises(SecretKeyError, match=r"no secret key: .*secret\.key does not exist"):
        load_secret(security, create=False)
    assert not (tmp_path / "none").exists()
    settings = load_settings(
        overrides={
            "database": {"url": "postgresql://nobody@127.0.0.1:1/none"},
            "security": {"secret_key_file": str(tmp_path / "none" / "secret.key")},
        }
    )
    with pytest.raises(SecretKeyError):
        make_context(settings)
    # The same on the command line: one line, exit 2, no key file made.
    result = cli(
        "stats",
        "--db",
        "postgresql://nobody@127.0.0.1:1/none",
        cwd=tmp_path,
        env=clean_env(LABORMON_SECURITY__SECRET_KEY_FILE=str(tmp_path / "none" / "k")),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "no secret key" in result.stderr
    assert not (tmp_path / "var").exists() and not (tmp_path / "none").exists()


def test_decryption_failures_are_counted_and_logged(ctx: Context) -> None:
    token = Privacy(OTHER.encode()).encrypt("13812345678")
    with structlog.testing.capture_logs() as logs:
        assert ctx.privacy.decrypt(token) is None
        assert ctx.privacy.decrypt(token) is None
    assert ctx.privacy.decrypt_failures == 2
    value = ctx.metrics.registry.get_sample_value("labormon_decrypt_failures_total")
    assert value == 2
    assert [entry["event"] for entry in logs] == ["personal data did not decrypt with this key"] * 2
    assert all("13812345678" not in str(entry) for entry in logs)
    assert ctx.privacy.decrypt(ctx.privacy.encrypt("张三")) == "张三"
    assert ctx.privacy.decrypt_failures == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_store_and_key_are_created_private(tmp_path: Path, backend: str) -> None:
    result = cli("stats", cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    # The defaults: ./var/labormon.db and ./var/secret.key, as a first start makes them.
    var = tmp_path / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for name in ("labormon.db", "secret.key"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name

    # The WAL files while a connection holds the store open.
    async def open_and_write() -> list[int]:
        db = Database(f"sqlite:///{var / 'labormon.db'}")
        try:
            async with db.session() as session:
                await session.execute(text("INSERT INTO leases VALUES ('x', 'y', '2025-01-01')"))
            return [
                stat.S_IMODE(Path(f"{var / 'labormon.db'}{suffix}").stat().st_mode)
                for suffix in ("-wal", "-shm")
            ]
        finally:
            await db.dispose()

    assert asyncio.run(open_and_write()) == [0o600, 0o600]


def overlay_etc(upper: Path) -> list[str]:
    """A command prefix that runs in a mount namespace of its own whose /etc shows
    `upper` over the machine's /etc: an "installed host" without touching the machine."""
    work = upper.parent / "overlay-work"
    work.mkdir(exist_ok=True)
    script = (
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc "
        '&& exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for a mount namespace"
)
def test_accounts_add_without_config_uses_the_installed_daemons_store_and_key(
    db_url: str, tmp_path: Path
) -> None:
    # The installed daemon: its configuration in /etc/labormon, its key in its state dir.
    state = tmp_path / "var-lib-labormon"
    state.mkdir(mode=0o700)
    key_file = state / "secret.key"
    key_file.write_text(SECRET + "\n")
    key_file.chmod(0o600)
    upper = tmp_path / "etc-upper"
    (upper / "labormon").mkdir(parents=True)
    config = upper / "labormon" / "labormon.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n\n[security]\nsecret_key_file = "{key_file}"\n'
        "\n[mqtt]\nenabled = false\n"
    )
    # The daemon's first start records its key.
    daemon_settings = load_settings(config)

    async def first_start() -> str:
        ctx = make_context(daemon_settings)
        try:
            await ctx.db.migrate()
            await verify_key(ctx.db, ctx.privacy, ctx.clock)
            return ctx.privacy.fingerprint
        finally:
            await ctx.close()

    fingerprint = asyncio.run(first_start())

    # An operator on the host, in their home directory, without --config.
    home = tmp_path / "home"
    home.mkdir()
    wrap = overlay_etc(upper)
    shown = cli("config", cwd=home, env=clean_env(), wrap=wrap)
    assert shown.returncode == 0, shown.stderr
    assert "/etc/labormon/labormon.toml" in shown.stdout
    assert f"secret key:   {fingerprint}" in shown.stdout
    assert f"database key: {fingerprint}" in shown.stdout
    added = cli(
        "accounts",
        *("add", "--kind", "informant", "--id", "inf-host", "--region", "430902"),
        *("--name", "王五", "--phone", "13900001111"),
        cwd=home,
        env=clean_env(),
        wrap=wrap,
    )
    assert added.returncode == 0, added.stderr
    assert not (home / "var").exists(), "a store or key of its own in the cwd"
    rows = fetch_all(db_url, "SELECT name_enc, phone_enc FROM accounts WHERE id = 'inf-host'")
    assert len(rows) == 1
    daemon_privacy = Privacy(SECRET.encode())
    assert daemon_privacy.decrypt(rows[0][0]) == "王五"  # type: ignore[arg-type]
    assert daemon_privacy.decrypt(rows[0][1]) == "13900001111"  # type: ignore[arg-type]

    # The same command with another key is refused, with one line, before writing.
    refused = cli(
        "accounts",
        *("add", "--kind", "informant", "--id", "inf-other", "--region", "430902"),
        cwd=home,
        env=clean_env(LABORMON_SECRET_KEY=OTHER),
        wrap=wrap,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert f"fingerprint {fingerprint}" in refused.stderr
    assert fetch_all(db_url, "SELECT id FROM accounts WHERE id = 'inf-other'") == []
