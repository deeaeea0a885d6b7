"""`labormon mqtt auth-files DIR`: Mosquitto password and ACL files for all accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.authfiles import (
    ReloadError,
    default_group,
    generate,
    group_id,
    prepare_directory,
    reload_broker,
    write_atomically,
)
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
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Group that may read the files (the broker's). Default: mosquitto when "
            "run as root and that group exists, else your own.",
        ),
    ] = None,
    reload: Annotated[
        str | None,
        typer.Option(
            "--reload",
            metavar="PIDFILE|systemd",
            help="Then make the running broker re-read them (SIGHUP): 'systemd' runs "
            "systemctl reload mosquitto, a path names the broker's pid file.",
        ),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write `password_file` and `acl_file` for Mosquitto (revoked accounts left out).

    Each informant, monitoring point and petition source may publish only to its own
    input topic and read only its own errors topic; leaders read their region's alerts;
    daemon accounts read all inputs and write errors and alerts. The files are mode 0640,
    readable by the broker's group only, and replaced atomically.
    """
    settings = settings_from(config, db)
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a directory")
    group_name = group if group is not None else default_group()
    gid: int | None = None
    if group_name is not None:
        try:
            gid = group_id(group_name)
        except KeyError:
            fail(f"--group: no group {group_name!r} on this machine")

    async def body():
        async with open_context(settings) as ctx:
            return await generate(ctx.db, ctx.accounts, settings.mqtt.topic_prefix)

    files = run(body)
    password_path = directory / "password_file"
    acl_path = directory / "acl_file"
    try:
        prepare_directory(directory, gid)
        write_atomically(password_path, files.password_file, gid=gid)
        write_atomically(acl_path, files.acl_file, gid=gid)
    except OSError as exc:
        fail(f"cannot write the auth files: {os_reason(exc, directory)}")
    for account_id, why in files.skipped:
        err.print(f"skipped account {account_id}: {why}", markup=False)
    readable = f"group {group_name}" if group_name is not None else "your own group"
    err.print(
        f"wrote {password_path} and {acl_path} ({files.accounts} accounts; mode 0640, "
        f"readable by {readable}). In the broker's configuration "
        "(deploy/mosquitto/labormon-site.conf):\n"
        f"  allow_anonymous false\n  password_file {password_path.resolve()}\n"
        f"  acl_file {acl_path.resolve()}",
        markup=False,
    )
    if reload is None:
        err.print(
            "then reload Mosquitto (--reload systemd, or send it SIGHUP).",
            markup=False,
        )
        return
    try:
        done = reload_broker(reload)
    except ReloadError as exc:
        fail(f"--reload: {exc}", code=1)
    err.print(done, markup=False)
