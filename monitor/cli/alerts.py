"""`labormon alerts list|show|record|ack|resolve|silence|silences|unsilence|channels`."""

from __future__ import annotations

import getpass
import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table
from sqlalchemy import select

from monitor.alerting.book import AlertBook, AlertError, alert_json
from monitor.alerting.contacts import may_act_on
from monitor.alerting.handling import Handling, RecordError, RecordIn, handling_json, record_json
from monitor.alerting.silences import SilenceError, list_silences, resolve_target
from monitor.cli.common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    err,
    fail,
    open_context,
    out,
    run,
    settings_from,
)
from monitor.config import Duration
from monitor.context import Context
from monitor.models import Account, Alert, AlertEvent, ChannelHealth, Delivery

alerts_app = typer.Typer(
    help="Alerts: list, inspect, acknowledge, resolve, silence; failed channels.",
    no_args_is_help=True,
)

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Act as this leader account (checked against the alert's region). "
        "Default: the operator running the command.",
        show_default=False,
    ),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).")]


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "operator"


async def _actor(ctx: Context, as_account: str | None, region_code: str | None) -> str:
    """The audit actor: a leader account allowed to act, or the operator at the console."""
    if as_account is None:
        return _operator()
    async with ctx.db.session() as session:
        account = await session.get(Account, as_account)
        if account is None or account.status != "active":
            fail(f"--as: no active account {as_account}")
        if region_code is not None and not await may_act_on(session, account, region_code):
            fail(f"--as: {as_account} may not act on alerts of region {region_code}")
    return as_account


async def _failed_channels(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(ChannelHealth)
            .where(ChannelHealth.status != "ok")
            .order_by(ChannelHealth.status, ChannelHealth.key)
        )
        return [
            {
                "channel": h.channel,
                "recipient": h.recipient,
                "status": h.status,
                "consecutive_failures": h.consecutive_failures,
                "last_error": h.last_error,
                "last_error_at": h.last_error_at.isoformat() if h.last_error_at else None,
                "last_ok_at": h.last_ok_at.isoformat() if h.last_ok_at else None,
            }
            for h in rows
        ]


def _print_channels(channels: list[dict[str, Any]]) -> None:
    if not channels:
        return
    err.print(f"\n[bold red]{len(channels)} notification channel(s) not working:[/]")
    for c in channels:
        err.print(
            f"  {c['status'].upper():8} {c['channel']} -> {c['recipient']}: "
            f"{(c['last_error'] or '')[:160]}",
            markup=False,
        )
    err.print("  (labormon alerts channels: details)")


