"""The one contract every notifier keeps: `async send(delivery)`, raising `DeliveryError`.

A notifier turns one outbox row into one message on its channel and knows nothing of
alerts, escalation or detectors. `permanent=True` means sending the same message again
cannot succeed (a refused recipient, a revoked webhook, a malformed message): the
delivery is marked failed and shown. Anything else is retried with backoff.

    DeliveryError
      permanent=False  connection refused, timeout, HTTP 5xx/429, SMTP 4xx, rate limits
      permanent=True   HTTP 4xx, SMTP 5xx on a recipient or the message, vendor errcodes
                       that name a configuration problem (bad key, bad signature)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from monitor.clock import Clock
from monitor.config import Settings
from monitor.db import Database
from monitor.models import Delivery


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        #: Seconds the receiver asked us to wait (HTTP Retry-After), if any.
        self.retry_after = retry_after


class ComposeError(DeliveryError):
    """The message itself could not be built (a header it refuses, a template that
    fails): sending it again cannot succeed, so it is permanent, and it is an operator's
    alarm (`labormon_delivery_compose_errors`, the alert's timeline), not a retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@contextlib.contextmanager
def composing(channel: str) -> Iterator[None]:
    """Turn any error while building a message into a `ComposeError`."""
    try:
        yield
    except DeliveryError:
        raise
    except Exception as exc:
        raise ComposeError(
            f"{channel}: could not compose the message: {exc.__class__.__name__}: {exc}"[:500]
        ) from exc


@runtime_checkable
class Notifier(Protocol):
    #: The `deliveries.channel` value this notifier sends.
    channel: str

    async def send(self, delivery: Delivery) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class NotifierEnv:
    """What notifiers may use: settings, the database (attachments), the clock, and one
    shared HTTP client (tests pass one with a transport of their own)."""

    settings: Settings
    db: Database
    clock: Clock
    http: httpx.AsyncClient


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for these services, the backoff covers it


def check_http_status(response: httpx.Response, service: str) -> None:
    """Raise for an HTTP failure: 408/425/429/5xx are transient, other 4xx permanent."""
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"{service} answered HTTP {status}: {response.text[:200]}"
    if status in (408, 425, 429) or status >= 500:
        raise DeliveryError(reason, retry_after=retry_after_seconds(response))
    raise DeliveryError(reason, permanent=True)


def json_body(response: httpx.Response, service: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise DeliveryError(f"{service} answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise DeliveryError(f"{service} answered with unexpected JSON")
    return data


async def post_json(
    env: NotifierEnv,
    url: str,
    payload: dict[str, Any],
    service: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """POST with the outbox's timeout; network failures are transient DeliveryErrors."""
    timeout = env.settings.alerting.outbox.http_timeout.total_seconds()
    try:
        if content is not None:
            return await env.http.post(url, content=content, headers=headers, timeout=timeout)
        return await env.http.post(url, json=payload, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"{service}: timed out ({exc.__class__.__name__})") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{service}: {exc.__class__.__name__}: {exc}") from exc
