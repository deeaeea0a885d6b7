"""Notifiers, one module per channel; each module has `CHANNEL` and `create(env)`.

A new channel is a new module listed in `MODULES`; the outbox looks notifiers up by the
delivery's `channel` and knows nothing else about them.
"""

from __future__ import annotations

import importlib

from monitor.alerting.notifiers.base import ComposeError, DeliveryError, Notifier, NotifierEnv

MODULES = (
    "monitor.alerting.notifiers.email",
    "monitor.alerting.notifiers.wecom",
    "monitor.alerting.notifiers.dingtalk",
    "monitor.alerting.notifiers.feishu",
    "monitor.alerting.notifiers.webhook",
    "monitor.alerting.notifiers.mqtt",
)


def build_notifiers(env: NotifierEnv) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        notifier: Notifier = module.create(env)
        notifiers[notifier.channel] = notifier
    return notifiers


__all__ = ["ComposeError", "DeliveryError", "Notifier", "NotifierEnv", "build_notifiers"]
