"""`labormon run`: the daemon."""

from __future__ import annotations

import typer

from monitor.cli.common import ConfigOpt, DbOpt, build_context, err, run, safe_url, settings_from
from monitor.daemon import Daemon


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


def run_command(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Run the daemon: ingest, detection, alerting, escalation, notifications, API and console."""
    settings = settings_from(config, db)

    async def body() -> None:
        ctx = build_context(settings)
        try:
            await Daemon(ctx).run()
        finally:
            await ctx.close()

    err.print(
        f"labormon: daemon on http://{settings.http.bind}, "
        f"database {safe_url(settings.database.url)}"
    )
    run(body)
