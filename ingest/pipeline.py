"""The ingest pipeline: validate each incoming message, commit in small batches, then answer.

MQTT and HTTP hand every message to one `IngestPipeline`. It validates at once (the same
pydantic models as file import), queues, and a single writer commits what has queued up
in one transaction (group commit): stored records, duplicates and rejections alike.
Only after the commit is each message answered: the MQTT PUBACK is sent, the HTTP
request gets its 201/200/422. A crash before the commit loses nothing (the broker
redelivers, the HTTP client retries); a crash after it stores nothing twice (the insert
is idempotent).

While the database is unreachable the writer retries the same batch with back-off and
answers nothing, so the broker keeps the messages; a batch that the database refuses
for its contents is split and stored one by one, so one bad record cannot block the rest.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ingest.topics import KIND_LABEL, SENDER_FIELD, SENDER_KIND
from monitor import bus
from monitor.context import Context
from monitor.db import is_transient
from monitor.logging import get_logger
from monitor.models import Account
from monitor.records import RECORD_TYPES, FieldError, Record, field_errors, parse_json
from monitor.store import Submission

log = get_logger("labormon.ingest")

__all__ = ["is_transient"]  # re-exported: the MQTT service and tests import it from here

Status = Literal["stored", "duplicate", "rejected"]

#: Loop turns without a new message after which a batch is committed (see _next_batch).
IDLE_TURNS = 4

#: Record kinds that can carry a level I event: they go ahead of the bulk (wage reports,
#: registries), so that a month of wage reports queued in front of an informant's report
#: does not hold the report back (issue 17: level I within 1 s while wages pour in).
URGENT_KINDS = frozenset({"report", "petition"})

#: Deepest JSON nesting accepted in a payload. Records are flat objects; unknown fields
#: are kept, but a deeply nested one is junk, not data.
MAX_DEPTH = 16

#: Why a message was refused, as a short stable code (metrics label, error notices, API).
REASON_CODES = (
    "too_large",
    "invalid_encoding",
    "invalid_json",
    "too_deep",
    "missing_field",
    "invalid_field",
    "id_mismatch",
    "unknown_topic",
    "unknown_account",
    "forbidden",
    "conflict",
    "unknown_reference",
    "unstorable",
    "correction_refused",
)

#: The same, in words for the informant or clerk reading an error notice.
REASON_TEXT_ZH: dict[str, str] = {
    "too_large": "消息过大",
    "invalid_encoding": "消息不是UTF-8文本",
    "invalid_json": "消息不是有效的JSON对象",
    "too_deep": "JSON嵌套层数过多",
    "missing_field": "缺少必填字段",
    "invalid_field": "字段取值有误",
    "id_mismatch": "主题或账号与消息中的编号不一致",
    "unknown_topic": "主题不正确",
    "unknown_account": "账号不存在或已停用",
    "forbidden": "该账号无权提交此类数据",
    "conflict": "编号重复且内容不同",
    "unknown_reference": "地区或监测点编号不存在",
    "unstorable": "数据库无法保存该消息",
    "correction_refused": "更正或撤回未被接受（超过期限、非本人报告或已更正、撤回）",
}

#: What an account id (and so the id in a topic) looks like; see monitor.accounts.
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


@dataclass(frozen=True)
class Outcome:
    """What became of one message."""

    status: Status
    kind: str | None
    record_id: str | None
    errors: tuple[FieldError, ...] = ()
    #: One of REASON_CODES when rejected.
    code: str | None = None

    @property
    def reason(self) -> str:
        return "; ".join(str(e) for e in self.errors)


def _ignore(_outcome: Outcome) -> None:
    return None


@dataclass(eq=False)
class Envelope:
    """One incoming message on its way through the pipeline."""

    #: mqtt | http
    channel: str
    #: The MQTT topic or the HTTP path.
    origin: str
    #: wage | petition | report; None when the topic names no input kind.
    kind: str | None
    #: The id in the topic (MQTT) or the authenticated account (HTTP).
    sender: str | None
    payload: bytes
    #: Called once, after the commit, in arrival order (MQTT acknowledges here).
    on_done: Callable[[Outcome], None] = _ignore
    #: MQTT: the sender must be an active account of the right kind (checked in the
    #: writer, against the database, so a revocation counts at once).
    check_sender: bool = False
    received: float = field(default_factory=time.monotonic)
    #: Keep arrival order with everything else (no jumping ahead as an event): MQTT
    #: acknowledges a connection's messages in the order they came, so a connection
    #: carrying both kinds (`mqtt.wage_lane` off, a rescued session) stays in order.
    in_order: bool = False
    record: Record | None = None
    errors: list[FieldError] = field(default_factory=list)
    code: str | None = None

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.record.kind, self.record.record_id) if self.record is not None else None

    def refuse(self, code: str, *errors: FieldError) -> Envelope:
        self.record = None
        self.code = code
        self.errors = list(errors)
        return self


def _first_id(kind: str | None, data: Any) -> str | None:
    if kind is None or not isinstance(data, dict):
        return None
    value = data.get(RECORD_TYPES[kind].id_field)
    return str(value)[:128] if isinstance(value, str | int) else None


def _depth_and_nul(value: Any, depth: int = 0) -> tuple[int, bool]:
    """Nesting depth of a decoded JSON value, and whether any text holds NUL."""
    if isinstance(value, str):
        return depth, "\x00" in value
    if isinstance(value, dict):
        items: Any = list(value.keys()) + list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        return depth, False
    deepest, nul = depth + 1, False
    for item in items:
        if deepest > MAX_DEPTH:
            break
        d, n = _depth_and_nul(item, depth + 1)
        deepest, nul = max(deepest, d), nul or n
    return deepest, nul


def validate(env: Envelope, max_bytes: int) -> Envelope:
    """Check one message with the record models; sets `record`, or `code` and `errors`."""
    if env.kind is None:
        return env.refuse(
            "unknown_topic",
            FieldError(None, "not an input topic: use labormon/v1/{wages|petitions|reports}/{id}"),
        )
    if env.sender is not None and not _ACCOUNT_ID.fullmatch(env.sender):
        return env.refuse(
            "unknown_topic",
            FieldError(None, "the id in the topic is not an account id (1-64 of A-Z a-z 0-9 _.:-)"),
        )
    size = len(env.payload)
    if size > max_bytes:
        return env.refuse(
            "too_large", FieldError(None, f"payload of {size} bytes exceeds {max_bytes} bytes")
        )
    try:
        env.payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return env.refuse(
            "invalid_encoding",
            FieldError(None, f"not UTF-8 (byte 0x{env.payload[exc.start]:02X} at {exc.start})"),
        )
    try:
        record = parse_json(env.kind, env.payload)
    except ValidationError as exc:
        types = {str(e["type"]) for e in exc.errors(include_url=False)}
        if types & {"json_invalid", "json_type"}:
            code = "too_deep" if "recursion limit" in str(exc) else "invalid_json"
        elif types & {"model_type", "model_attributes_type"}:
            code = "invalid_json"
        elif types <= {"missing"}:
            code = "missing_field"
        else:
            code = "invalid_field"
        errors = field_errors(exc)
        if code == "invalid_json" and types & {"model_type", "model_attributes_type"}:
            errors = [FieldError(None, "must be a JSON object")]
        env.refuse(code, *errors)
        _claimed_sender_mismatch(env)
        return env
    if record.extra:
        depth, nul = _depth_and_nul(record.extra)
        if depth > MAX_DEPTH:
            return env.refuse(
                "too_deep", FieldError(None, f"JSON nested deeper than {MAX_DEPTH} levels")
            )
        if nul:
            return env.refuse("invalid_field", FieldError(None, "text must not contain \\u0000"))
    env.record = record
    name = SENDER_FIELD[env.kind]
    mismatch = _sender_mismatch(env.kind, env.sender, {name: getattr(record, name, None)})
    if mismatch is not None:
        env.refuse("id_mismatch", mismatch)
    return env


def _sender_mismatch(kind: str, sender: str | None, data: dict[str, Any]) -> FieldError | None:
    """The payload names someone other than the topic / the token's account."""
    name = SENDER_FIELD[kind]
    claimed = data.get(name)
    if sender is None or claimed is None:
        return None
    claimed_text = str(claimed).strip() if isinstance(claimed, str | int) else repr(claimed)
    if claimed_text == sender:
        return None
    return FieldError(name, f"is {claimed_text!r} but the message came from {sender!r}")


