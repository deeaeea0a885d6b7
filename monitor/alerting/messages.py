"""What a notification says, in Chinese: built from an alert when it is queued, rendered
per channel (email HTML/text, group-chat markdown) when it is sent.

A delivery's body keeps the structured message (`{"kind": "alert", "purpose", "items":
[...]}`), not the rendered text, so that one message can be rendered for each channel and
so that level III/IV messages to one contact can take in more alerts (`items`) until
they are sent. Nothing here reads personal data: items are built from whitelisted alert
fields, and every free text passes through `scrub()` on the way in.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from monitor import labels as glossary
from monitor.config import RequirementsConfig
from monitor.models import (
    Alert,
    AlertEvent,
    HandlingRecord,
    MonitoringPoint,
    Region,
    WageReport,
)
from monitor.privacy import mask_free_text, mask_numbers
from monitor.safetext import one_line

LEVEL_NAMES = glossary.LEVEL_NAMES
LEVEL_COLOURS = glossary.LEVEL_COLOURS
KIND_NAMES = glossary.ALERT_KINDS
EVENT_TYPE_NAMES = glossary.EVENT_TYPES
CATEGORY_NAMES = glossary.CATEGORIES
INDUSTRY_NAMES = glossary.INDUSTRIES
TIER_NAMES = {"point": "监测点", "county": "区县级", "city": "市级", "province": "省级"}
STATUS_NAMES = glossary.ALERT_STATUS
#: Forecasts (interfaces §5): named by their colour band (橙色风险提示), never 特别重大.
RISK_KINDS = frozenset({"enterprise_risk", "county_risk", "petition_surge"})
#: The heading of a message by why it is sent.
PURPOSE_TITLES = {
    "alert": "预警",
    "escalation": "升级通报",
    "repeat": "再次提醒",
    "level_raised": "预警升级",
    "follow_up": "续报·新情况",
    "reescalated": "确认超时·重新通报",
    "reminder": "待处置提醒",
    "acknowledged": "已确认",
    "resolved": "预警解除",
    "silence_ended": "静默结束·补发",
    "digest": "日报",
    "instruction": "上级批示",
    "corrected": "更正",
    "withdrawn": "报告撤回·预警解除",
}
#: Evidence keys a notification may show; anything else in a finding's evidence (free
#: text, informant ids, ...) never reaches a message.
EVIDENCE_KEYS = (
    "enterprise_name",
    "event_type",
    "category",
    "people_involved",
    "period",
    "due",
    "petitions",
    "window_days",
    "why",
    # overdue_handling: which deadline, who handles, who is told next, of which alert
    "deadline_kind",
    "handler_tier",
    "above_tier",
    "parent_alert_id",
)


def scrub(value: Any, limit: int = 500, *, names: bool = True) -> str:
    """Free text made safe to show: personal numbers masked, names after a word that
    introduces a person replaced (联系人王某), length capped. `names=False` only for a
    console page whose readers may see the names the record holds."""
    text = str(value or "")
    text = mask_free_text(text) if names else mask_numbers(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mask_text(value: Any, limit: int = 600) -> str:
    """A record's free text as a notification may show it: numbers and names after a cue
    masked (known names are replaced before, by `redact`, from the record's own personal
    fields)."""
    return scrub(value, limit)


def redact(text: str, known: dict[str, str]) -> str:
    """Replace known personal values (a petitioner's name, an informant's id) that a
    detector let slip into free text by their stand-ins (王某, 某信息员)."""
    for value in sorted(known, key=len, reverse=True):
        if len(value) >= 2 and value in text:
            text = text.replace(value, known[value])
    return text


def evidence_for_alert(
    evidence: dict[str, Any] | None, known: dict[str, str] | None = None
) -> dict[str, Any]:
    """The whitelisted, scrubbed part of a finding's evidence kept on the alert."""
    evidence = evidence or {}
    kept: dict[str, Any] = {}
    for key in EVIDENCE_KEYS:
        value = evidence.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            kept[key] = value
        else:
            kept[key] = scrub(redact(str(value), known or {}), 200)
    return kept


