"""The `labormon` command line (typer + rich). Output for people is in English."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="labormon",
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
)

for _module in COMMANDS:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()
