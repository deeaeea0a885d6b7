"""Structured logs (structlog) in English, with personal data removed before output."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from monitor.privacy import PERSONAL_KEYS

#: Also never logged in clear: who an informant is, even by account id.
_REDACT = PERSONAL_KEYS | {"informant_id", "name", "email"}


def redact_personal_data(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in _REDACT and event[key] is not None:
            event[key] = "[redacted]"
    return event


#: Keys the log machinery adds to every event. A caller's field of the same name (an
#: alert's `level`, a record's `timestamp`) is kept under `<key>_` rather than overwritten.
_OWN_KEYS = ("level", "timestamp", "logger")


def keep_callers_fields(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _OWN_KEYS:
        if key in event:
            event[f"{key}_"] = event.pop(key)
    return event


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of the call, not at configure time
    (test runners and the CLI's runner swap it and close the old one)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog (and stdlib logging of libraries) once per process."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            keep_callers_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=max(numeric, logging.WARNING),
        stream=sys.stderr,
        format="%(name)s %(levelname)s %(message)s",
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
