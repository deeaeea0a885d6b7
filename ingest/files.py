"""`labormon import`: load points, wage reports, petitions and informant reports from files.

A directory may hold `regions.csv`, `points.csv`, `wages.csv`, `petitions.csv` (each
also as `.xlsx`) and `reports.jsonl`; they are loaded in that order so that a wage
report finds its monitoring point. A single file is recognised by its name
(`wages-2025-01.csv` is wage reports) or by `--kind`.

Every row is validated with the same models as MQTT and HTTP. Valid rows are stored
(re-running stores nothing twice); each invalid row is reported with file, line,
field and reason and kept in `rejected_messages`. Rows are stored in batches, each in
one transaction, so a row is either stored whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from monitor.clock import SHANGHAI
from monitor.records import RECORD_TYPES, FieldError, Record, field_errors, parse_json, parse_row
from monitor.store import RecordStore, StoreResult, Submission

#: Load order: registries first, then what refers to them.
KINDS_IN_ORDER = ("region", "point", "wage", "petition", "report")
FILE_STEMS = {
    "region": "regions",
    "point": "points",
    "wage": "wages",
    "petition": "petitions",
    "report": "reports",
}
EXTENSIONS = (".csv", ".xlsx", ".jsonl")


class FileFormatError(ValueError):
    """A whole file cannot be read as what it should hold (empty, wrong columns, broken)."""


class ImportUsageError(ValueError):
    """The path cannot be imported at all (missing, not a known file)."""


@dataclass
class RowError:
    file: str
    line: int
    field: str | None
    reason: str
    record_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"{self.field}: {self.reason}" if self.field else self.reason
        return f"{where}: {what}"


@dataclass
class KindSummary:
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    updated: int = 0
    rejected: int = 0


@dataclass
class ImportReport:
    files: list[str] = field(default_factory=list)
    kinds: dict[str, KindSummary] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.kinds.values())


@dataclass
class _Row:
    line: int
    raw: dict[str, Any] | str
    record: Record | None = None
    errors: list[FieldError] = field(default_factory=list)


def kind_of(path: Path) -> str | None:
    stem = path.name.lower()
    for kind, name in FILE_STEMS.items():
        if stem.startswith(name):
            return kind
    return None


def find_files(path: Path) -> list[tuple[str, Path]]:
    """The importable files under `path`, in load order."""
    if not path.exists():
        raise ImportUsageError(f"{path} does not exist")
    if path.is_file():
        kind = kind_of(path)
        if kind is None or path.suffix.lower() not in EXTENSIONS:
            raise ImportUsageError(
                f"{path.name}: cannot tell what it holds; name it points/wages/petitions/"
                "reports.(csv|xlsx|jsonl) or pass --kind"
            )
        return [(kind, path)]
    found = []
    for kind in KINDS_IN_ORDER:
        for ext in EXTENSIONS:
            candidate = path / f"{FILE_STEMS[kind]}{ext}"
            if candidate.is_file():
                found.append((kind, candidate))
    if not found:
        raise ImportUsageError(
            f"{path}: no points.csv, wages.csv, petitions.csv or reports.jsonl (or .xlsx) here"
        )
    return found


def _bad_bytes(value: str) -> str | None:
    """The first byte that was not UTF-8 (decoded with surrogateescape), as 0xNN."""
    for ch in value:
        if "\udc80" <= ch <= "\udcff":
            return f"0x{ord(ch) - 0xDC00:02X}"
    return None


def read_csv(
    path: Path, encoding: str = "utf-8"
) -> tuple[list[str], Iterator[tuple[int, Any]], bool]:
    """Header, rows (line number, cells) and whether every byte decoded.

    Undecodable bytes are kept as surrogates so that only the rows holding them are
    rejected, with the byte named, instead of the whole file."""
    data = path.read_bytes()
    if not data.strip():
        raise FileFormatError("empty file: expected a header line and rows")
    if encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}:
        encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text, clean = data.decode(encoding), True
    except UnicodeDecodeError:
        text, clean = data.decode(encoding, errors="surrogateescape"), False
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileFormatError("empty file: expected a header line and rows") from None

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                yield (
                    line,
                    {"__error__": f"{len(cells)} cells but the header has {len(header)} columns"},
                )
                continue
            yield line, dict(zip(header, cells, strict=False))

    return header, rows(), clean


def xlsx_cell(value: Any, zone: tzinfo, *, keep_dates: bool = False) -> Any:
    """A spreadsheet cell as a CSV file would hold it, so that a workbook passes the same
    validation as the CSV: Excel stores typed codes and phone numbers as numbers (430922,
    13812345678.0), which become their integer text; other numbers their shortest text;
    dates ISO 8601 text; an empty cell empty text.

    With `keep_dates` (a column of dates, months or instants) a date stays a date: the
    validators take spreadsheet dates as they are, and a month typed as 2025-01 is a
    date to Excel. Excel keeps no offsets: its date-times are local time of the union."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value if keep_dates else value.isoformat()
    if isinstance(value, date):
        return value if keep_dates else value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return str(value)


