"""`labormon regions`: the GB/T 2260 regions of the installation, loaded and updated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    fail,
    open_context,
    out,
    run,
    settings_from,
)
from monitor.regionload import load_regions
from monitor.regions import UnknownRegion, catalogue

regions_app = typer.Typer(help="GB/T 2260 regions (province, city, county) of the installation.")


def register(app: typer.Typer) -> None:
    app.add_typer(regions_app, name="regions")


@regions_app.command("load")
def load_command(
    scope: Annotated[
        str | None,
        typer.Option("--scope", help="A region code; default: organisation.scope_code."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="A GB/T 2260 list as CSV (code,name[,parent_code]) instead of the package's.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Add and update the regions of a subtree (new codes added, renamed ones renamed)."""
    settings = settings_from(config, db)
    path = file or settings.organisation.regions_file
    if path is not None and not path.is_file():
        fail(f"--file {path} is not a file")
    try:
        cat = catalogue(path)
        code = scope or settings.organisation.scope_code
        cat.get(code)
    except UnknownRegion as exc:
        fail(f"--scope: {exc}" if path is None or scope else str(exc))

    async def body() -> None:
        async with open_context(settings) as ctx:
            result = await load_regions(ctx.db, cat, code)
        if json_out:
            out.print_json(
                json.dumps(
                    {
                        "scope": result.scope,
                        "source": result.source,
                        "regions": result.regions,
                        "added": result.added,
                        "changed": result.changed,
                        "retired": result.retired,
                    }
                )
            )
        else:
            out.print(result.summary(), markup=False)
            if result.retired:
                out.print(f"no longer listed: {', '.join(result.retired)}", markup=False)

    run(body)
