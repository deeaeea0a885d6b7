"""Malformed input: refused with a reason (on the sender's errors topic and in the database),
and the daemon goes on storing what is valid."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter

import aiomqtt
import pytest
from sqlalchemy import select

from ingest.pipeline import Envelope, validate
from monitor.context import Context
from monitor.models import RejectedMessage
from tests.ingest_support import running
from tests.support import publisher
from tests.support.broker import Broker
from tests.support.daemon import eventually
from tests.support.stream import prepare, stored_count

LIMIT = 64 * 1024


def _report(i: int, topic_prefix: str) -> tuple[str, dict[str, object]]:
    m = publisher.message("bad", i, "reports", topic_prefix)
    return m.topic, dict(m.payload)


def malformed(n: int, topic_prefix: str) -> tuple[str, bytes, str]:
    """Malformed message n: (topic, payload, the reason code it must be refused with)."""
    rng = random.Random(n)
    topic, body = _report(n, topic_prefix)
    case = n % 7
    if case == 0:  # invalid JSON
        text = json.dumps(body, ensure_ascii=False)
        return topic, text[: rng.randrange(1, len(text) - 1)].encode(), "invalid_json"
    if case == 1:  # wrong types
        field, value = rng.choice(
            [
                ("people_involved", "12"),
                ("people_involved", 3.5),
                ("occurred_at", 1736900000),
                ("region_code", 430902),
                ("event_type", ["gathering"]),
                ("description", {"text": "x"}),
            ]
        )
        return topic, json.dumps(body | {field: value}).encode(), "invalid_field"
    if case == 2:  # missing fields
        drop = rng.choice(["occurred_at", "region_code", "event_type", "people_involved"])
        del body[drop]
        return topic, json.dumps(body).encode(), "missing_field"
    if case == 3:  # oversize
        big = body | {"description": "长" * (LIMIT // 3 + 100)}
        return topic, json.dumps(big, ensure_ascii=False).encode(), "too_large"
    if case == 4:  # the topic names another informant than the payload
        other = publisher.INFORMANTS[(publisher.INFORMANTS.index(body["informant_id"]) + 1) % 20]  # type: ignore[arg-type]
        return topic, json.dumps(body | {"informant_id": other}).encode(), "id_mismatch"
    if case == 5:  # binary junk (never valid UTF-8: 0xFF cannot occur in it)
        junk = b"\xff" + rng.randbytes(rng.randrange(1, 2000))
        return topic, junk, "invalid_encoding"
    # deeply nested JSON: past the parser's limit, or past ours
    depth = rng.choice([20, 300, 5000])
    nested = "[" * depth + "]" * depth
    text = json.dumps(body)[:-1] + f', "attachment": {nested}}}'
    return topic, text.encode(), "too_deep"


async def test_1000_malformed_payloads_are_each_rejected_with_a_reason(
    ctx: Context, broker: Broker, backend: str
) -> None:
    topics = f"t-malformed-{backend}/labormon/v1"
    ctx.settings.mqtt.url = broker.url
    ctx.settings.mqtt.client_id = f"malformed-{backend}"
    ctx.settings.mqtt.topic_prefix = topics
    await prepare(ctx)
    cases = [malformed(n, topics) for n in range(1000)]
    notices: list[dict[str, object]] = []
    async with (
        running(ctx) as daemon,
        aiomqtt.Client(
            broker.host, broker.port, identifier=f"malformed-watch-{backend}"
        ) as watcher,
        aiomqtt.Client(broker.host, broker.port, identifier=f"malformed-pub-{backend}") as pub,
    ):
        await watcher.subscribe(f"{topics}/errors/#", qos=1)

        async def collect() -> None:
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                notices.append(json.loads(message.payload))
                if len(notices) == len(cases):
                    return

        collector = asyncio.create_task(collect())
        for topic, payload, _code in cases:
            await pub.publish(topic, payload, qos=1)
        await asyncio.wait_for(collector, 60)
        # Still alive and still storing valid messages.
        for i in range(10):
            m = publisher.message("after", i, "reports", topics)
            await pub.publish(m.topic, json.dumps(m.payload), qos=1)
        await eventually(lambda: stored_count(ctx.db), lambda n: n == 10, 20, what="valid after")
        assert daemon.health()["mqtt"]["connected"]

    expected = Counter(code for _t, _p, code in cases)
    assert Counter(n["code"] for n in notices) == expected
    for notice in notices:
        assert notice["errors"], notice
        assert notice["message"]  # the reason in Chinese for the informant
        assert str(notice["topic"]).startswith(f"{topics}/reports/inf-")
    async with ctx.db.session() as session:
        rows = (await session.scalars(select(RejectedMessage))).all()
    assert len(rows) == 1000
    assert Counter(r.reason.split("]")[0].lstrip("[") for r in rows) == expected
    assert {r.channel for r in rows} == {"mqtt"}
    assert all(r.origin.startswith(f"{topics}/reports/inf-") and r.client_id for r in rows)
    assert all(r.payload is not None and r.payload_size > 0 for r in rows)
    # What names a field says which one.
    missing = [r for r in rows if r.reason.startswith("[missing_field]")]
    assert all(
        r.field in {"occurred_at", "region_code", "event_type", "people_involved"} for r in missing
    )
    mismatched = [r for r in rows if r.reason.startswith("[id_mismatch]")]
    assert all(r.field == "informant_id" for r in mismatched)
    rejected = ctx.metrics.registry.get_sample_value
    for code, count in expected.items():
        assert (
            rejected("labormon_records_rejected_total", {"channel": "mqtt", "reason": code})
            == count
        )


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        (b"", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        (b'"text"', "invalid_json", None),
        (b'{"report_id": "R1"', "invalid_json", None),
        (b"\xc3\x28", "invalid_encoding", None),
    ],
)
def test_validate_names_the_reason(payload: bytes, code: str, field: str | None) -> None:
    env = validate(
        Envelope("mqtt", "labormon/v1/reports/inf-00", "report", "inf-00", payload), LIMIT
    )
    assert env.record is None
    assert env.code == code
    assert env.errors
    assert env.errors[0].field == field


def _valid(**changes: object) -> bytes:
    _topic, body = _report(1, "labormon/v1")
    body["informant_id"] = "inf-00"
    return json.dumps(body | changes, ensure_ascii=False).encode()


def test_nul_in_free_text_becomes_a_space_and_in_unknown_fields_is_refused() -> None:
    # PostgreSQL can keep NUL neither in text nor in jsonb: a report's own text fields
    # are cleaned (a report is never lost to a stray control character), unknown ones
    # refused, on every backend alike.
    env = validate(Envelope("mqtt", "t", "report", "inf-00", _valid(description="a\u0000b")), LIMIT)
    assert env.record is not None and env.record.description == "a b"  # type: ignore[attr-defined]
    assert env.record.sanitised_fields == ["description"]
    extra = validate(Envelope("mqtt", "t", "report", "inf-00", _valid(app="a\u0000b")), LIMIT)
    assert extra.code == "invalid_field"
    escaped = validate(
        Envelope("mqtt", "t", "report", "inf-00", _valid(description="a\\u0000b")), LIMIT
    )
    assert escaped.record is not None  # a literal backslash-u0000 is just text


def test_unknown_fields_are_kept_but_deep_ones_refused() -> None:
    ok = validate(Envelope("mqtt", "t", "report", "inf-00", _valid(app={"v": [1, 2]})), LIMIT)
    assert ok.record is not None
    assert ok.record.extra == {"app": {"v": [1, 2]}}
    deep = validate(
        Envelope("mqtt", "t", "report", "inf-00", _valid(app=json.loads("[" * 17 + "]" * 17))),
        LIMIT,
    )
    assert deep.code == "too_deep"


def test_an_invalid_payload_speaking_for_another_is_refused_for_that() -> None:
    env = validate(
        Envelope(
            "mqtt", "t", "report", "inf-00", _valid(informant_id="inf-07", people_involved="x")
        ),
        LIMIT,
    )
    assert env.code == "id_mismatch"
    assert env.errors[0].field == "informant_id"


def test_petition_source_id_when_given_must_match() -> None:
    m = publisher.message("p", 0)
    body = json.dumps(m.payload | {"source_id": "src-9"}).encode()
    env = validate(Envelope("mqtt", m.topic, "petition", "src-0", body), LIMIT)
    assert env.code == "id_mismatch"
    same = json.dumps(m.payload | {"source_id": "src-0"}).encode()
    assert validate(Envelope("mqtt", m.topic, "petition", "src-0", same), LIMIT).record is not None
