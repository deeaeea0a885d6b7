"""`labormon run`: the daemon."""

from __future__ import annotations

import typer

from monitor.cli.common import ConfigOpt, DbOpt, err, fail, run, settings_from
from monitor.context import Context
from monitor.daemon import Daemon


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


def run_command(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Run the daemon: ingest, detection, alerting, escalation, notifications, API and console."""
    settings = settings_from(config, db)

    async def body() -> None:
        try:
            ctx = Context.build(settings)
        except OSError as exc:  # the SQLite directory or the secret key file
            fail(f"cannot open {exc.filename or settings.database.url}: {exc.strerror or exc}")
        try:
            await Daemon(ctx).run()
        finally:
            await ctx.close()

    err.print(f"labormon: daemon on http://{settings.http.bind}, database {settings.database.url}")
    run(body)