def top_factors(factors: list[dict[str, Any]] | None, n: int = 3) -> list[dict[str, Any]]:
    """The `n` weightiest reasons, each said once."""
    ranked = sorted(factors or [], key=lambda f: -float(f.get("weight") or 0))
    out: list[dict[str, Any]] = []
    for f in ranked:
        text = scrub(f.get("text") or f.get("code") or "", 200)
        if text and all(text != o["text"] for o in out):
            out.append({"text": text, "weight": f.get("weight")})
    return out[:n]


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def local_text(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def _tiers_text(tiers: list[str] | None) -> str:
    return "、".join(TIER_NAMES.get(t, t) for t in tiers or [])


def timeline_text(event: AlertEvent) -> str | None:
    """One line of "what has happened so far" for an audit event (None: not shown)."""
    d = event.details or {}
    match event.event:
        case "AlertTriggered":
            return f"发出{LEVEL_NAMES.get(d.get('level', ''), '')}预警"
        case "AlertNotified":
            purpose = d.get("purpose")
            tiers = _tiers_text(d.get("tiers"))
            if purpose == "escalation":
                return f"未获确认，升级通报{tiers}"
            if purpose == "repeat":
                return f"仍未确认，再次通报{tiers}"
            if purpose == "reescalated":
                return f"确认后超时未处置，重新通报{tiers}"
            if purpose == "level_raised":
                return f"级别升高，通报{tiers}"
            if purpose == "follow_up":
                return f"续报新情况，通报{tiers}"
            if purpose == "silence_ended":
                return f"静默期结束，补发通报{tiers}"
            if purpose == "corrected":
                return f"报告更正，通报{tiers}"
            if purpose == "withdrawn":
                return f"报告撤回，通报{tiers}"
            return f"通报{tiers}"
        case "AlertQueuedForDigest":
            return "列入区县级每日汇总"
        case "IncludedInDigest":
            return "已列入区县级每日汇总"
        case "SilenceEnded":
            return "静默期结束"
        case "AlertLevelRaised":
            return (
                f"级别由{LEVEL_NAMES.get(d.get('from', ''), '')}"
                f"升至{LEVEL_NAMES.get(d.get('to', ''), '')}"
            )
        case "AlertUpdated":
            # A finding that only refreshed the same facts is no news (not shown).
            if d.get("joined") and d.get("title"):
                return f"续报：{d['title']}"
            return None
        case "AlertAcknowledged":
            return f"{d.get('actor_region_name') or ''}确认收到".lstrip()
        case "AcknowledgementReminded":
            return "已确认但尚未处置，提醒确认人"
        case "AcknowledgementExpired":
            return "确认后超时未处置"
        case "NotificationsSuppressed":
            return "处于静默期，暂缓通知"
        case "AlertCorrected":
            return str(d.get("notice") or "信息员更正了报告")
        case "ReportWithdrawn":
            return "信息员撤回了报告"
        case "AlertResolved":
            if d.get("via") == "withdrawal":
                return "报告已撤回，预警解除"
            return "已解除" if d.get("via") != "finding" else "风险消除，自动解除"
        case "HandlingRecorded":
            return handling_text(d)
    return None


#: The handling records' kinds (interfaces §8), as the timeline names them.
RECORD_NAMES = {
    "verify": "核实",
    "progress": "续报",
    "instruction": "批示",
    "answer": "答复",
    "final": "终报",
}
VERDICT_NAMES = {"true": "属实", "partly": "部分属实", "false": "不实"}
RESOLUTION_NAMES = {
    "negotiated": "协商解决",
    "labor_inspection": "劳动监察责令支付",
    "arbitration_litigation": "仲裁/诉讼",
    "government_advance": "政府垫付",
    "other": "其他",
}


def handling_text(d: dict[str, Any]) -> str:
    """One timeline line of a handling record (from its audit event's details)."""
    kind = str(d.get("kind") or "")
    head = (d.get("author_region_name") or "") + RECORD_NAMES.get(kind, kind)
    parts: list[str] = []
    if kind == "verify":
        parts.append(VERDICT_NAMES.get(str(d.get("verdict")), ""))
    if kind == "progress" and d.get("people_now") is not None:
        parts.append(f"现场{d['people_now']}人")
    if kind == "instruction" and d.get("due_local"):
        parts.append(f"要求{d['due_local']}前答复")
    if kind == "final":
        if d.get("wages_recovered") is not None:
            parts.append(f"追回工资{d['wages_recovered']:,.0f}元")
        if d.get("workers_paid") is not None:
            parts.append(f"{d['workers_paid']}人领到工资")
        parts.append(RESOLUTION_NAMES.get(str(d.get("resolution")), ""))
    text = scrub(d.get("text") or "", 120)
    body = "，".join(p for p in [*parts, text] if p)
    return f"{head}：{body}" if body else head


# Characters that make markup in the robots' markdown (WeCom, DingTalk, Feishu's
# lark_md, with their <font> and <at> tags): untrusted text gets the full-width twin,
# which reads the same to a Chinese reader and means nothing to any of the three.
_MARKDOWN_TWINS = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "!": "！",
        "|": "｜",
        "~": "～",
        "\\": "＼",
        "&": "＆",
        "=": "＝",
    }
)


