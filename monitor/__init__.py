"""labormon core: configuration, storage, alerting, escalation, notifiers, API and CLI."""

__version__ = "0.1.0"
