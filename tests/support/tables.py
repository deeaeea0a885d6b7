"""Read the tables back out of a rendered report (HTML and Word), as lists of cell texts."""

from __future__ import annotations

import io
from html.parser import HTMLParser

from docx import Document


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.order: list[str] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table" and "data" in (dict(attrs).get("class") or "").split():
            self._table = dict(attrs)["id"] or ""
            self.tables[self._table] = []
            self.order.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def html_tables(html: str) -> dict[str, list[list[str]]]:
    """Tables of class `data` by id; the first row is the header."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def html_text(html: str) -> str:
    """The visible text of a page (no styles, no markup)."""
    parser = _Tables()
    parser.feed(html)
    return "".join(parser.text)


def docx_tables(data: bytes) -> list[list[list[str]]]:
    """Every Word table, in document order. A row merged across the table (the "none"
    line of an empty table) comes back as one cell, as in the HTML."""
    document = Document(io.BytesIO(data))
    tables = []
    for table in document.tables:
        rows = []
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            if len(cells) > 1 and len(set(cells)) == 1 and len(row._tr.tc_lst) == 1:
                cells = cells[:1]
            rows.append(cells)
        tables.append(rows)
    return tables


def docx_text(data: bytes) -> str:
    document = Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(c.text for c in row.cells)
    for section in document.sections:
        parts.extend(p.text for p in section.footer.paragraphs)
    return "\n".join(parts)