def date_fields(kind: str) -> frozenset[str]:
    """The fields of a record kind that take a date or an instant."""
    names = set()
    for name, info in RECORD_TYPES[kind].model_fields.items():
        types = get_args(info.annotation) or (info.annotation,)
        if any(isinstance(t, type) and issubclass(t, date) for t in types):
            names.add(name)
    return frozenset(names)


#: What an .xlsx may unpack to in all (a zip bomb: openpyxl reads the rows lazily, but
#: not the shared strings). A workbook of a million rows of petitions stays far below.
XLSX_MAX_UNPACKED = 512 * 1024 * 1024
#: And at most this many parts (a real workbook has a few dozen).
XLSX_MAX_PARTS = 10_000


def check_xlsx_size(path: Path, max_unpacked: int = XLSX_MAX_UNPACKED) -> None:
    """Refuse a workbook whose parts unpack to more than `max_unpacked` bytes, before
    anything is decompressed. Python's zipfile never inflates a part past its declared
    size, so the declared sizes bound the work."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileFormatError(f"not a readable .xlsx workbook ({exc.__class__.__name__})") from None
    if len(parts) > XLSX_MAX_PARTS:
        raise FileFormatError(f"workbook has {len(parts)} parts (at most {XLSX_MAX_PARTS})")
    total = sum(p.file_size for p in parts)
    if total > max_unpacked:
        raise FileFormatError(
            f"workbook unpacks to {total} bytes, more than the {max_unpacked} allowed "
            "(a compressed bomb, or split the file)"
        )


def read_xlsx(
    path: Path,
    zone: tzinfo,
    date_columns: frozenset[str] = frozenset(),
    *,
    max_unpacked: int = XLSX_MAX_UNPACKED,
) -> tuple[list[str], Iterator[tuple[int, Any]], bool]:
    from openpyxl import load_workbook

    check_xlsx_size(path, max_unpacked)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise FileFormatError(f"not a readable .xlsx workbook ({exc.__class__.__name__})") from None
    sheet = workbook.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    try:
        header = [str(h).strip() if h is not None else "" for h in next(it)]
    except StopIteration:
        raise FileFormatError("empty workbook: expected a header row and rows") from None

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for index, values in enumerate(it, start=2):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            yield (
                index,
                {
                    h: xlsx_cell(v, zone, keep_dates=h in date_columns)
                    for h, v in zip(header, values, strict=False)
                    if h
                },
            )
        workbook.close()

    return header, rows(), True


class FileImporter:
    def __init__(
        self,
        store: RecordStore,
        *,
        batch_size: int = 2000,
        encoding: str = "utf-8",
        zone: tzinfo = SHANGHAI,
        progress: Callable[[str, int], None] | None = None,
        xlsx_max_unpacked: int = XLSX_MAX_UNPACKED,
    ) -> None:
        self.store = store
        self.xlsx_max_unpacked = xlsx_max_unpacked
        self.batch_size = batch_size
        self.encoding = encoding
        self.zone = zone
        self.progress = progress
        #: False while reading a file in which some bytes did not decode.
        self._clean = True

    async def run(self, path: Path, kind: str | None = None) -> ImportReport:
        report = ImportReport()
        try:
            files = [(kind, path)] if kind and path.is_file() else find_files(path)
        except OSError as exc:
            raise ImportUsageError(f"{exc.filename or path}: {exc.strerror or exc}") from None
        for file_kind, file_path in files:
            assert file_kind is not None
            report.files.append(str(file_path))
            await self._import_file(file_kind, file_path, report)
        return report

    async def _import_file(self, kind: str, path: Path, report: ImportReport) -> None:
        summary = report.kinds.setdefault(kind, KindSummary())
        name = path.name
        try:
            rows = self._read(kind, path)
        except OSError as exc:
            raise ImportUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        except FileFormatError as exc:
            report.errors.append(RowError(name, 0, None, str(exc)))
            await self.store.reject(channel="file", origin=name, reason=str(exc), record_kind=kind)
            return
        parsed: list[_Row] = []
        for item in rows:
            parsed.append(self._validate(kind, item))
            if self.progress and len(parsed) % 1000 == 0:
                self.progress(name, 1000)
        summary.rows += len(parsed)
        self._mark_conflicts(kind, parsed)
        rejects: list[dict[str, Any]] = []
        for row in parsed:
            if row.errors:
                record_id = row.record.record_id if row.record else _raw_id(kind, row.raw)
                for err in row.errors:
                    report.errors.append(RowError(name, row.line, err.field, err.reason, record_id))
                rejects.append(self._reject_row(kind, name, row, record_id))
        good = [row for row in parsed if not row.errors and row.record is not None]
        for start in range(0, len(good), self.batch_size):
            chunk = good[start : start + self.batch_size]
            result: StoreResult = await self.store.store(
                kind, [Submission(r.record, "file") for r in chunk if r.record is not None]
            )
            summary.stored += len(result.stored)
            summary.duplicates += len(result.duplicates)
            summary.updated += len(result.updated)
            for r in chunk:
                assert r.record is not None
                refused = result.rejected.get(r.record.record_id)
                if refused is not None:
                    r.errors.append(refused)
                    report.errors.append(
                        RowError(name, r.line, refused.field, refused.reason, r.record.record_id)
                    )
                    rejects.append(self._reject_row(kind, name, r, r.record.record_id))
        summary.rejected += sum(1 for r in parsed if r.errors)
        await self.store.reject_many(rejects)
        if self.progress:
            self.progress(name, len(parsed) % 1000)

    def _read(self, kind: str, path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            self._clean = False
            return self._read_jsonl(path)
        if suffix == ".xlsx":
            header, rows, self._clean = read_xlsx(
                path, self.zone, date_fields(kind), max_unpacked=self.xlsx_max_unpacked
            )
        else:
            header, rows, self._clean = read_csv(path, self.encoding)
        model = RECORD_TYPES[kind]
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        missing = [c for c in required if c not in header]
        if missing:
            raise FileFormatError(
                f"missing column(s) {', '.join(missing)}; the header must name "
                f"{', '.join(model.model_fields)}"
            )
        return rows

    def _read_jsonl(self, path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
        data = path.read_bytes()
        if not data.strip():
            raise FileFormatError("empty file: expected one JSON object per line")
        return (
            (number, raw.decode("utf-8", errors="surrogateescape"))
            for number, raw in enumerate(data.splitlines(), start=1)
            if raw.strip()
        )

    def _validate(self, kind: str, item: tuple[int, dict[str, Any] | str]) -> _Row:
        line, raw = item
        row = _Row(line, raw)
        if isinstance(raw, dict) and "__error__" in raw:
            row.errors.append(FieldError(None, str(raw["__error__"])))
            return row
        items = raw.items() if isinstance(raw, dict) else [(None, raw)]
        for key, value in items if not self._clean else ():
            if isinstance(value, str) and (bad := _bad_bytes(value)) is not None:
                row.errors.append(
                    FieldError(
                        key,
                        f"not valid UTF-8 (byte {bad}); save the file as UTF-8 "
                        "or pass --encoding gb18030",
                    )
                )
                return row
        try:
            row.record = parse_json(kind, raw) if isinstance(raw, str) else parse_row(kind, raw)
        except ValidationError as exc:
            row.errors.extend(field_errors(exc))
        return row

    def _mark_conflicts(self, kind: str, rows: list[_Row]) -> None:
        """The same id twice in one file with different contents: neither can be trusted."""
        by_id: dict[str, list[_Row]] = {}
        for row in rows:
            if row.record is not None and not row.errors:
                by_id.setdefault(row.record.record_id, []).append(row)
        id_field = RECORD_TYPES[kind].id_field
        for record_id, same in by_id.items():
            # Hashing only the repeated ids keeps the common case (unique ids) cheap.
            if len(same) < 2 or len({r.record.content_hash() for r in same if r.record}) == 1:
                continue
            lines = ", ".join(str(r.line) for r in same)
            for row in same:
                row.errors.append(
                    FieldError(
                        id_field, f"{record_id} appears on lines {lines} with different contents"
                    )
                )

    def _reject_row(self, kind: str, name: str, row: _Row, record_id: str | None) -> dict[str, Any]:
        err = row.errors[0]
        payload = (
            row.raw
            if isinstance(row.raw, str)
            else json.dumps(row.raw, ensure_ascii=False, default=str)
        )
        return {
            "channel": "file",
            "origin": f"{name}:{row.line}",
            "reason": err.reason,
            "field": err.field,
            "payload": payload.encode("utf-8", errors="surrogateescape"),
            "record_kind": kind,
            "record_id": record_id,
        }


def _raw_id(kind: str, raw: dict[str, Any] | str) -> str | None:
    id_field = RECORD_TYPES[kind].id_field
    if isinstance(raw, dict):
        value = raw.get(id_field)
        return str(value) if value not in (None, "") else None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return str(data.get(id_field)) if isinstance(data, dict) and data.get(id_field) else None
