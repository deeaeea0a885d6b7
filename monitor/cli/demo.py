"""`labormon demo`: the whole system in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import fail


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, max=60, help="Simulated months per real minute.")
    ] = 1.0,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=1, help="Stop by itself after this many seconds."),
    ] = None,
    bind: Annotated[
        str, typer.Option("--bind", help="Console and API address.")
    ] = "127.0.0.1:8080",
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its store, broker and mail.")
    ] = Path("var/demo"),
    points: Annotated[
        int, typer.Option("--points", min=12, max=5000, help="Simulated monitoring points.")
    ] = 160,
    months_back: Annotated[
        int, typer.Option("--months-back", min=1, max=60, help="Simulated history before today.")
    ] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    keep: Annotated[
        bool, typer.Option("--keep", help="Continue the last demo instead of starting fresh.")
    ] = False,
) -> None:
    """Broker, mail sink, daemon, console and a simulated Yiyang in one process (Ctrl-C stops)."""
    from monitor.demo.broker import BrokerError
    from monitor.demo.run import DemoOptions, run_demo

    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        fail("--bind must be host:port, for example 127.0.0.1:8080")
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, int(port)))
        except OSError:
            fail(f"{bind} is in use: stop what runs there or pass --bind 127.0.0.1:8081")
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
            )
        )
    except BrokerError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