def _claimed_sender_mismatch(env: Envelope) -> None:
    """An invalid payload that also names another sender is refused for that first:
    speaking for another account is the graver fault, and the one to record."""
    if env.kind is None:
        return
    try:
        data = json.loads(env.payload)
    except (ValueError, RecursionError):
        return
    if isinstance(data, dict):
        mismatch = _sender_mismatch(env.kind, env.sender, data)
        if mismatch is not None:
            env.code = "id_mismatch"
            env.errors = [mismatch]


def classify_store_error(kind: str, error: FieldError) -> str:
    """Reason code of a refusal by the store (it checks against what is already stored)."""
    if error.field in ("corrects", "withdraws"):
        return "correction_refused"  # interfaces §8: the reason says why (window, owner)
    if error.field == RECORD_TYPES[kind].id_field or "already" in error.reason:
        return "conflict"
    if "outside" in error.reason or error.reason.startswith("only informant accounts"):
        return "forbidden"
    if error.reason.startswith("unknown"):
        return "unknown_reference"
    return "invalid_field"


#: Called after each commit with the batch and its outcomes (benchmarks, tests).
CommitListener = Callable[[Sequence[Envelope], Sequence[Outcome]], None]


class LaneQueue:
    """The writer's queue: three FIFO lanes, served in this order.

    - events (`URGENT_KINDS`, each on a connection of its own kind);
    - mixed: everything of a connection that carries every kind (`mqtt.wage_lane` off,
      a rescued session), which must stay in its arrival order and holds events too;
    - bulk (wage reports, and what names no kind).

    Order is kept within a lane, and each connection feeds one lane, which is all that
    ordering means here: a correction follows the report it corrects, a wage report the
    registration of its point, and MQTT acknowledges a connection's messages in order.
    Only the bulk lane waits while an event is handled (`ingest.event_hold`): a mixed
    lane held back would hold its events back with it."""

    def __init__(self) -> None:
        self._urgent: collections.deque[Envelope] = collections.deque()
        self._mixed: collections.deque[Envelope] = collections.deque()
        self._bulk: collections.deque[Envelope] = collections.deque()
        self._ready = asyncio.Event()
        self._unheld_ready = asyncio.Event()

    def has_unheld(self) -> bool:
        """Something is queued that the event hold does not stop."""
        return bool(self._urgent or self._mixed)

    async def wait_unheld(self, timeout: float) -> None:
        """Until something the hold does not stop is queued, or `timeout` seconds."""
        if self.has_unheld():
            return
        self._unheld_ready.clear()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
        # that comes in the turn the event is set, and the loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._unheld_ready.wait()

    def qsize(self) -> int:
        return len(self._urgent) + len(self._mixed) + len(self._bulk)

    def put_nowait(self, env: Envelope) -> None:
        if env.in_order:
            self._mixed.append(env)
            self._unheld_ready.set()
        elif env.kind in URGENT_KINDS:
            self._urgent.append(env)
            self._unheld_ready.set()
        else:
            self._bulk.append(env)
        self._ready.set()

    def get_nowait(self, *, urgent_only: bool = False, unheld_only: bool = False) -> Envelope:
        """The next envelope: events first, then the mixed lane, then the bulk.
        `urgent_only`: events alone; `unheld_only`: nothing of the bulk lane."""
        if self._urgent:
            return self._urgent.popleft()
        if urgent_only:
            raise asyncio.QueueEmpty
        if self._mixed:
            return self._mixed.popleft()
        if self._bulk and not unheld_only:
            return self._bulk.popleft()
        raise asyncio.QueueEmpty

    def put_back(self, env: Envelope) -> None:
        """Return the bulk lane's envelope just taken to the head of its lane."""
        self._bulk.appendleft(env)

    async def get(self) -> Envelope:
        while True:
            try:
                return self.get_nowait()
            except asyncio.QueueEmpty:
                self._ready.clear()
                await self._ready.wait()