def markdown_text(value: Any) -> str:
    """Untrusted text (a title, a company name) made inert in chat markdown: one line, no
    markup, no bare link (a robot would make "http://..." clickable)."""
    return one_line(value).translate(_MARKDOWN_TWINS).replace("://", "：//")


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("monitor.alerting", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_text
    return env


class MessageBuilder:
    """Builds the structured message items for alerts (read-only on the session)."""

    def __init__(
        self,
        zone: tzinfo,
        base_url: str,
        requirements: RequirementsConfig | None = None,
    ) -> None:
        self.zone = zone
        self.base_url = base_url.rstrip("/")
        self.requirements = requirements or RequirementsConfig()
        self._region_names: dict[str, str] = {}

    async def facts(self, session: AsyncSession, alert: Alert) -> dict[str, Any]:
        """What an event alert must say, in this order (issue 13): what happened (the
        record's words, masked), when and where, the enterprise (name, industry,
        headcount, its latest wage report), how many people and the level with one line
        of why, and what is required now with its deadline. Risk alerts: their factors."""
        evidence = alert.evidence or {}
        out: dict[str, Any] = {
            "text": one_line(scrub(evidence.get("text") or "", 600)),
            "occurred_at": local_text(alert.occurred_at, self.zone),
            "why": one_line(scrub(evidence.get("why") or "", 200)),
            "risk_factors": [one_line(scrub(t, 200)) for t in evidence.get("risk_factors") or []],
            "updates": [
                {
                    "at": local_text(_instant(r.get("at")), self.zone),
                    "text": one_line(scrub(r.get("text") or "", 300)),
                }
                for r in (evidence.get("reports") or [])[1:]
                if isinstance(r, dict)
            ],
            "industry": "",
            "headcount": None,
            "wages": "",
            "requirement": "",
            "deadline": "",
        }
        if alert.point_id:
            point = await session.get(MonitoringPoint, alert.point_id)
            if point is not None:
                out["industry"] = INDUSTRY_NAMES.get(point.industry, point.industry)
                out["headcount"] = point.headcount
                out["wages"] = await self._wage_state(session, point.point_id)
        if alert.kind == "event" and alert.level in ("I", "II", "III", "IV"):
            requirement = self.requirements.for_level(alert.level)
            out["requirement"] = requirement.text
            out["deadline"] = local_text(alert.created_at + requirement.within, self.zone)
        return out

    async def _wage_state(self, session: AsyncSession, point_id: str) -> str:
        report = (
            await session.scalars(
                select(WageReport)
                .where(WageReport.point_id == point_id)
                .order_by(WageReport.period.desc())
                .limit(1)
            )
        ).first()
        if report is None:
            return "尚无月度报告"
        period = f"{report.period:%Y-%m}月报"
        if report.arrears_months > 0 or report.arrears_amount > 0:
            return (
                f"{period}：拖欠工资{report.arrears_months}个月，"
                f"{report.arrears_amount / 10000:.1f}万元，涉及{report.arrears_workers}人"
            )
        if report.wages_paid_on is None:
            return f"{period}：工资尚未发放"
        return f"{period}：工资已于{report.wages_paid_on:%m-%d}发放"

    async def region_name(self, session: AsyncSession, code: str | None) -> str:
        if not code:
            return ""
        if code not in self._region_names:
            region = await session.get(Region, code)
            self._region_names[code] = region.name if region else code
        return self._region_names[code]

    async def region_chain(self, session: AsyncSession, code: str) -> list[Region]:
        """The region and those above it, bottom up, following the registry's parents."""
        chain: list[Region] = []
        current: str | None = code
        while current and len(chain) < 4:
            region = await session.get(Region, current)
            if region is None:
                break
            chain.append(region)
            current = region.parent_code
        return chain

    async def item(
        self, session: AsyncSession, alert: Alert, purpose: str, now: datetime
    ) -> dict[str, Any]:
        chain = await self.region_chain(session, alert.region_code)
        evidence = alert.evidence or {}
        colour_name, colour = LEVEL_COLOURS.get(alert.level, ("", "#555555"))
        events = (
            await session.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == alert.id)
                .order_by(AlertEvent.at, AlertEvent.id)
            )
        ).all()
        timeline = [
            {"at": local_text(e.at, self.zone), "text": text}
            for e in events
            if (text := timeline_text(e)) is not None
        ][-8:]
        # A correction or withdrawal leads the message with what changed.
        note = ""
        wanted = {"corrected": "AlertCorrected", "withdrawn": "ReportWithdrawn"}.get(purpose)
        for e in reversed(events):
            if e.event == wanted:
                note = timeline_text(e) or ""
                break
        risk = alert.kind in RISK_KINDS
        level_name = f"{colour_name}风险提示" if risk else LEVEL_NAMES.get(alert.level, alert.level)
        return {
            "alert_id": alert.id,
            "purpose": purpose,
            "purpose_title": PURPOSE_TITLES.get(purpose, "通知"),
            "level": alert.level,
            "level_name": level_name,
            # How the level reads in a line: "特别重大（红色）", or a forecast's band.
            "level_label": level_name if risk else f"{level_name}（{colour_name}）",
            "risk": risk,
            "colour_name": colour_name,
            "colour": colour,
            "kind": alert.kind,
            "kind_name": KIND_NAMES.get(alert.kind, alert.kind),
            "title": one_line(scrub(alert.title, 200)),
            "status": alert.status,
            "status_name": STATUS_NAMES.get(alert.status, alert.status),
            "region_code": alert.region_code,
            "place": " ".join(r.name for r in reversed(chain[:2])) or alert.region_code,
            "county": chain[0].name if chain else alert.region_code,
            "enterprise": one_line(evidence.get("enterprise_name") or ""),
            "point_id": alert.point_id or "",
            "people": alert.people_involved,
            "event_type": EVENT_TYPE_NAMES.get(str(evidence.get("event_type")), ""),
            "category": CATEGORY_NAMES.get(str(evidence.get("category")), ""),
            "period": evidence.get("period") or "",
            "due": evidence.get("due") or "",
            # Events carry no risk score: their level says how serious they are.
            "score": (
                round(alert.score, 1) if alert.score is not None and alert.kind != "event" else None
            ),
            "factors": top_factors(alert.factors),
            "facts": await self.facts(session, alert),
            "timeline": timeline,
            "created_at": local_text(alert.created_at, self.zone),
            "sent_for": local_text(now, self.zone),
            "ack_url": None,
            "verification": await self._verification(session, alert),
            "note": note,
        }

    async def _verification(self, session: AsyncSession, alert: Alert) -> str:
        """An event is 待核实 until a verify record (interfaces §8), whatever its level."""
        if alert.kind != "event" or alert.id is None:
            return ""
        verdict = await session.scalar(
            select(HandlingRecord.fields)
            .where(HandlingRecord.alert_id == alert.id, HandlingRecord.kind == "verify")
            .order_by(HandlingRecord.id.desc())
            .limit(1)
        )
        if verdict is None:
            return "待核实"
        return "核实" + VERDICT_NAMES.get(str((verdict or {}).get("verdict")), "")


