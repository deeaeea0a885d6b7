"""HTTP intake: `POST /api/v1/wages|petitions|reports` with a bearer token per account.

The body is validated by the same models and rules as MQTT and file import (in JSON a
number must be a number), so it is read raw rather than through FastAPI's own (lax)
body parsing; the OpenAPI document still shows each record's schema.

Answers: 201 stored, 200 duplicate (already stored with the same contents), 422 with
field errors, 401 unknown or revoked token, 403 a token that may not speak for the
sender named in the body (or for this kind of record), 413 too large, 503 while the
database cannot take the message. A refused body is kept in `rejected_messages` like
any other rejection (401s are not: anyone could fill the table with them).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ingest.pipeline import REASON_TEXT_ZH, Envelope, IngestPipeline, Outcome
from ingest.topics import KIND_LABEL, KIND_SEGMENT, SENDER_KIND
from monitor.context import Context
from monitor.db import is_transient
from monitor.logging import get_logger
from monitor.records import RECORD_TYPES, FieldError

log = get_logger("labormon.http")


class Receipt(BaseModel):
    """What a stored (201) or already stored (200) record gets back."""

    status: str = Field(description="stored | duplicate")
    kind: str = Field(description="wage | petition | report")
    id: str = Field(description="The record's own id.")


class FieldProblem(BaseModel):
    loc: list[str] = Field(description='Where: ["body", field] or ["body"].')
    msg: str
    type: str = Field(description="A reason code: invalid_field, missing_field, conflict, ...")


class Refusal(BaseModel):
    """Why a body was refused (422, 403): FastAPI's `detail` list plus a reason code."""

    code: str
    message: str = Field(description="The reason in Chinese, for the person who sent it.")
    detail: list[FieldProblem]


def _refusal(status: int, outcome_code: str, errors: list[FieldError], zh: str) -> JSONResponse:
    body = Refusal(
        code=outcome_code,
        message=zh,
        detail=[
            FieldProblem(
                loc=["body", *(e.field.split(".") if e.field else [])],
                msg=e.reason,
                type=outcome_code,
            )
            for e in errors
        ],
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _pipeline(request: Request) -> IngestPipeline | None:
    """The pipeline the app was built with (None: intake is off, answered with 503)."""
    return getattr(request.app.state, "intake", None)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (without reading all of it)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _database_unavailable() -> JSONResponse:
    return JSONResponse(
        {"detail": "the database is unavailable; nothing was stored, retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


#: Documents the scheme in OpenAPI; a missing token is answered 401 here, not by FastAPI.
BEARER = HTTPBearer(auto_error=False, description="The account's token (`labormon accounts add`).")


def _endpoint(ctx: Context, kind: str) -> Any:
    wanted_account = SENDER_KIND[kind]
    limit = ctx.settings.mqtt.max_payload_bytes
    path = f"/api/v1/{KIND_SEGMENT[kind]}"
    metrics = ctx.metrics

    async def intake(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(BEARER),
    ) -> JSONResponse:
        pipeline = _pipeline(request)
        if pipeline is not None and pipeline.database_unavailable:
            # Nothing can be stored (or even the token checked) until it is back.
            return _database_unavailable()
        token = credentials.credentials.strip() if credentials is not None else ""
        try:
            account = await ctx.accounts.by_token(token) if token else None
        except Exception as exc:
            if not is_transient(exc):
                raise
            return _database_unavailable()
        if account is None:
            metrics.records_rejected.labels("http", "unauthorized").inc()
            return _refusal(
                401,
                "unauthorized",
                [FieldError(None, "missing, unknown or revoked bearer token")],
                "令牌无效或已停用",
            )
        if pipeline is None:
            return JSONResponse({"detail": "intake is not running"}, status_code=503)
        if pipeline.http_overloaded:
            return JSONResponse(
                {"detail": "too many requests waiting; retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        body = await _read_limited(request, limit)
        if body is None:
            metrics.records_rejected.labels("http", "too_large").inc()
            return _refusal(
                413,
                "too_large",
                [FieldError(None, f"body exceeds {limit} bytes")],
                REASON_TEXT_ZH["too_large"],
            )
        env = Envelope(channel="http", origin=path, kind=kind, sender=account.id, payload=body)
        if account.kind != wanted_account:
            env.refuse(
                "forbidden",
                FieldError(
                    None,
                    f"a {account.kind} account may not submit {KIND_LABEL[kind]} "
                    f"(that takes a {wanted_account} account)",
                ),
            )
        try:
            outcome = await pipeline.submit_and_wait(env)
        except TimeoutError:
            return JSONResponse(
                {"detail": "the database did not take the record in time; retry later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return _answer(kind, outcome)

    intake.__name__ = f"submit_{KIND_SEGMENT[kind]}"
    return intake


def _answer(kind: str, outcome: Outcome) -> JSONResponse:
    if outcome.status in {"stored", "duplicate"}:
        receipt = Receipt(status=outcome.status, kind=kind, id=outcome.record_id or "")
        status = 201 if outcome.status == "stored" else 200
        return JSONResponse(receipt.model_dump(), status_code=status)
    code = outcome.code or "invalid_field"
    status = 403 if code in {"id_mismatch", "forbidden"} else 422
    return _refusal(status, code, list(outcome.errors), REASON_TEXT_ZH.get(code, "提交被拒绝"))


_DESCRIPTIONS = {
    "wage": "A monitoring point's monthly wage report (劳动关系监测点月度报告); "
    "the token must be that point's account.",
    "petition": "A petition (信访 / 12351 / online); the token must be a petition source's "
    "account. An optional `source_id` in the body must name that account.",
    "report": "An informant's report (信息员报告); the token must be that informant's account.",
}


def include_intake(app: FastAPI, ctx: Context) -> None:
    """Add the intake routes (listed in `monitor.web.app.ROUTERS`)."""
    router = APIRouter(prefix="/api/v1", tags=["intake"])
    for kind in ("wage", "petition", "report"):
        model = RECORD_TYPES[kind]
        router.add_api_route(
            f"/{KIND_SEGMENT[kind]}",
            _endpoint(ctx, kind),
            methods=["POST"],
            status_code=201,
            summary=f"Submit {KIND_LABEL[kind]}",
            description=_DESCRIPTIONS[kind],
            response_model=Receipt,
            responses={
                200: {"model": Receipt, "description": "Already stored with the same contents."},
                401: {"model": Refusal, "description": "Missing, unknown or revoked token."},
                403: {"model": Refusal, "description": "The token may not speak for this sender."},
                413: {"model": Refusal, "description": "Body too large."},
                422: {"model": Refusal, "description": "Field errors."},
                503: {"description": "The database is unavailable; retry later."},
            },
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": model.model_json_schema()}},
                }
            },
        )
    app.include_router(router)
