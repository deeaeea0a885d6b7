"""The daemon's HTTP face: intake API, alerts API, console, health and metrics (FastAPI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ingest.http import include_intake
from ingest.pipeline import IngestPipeline
from monitor import __version__
from monitor.context import Context
from monitor.web.alerts_api import include_alerts

#: Seconds /healthz waits for the database before it answers that it is unreachable.
HEALTH_DB_TIMEOUT = 3.0

#: The parts of the daemon report their state through this (service name -> state).
HealthReport = Callable[[], dict[str, Any]]


def create_app(
    ctx: Context,
    intake: IngestPipeline | None = None,
    health: HealthReport | None = None,
) -> FastAPI:
    """The app; `intake` takes the posted records (None: intake answers 503)."""
    app = FastAPI(
        title="labormon",
        version=__version__,
        description="劳动关系风险监测预警 — intake of wage reports, petitions and informant "
        "reports; alerts; health and metrics.",
    )
    app.state.ctx = ctx
    app.state.intake = intake

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """200 "ok" when the database answers and the broker connection is up; 503 with
        `status` "error" (the database is unreachable) or "degraded" (MQTT intake is down:
        the broker refuses or cannot be reached), and `reasons` saying why."""
        status: dict[str, Any] = {"status": "ok", "version": __version__}
        reasons: list[str] = []
        backend = "PostgreSQL" if ctx.db.is_postgres else "SQLite"
        try:
            # Bounded: during an outage the answer must come, and say why.
            async with asyncio.timeout(HEALTH_DB_TIMEOUT):
                async with ctx.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            status["database"] = "ok"
        except Exception as exc:  # any failure to reach the store is "not healthy"
            name = "timeout" if isinstance(exc, TimeoutError) else exc.__class__.__name__
            status.update(status="error", database=f"error: {name}")
            reasons.append(f"database ({backend}) unreachable: {name}")
        if health is not None:
            services = health()
            status["services"] = services
            for lane in ("mqtt", "mqtt-wages"):
                mqtt = services.get(lane)
                if isinstance(mqtt, dict) and not mqtt.get("connected"):
                    why = mqtt.get("last_error") or "connecting"
                    reasons.append(
                        f"mqtt broker {mqtt.get('broker')} not connected "
                        f"({mqtt.get('client_id')}): {why}"
                    )
                    if status["status"] == "ok":
                        status["status"] = "degraded"
        if reasons:
            status["reasons"] = reasons
        return JSONResponse(status, status_code=200 if status["status"] == "ok" else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for include in ROUTERS:
        include(app, ctx)
    return app


def _console(app: FastAPI, ctx: Context) -> None:
    from monitor.web.console.views import include

    include(app, ctx)


#: Functions that add routers to the app (intake, alerts, console). Each takes (app, ctx).
#: The console comes last: its "/" pages must not shadow the API's paths.
ROUTERS: list[Any] = [include_intake, include_alerts, _console]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpService:
    """Serves the FastAPI app with uvicorn inside the daemon's event loop."""

    name = "http"

    def __init__(
        self,
        ctx: Context,
        intake: IngestPipeline | None = None,
        health: HealthReport | None = None,
    ) -> None:
        self.ctx = ctx
        self.app = create_app(ctx, intake, health)
        http = ctx.settings.http
        config = uvicorn.Config(
            self.app,
            host=http.host,
            port=http.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="none",
        )
        self.server = _EmbeddedServer(config)

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def health(self) -> dict[str, Any]:
        return {"listening": self.ctx.settings.http.bind}

    async def run(self) -> None:
        try:
            await self.server.serve()
        except asyncio.CancelledError:
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                await self.server.shutdown()
            raise
        if not self.server.should_exit:
            raise RuntimeError(f"HTTP server on {self.ctx.settings.http.bind} stopped")
