"""What the group-robot notifiers share: finding the group's configuration (its secret
stays in the configuration file, never in the database) and vendor error codes."""

from __future__ import annotations

from monitor.alerting.notifiers.base import DeliveryError, NotifierEnv
from monitor.config import GroupConfig
from monitor.models import Delivery


def group_of(env: NotifierEnv, delivery: Delivery) -> GroupConfig | None:
    """The configured group a delivery is for (None for personal webhooks)."""
    recipient = delivery.recipient or ""
    if not recipient.startswith("group:"):
        return None
    group_id = recipient.removeprefix("group:")
    for group in env.settings.alerting.groups:
        if group.id == group_id:
            return group
    raise DeliveryError(
        f"group {group_id} is no longer in [[alerting.groups]]; message not sent", permanent=True
    )


def mention_all(group: GroupConfig | None, delivery: Delivery) -> bool:
    if group is None:
        return False
    levels = {item.get("level") for item in (delivery.body or {}).get("items") or []}
    return bool(levels & set(group.mention_all))


def vendor_error(service: str, code: int, message: str, transient_codes: set[int]) -> DeliveryError:
    """An errcode in an HTTP 200 answer: rate limits and "busy" are retried, everything
    else (bad key, bad signature, keyword or IP rules, malformed message) is a
    configuration problem that retrying cannot fix."""
    return DeliveryError(
        f"{service} errcode {code}: {message[:200]}", permanent=code not in transient_codes
    )
