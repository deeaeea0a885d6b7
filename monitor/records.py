"""The records that come in (interfaces §2), validated the same way on every channel.

MQTT, HTTP and `labormon import` all validate with these models: JSON payloads
in strict mode (`parse_json`: "12" is not a number), CSV/XLSX cells in lax mode
(`parse_row`: cells are text). Unknown fields are kept (`extra`) but ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from monitor.safetext import (
    clean_long,
    clean_short,
    first_control,
    has_control,
    needs_long_cleaning,
)

Channel = Literal["hotline_12351", "online", "visit", "letter"]
Category = Literal["wage_arrears", "social_insurance", "layoff", "contract", "injury", "other"]
EventType = Literal[
    "precursor",
    "petition",
    "gathering",
    "work_stoppage",
    "road_blocking",
    "extreme_act",
    "online_opinion",
    "other",
]
Industry = Literal["construction", "manufacturing", "services", "logistics", "mining", "other"]
ProductionStatus = Literal["normal", "reduced", "halted"]
OverLevel = Literal["city", "province", "national"]

CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
INDUSTRIES: tuple[str, ...] = Industry.__args__  # type: ignore[attr-defined]


def _no_control(value: Any) -> Any:
    """Ids are refused, not repaired, when they hold a control character: an id names a
    topic, a file and a row, and a repaired one would name something else."""
    if isinstance(value, str) and has_control(value):
        raise ValueError(f"must not contain control characters (found {first_control(value)})")
    return value


#: Record ids travel in MQTT topics and URLs: no '/', '+', '#' or spaces.
RecordId = Annotated[
    str,
    BeforeValidator(_no_control),
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
    ),
]
RegionCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[1-9]\d{5}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


Money = Annotated[float, Field(ge=0, le=1e10, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]


_INSTANT_HELP = "must be an ISO 8601 date-time with offset, for example 2025-01-15T09:30:00+08:00"


def _instant(value: Any) -> Any:
    """An instant is ISO 8601 text (or a spreadsheet datetime), never a bare number.

    Parsed here rather than by pydantic because a before-validator hands its result to
    Python-mode validation, where strict mode would refuse text."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(_INSTANT_HELP) from None
    if isinstance(value, datetime):
        return value
    raise ValueError(_INSTANT_HELP)


Instant = Annotated[AwareDatetime, BeforeValidator(_instant)]

_DAY_HELP = "must be an ISO 8601 date, for example 2025-02-13"