@alerts_app.command("list")
def list_alerts(
    status: Annotated[
        str | None, typer.Option("--status", help="triggered, acknowledged or resolved.")
    ] = None,
    level: Annotated[str | None, typer.Option("--level", help="I, II, III or IV.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region code (exact).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1_000_000)] = 100_000,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Alerts, newest first; failed notification channels are listed after them."""
    if status is not None and status not in ("triggered", "acknowledged", "resolved"):
        fail("--status must be triggered, acknowledged or resolved")
    if level is not None and level not in ("I", "II", "III", "IV"):
        fail("--level must be I, II, III or IV")
    settings = settings_from(config, db)

    async def body() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with open_context(settings) as ctx:
            book = AlertBook(ctx)
            alerts = await book.list(status=status, level=level, region=region, limit=limit)
            async with ctx.db.session() as session:
                extra = await handling_json(session, alerts, ctx.clock.now())
            return [alert_json(a) | extra[a.id] for a in alerts], await _failed_channels(ctx)

    items, channels = run(body)
    if json_out:
        print(json.dumps(items, ensure_ascii=False))
        return
    table = Table("id", "level", "status", "kind", "region", "point", "title", "created", "stage")
    for a in items:
        table.add_row(
            str(a["id"]),
            a["level"],
            a["status"],
            a["kind"],
            a["region_code"],
            a["point_id"] or "",
            a["title"],
            a["created_at"][:16].replace("T", " "),
            a["stage"] + (" overdue:" + ",".join(a["overdue"]) if a["overdue"] else ""),
        )
    out.print(table)
    _print_channels(channels)


@alerts_app.command("show")
def show(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """One alert with its audit log and its notifications."""
    settings = settings_from(config, db)

    async def body() -> dict[str, Any]:
        async with open_context(settings) as ctx, ctx.db.session() as session:
            alert = await session.get(Alert, alert_id)
            if alert is None:
                fail(f"no alert {alert_id}")
            events = await session.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.at, AlertEvent.id)
            )
            deliveries = await session.scalars(
                select(Delivery)
                .where(Delivery.alert_id == alert_id)
                .order_by(Delivery.created_at, Delivery.id)
            )
            extra = await handling_json(session, [alert], ctx.clock.now(), full=True)
            return (
                alert_json(alert)
                | extra[alert.id]
                | {
                    "events": [
                        {
                            "at": e.at.isoformat(),
                            "event": e.event,
                            "actor": e.actor,
                            "reason": e.reason,
                            "details": e.details,
                        }
                        for e in events
                    ],
                    "deliveries": [
                        {
                            "id": d.id,
                            "purpose": d.purpose,
                            "channel": d.channel,
                            "recipient": d.recipient,
                            "status": d.status,
                            "attempts": d.attempts,
                            "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                            "last_error": d.last_error,
                        }
                        for d in deliveries
                    ],
                }
            )

    data = run(body)
    if json_out:
        print(json.dumps(data, ensure_ascii=False))
        return
    out.print(
        f"alert {data['id']} level {data['level']} {data['status']} {data['kind']} "
        f"region {data['region_code']}: {data['title']}",
        markup=False,
    )
    if data["records"]:
        records = Table("record", "kind", "by", "at", "text")
        for r in data["records"]:
            records.add_row(
                str(r["id"]), r["kind"], r["author_id"], r["created_at"][:19], r["text"]
            )
        out.print(records)
    if data["deadlines"]:
        due = Table("deadline", "due", "met")
        for d in data["deadlines"]:
            due.add_row(d["kind"], d["due_at"][:19], (d["met_at"] or "")[:19])
        out.print(due)
    events = Table("at", "event", "actor", "reason")
    for e in data["events"]:
        events.add_row(e["at"][:19], e["event"], e["actor"], e["reason"] or "")
    out.print(events)
    sent = Table("delivery", "purpose", "channel", "recipient", "status", "attempts", "error")
    for d in data["deliveries"]:
        sent.add_row(
            d["id"][:8],
            d["purpose"],
            d["channel"],
            d["recipient"] or "",
            d["status"],
            str(d["attempts"]),
            (d["last_error"] or "")[:60],
        )
    out.print(sent)


def _act(
    verb: str,
    alert_id: int,
    as_account: str | None,
    reason: str | None,
    config: ConfigOpt,
    db: DbOpt,
) -> None:
    settings = settings_from(config, db)

    async def body() -> Alert:
        async with open_context(settings) as ctx:
            book = AlertBook(ctx)
            alert = await book.get(alert_id)
            if alert is None:
                fail(f"no alert {alert_id}")
            actor = await _actor(ctx, as_account, alert.region_code)
            action = book.acknowledge if verb == "ack" else book.resolve
            try:
                return await action(alert_id, actor=actor, reason=reason, via="cli")
            except AlertError as exc:
                fail(str(exc))

    alert = run(body)
    err.print(f"alert {alert.id} is {alert.status}")


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    as_account: AsOpt = None,
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Acknowledge an alert: its escalation stops."""
    _act("ack", alert_id, as_account, reason, config, db)


@alerts_app.command("resolve")
def resolve(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    as_account: AsOpt = None,
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Resolve an alert: it closes and those told about it get a resolved notice."""
    _act("resolve", alert_id, as_account, reason, config, db)


@alerts_app.command("record")
def record(
    alert_id: Annotated[int, typer.Argument(help="Alert id.")],
    kind: Annotated[
        str, typer.Option("--kind", help="verify, progress, instruction, answer or final.")
    ],
    text: Annotated[str, typer.Option("--text", help="What was found or done.")] = "",
    verdict: Annotated[
        str | None, typer.Option("--verdict", help="verify: true, partly or false.")
    ] = None,
    people: Annotated[
        int | None, typer.Option("--people", help="progress: people now; final: people.")
    ] = None,
    due: Annotated[
        str | None, typer.Option("--due", help="instruction: answer due in (4h) or at (ISO).")
    ] = None,
    answers: Annotated[
        int | None, typer.Option("--answers", help="answer: the instruction's record id.")
    ] = None,
    wages_recovered: Annotated[
        float | None, typer.Option("--wages-recovered", help="final: wages recovered (CNY).")
    ] = None,
    workers_paid: Annotated[
        int | None, typer.Option("--workers-paid", help="final: workers paid.")
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(
            "--resolution",
            help="final: negotiated, labor_inspection, arbitration_litigation, "
            "government_advance or other.",
        ),
    ] = None,
    as_account: AsOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """File a handling record (核实/续报/批示/答复/终报) on an alert."""
    due_in, due_at = (
        (None, due) if due and ("T" in due or (due[:4].isdigit() and "-" in due)) else (due, None)
    )
    data = RecordIn(
        kind=kind,
        text=text,
        verdict=verdict,
        people_now=people if kind == "progress" else None,
        people_final=people if kind == "final" else None,
        due=due_in,
        due_at=due_at,
        answers=answers,
        wages_recovered=wages_recovered,
        workers_paid=workers_paid,
        resolution=resolution,
    )
    settings = settings_from(config, db)

    async def body() -> dict[str, Any]:
        async with open_context(settings) as ctx:
            handling = Handling(ctx)
            alert = await handling.book.get(alert_id)
            if alert is None:
                fail(f"no alert {alert_id}")
            actor = await _actor(ctx, as_account, alert.region_code)
            try:
                return record_json(await handling.add(alert_id, data, author=actor, via="cli"))
            except RecordError as exc:
                fail("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in exc.errors.items()))
            except AlertError as exc:
                fail(str(exc))

    created = run(body)
    if json_out:
        print(json.dumps(created, ensure_ascii=False))
        return
    err.print(f"record {created['id']} ({created['kind']}) filed on alert {alert_id}")


@alerts_app.command("silence")
def silence(
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. 已进入调解程序.")],
    duration: Annotated[str, typer.Option("--for", help="How long: 2h, 3d, ...")],
    point: Annotated[str | None, typer.Option("--point", help="A monitoring point.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="A region code.")] = None,
    as_account: AsOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Hold back notifications for an enterprise or a region (alerts are still recorded)."""
    if (point is None) == (region is None):
        fail("give exactly one of --point and --region")
    try:
        length = TypeAdapter(Duration).validate_python(duration)
    except ValidationError:
        fail(f"--for: {duration!r} is not a duration such as 2h or 3d")
    if not timedelta(0) < length <= timedelta(days=90):
        fail("--for must be between 1 second and 90 days")
    scope, target = ("point", point) if point else ("region", region)
    assert target is not None
    settings = settings_from(config, db)

    async def body() -> int:
        async with open_context(settings) as ctx:
            book = AlertBook(ctx)
            actor = _operator()
            if as_account is not None:
                async with ctx.db.session() as session:
                    try:
                        region_code = await resolve_target(session, scope, target)
                    except SilenceError as exc:
                        fail(str(exc))
                actor = await _actor(ctx, as_account, region_code)
            try:
                created = await book.silence(
                    scope=scope, target=target, duration=length, reason=reason, actor=actor
                )
            except SilenceError as exc:
                fail(str(exc))
            return created.id

    silence_id = run(body)
    err.print(f"silence {silence_id} on {scope} {target} for {duration}")


@alerts_app.command("silences")
def silences(
    all_: Annotated[bool, typer.Option("--all", help="Include ended silences.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Silences in force (or all of them)."""
    settings = settings_from(config, db)

    async def body() -> list[dict[str, Any]]:
        async with open_context(settings) as ctx, ctx.db.session() as session:
            found = await list_silences(session, ctx.clock.now(), include_ended=all_)
            return [
                {
                    "id": s.id,
                    "scope": s.scope,
                    "target": s.target,
                    "region_code": s.region_code,
                    "reason": s.reason,
                    "created_by": s.created_by,
                    "starts_at": s.starts_at.isoformat(),
                    "ends_at": s.ends_at.isoformat(),
                    "cancelled_at": s.cancelled_at.isoformat() if s.cancelled_at else None,
                }
                for s in found
            ]

    rows = run(body)
    if json_out:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "scope", "target", "until", "by", "reason")
    for s in rows:
        table.add_row(
            str(s["id"]), s["scope"], s["target"], s["ends_at"][:16], s["created_by"], s["reason"]
        )
    out.print(table)


@alerts_app.command("unsilence")
def unsilence(
    silence_id: Annotated[int, typer.Argument(help="Silence id.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """End a silence now; what it held back is then sent."""
    settings = settings_from(config, db)

    async def body() -> None:
        async with open_context(settings) as ctx:
            try:
                await AlertBook(ctx).end_silence(silence_id, actor=_operator())
            except SilenceError as exc:
                fail(str(exc))

    run(body)
    err.print(f"silence {silence_id} ended")


@alerts_app.command("channels")
def channels(
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Notification channels that are failing or failed, and the undelivered messages."""
    settings = settings_from(config, db)

    async def body() -> dict[str, Any]:
        async with open_context(settings) as ctx:
            failed = await _failed_channels(ctx)
            async with ctx.db.session() as session:
                rows = await session.scalars(
                    select(Delivery)
                    .where(Delivery.status == "failed")
                    .order_by(Delivery.created_at.desc())
                    .limit(200)
                )
                deliveries = [
                    {
                        "id": d.id,
                        "alert_id": d.alert_id,
                        "channel": d.channel,
                        "recipient": d.recipient,
                        "purpose": d.purpose,
                        "attempts": d.attempts,
                        "last_error": d.last_error,
                        "created_at": d.created_at.isoformat(),
                    }
                    for d in rows
                ]
            return {"channels": failed, "failed_deliveries": deliveries}

    data = run(body)
    if json_out:
        print(json.dumps(data, ensure_ascii=False))
        return
    if not data["channels"]:
        out.print("all notification channels work")
    table = Table("status", "channel", "recipient", "failures", "since", "last error")
    for c in data["channels"]:
        table.add_row(
            c["status"],
            c["channel"],
            c["recipient"],
            str(c["consecutive_failures"]),
            (c["last_error_at"] or "")[:16],
            (c["last_error"] or "")[:80],
        )
    if data["channels"]:
        out.print(table)
    if data["failed_deliveries"]:
        out.print(f"{len(data['failed_deliveries'])} message(s) not delivered:")
        for d in data["failed_deliveries"]:
            out.print(
                f"  {d['id'][:8]} alert {d['alert_id']} {d['channel']} -> {d['recipient']}: "
                f"{(d['last_error'] or '')[:100]}",
                markup=False,
            )
