"""`labormon dashboards export` and `labormon dashboards push`: the Grafana boards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dashboards.provisioning import export, server_postgres_version
from dashboards.push import PushError, push
from monitor.cli.common import ConfigOpt, DbOpt, err, fail, out, settings_from

dashboards_app = typer.Typer(
    help="Grafana boards for analysts: provisioning files, or a push to a running Grafana.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("export")
def export_command(
    directory: Annotated[
        Path, typer.Argument(help="Where to write datasources/ and dashboards/ (created).")
    ],
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Group that may read the files (default as root: grafana, when it exists).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write the dashboards and Grafana provisioning files, ready for /etc/grafana/provisioning."""
    import asyncio
    import grp
    import os

    settings = settings_from(config, db)
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a directory")
    if group is None and os.geteuid() == 0:
        try:
            group = grp.getgrnam("grafana").gr_name
        except KeyError:
            group = None
    elif group is not None:
        try:
            grp.getgrnam(group)
        except KeyError:
            fail(f"--group {group}: no such group")
    version = None
    for url in (settings.grafana.database_url, settings.database.url):
        version = version or (asyncio.run(server_postgres_version(url)) if url else None)
    try:
        exported = export(settings, directory, group=group, postgres_version=version)
    except OSError as exc:
        fail(f"cannot write to {directory}: {exc.strerror or exc}")
    for path in exported.files:
        out.print(str(path), markup=False)
    if exported.datasource.placeholders:
        err.print(
            "labormon: the configured database is SQLite, but Grafana's built-in data source "
            "needs PostgreSQL: edit datasources/labormon.yaml and replace every CHANGE_ME "
            "(or set [grafana] database_url and export again)",
            markup=False,
        )
    err.print(
        f"copy {directory}/* into Grafana's provisioning directory (e.g. /etc/grafana/"
        f"provisioning/); the provider reads the boards from {settings.grafana.dashboards_path}",
        markup=False,
    )


@dashboards_app.command("push")
def push_command(
    url: Annotated[
        str | None,
        typer.Option("--url", help="Grafana's base URL. Config: grafana.url.", show_default=False),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Service account token (Editor role). Env: LABORMON_GRAFANA__TOKEN.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rewrite the data source and boards even if equal.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per request.")] = 10,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Create or update the folder, the data source and the boards in Grafana (idempotent)."""
    settings = settings_from(config, db)
    url = url or settings.grafana.url
    token = token or settings.grafana.token
    if not url:
        fail("no Grafana URL: pass --url or set grafana.url")
    if not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, got {url!r}")
    if not token:
        fail("no Grafana token: pass --token or set LABORMON_GRAFANA__TOKEN")
    try:
        report = push(settings, url, token, force=force, timeout=timeout)
    except PushError as exc:
        fail(str(exc))
    out.print(f"Grafana {report.grafana_version} at {url.rstrip('/')}", markup=False)
    for change in report.changes:
        out.print(str(change), markup=False)
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    if report.changed:
        out.print(f"{len(report.changed)} changed", markup=False)
    else:
        out.print("nothing changed: Grafana already has these boards", markup=False)