def _day(value: Any) -> Any:
    """A calendar day is ISO 8601 text (or a spreadsheet date). Parsed here for the same
    reason as `_instant`: the records' text cleaning is a model before-validator, after
    which strict Python-mode validation would refuse the JSON text of a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:  # a spreadsheet's date cell read as text: "2025-02-13 00:00:00"
            return datetime.fromisoformat(text).date()
        except ValueError:
            raise ValueError(_DAY_HELP) from None
    raise ValueError(_DAY_HELP)


Day = Annotated[date, BeforeValidator(_day)]


def _period(value: Any) -> Any:
    """ "YYYY-MM" (also a date or datetime from a spreadsheet) -> first day of the month."""
    if isinstance(value, datetime):
        return value.date().replace(day=1)
    if isinstance(value, date):
        return value.replace(day=1)
    if isinstance(value, str):
        text = value.strip()
        try:
            year, month = text.split("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError
            return date(int(year), int(month), 1)
        except ValueError:
            raise ValueError("must be a month written YYYY-MM, for example 2025-01") from None
    raise ValueError("must be a month written YYYY-MM, for example 2025-01")


Period = Annotated[date, BeforeValidator(_period)]


def _canonical(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


#: Where a record notes the fields intake cleaned of control characters (kept in `extra`).
SANITISED_KEY = "labormon_sanitised"


class Record(BaseModel):
    """Common behaviour of the incoming records."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, frozen=True)

    #: The name of the record's id field ("report_id", "petition_id", ...).
    id_field: ClassVar[str]
    #: The record kind as used in topics, file names and the `rejected_messages` table.
    kind: ClassVar[str]
    #: Fields holding personal data: encrypted at rest, masked in rejects, never hashed.
    personal_fields: ClassVar[tuple[str, ...]] = ()
    #: Short text (names, titles): control characters become a space at intake.
    short_text_fields: ClassVar[tuple[str, ...]] = ()
    #: Free text: keeps line breaks and tabs, other control characters become a space.
    long_text_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _clean_text(cls, data: Any) -> Any:
        """A stray line break must never cost a report (a level I report above all): it
        is replaced, not refused, and the fields replaced are recorded with the record
        (`extra["labormon_sanitised"]`)."""
        if not isinstance(data, dict):
            return data
        cleaned: list[str] = []
        out = dict(data)
        out.pop(SANITISED_KEY, None)  # ours to write, never the sender's
        for name in cls.short_text_fields:
            value = out.get(name)
            if isinstance(value, str) and has_control(value):
                out[name] = clean_short(value)
                cleaned.append(name)
        for name in cls.long_text_fields:
            value = out.get(name)
            if isinstance(value, str) and needs_long_cleaning(value):
                out[name] = clean_long(value)
                cleaned.append(name)
        if cleaned:
            out[SANITISED_KEY] = cleaned
        return out

    @property
    def sanitised_fields(self) -> list[str]:
        """The fields whose control characters intake replaced."""
        return list((self.__pydantic_extra__ or {}).get(SANITISED_KEY) or [])

    @property
    def record_id(self) -> str:
        return str(getattr(self, self.id_field))

    @property
    def extra(self) -> dict[str, Any] | None:
        return dict(self.__pydantic_extra__) if self.__pydantic_extra__ else None

    def known_fields(self) -> dict[str, Any]:
        """The validated contract fields as Python values (unknown fields left out)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def content_hash(self, fields: dict[str, Any] | None = None) -> str:
        """SHA-256 of the normalised known fields: the same record sent as CSV text or as
        JSON numbers, or with its instants in another offset, hashes the same; unknown
        fields and personal data do not count. (Stored in `payload_hash`: keep stable.)"""
        data = self.known_fields() if fields is None else fields
        for key in self.personal_fields:
            data = {k: v for k, v in data.items() if k != key}
        blob = json.dumps(
            data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_canonical
        )
        return hashlib.sha256(blob.encode()).hexdigest()


class MonitoringPointIn(Record):
    """A monitoring point of the registry (`points.csv`)."""

    id_field: ClassVar[str] = "point_id"
    kind: ClassVar[str] = "point"
    short_text_fields: ClassVar[tuple[str, ...]] = ("name",)

    point_id: RecordId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    region_code: RegionCode
    industry: Industry
    headcount: Count


class WageReportIn(Record):
    """劳动关系监测点月度报告 (`wages.csv`, `labormon/v1/wages/{point_id}`)."""

    id_field: ClassVar[str] = "report_id"
    kind: ClassVar[str] = "wage"

    report_id: RecordId
    point_id: RecordId
    period: Period
    headcount: Count
    frontline_headcount: Count
    avg_frontline_wage: Money
    #: None: not yet paid.
    wages_paid_on: Day | None = None
    arrears_amount: Money
    arrears_workers: Count
    arrears_months: Annotated[int, Field(ge=0, le=240)]
    social_insurance_arrears_months: Annotated[int, Field(ge=0, le=240)] = 0
    layoffs_planned: Count = 0
    production_status: ProductionStatus
    overtime_hours_avg: Annotated[float, Field(ge=0, le=744, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WageReportIn:
        if self.frontline_headcount > self.headcount:
            raise ValueError("frontline_headcount: larger than headcount")
        if self.arrears_workers > self.headcount > 0:
            raise ValueError("arrears_workers: larger than headcount")
        return self


class PetitionIn(Record):
    """信访: visit, letter, 12351 hotline, online (`petitions.csv`, `labormon/v1/petitions/...`)."""

    id_field: ClassVar[str] = "petition_id"
    kind: ClassVar[str] = "petition"
    personal_fields: ClassVar[tuple[str, ...]] = ("petitioner_name", "petitioner_phone")
    short_text_fields: ClassVar[tuple[str, ...]] = ("enterprise_name", "petitioner_name")
    long_text_fields: ClassVar[tuple[str, ...]] = ("summary",)

    petition_id: RecordId
    received_at: Instant
    channel: Channel
    region_code: RegionCode
    point_id: RecordId | None = None
    enterprise_name: ShortText | None = None
    #: Missing: inferred from `summary`.
    category: Category | None = None
    #: Missing or 0: read from `summary` when it gives a number ("上百名农民工"), else 1.
    people_involved: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    summary: LongText = ""
    petitioner_name: ShortText | None = None
    petitioner_phone: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 \-]{4,19}$")
        ]
        | None
    ) = None
    #: Optional: went over the county's head (越级访) to the city, province or Beijing.
    over_level: OverLevel | None = None
    #: Optional: when the case was closed (办结).
    closed_at: Instant | None = None


class InformantReportIn(Record):
    """信息员报告 (`reports.jsonl`, `labormon/v1/reports/{informant_id}`)."""

    id_field: ClassVar[str] = "report_id"
    kind: ClassVar[str] = "report"
    short_text_fields: ClassVar[tuple[str, ...]] = ("enterprise_name",)
    long_text_fields: ClassVar[tuple[str, ...]] = ("description",)

    report_id: RecordId
    informant_id: RecordId
    occurred_at: Instant
    region_code: RegionCode
    point_id: RecordId | None = None
    enterprise_name: ShortText | None = None
    event_type: EventType
    category: Category | None = None
    people_involved: Annotated[int, Field(ge=0, le=1_000_000)]
    description: LongText = ""
    #: interfaces §8: this report replaces the sender's own earlier report (full content).
    corrects: RecordId | None = None
    #: interfaces §8: this report withdraws the sender's own earlier report; the content
    #: fields may be omitted (the store takes them from the withdrawn report).
    withdraws: RecordId | None = None

    #: The `report_id` of an earlier report (by any informant) this one follows up: it
    #: joins that report's alert (interfaces §5).
    follows: RecordId | None = None

    def content_hash(self, fields: dict[str, Any] | None = None) -> str:
        # Reports stored before `corrects`/`withdraws` existed keep their hash.
        data = self.known_fields() if fields is None else fields
        unset = {k for k in ("corrects", "withdraws") if data.get(k) is None}
        return super().content_hash({k: v for k, v in data.items() if k not in unset})

    @model_validator(mode="before")
    @classmethod
    def _withdrawal_needs_no_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("withdraws"):
            # Stand-ins, replaced by the withdrawn report's content in the store.
            data = WITHDRAWAL_STAND_INS | {k: v for k, v in data.items() if v is not None}
        return data

    @model_validator(mode="after")
    def _one_target(self) -> InformantReportIn:
        if self.corrects and self.withdraws:
            raise ValueError("withdraws: a report either corrects or withdraws, not both")
        target = self.corrects or self.withdraws
        if target is not None and target == self.report_id:
            field = "corrects" if self.corrects else "withdraws"
            raise ValueError(f"{field}: must name an earlier report, not this report's own id")
        return self

    @model_validator(mode="after")
    def _follows_another(self) -> InformantReportIn:
        if self.follows is not None and self.follows == self.report_id:
            raise ValueError("follows: names this report itself; give an earlier report_id")
        return self


#: What a withdrawal may leave out (interfaces §8), until the store fills in the original.
WITHDRAWAL_STAND_INS: dict[str, Any] = {
    "occurred_at": "1970-01-01T00:00:00+00:00",
    "region_code": "100000",
    "event_type": "other",
    "people_involved": 0,
}


class RegionIn(Record):
    """A region of the registry (`regions.csv`), for unions outside the demo region."""

    id_field: ClassVar[str] = "code"
    kind: ClassVar[str] = "region"
    short_text_fields: ClassVar[tuple[str, ...]] = ("name",)

    code: RegionCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    parent_code: RegionCode | None = None


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls
    for cls in (RegionIn, MonitoringPointIn, WageReportIn, PetitionIn, InformantReportIn)
}


@dataclass(frozen=True)
class FieldError:
    """Why an input was refused: the field (dotted path, or None for the whole record)."""

    field: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as (field, reason), in plain words."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "timezone_aware":
            msg = "needs a UTC offset, for example 2025-01-15T09:30:00+08:00"
        elif err["type"] in {"int_type", "float_type"} and isinstance(err.get("input"), str | bool):
            kind = "true/false" if isinstance(err["input"], bool) else "text"
            msg = f"must be a number, not {kind}"
        elif err["type"] == "literal_error":
            msg = f"must be one of {err['ctx']['expected']}" if "ctx" in err else msg
        if not loc and ": " in msg and msg.split(": ", 1)[0].isidentifier():
            loc, msg = msg.split(": ", 1)  # a model-level check naming its field
        out.append(FieldError(loc or None, msg))
    return out


def parse_json(kind: str, payload: bytes | str) -> Record:
    """Validate a JSON payload (MQTT, HTTP, JSON lines) in strict mode: JSON's own types
    must be right ("12" or true is not a number), dates and instants are ISO 8601 text."""
    return RECORD_TYPES[kind].model_validate_json(payload, strict=True)


def parse_obj(kind: str, data: Any) -> Record:
    """Validate an already-decoded JSON value with the same rules as `parse_json`."""
    return parse_json(kind, json.dumps(data, ensure_ascii=False))


def parse_row(kind: str, row: dict[str, Any]) -> Record:
    """Validate a CSV/XLSX row: cells are text, so numbers and dates are parsed from it.
    A blank cell means "not given", so defaults and "required field is missing" apply."""
    cells = {
        k: v for k, v in row.items() if v is not None and (not isinstance(v, str) or v.strip())
    }
    return RECORD_TYPES[kind].model_validate(cells)
