"""The Word (.docx) version of the monthly report, with real Word tables (python-docx).

Government offices edit the report in Word before it goes up, so every table is a
Word table (not a picture), headings use Word's heading styles (they show in the
navigation pane) and the fonts are the ones a Chinese office PC has: 仿宋 for the
body, 黑体 for headings, 宋体 for tables, 楷体 for run-in labels.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from monitor.report.charts import render_chart
from monitor.report.document import Chart, Heading, Paragraph, ReportDocument, Table

BODY_FONT = "仿宋"
HEADING_FONT = "黑体"
TABLE_FONT = "宋体"
LABEL_FONT = "楷体"
TITLE_FONT = "宋体"
RED = RGBColor(0xC0, 0x00, 0x00)
BODY_SIZE = Pt(14)  # 四号
TABLE_SIZE = Pt(10.5)  # 五号
WIDE_TABLE_SIZE = Pt(9)  # 小五, for tables of nine columns or more
TEXT_WIDTH_CM = 15.8
ALIGN = {
    "l": WD_ALIGN_PARAGRAPH.LEFT,
    "c": WD_ALIGN_PARAGRAPH.CENTER,
    "r": WD_ALIGN_PARAGRAPH.RIGHT,
}


def _set_font(run: Any, east_asian: str, size: Any = None, bold: bool | None = None) -> None:
    """Word picks the font of Chinese text from w:eastAsia, which python-docx's
    `font.name` does not set."""
    run.font.name = "Times New Roman"
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    fonts.set(qn("w:eastAsia"), east_asian)
    if size is not None:
        run.font.size = size
    if bold is not None:
        run.font.bold = bold


def _style_font(style: Any, east_asian: str, size: Any, bold: bool = False) -> None:
    style.font.name = "Times New Roman"
    style.font.size = size
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = RGBColor(0, 0, 0)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    fonts.set(qn("w:eastAsia"), east_asian)
    # Theme font attributes win over named fonts; the built-in heading styles carry them.
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)


def _bottom_border(paragraph: Any, colour: str = "C00000", size: int = 18) -> None:
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    bottom.set(qn("w:val"), "single")
    bottom.set(qn("w:sz"), str(size))
    bottom.set(qn("w:space"), "1")
    bottom.set(qn("w:color"), colour)
    borders.append(bottom)
    ppr.append(borders)


def _page_number_footer(section: Any) -> None:
    paragraph = section.footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER

    def text(value: str) -> None:
        _set_font(paragraph.add_run(value), TABLE_FONT, TABLE_SIZE)

    text("— ")
    run = paragraph.add_run()
    _set_font(run, TABLE_FONT, TABLE_SIZE)
    for kind, value in (("begin", None), ("instr", " PAGE "), ("separate", None), ("end", None)):
        if kind == "instr":
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = value
            run._r.append(instr)
        else:
            fld = OxmlElement("w:fldChar")
            fld.set(qn("w:fldCharType"), kind)
            run._r.append(fld)
            if kind == "separate":
                shown = OxmlElement("w:t")
                shown.text = "1"
                run._r.append(shown)
    text(" —")


def _cell_shading(cell: Any, fill: str) -> None:
    tcpr = cell._tc.get_or_add_tcPr()
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    tcpr.append(shading)


def _repeat_header(row: Any) -> None:
    trpr = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    trpr.append(header)


def _narrow_margins(table: Any, twips: int = 57) -> None:
    """Cell padding of 0.1 cm left and right (Word's default is 0.19 cm): what lets a
    ten-column table fit the page without wrapping its numbers."""
    tblpr = table._tbl.tblPr
    margins = OxmlElement("w:tblCellMar")
    for side in ("left", "right"):
        edge = OxmlElement(f"w:{side}")
        edge.set(qn("w:w"), str(twips))
        edge.set(qn("w:type"), "dxa")
        margins.append(edge)
    tblpr.append(margins)


def _cant_split(row: Any) -> None:
    trpr = row._tr.get_or_add_trPr()
    trpr.append(OxmlElement("w:cantSplit"))


def _cell_text(
    cell: Any,
    text: str,
    align: str,
    bold: bool = False,
    font: str = TABLE_FONT,
    size: Any = TABLE_SIZE,
) -> None:
    paragraph = cell.paragraphs[0]
    paragraph.alignment = ALIGN[align]
    paragraph.paragraph_format.first_line_indent = Pt(0)
    paragraph.paragraph_format.space_before = Pt(1)
    paragraph.paragraph_format.space_after = Pt(1)
    paragraph.paragraph_format.line_spacing = 1.0
    _set_font(paragraph.add_run(text), font, size, bold)


def _caption(doc: Any, text: str) -> None:
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.first_line_indent = Pt(0)
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.space_after = Pt(3)
    paragraph.paragraph_format.keep_with_next = True
    _set_font(paragraph.add_run(text), HEADING_FONT, Pt(11), True)


def _note(doc: Any, text: str) -> None:
    paragraph = doc.add_paragraph()
    paragraph.paragraph_format.first_line_indent = Pt(0)
    paragraph.paragraph_format.space_after = Pt(6)
    paragraph.paragraph_format.line_spacing = 1.2
    _set_font(paragraph.add_run(text), BODY_FONT, TABLE_SIZE)


def _table(doc: Any, t: Table) -> None:
    _caption(doc, t.caption)
    columns = len(t.header)
    rows = t.rows or [[t.empty_text]]
    table = doc.add_table(rows=1 + len(rows), cols=columns)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    size = WIDE_TABLE_SIZE if columns >= 9 else TABLE_SIZE
    whole = sum(t.widths) if t.widths else float(columns)
    widths = [Cm(TEXT_WIDTH_CM * w / whole) for w in (t.widths or [1.0] * columns)]
    # Word reads each cell's width, LibreOffice and WPS the table grid: set both.
    table.autofit = False
    if columns >= 9:
        _narrow_margins(table)
    for i, column in enumerate(table.columns):
        column.width = widths[i]
    header = table.rows[0]
    _repeat_header(header)
    for i, text in enumerate(t.header):
        cell = header.cells[i]
        cell.width = widths[i]
        _cell_shading(cell, "E7E6E6")
        _cell_text(cell, text, "c", bold=True, font=HEADING_FONT, size=size)
    if not t.rows:
        row = table.rows[1]
        merged = row.cells[0].merge(row.cells[columns - 1])
        _cell_text(merged, t.empty_text, "c", size=size)
    else:
        for r, values in enumerate(t.rows):
            row = table.rows[1 + r]
            _cant_split(row)
            total = r >= len(t.rows) - t.total_rows
            for i, text in enumerate(values):
                cell = row.cells[i]
                cell.width = widths[i]
                _cell_text(cell, text, t.align[i], bold=total, size=size)
    if t.note:
        _note(doc, t.note)
    else:
        spacer = doc.add_paragraph()
        spacer.paragraph_format.space_after = Pt(2)


def render_docx(doc: ReportDocument) -> bytes:
    f = doc.figures
    word = Document()
    section = word.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(2.8), Cm(2.6)
    section.left_margin, section.right_margin = Cm(2.7), Cm(2.5)
    _page_number_footer(section)

    normal = word.styles["Normal"]
    _style_font(normal, BODY_FONT, BODY_SIZE)
    normal.paragraph_format.line_spacing = 1.5
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.first_line_indent = Pt(28)  # two characters
    heading_style = word.styles["Heading 1"]
    _style_font(heading_style, HEADING_FONT, Pt(14))
    heading_style.paragraph_format.first_line_indent = Pt(28)
    heading_style.paragraph_format.space_before = Pt(10)
    heading_style.paragraph_format.space_after = Pt(4)
    heading_style.paragraph_format.keep_with_next = True
    annex_style = word.styles["Heading 2"]
    _style_font(annex_style, HEADING_FONT, Pt(14))
    annex_style.paragraph_format.first_line_indent = Pt(0)
    annex_style.paragraph_format.space_before = Pt(10)
    annex_style.paragraph_format.keep_with_next = True

    props = word.core_properties
    props.title = doc.filename_stem
    props.author = f.issuer
    props.subject = "职工信访定量分析月报"
    props.created = f.generated_at.replace(tzinfo=None)
    props.modified = f.generated_at.replace(tzinfo=None)
    props.last_modified_by = f.issuer

    if doc.classification:
        mark = word.add_paragraph()
        mark.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        mark.paragraph_format.first_line_indent = Pt(0)
        _set_font(mark.add_run(doc.classification), HEADING_FONT, Pt(14), True)

    # Masthead: red title, issue number, issuer and date, a red rule.
    mast = word.add_paragraph()
    mast.alignment = WD_ALIGN_PARAGRAPH.CENTER
    mast.paragraph_format.first_line_indent = Pt(0)
    mast.paragraph_format.line_spacing = 1.2
    run = mast.add_run(doc.masthead)
    _set_font(run, TITLE_FONT, Pt(30), True)
    run.font.color.rgb = RED
    issue = word.add_paragraph()
    issue.alignment = WD_ALIGN_PARAGRAPH.CENTER
    issue.paragraph_format.first_line_indent = Pt(0)
    _set_font(issue.add_run(doc.issue), BODY_FONT, Pt(14))
    line = word.add_paragraph()
    line.paragraph_format.first_line_indent = Pt(0)
    line.paragraph_format.tab_stops.add_tab_stop(Cm(TEXT_WIDTH_CM), WD_TAB_ALIGNMENT.RIGHT)
    _set_font(line.add_run(f"{doc.issuer_line}\t{doc.date_line}"), BODY_FONT, Pt(12))
    _bottom_border(line)

    title = word.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.paragraph_format.first_line_indent = Pt(0)
    title.paragraph_format.space_before = Pt(18)
    title.paragraph_format.space_after = Pt(12)
    _set_font(title.add_run(doc.title), TITLE_FONT, Pt(20), True)

    for block in doc.blocks:
        if isinstance(block, Heading):
            heading = word.add_paragraph(style="Heading 2" if block.level == 0 else "Heading 1")
            _set_font(heading.add_run(block.text), HEADING_FONT, Pt(14), True)
        elif isinstance(block, Paragraph):
            paragraph = word.add_paragraph()
            if block.style == "note":
                paragraph.paragraph_format.first_line_indent = Pt(0)
                _set_font(paragraph.add_run(block.text), BODY_FONT, TABLE_SIZE)
                continue
            if block.label:
                _set_font(paragraph.add_run(block.label), LABEL_FONT, BODY_SIZE, True)
            _set_font(paragraph.add_run(block.text), BODY_FONT, BODY_SIZE)
        elif isinstance(block, Table):
            _table(word, block)
        elif isinstance(block, Chart):
            picture = word.add_paragraph()
            picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
            picture.paragraph_format.first_line_indent = Pt(0)
            picture.paragraph_format.keep_with_next = True
            picture.add_run().add_picture(
                io.BytesIO(render_chart(block.id, f, "png")), width=Cm(TEXT_WIDTH_CM - 0.6)
            )
            caption = word.add_paragraph()
            caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
            caption.paragraph_format.first_line_indent = Pt(0)
            caption.paragraph_format.space_after = Pt(6)
            _set_font(caption.add_run(block.caption), HEADING_FONT, Pt(11), True)

    if doc.review_note:
        heading = word.add_paragraph(style="Heading 1")
        _set_font(heading.add_run("审核意见"), HEADING_FONT, Pt(14), True)
        _set_font(word.add_paragraph().add_run(doc.review_note), BODY_FONT, BODY_SIZE)
    if doc.signatory:
        signed = word.add_paragraph()
        signed.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _set_font(signed.add_run(f"签发：{doc.signatory}"), BODY_FONT, BODY_SIZE)

    notes = word.add_paragraph(style="Heading 2")
    _set_font(notes.add_run("统计口径说明"), HEADING_FONT, Pt(14), True)
    for i, text in enumerate(doc.notes, 1):
        _note(word, f"{i}. {text}")

    for label, text in doc.distribution:
        line = word.add_paragraph()
        line.paragraph_format.first_line_indent = Pt(0)
        _set_font(line.add_run(f"{label}："), HEADING_FONT, Pt(12), True)
        _set_font(line.add_run(text), BODY_FONT, Pt(12))

    out = io.BytesIO()
    word.save(out)
    return out.getvalue()
