"""Liveness, readiness and metrics for load balancers and monitoring."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.core.deps import EngineDep, StoreDep
from backend.core.errors import problem_responses
from backend.ops import errors, service
from backend.ops.schemas import Health

router = APIRouter(tags=["ops"])


@router.get("/healthz", operation_id="health", response_model=Health)
async def health() -> Health:
    """The process is alive (says nothing of its dependencies)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readiness",
    response_model=Health,
    responses=problem_responses(*errors.READINESS_ERRORS),
)
async def readiness(engine: EngineDep, store: StoreDep) -> Health:
    """The database and object storage answer: safe to send traffic here."""
    return await service.readiness(engine, store)


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
