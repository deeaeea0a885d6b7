"""The alert stage: findings in, deliveries out.

In: `findings` rows written by the detectors (and by `overdue`, which checks the
monitoring points' monthly reports). Out: `deliveries` rows, one per message, sent after
the commit by the outbox; and the `alerts` and `alert_events` rows the faces read.

| step | module |
|---|---|
| findings -> one alert per incident or risk, audit log, acknowledge, resolve | `book` |
| the loops that run the book and the deadlines (daemon services) | `service` |
| who is told at which tier, when, and again if nobody acknowledges | `escalation` |
| the county, city and province contacts and groups of a region | `contacts` |
| turning a notification into deliveries, one per contact and channel | `dispatch` |
| the Chinese message of an alert, its subject and templates | `messages`, `templates/` |
| sending deliveries after commit: leases, retries, back-off, channel health | `outbox` |
| one module per channel (email, WeCom, DingTalk, Feishu, webhook, MQTT) | `notifiers/` |
| signed single-use acknowledge links in messages | `acklinks` |
| silences that hold notifications back | `silences` |
| the county's daily digest of level IV alerts | `digest` |
| monthly wage reports not filed: findings of kind `overdue_report` | `overdue` |
| the stage's Prometheus metrics | `metrics` |

It imports the platform modules (`monitor.config`, `db`, `models`, `clock`, `bus`,
`loops`, ...) and nothing of the web face, the CLI or the daemon
(`tests/test_layers.py`).
"""
