"""`labormon import` and `labormon stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.files import FileImporter, ImportUsageError
from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    err,
    fail,
    is_tty,
    open_context,
    out,
    run,
    settings_from,
)
from monitor.stats import collect

MAX_ERRORS_SHOWN = 200


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("stats")(stats_command)


def import_command(
    path: Annotated[
        Path, typer.Argument(help="A directory or a single points/wages/petitions/reports file.")
    ],
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", help="What a single file holds: region, point, wage, petition, report."
        ),
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Text encoding of CSV files, e.g. gb18030.")
    ] = "utf-8",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=50_000)] = 2000,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Load points.csv, wages.csv, petitions.csv (or .xlsx) and reports.jsonl.

    Exit 0 when every row was stored or already there, 1 when some rows were rejected
    (the valid ones are stored), 2 when the path cannot be imported at all.
    """
    if kind is not None and kind not in {"region", "point", "wage", "petition", "report"}:
        fail("--kind must be one of region, point, wage, petition, report")
    settings = settings_from(config, db)

    async def body() -> int:
        async with open_context(settings) as ctx:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed} rows"),
                TimeElapsedColumn(),
                console=err,
                disable=not is_tty() or json_out,
                transient=True,
            )
            tasks: dict[str, TaskID] = {}

            def advance(name: str, n: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=None)
                progress.advance(tasks[name], n)

            importer = FileImporter(
                ctx.store,
                batch_size=batch_size,
                encoding=encoding,
                zone=settings.organisation.zone,
                progress=advance,
            )
            with progress:
                try:
                    report = await importer.run(path, kind)
                except ImportUsageError as exc:
                    fail(str(exc))
        if json_out:
            out.print_json(
                json.dumps(
                    {
                        "files": report.files,
                        "kinds": {k: vars(v) for k, v in report.kinds.items()},
                        "errors": [
                            {
                                "file": e.file,
                                "line": e.line,
                                "field": e.field,
                                "reason": e.reason,
                                "id": e.record_id,
                            }
                            for e in report.errors
                        ],
                    },
                    ensure_ascii=False,
                )
            )
        else:
            for e in report.errors[:MAX_ERRORS_SHOWN]:
                err.print(f"rejected {e}", markup=False)
            if len(report.errors) > MAX_ERRORS_SHOWN:
                err.print(
                    f"... and {len(report.errors) - MAX_ERRORS_SHOWN} more rejected rows "
                    "(all kept in the database: rejected_messages)"
                )
            table = Table(
                "kind", "rows", "stored", "duplicates", "updated", "rejected", title="import"
            )
            for k, s in report.kinds.items():
                table.add_row(
                    k,
                    str(s.rows),
                    str(s.stored),
                    str(s.duplicates),
                    str(s.updated),
                    str(s.rejected),
                )
            err.print(table)
        return 1 if report.errors else 0

    code = run(body)
    raise typer.Exit(code)


def stats_command(json_out: JsonOpt = False, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """What the store holds: points, records, rejects, findings, alerts, deliveries."""
    settings = settings_from(config, db)

    async def body() -> dict:
        async with open_context(settings) as ctx:
            return await collect(ctx.db)

    data = run(body)
    if json_out:
        print(json.dumps(data))
        return
    table = Table("what", "count", title="labormon store")
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, n in value.items():
                table.add_row(f"{key}.{sub}", str(n))
        else:
            table.add_row(key, str(value))
    out.print(table)
