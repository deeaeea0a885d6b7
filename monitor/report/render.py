"""HTML (jinja2) and PDF (WeasyPrint, from that HTML) of the monthly report."""

from __future__ import annotations

import base64
import logging
from functools import cache
from typing import Any

import jinja2
import markupsafe

from monitor.report.charts import render_chart
from monitor.report.document import Chart, Heading, Paragraph, ReportDocument, Table

#: People opening the HTML (or the Word file) on office PCs have the Windows fonts;
#: the PDF is made on the server with Debian's Noto CJK fonts, named first so that no
#: other font is substituted for them.
SCREEN_SERIF = '"FangSong", "仿宋", "STFangsong", "Noto Serif CJK SC", "SimSun", serif'
SCREEN_SANS = '"SimHei", "黑体", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif'
PRINT_SERIF = '"Noto Serif CJK SC", serif'
PRINT_SANS = '"Noto Sans CJK SC", sans-serif'


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )


def _kind(block: Any) -> str:
    if isinstance(block, Heading):
        return "heading"
    if isinstance(block, Paragraph):
        return "paragraph"
    if isinstance(block, Table):
        return "table"
    if isinstance(block, Chart):
        return "chart"
    raise TypeError(f"unknown block {block!r}")


def render_html(doc: ReportDocument, *, for_print: bool = False) -> str:
    """One self-contained HTML file: styles inline, charts as embedded SVG images."""
    env = _environment()
    serif, sans = (PRINT_SERIF, PRINT_SANS) if for_print else (SCREEN_SERIF, SCREEN_SANS)
    # The stylesheet is ours, not data: inserted as is (escaping would break its quotes).
    css = markupsafe.Markup(env.get_template("monthly.css.j2").render(serif=serif, sans=sans))
    blocks = []
    for block in doc.blocks:
        item: dict[str, Any] = {"kind": _kind(block), "block": block}
        if isinstance(block, Chart):
            svg = render_chart(block.id, doc.figures, "svg")
            item["src"] = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        blocks.append(item)
    return env.get_template("monthly.html.j2").render(doc=doc, blocks=blocks, css=css)


def render_pdf(doc: ReportDocument) -> bytes:
    """The PDF, laid out by WeasyPrint from the print variant of the HTML."""
    import weasyprint  # imported here: it loads pango and fontconfig, which the CLI's
    # other commands do not need

    # WeasyPrint logs every CSS property it ignores at WARNING; the report's CSS is
    # ours and checked by the tests, so that chatter would only fill the daemon's log.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    html = render_html(doc, for_print=True)
    document = weasyprint.HTML(string=html, base_url=".")
    pdf = document.write_pdf()
    assert pdf is not None
    return bytes(pdf)
