"""The `labormon` command line (typer + rich). Output for people is in English."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

try:  # typer 0.2x carries its own copy of click, whose exceptions its parser raises
    from typer._click.exceptions import NoArgsIsHelpError, NoSuchOption, UsageError
except ImportError:  # pragma: no cover - older typer on the separate click package
    from click.exceptions import (  # type: ignore[assignment]
        NoArgsIsHelpError,
        NoSuchOption,
        UsageError,
    )
from typer.core import TyperGroup


def usage_line(exc: UsageError) -> str:
    """A usage error as one line (interfaces §4): what is wrong, and where the help is."""
    if isinstance(exc, NoSuchOption):
        message = exc.message
        if exc.possibilities:
            message += f"; did you mean {' or '.join(sorted(exc.possibilities))}?"
    else:
        message = exc.format_message()
    message = " ".join(message.split())
    command = exc.ctx.command_path if exc.ctx is not None else "labormon"
    return f"labormon: error: {message} (try {command} --help)"


class OneLineUsageErrors(TyperGroup):
    """The top-level group: every usage error anywhere below it (unknown command or
    option, bad or missing value) is one line on stderr and exit 2, instead of click's
    Usage/Try/Error box. `--help` and a bare group name (which shows the help) are left
    as they are."""

    def _one_line(self, exc: UsageError) -> typer.Exit:
        print(usage_line(exc), file=sys.stderr)
        return typer.Exit(exc.exit_code)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise self._one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise self._one_line(exc) from None


app = typer.Typer(
    name="labormon",
    cls=OneLineUsageErrors,
    help="Labor-relations risk monitoring and alerting for trade unions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Command modules; each has `register(app)`.
COMMANDS = (
    "monitor.cli.data",
    "monitor.cli.accounts",
    "monitor.cli.daemon",
    "monitor.cli.demo",
    "monitor.cli.dashboards",
    "monitor.cli.report",
    "monitor.cli.mqtt",
    "monitor.cli.alerts",
    "monitor.cli.detect",
    "monitor.cli.ops",
    "monitor.cli.doctor",
    "monitor.cli.regions",
)

for _module in COMMANDS:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()
