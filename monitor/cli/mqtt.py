"""`labormon mqtt auth-files DIR`: Mosquitto password and ACL files for all accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.authfiles import generate, write_atomically
from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    err,
    fail,
    open_context,
    os_reason,
    run,
    settings_from,
)

mqtt_app = typer.Typer(help="The MQTT broker's side of the accounts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(mqtt_app, name="mqtt")


@mqtt_app.command("auth-files")
def auth_files(
    directory: Annotated[Path, typer.Argument(help="Where to write password_file and acl_file.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write `password_file` and `acl_file` for Mosquitto (revoked accounts left out).

    Each informant, monitoring point and petition source may publish only to its own
    input topic and read only its own errors topic; leaders read their region's alerts;
    daemon accounts read all inputs and write errors and alerts.
    """
    settings = settings_from(config, db)
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a directory")

    async def body():
        async with open_context(settings) as ctx:
            return await generate(ctx.db, ctx.accounts, settings.mqtt.topic_prefix)

    files = run(body)
    password_path = directory / "password_file"
    acl_path = directory / "acl_file"
    try:
        write_atomically(password_path, files.password_file)
        write_atomically(acl_path, files.acl_file)
    except OSError as exc:
        fail(f"cannot write the auth files: {os_reason(exc, directory)}")
    for account_id, why in files.skipped:
        err.print(f"skipped account {account_id}: {why}", markup=False)
    err.print(
        f"wrote {password_path} and {acl_path} ({files.accounts} accounts). In mosquitto.conf:\n"
        f"  allow_anonymous false\n  password_file {password_path.resolve()}\n"
        f"  acl_file {acl_path.resolve()}\n"
        "then reload Mosquitto (systemctl reload mosquitto, or send it SIGHUP).",
        markup=False,
    )
