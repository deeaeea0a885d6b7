"""`labormon demo`: the whole system in one command."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from monitor.cli.common import fail
from monitor.config import ConfigError, Settings, load_settings


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def base_settings(config: Path | None, db: str | None) -> Settings:
    """The settings the demo starts from (--config or LABORMON_CONFIG, the LABORMON_*
    variables), checked now so that a bad file or value is one line and exit 2."""
    overrides: dict[str, Any] = {"database": {"url": db}} if db else {}
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"config file {exc.filename or config}: {exc.strerror or exc}")


def check_bind(bind: str, option: str) -> None:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        fail(f"{option} must be host:port, for example 127.0.0.1:8080")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        try:
            sock.bind((host, int(port)))
        except OSError:
            fail(f"{bind} is in use: stop what runs there or pass --bind 127.0.0.1:8081")


def demo_command(
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, max=60, help="Simulated months per real minute.")
    ] = 1.0,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=1, help="Stop by itself after this many seconds."),
    ] = None,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            help="Console and API address (default: http.bind of --config or "
            "LABORMON_HTTP_BIND, else 127.0.0.1:8080).",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its store, broker and mail.")
    ] = Path("var/demo"),
    points: Annotated[
        int | None,
        typer.Option(
            "--points",
            min=12,
            max=20000,
            help="Simulated monitoring points (default 160 for a city, 1000 for a province).",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str,
        typer.Option(
            "--region",
            help="GB/T 2260 code of the simulated region and the demo's scope: a city "
            "(430900 Yiyang) or a province (430000 Hunan: 14 cities, 122 counties).",
        ),
    ] = "430900",
    months_back: Annotated[
        int, typer.Option("--months-back", min=1, max=60, help="Simulated history before today.")
    ] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    keep: Annotated[
        bool, typer.Option("--keep", help="Continue the last demo instead of starting fresh.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Base settings (TOML) the demo overrides: its own broker, mail sink, store "
            "and secret. Env: LABORMON_CONFIG.",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="The demo's store (default: SQLite in --dir; LABORMON_DB is not used, so "
            "that a demo never writes into a production database).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Broker, mail sink, daemon, console and a simulated region (default Yiyang; --region
    430000 for all Hunan) in one process (Ctrl-C stops)."""
    from monitor.demo.broker import BrokerError
    from monitor.demo.run import DemoError, DemoOptions, run_demo
    from monitor.regions import PROVINCE, UnknownRegion, catalogue, tier_of

    try:
        catalogue().get(region)
    except UnknownRegion as exc:
        fail(f"--region: {exc}")
    if points is None:
        points = 1000 if tier_of(region) == PROVINCE else 160
    base = base_settings(config, db)
    if bind is None:
        check_bind(base.http.bind, "http.bind")
        bind = base.http.bind
    else:
        check_bind(bind, "--bind")
    try:
        run_demo(
            DemoOptions(
                directory=directory,
                bind=bind,
                speed=speed,
                months_back=months_back,
                points=points,
                seed=seed,
                duration=duration,
                keep=keep,
                config=config,
                db=db,
                region=region,
            )
        )
    except (BrokerError, DemoError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
