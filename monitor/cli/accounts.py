"""`labormon accounts add|list|revoke`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from monitor.accounts import KINDS, AccountError
from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    err,
    fail,
    open_context,
    out,
    run,
    settings_from,
)

accounts_app = typer.Typer(
    help="Informants, monitoring points, petition sources and leaders.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")


@accounts_app.command("add")
def add(
    kind: Annotated[str, typer.Option("--kind", help=f"One of: {', '.join(KINDS)}.")],
    account_id: Annotated[
        str, typer.Option("--id", help="Account id (for a point: its point_id).")
    ],
    region: Annotated[str, typer.Option("--region", help="GB/T 2260 region code.")],
    email: Annotated[str | None, typer.Option("--email", help="Where alert emails go.")] = None,
    webhook: Annotated[str | None, typer.Option("--webhook", help="Personal webhook URL.")] = None,
    tier: Annotated[
        int | None, typer.Option("--tier", min=1, max=4, help="1 province .. 4 grassroots.")
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="Leaders: leader, duty_officer or analyst.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Person's name (stored encrypted).")
    ] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="Phone (stored encrypted).")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Create an account; prints its token and MQTT password once (only hashes are kept)."""
    settings = settings_from(config, db)

    async def body():
        async with open_context(settings) as ctx:
            try:
                return await ctx.accounts.add(
                    kind=kind,
                    account_id=account_id,
                    region_code=region,
                    tier=tier,
                    role=role,
                    name=name,
                    phone=phone,
                    email=email,
                    webhook_url=webhook,
                )
            except AccountError as exc:
                fail(str(exc))

    new = run(body)
    for warning in new.warnings:
        err.print(f"labormon: warning: {warning}", markup=False)
    if json_out:
        print(
            json.dumps(
                {
                    "id": new.id,
                    "kind": new.kind,
                    "token": new.token,
                    "mqtt_password": new.mqtt_password,
                }
            )
        )
    else:
        out.print(f"account {new.id} ({new.kind}) created; keep these, they are not shown again:")
        out.print(f"  token (HTTP bearer): {new.token}", markup=False)
        out.print(f"  MQTT username {new.id}, password: {new.mqtt_password}", markup=False)


@accounts_app.command("list")
def list_accounts(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked accounts.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Accounts with kind, tier, region, role and channels (personal data not shown)."""
    settings = settings_from(config, db)

    async def body():
        async with open_context(settings) as ctx:
            return await ctx.accounts.list(kind=kind, include_revoked=all_)

    rows = run(body)
    if json_out:
        print(
            json.dumps(
                [
                    {
                        "id": a.id,
                        "kind": a.kind,
                        "tier": a.tier,
                        "region_code": a.region_code,
                        "role": a.role,
                        "email": a.email,
                        "webhook": bool(a.webhook_url),
                        "status": a.status,
                        "created_at": a.created_at.isoformat(),
                    }
                    for a in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table("id", "kind", "tier", "region", "role", "email", "webhook", "status")
    for a in rows:
        table.add_row(
            a.id,
            a.kind,
            str(a.tier),
            a.region_code,
            a.role,
            a.email or "",
            "yes" if a.webhook_url else "",
            a.status,
        )
    out.print(table)


@accounts_app.command("revoke")
def revoke(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Revoke an account: its token stops working at once; regenerate the MQTT auth files."""
    settings = settings_from(config, db)

    async def body() -> None:
        async with open_context(settings) as ctx:
            try:
                await ctx.accounts.revoke(account_id)
            except AccountError as exc:
                fail(str(exc))

    run(body)
    err.print(f"account {account_id} revoked; run `labormon mqtt auth-files` and reload Mosquitto")