def subject_for(body: dict[str, Any]) -> str:
    """The email subject / chat heading of a message: always one line (a header); level,
    place and what, once each ("【I级·特别重大】南县 星东建筑 300人堵路讨薪",
    "【橙色风险提示】资阳区 ...")."""
    return one_line(_subject(body))


def _subject(body: dict[str, Any]) -> str:
    kind = body.get("kind")
    items: list[dict[str, Any]] = body.get("items") or []
    if kind == "digest":
        return (
            f"【一般预警日报】{body.get('region_name', '')} {body.get('date', '')} 共{len(items)}条"
        )
    if kind == "risk_digest":
        return (
            f"【风险提示周报】{body.get('region_name', '')} {body.get('week', '')} 共{len(items)}条"
        )
    if not items:
        return str(body.get("subject") or "劳动关系风险监测通知")
    first = items[0]
    if len(items) == 1:
        if first["kind"] == "overdue_report" and first["purpose"] == "alert":
            return f"【报告逾期提醒】{first['title']}"
        if first["kind"] == "overdue_handling" and first["purpose"] in ("alert", "escalation"):
            heading = "处置逾期提醒" if first["purpose"] == "alert" else "处置逾期通报"
            return f"【{heading}】{first['place']} {first['title']}"
        purpose = "" if first["purpose"] == "alert" else f"·{first['purpose_title']}"
        if first.get("risk"):
            heading = f"{first['level_name']}{purpose}"
        else:
            heading = f"{first['level']}级·{first['level_name']}{purpose}"
        return f"【{heading}】{first.get('county') or first['place']} {_headline(first)}"
    levels = sorted({i["level"] for i in items}, key=lambda lv: ("I", "II", "III", "IV").index(lv))
    names = "/".join(LEVEL_NAMES[lv] for lv in levels)
    return f"【{names}预警汇总】共{len(items)}条：{first['place']} {_headline(first)}等"


