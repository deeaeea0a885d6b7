"""What every command shares: `--config` and `--db`, the context, one-line errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from monitor.config import ConfigError, Settings, find_config, load_settings
from monitor.context import Context
from monitor.daemon import make_context
from monitor.keycheck import KeyMismatch, verify_key
from monitor.logging import configure, get_logger
from monitor.privacy import SecretKeyError
from monitor.regionload import load_regions

log = get_logger("labormon.cli")

T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Configuration file (TOML). Env: LABORMON_CONFIG.", show_default=False
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL, e.g. sqlite:///./var/labormon.db. Env: LABORMON_DB.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit (2: bad usage or bad input)."""
    err.print(f"labormon: {message}", markup=False)
    raise typer.Exit(code)


def settings_from(config: Path | None, db: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if db:
        overrides["database"] = {"url": db}
    # The same file the daemon reads (--config, LABORMON_CONFIG, /etc/labormon/...).
    config, _why = find_config(config)
    try:
        settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. a config file that may not be read
        fail(f"config file {os_reason(exc, config)}")
    if db:
        # An explicit --db beats the flat LABORMON_DB alias too.
        settings.database.url = db
    configure(settings.logging.level, settings.logging.format)
    return settings


def build_context(settings: Settings) -> Context:
    """`Context.build`, with a file it cannot open (the SQLite directory, the secret key
    file) as one line naming it."""
    try:
        return make_context(settings)
    except OSError as exc:
        fail(f"cannot open {os_reason(exc, safe_url(settings.database.url))}")
    except SecretKeyError as exc:
        fail(str(exc))


def safe_url(url: str) -> str:
    """A database URL fit for a terminal or a log: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show nothing of it
        return "<database url>"


@asynccontextmanager
async def open_context(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Context]:
    """The shared objects, with the schema brought up to date first."""
    ctx = build_context(settings)
    try:
        if migrate:
            try:
                await ctx.db.migrate()
            except OSError as exc:
                fail(f"cannot reach the database {safe_url(settings.database.url)}: {exc}")
            await verify_key(ctx.db, ctx.privacy, ctx.clock)
            # The installation's scope (a city, a province) from the GB/T 2260 list: a
            # province installation needs no region typed in, and a renamed code follows.
            loaded = await load_regions(
                ctx.db, ctx.store.catalogue, settings.organisation.scope_code
            )
            if loaded.added or loaded.changed:
                log.info("regions loaded", summary=loaded.summary())
        yield ctx
    finally:
        await ctx.close()


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body; database connection errors become one clear line."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except KeyMismatch as exc:
        fail(str(exc))
    except ConnectionRefusedError as exc:
        fail(f"connection refused: {exc}")
    except sa_exc.OperationalError as exc:
        # The store is busy past the busy timeout (SQLite: another process holds the
        # write lock) or unreachable: say so in one line; nothing was half-done.
        reason = " ".join(str(exc.orig or exc).split())
        if "locked" in reason or "busy" in reason:
            fail(f"the database is busy (another process holds it): {reason}; try again")
        fail(f"database error: {reason}")
    except sa_exc.DBAPIError as exc:
        # Any other refusal by the database (unknown role or database, wrong password,
        # missing rights): one line naming it, not a traceback.
        fail(f"database error: {db_reason(exc)}")


def db_reason(exc: sa_exc.DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's wrapping and background link."""
    orig = exc.orig
    text = str(orig) if orig is not None else str(exc).split("\n", 1)[0]
    return " ".join(text.split()) or type(orig or exc).__name__


def os_reason(exc: OSError, path: Path | str | None = None) -> str:
    """`PATH: reason` for a file-system error, naming the file it happened on."""
    return f"{exc.filename or path}: {exc.strerror or exc}"


def is_tty() -> bool:
    return sys.stderr.isatty()
