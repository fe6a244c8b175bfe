"""Liveness, readiness and metrics for load balancers and monitoring."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from backend.core.errors import ServiceUnavailable, problem_responses

log = logging.getLogger("shanzhi.ops")

router = APIRouter(tags=["ops"])

READY_TIMEOUT_SECONDS = 3.0


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class NotReady(ServiceUnavailable):
    code = "service.not_ready"
    message = {
        "zh-CN": "服务尚未就绪：{failed}",
        "en": "The service is not ready: {failed}",
    }


@router.get("/healthz", operation_id="health", response_model=Health)
async def health() -> Health:
    """The process is alive (says nothing of its dependencies)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readiness",
    response_model=Health,
    responses=problem_responses(NotReady),
)
async def readiness(request: Request) -> Health:
    """The database and object storage answer: safe to send traffic here."""
    state = request.app.state

    async def database() -> None:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def storage() -> None:
        await state.object_store.ping()

    checks: dict[str, str] = {}
    failed: list[str] = []
    for name, check in (("database", database), ("storage", storage)):
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as error:  # any failure means not ready; the log says which
            log.warning("readiness check %s failed: %r", name, error)
            checks[name] = "failed"
            failed.append(name)
    if failed:
        raise NotReady(failed=", ".join(failed))
    return Health(status="ok", checks=checks)


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
