"""Notifiers, one module per channel; each module has `CHANNEL` and `create(env)`.

A new channel is a new module listed in `MODULES`; the outbox looks notifiers up by the
delivery's `channel` and knows nothing else about them.
"""

from __future__ import annotations

import importlib

from monitor.notifiers.base import DeliveryError, Notifier, NotifierEnv

MODULES = (
    "monitor.notifiers.email",
    "monitor.notifiers.wecom",
    "monitor.notifiers.dingtalk",
    "monitor.notifiers.feishu",
    "monitor.notifiers.webhook",
    "monitor.notifiers.mqtt",
)


def build_notifiers(env: NotifierEnv) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        notifier: Notifier = module.create(env)
        notifiers[notifier.channel] = notifier
    return notifiers


__all__ = ["DeliveryError", "Notifier", "NotifierEnv", "build_notifiers"]
