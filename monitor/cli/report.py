"""`labormon report monthly`: the monthly petition analysis report as HTML, PDF, Word or CSV."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    err,
    fail,
    open_context,
    run,
    settings_from,
)
from monitor.report import FORMATS, Format, ReportError, make_document, parse_month, render
from monitor.report.figures import check_month

report_app = typer.Typer(
    help="The monthly petition analysis report (信访定量分析月报).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


def _format_of(path: Path, option: str) -> Format:
    suffix = path.suffix.lower().lstrip(".")
    for fmt in FORMATS:
        if suffix == fmt:
            return fmt
    fail(f"{option} {path}: the file name must end in .html, .pdf, .docx or .csv")


def _check_target(path: Path, option: str) -> None:
    """Refuse at once (before the database work) a file that cannot be written there."""
    if path.parent and not path.parent.is_dir():
        fail(f"{option} {path}: directory {path.parent} does not exist")
    if path.is_dir():
        fail(f"{option} {path} is a directory")


def _write(path: Path, data: bytes, option: str = "--out") -> None:
    """Write next to the target and rename, so a reader never sees half a report."""
    _check_target(path, option)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        fail(f"{option}: cannot write {path}: {exc.strerror or exc}")


@report_app.command("monthly")
def monthly_command(
    month: Annotated[
        str, typer.Option("--month", help="The month to report, YYYY-MM (China time).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Output file: .html, .pdf, .docx (Word) or .csv (figures)."),
    ],
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="Also write the figures as CSV to this file."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="The region reported on: the installation's scope (default) or a region "
            "within it, e.g. one city of a province's installation.",
        ),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Write the monthly petition analysis report for one month."""
    try:
        first_day = parse_month(month)
    except ReportError as exc:
        fail(str(exc))
    fmt = _format_of(out, "--out")
    if csv is not None and _format_of(csv, "--csv") != "csv":
        fail(f"--csv {csv}: the file name must end in .csv")
    settings = settings_from(config, db)
    if region is not None:
        from monitor.regions import UnknownRegion, catalogue, covers

        try:
            catalogue(settings.organisation.regions_file).get(region)
        except UnknownRegion as exc:
            fail(f"--region: {exc}")
        scope = settings.organisation.scope_code
        if not covers(scope, region):
            fail(f"--region {region} lies outside this installation's scope {scope}")
    _check_target(out, "--out")
    if csv is not None:
        _check_target(csv, "--csv")

    async def body() -> tuple[int, int]:
        async with open_context(settings) as ctx:
            now = ctx.clock.now()
            try:
                check_month(first_day, now, settings.organisation.zone)
                doc = await make_document(ctx.db, settings, first_day, now, region)
            except ReportError as exc:
                fail(str(exc))
        try:
            _write(out, render(doc, fmt))
            if csv is not None:
                _write(csv, render(doc, "csv"), "--csv")
        except ReportError as exc:
            fail(str(exc), code=1)
        return doc.figures.totals.current.petitions, doc.figures.totals.current.people

    petitions, people = run(body)
    extra = f" and {csv}" if csv is not None else ""
    err.print(
        f"labormon: wrote {out}{extra}: report for {first_day:%Y-%m}, "
        f"{petitions} petitions, {people} people",
        markup=False,
    )