class IngestPipeline:
    """The daemon's single writer of incoming records (a `Service`)."""

    name = "ingest"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.config = ctx.settings.ingest
        self.max_bytes = ctx.settings.mqtt.max_payload_bytes
        self.metrics = ctx.metrics
        self._queue = LaneQueue()
        self._carry: collections.deque[Envelope] = collections.deque()
        self._listeners: list[CommitListener] = []
        self._http_waiting = 0
        #: MQTT sender -> (account kind, when the database said it was active).
        self._senders: dict[str, tuple[str, float]] = {}
        self.committed_batches = 0
        #: Since when (monotonic) the writer has been retrying a batch because the
        #: database is unreachable; None while it writes.
        self.database_down_since: float | None = None
        self.metrics.ingest_queue.set_function(lambda: self._queue.qsize() + len(self._carry))

    def add_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    @property
    def database_unavailable(self) -> bool:
        return self.database_down_since is not None

    def health(self) -> dict[str, Any]:
        state: dict[str, Any] = {"queued": self._queue.qsize() + len(self._carry)}
        if self.database_down_since is not None:
            state["database"] = (
                f"unavailable for {time.monotonic() - self.database_down_since:.0f} s; "
                "nothing acknowledged until it is back"
            )
        return state

    # ------------------------------------------------------------------ intake

    def submit(self, env: Envelope) -> Envelope:
        """Validate and queue a message; `env.on_done` is called after its commit."""
        self.metrics.records_received.labels(env.channel, env.kind or "unknown").inc()
        if env.code is None and env.record is None:
            validate(env, self.max_bytes)
        self._queue.put_nowait(env)
        return env

    @property
    def http_overloaded(self) -> bool:
        return self._http_waiting >= self.config.http_queue_limit

    async def submit_and_wait(self, env: Envelope) -> Outcome:
        """Queue a message and wait for its commit (HTTP). Raises TimeoutError after
        `ingest.http_timeout`; the message may still be stored later (a retry then
        finds it as a duplicate)."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def resolve(outcome: Outcome) -> None:
            if not done.done():
                done.set_result(outcome)

        env.on_done = resolve
        self._http_waiting += 1
        try:
            self.submit(env)
            return await asyncio.wait_for(
                asyncio.shield(done), self.config.http_timeout.total_seconds()
            )
        finally:
            self._http_waiting -= 1

    # ------------------------------------------------------------------ writer

    async def run(self) -> None:
        while True:
            batch = await self._next_batch()
            await self._commit(batch)

    async def _next_batch(self) -> list[Envelope]:
        """What has queued up, at most `batch_max`, with no record id twice (so that each
        message gets its own outcome; a repeat waits for the next batch).

        The MQTT client hands over one message per turn of the event loop, so a writer
        that took only what is queued would commit a handful per transaction under load.
        Instead it yields to the loop while messages keep coming, up to `batch_linger`:
        a lone message is committed at once, a stream in batches.
        """
        while True:
            await self._hold_bulk()
            if self._carry:
                first = self._carry.popleft()
                break
            first = await self._queue.get()
            # A hold that began while the writer was idle (a console submission) still
            # stops the bulk lane's message that woke it.
            if first.in_order or first.kind in URGENT_KINDS or self.ctx.bus.bulk_wait() <= 0:
                break
            self._queue.put_back(first)
        batch = [first]
        # A batch of events is committed as soon as they stop coming, without waiting to
        # fill up with wage reports; a bulk batch takes any event that arrives meanwhile.
        urgent = first.kind in URGENT_KINDS and not first.in_order
        # A mixed lane goes on during a hold; the bulk lane does not join it meanwhile.
        held = self.ctx.bus.bulk_wait() > 0
        keys = {first.key} - {None}
        deadline = time.monotonic() + self.config.batch_linger.total_seconds()
        idle_turns = 0
        while len(batch) < self.config.batch_max:
            if self._carry:
                env = self._carry.popleft()
            else:
                try:
                    env = self._queue.get_nowait(urgent_only=urgent, unheld_only=held)
                    idle_turns = 0
                except asyncio.QueueEmpty:
                    # A message takes a few loop turns from the socket to this queue.
                    if idle_turns >= IDLE_TURNS or time.monotonic() >= deadline:
                        break
                    idle_turns += 1
                    await asyncio.sleep(0)  # let the readers hand over what they have
                    continue
            key = env.key
            if key is not None and key in keys:
                self._carry.appendleft(env)
                break
            if key is not None:
                keys.add(key)
            batch.append(env)
        return batch

    async def _hold_bulk(self) -> None:
        """While an event just stored is being detected, alerted and mailed, the bulk
        lane waits (`ingest.event_hold`, `Bus.hold_bulk`); events and mixed lanes go
        ahead."""
        while not self._carry and not self._queue.has_unheld():
            left = self.ctx.bus.bulk_wait()
            if left <= 0:
                return
            await self._queue.wait_unheld(left)

    async def _commit(self, batch: list[Envelope]) -> None:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                outcomes = await self._write(batch)
                if self.database_down_since is not None:
                    log.info(
                        "database back; storing again",
                        after_seconds=round(time.monotonic() - self.database_down_since, 1),
                    )
                    self.database_down_since = None
                break
            except Exception as exc:
                if is_transient(exc):
                    if self.database_down_since is None:
                        self.database_down_since = time.monotonic()
                    attempt += 1
                    delay = min(
                        self.config.retry_max.total_seconds(),
                        self.config.retry_min.total_seconds() * 2 ** min(attempt - 1, 16),
                    )
                    self.metrics.ingest_db_retries.inc()
                    log.warning(
                        "database unavailable; batch kept, nothing acknowledged",
                        error=exc.__class__.__name__,
                        detail=str(exc).splitlines()[0][:200] if str(exc) else "",
                        messages=len(batch),
                        retry_in=round(delay, 2),
                    )
                    await asyncio.sleep(delay)
                    continue
                if len(batch) > 1:
                    log.error(
                        "database refused a batch; storing its messages one by one",
                        error=exc.__class__.__name__,
                        messages=len(batch),
                    )
                    for env in batch:
                        await self._commit([env])
                    return
                outcomes = await self._unstorable(batch[0], exc)
                break
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.ingest_batch_size.observe(len(batch))
        self._finish(batch, outcomes)

    async def _write(self, batch: Sequence[Envelope]) -> list[Outcome]:
        """One transaction: sender checks, the idempotent inserts, the rejections."""
        outcomes: list[Outcome | None] = [None] * len(batch)
        async with self.ctx.db.connect() as conn:
            senders = await self._active_senders(conn, batch)
            by_kind: dict[str, list[int]] = {}
            for i, env in enumerate(batch):
                if env.record is None:
                    outcomes[i] = Outcome(
                        "rejected", env.kind, None, tuple(env.errors), env.code or "invalid_field"
                    )
                    continue
                assert env.kind is not None
                if senders is not None and env.check_sender:
                    wanted = SENDER_KIND[env.kind]
                    if senders.get(env.sender or "") != wanted:
                        outcomes[i] = Outcome(
                            "rejected",
                            env.kind,
                            env.record.record_id,
                            (
                                FieldError(
                                    None,
                                    f"{env.sender!r} is not an active {wanted} account, "
                                    f"so it may not send {KIND_LABEL[env.kind]}",
                                ),
                            ),
                            "unknown_account",
                        )
                        continue
                by_kind.setdefault(env.kind, []).append(i)
            for kind, indexes in by_kind.items():
                # Same order on every daemon: concurrent inserts of overlapping ids on
                # PostgreSQL then wait for each other instead of deadlocking.
                indexes.sort(key=lambda i: batch[i].record.record_id)  # type: ignore[union-attr]
                result = await self.ctx.store.store(
                    kind,
                    [
                        Submission(batch[i].record, batch[i].channel, batch[i].sender)  # type: ignore[arg-type]
                        for i in indexes
                    ],
                    conn,
                )
                for i in indexes:
                    rid = batch[i].record.record_id  # type: ignore[union-attr]
                    if rid in result.rejected:
                        err = result.rejected[rid]
                        code = classify_store_error(kind, err)
                        outcomes[i] = Outcome("rejected", kind, rid, (err,), code)
                    elif rid in result.duplicates:
                        outcomes[i] = Outcome("duplicate", kind, rid)
                    else:
                        outcomes[i] = Outcome("stored", kind, rid)
            final = [o for o in outcomes if o is not None]
            assert len(final) == len(batch)
            await self.ctx.store.reject_many(
                [
                    self._reject_row(env, out)
                    for env, out in zip(batch, final, strict=True)
                    if out.status == "rejected"
                ],
                conn,
            )
        return final

    async def _active_senders(
        self, conn: AsyncConnection, batch: Sequence[Envelope]
    ) -> dict[str, str] | None:
        """Account kind of each MQTT sender in the batch that is an active account.

        Known-active senders are trusted for `ingest.account_cache`; unknown ones are
        looked up every time, so a new account works at once.
        """
        if not self.config.require_account:
            return None
        ids = {env.sender for env in batch if env.check_sender and env.record is not None}
        now = time.monotonic()
        ttl = self.config.account_cache.total_seconds()
        known: dict[str, str] = {}
        wanted: list[str] = []
        for sender in ids:
            if not sender:
                continue
            cached = self._senders.get(sender)
            if cached is not None and now - cached[1] < ttl:
                known[sender] = cached[0]
            else:
                wanted.append(sender)
        if wanted:
            rows = await conn.execute(
                select(Account.id, Account.kind).where(
                    Account.id.in_(sorted(wanted)), Account.status == "active"
                )
            )
            for account_id, kind in rows:
                known[account_id] = kind
                self._senders[account_id] = (kind, now)
            for sender in wanted:
                if sender not in known:
                    self._senders.pop(sender, None)
        return known

    def _reject_row(self, env: Envelope, outcome: Outcome) -> dict[str, Any]:
        first = outcome.errors[0] if outcome.errors else FieldError(None, "rejected")
        return {
            "channel": env.channel,
            "origin": env.origin,
            "reason": f"[{outcome.code}] {outcome.reason or first.reason}",
            "payload": env.payload,
            "client_id": env.sender[:128] if env.sender else None,
            "record_kind": env.kind,
            "record_id": outcome.record_id or record_id_from_payload(env),
            "field": first.field[:128] if first.field else None,
        }

    async def _unstorable(self, env: Envelope, exc: Exception) -> list[Outcome]:
        """A single message the database refuses: keep it as a rejection if we can."""
        outcome = Outcome(
            "rejected",
            env.kind,
            env.record.record_id if env.record is not None else None,
            (FieldError(None, f"the database refused this message ({exc.__class__.__name__})"),),
            "unstorable",
        )
        attempt = 0
        while True:
            try:
                async with self.ctx.db.connect() as conn:
                    await self.ctx.store.reject_many([self._reject_row(env, outcome)], conn)
                return [outcome]
            except Exception as again:
                if not is_transient(again):
                    # Nothing can hold it; say so loudly (without its contents) and move on
                    # rather than block every later message behind it.
                    log.error(
                        "message could not be stored even as a rejection; dropped",
                        channel=env.channel,
                        kind=env.kind,
                        error=again.__class__.__name__,
                    )
                    return [outcome]
                attempt += 1
                self.metrics.ingest_db_retries.inc()
                await asyncio.sleep(min(self.config.retry_max.total_seconds(), 0.2 * 2**attempt))

    def _finish(self, batch: Sequence[Envelope], outcomes: Sequence[Outcome]) -> None:
        now = time.monotonic()
        stored = False
        for env, out in zip(batch, outcomes, strict=True):
            kind = env.kind or "unknown"
            if out.status == "stored":
                stored = True
                self.metrics.records_stored.labels(env.channel, kind).inc()
            elif out.status == "duplicate":
                self.metrics.records_duplicate.labels(env.channel, kind).inc()
            else:
                self.metrics.records_rejected.labels(env.channel, out.code or "invalid_field").inc()
            self.metrics.ingest_lag.labels(env.channel).observe(now - env.received)
            try:
                env.on_done(out)
            except Exception:
                log.exception("answering a message failed", channel=env.channel)
        self.committed_batches += 1
        if stored:
            self.ctx.bus.notify(bus.RECORDS)
            if any(
                out.status == "stored" and env.kind in URGENT_KINDS
                for env, out in zip(batch, outcomes, strict=True)
            ):
                self.ctx.bus.notify(bus.EVENTS)
                self.ctx.bus.hold_bulk(self.config.event_hold.total_seconds())
        for listener in self._listeners:
            listener(batch, outcomes)


def record_id_from_payload(env: Envelope) -> str | None:
    if env.kind is None or len(env.payload) > 65536:
        return None
    try:
        return _first_id(env.kind, json.loads(env.payload))
    except (ValueError, RecursionError):
        return None