def _headline(item: dict[str, Any]) -> str:
    """The item's title without a heading in 【】 that the subject already says."""
    return re.sub(r"^【[^】]*】", "", str(item["title"])).strip()


def _render_now(template: str, body: dict[str, Any], delivery_id: str | None, flavour: str) -> str:
    return (
        templates()
        .get_template(template)
        .render(body=body, subject=subject_for(body), delivery_id=delivery_id, flavour=flavour)
    )


def _render(
    template: str, body: dict[str, Any], delivery_id: str | None, flavour: str = "plain"
) -> str:
    """Render a message; an item that cannot be rendered is replaced by a line saying so
    rather than sinking the whole message (a batch of level III/IV alerts), and only a
    message with no item left to show raises (the outbox then fails it as permanent)."""
    try:
        return _render_now(template, body, delivery_id, flavour)
    except Exception:
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise
    kept = []
    for item in items:
        try:
            _render_now(template, {**body, "items": [item]}, delivery_id, flavour)
            kept.append(item)
        except Exception:
            kept.append(unrenderable_item(item))
    return _render_now(template, {**body, "items": kept}, delivery_id, flavour)


def unrenderable_item(item: Any) -> dict[str, Any]:
    """What a message shows for an item it could not render: which alert to look up."""
    data = item if isinstance(item, dict) else {}
    alert_id = data.get("alert_id")
    level = str(data.get("level")) if data.get("level") in LEVEL_NAMES else "IV"
    colour_name, colour = LEVEL_COLOURS.get(level, ("", "#555555"))
    return {
        "alert_id": alert_id if isinstance(alert_id, int) else 0,
        "purpose": "alert",
        "purpose_title": PURPOSE_TITLES["alert"],
        "level": level,
        "level_name": LEVEL_NAMES[level],
        "colour_name": colour_name,
        "colour": colour,
        "kind": "event",
        "kind_name": KIND_NAMES.get("event", ""),
        "title": f"预警#{alert_id}（内容无法显示，请在控制台查看）",
        "status": "triggered",
        "status_name": STATUS_NAMES.get("triggered", ""),
        "region_code": "",
        "place": "",
        "enterprise": "",
        "point_id": "",
        "people": None,
        "event_type": "",
        "category": "",
        "period": "",
        "due": "",
        "score": None,
        "factors": [],
        "timeline": [],
        "created_at": "",
        "sent_for": "",
        "ack_url": None,
    }


def render_text(
    body: dict[str, Any], delivery_id: str | None = None, *, max_bytes: int | None = None
) -> str:
    text = _render("message.txt.j2", body, delivery_id)
    return truncate_utf8(text, max_bytes) if max_bytes else text


def render_html(body: dict[str, Any], delivery_id: str | None = None) -> str:
    return _render("message.html.j2", body, delivery_id)


def render_markdown(
    body: dict[str, Any], *, flavour: str = "plain", max_bytes: int | None = None
) -> str:
    """Markdown for group robots (`flavour`: wecom, dingtalk, feishu or plain), cut at
    `max_bytes` (UTF-8) on a line boundary."""
    text = _render("message.md.j2", body, None, flavour).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return truncate_utf8(text, max_bytes) if max_bytes else text


TRUNCATED = "\n……（内容过长已截断，完整内容见邮件）"


def truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(TRUNCATED.encode())
    cut = data[:room].decode("utf-8", errors="ignore")
    if "\n" in cut:
        cut = cut[: cut.rfind("\n")]
    return cut + TRUNCATED
