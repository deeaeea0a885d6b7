"""The monthly petition analysis report (信访定量分析月报): figures, writing, rendering.

    figures = await collect_figures(db, month, options=options_from(settings), now=now)
    doc = build_document(figures)
    pdf = render(doc, "pdf")

`figures` computes every number from the store; `analysis` writes the text from the
numbers; `document` lays out headings, paragraphs, tables and charts once; `render`
(HTML, PDF), `word` (DOCX) and `export` (CSV) only format that layout.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from monitor.config import Settings
from monitor.db import Database
from monitor.report.document import Paragraph, ReportDocument, build_document
from monitor.report.figures import (
    MonthlyFigures,
    ReportError,
    ReportOptions,
    collect_figures,
    parse_month,
)

Format = Literal["html", "pdf", "docx", "csv"]
FORMATS: tuple[Format, ...] = ("html", "pdf", "docx", "csv")
CONTENT_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv; charset=utf-8",
}

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "MonthlyFigures",
    "ReportDocument",
    "ReportError",
    "ReportOptions",
    "build_document",
    "collect_figures",
    "make_document",
    "options_from",
    "parse_month",
    "render",
]


def options_from(settings: Settings, region: str | None = None) -> ReportOptions:
    """The report of `region` (default: the installation's scope). A region below the
    scope (a city of a province's installation) counts its own subtree only."""
    report = settings.report
    scope = settings.organisation.scope_code
    return ReportOptions(
        city_code=region or scope,
        subtree_only=region is not None and region != scope,
        zone=settings.organisation.zone,
        issuer=report.issuer,
        collective_threshold=report.collective_threshold,
        top_enterprises=report.top_enterprises,
    )


async def make_document(
    db: Database, settings: Settings, month: date, now: datetime, region: str | None = None
) -> ReportDocument:
    """Figures and layout of the report of `region` (default: the installation's scope)
    for `month` as known at `now`."""
    figures = await collect_figures(db, month, options=options_from(settings, region), now=now)
    doc = build_document(figures)
    if settings.report.notice:
        # Said first and plainly (the demo: every figure comes from simulated data).
        doc.blocks.insert(0, Paragraph(settings.report.notice, style="lead"))
        doc.notes.insert(0, settings.report.notice)
    return doc


def render(doc: ReportDocument, fmt: Format) -> bytes:
    """The report in one format (CPU-bound: run it in a thread inside the daemon)."""
    if fmt == "html":
        from monitor.report.render import render_html

        return render_html(doc).encode("utf-8")
    if fmt == "pdf":
        from monitor.report.render import render_pdf

        return render_pdf(doc)
    if fmt == "docx":
        from monitor.report.word import render_docx

        return render_docx(doc)
    if fmt == "csv":
        from monitor.report.export import render_csv

        return render_csv(doc.figures)
    raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
