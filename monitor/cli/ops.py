"""Operator tools: `labormon config` (which store and key a command uses) and `labormon
backup FILE` (a consistent copy of the store while the daemon runs)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    build_context,
    err,
    fail,
    out,
    run,
    safe_url,
    settings_from,
)
from monitor.config import find_config
from monitor.keycheck import stored_fingerprint


def register(app: typer.Typer) -> None:
    app.command("config")(show_config)
    app.command("backup")(backup)


def key_source(settings_security_key: str, key_file: Path) -> str:
    if os.environ.get("LABORMON_SECRET_KEY"):
        return "LABORMON_SECRET_KEY"
    if settings_security_key:
        return "security.secret_key"
    return f"key file {key_file}"


def show_config(json_out: JsonOpt = False, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Print the configuration file, the database and the secret key's fingerprint this
    command uses (and the fingerprint the database was written with), to compare hosts."""
    path, why = find_config(config)
    settings = settings_from(config, db)

    async def body() -> str | None:
        ctx = build_context(settings)
        try:
            try:
                return await stored_fingerprint(ctx.db)
            except Exception:  # not migrated yet, or unreachable: say so below
                return None
            finally:
                shown["key"] = ctx.privacy.fingerprint
        finally:
            await ctx.close()

    shown: dict[str, str] = {}
    stored = run(body)
    info = {
        "config_file": str(path) if path else None,
        "config_from": why,
        "database": safe_url(settings.database.url),
        "key_source": key_source(settings.security.secret_key, settings.security.secret_key_file),
        "key_fingerprint": shown["key"],
        "database_key_fingerprint": stored,
    }
    if json_out:
        print(json.dumps(info, ensure_ascii=False))
        return
    out.print(f"config file:  {info['config_file'] or '(none)'} ({why})", markup=False)
    out.print(f"database:     {info['database']}", markup=False)
    out.print(f"secret key:   {info['key_fingerprint']} (from {info['key_source']})", markup=False)
    out.print(
        f"database key: {stored or '(not recorded yet: set at the first start)'}", markup=False
    )
    if stored and stored != shown["key"]:
        fail("the secret key does not match the database's; commands and the daemon refuse it")


def backup(
    target: Annotated[Path, typer.Argument(help="The copy to write (SQLite file).")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """A consistent copy of the SQLite store, safe while the daemon runs (SQLite's online
    backup API). On PostgreSQL, prints the pg_dump command to use instead."""
    settings = settings_from(config, db)
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        parts = ["pg_dump", "--format=custom", f"--file={target}"]
        if url.host:
            parts.append(f"--host={url.host}")
        if url.port:
            parts.append(f"--port={url.port}")
        if url.username:
            parts.append(f"--username={url.username}")
        parts.append(url.database or "labormon")
        err.print(
            "labormon: the store is PostgreSQL; back it up with pg_dump (password from "
            "~/.pgpass or PGPASSWORD), restore with pg_restore --clean --dbname=...:",
            markup=False,
        )
        out.print(" ".join(parts), markup=False)
        return
    source = Path(url.database or "")
    if not source.is_file():
        fail(f"no SQLite store at {source}")
    if target.exists():
        fail(f"{target} exists; choose a new file name")
    if not target.parent.is_dir():
        fail(f"{target.parent} is not a directory")
    # The copy holds the same personal data as the store: private from the first byte.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # Read-only on the source; the backup API copies a consistent snapshot page by
        # page and restarts if the daemon writes meanwhile, without stopping it.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst, pages=1024)
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        fail(f"backup of {source} failed: {exc}")
    if check != "ok":
        fail(f"the copy {target} failed its integrity check: {check}")
    out.print(
        f"backed up {source} to {target} ({target.stat().st_size} bytes, integrity ok)",
        markup=False,
    )
