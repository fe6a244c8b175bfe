"""Readiness: the database and object storage answer within a bound."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.ops.errors import NotReady
from backend.ops.schemas import Health
from backend.storage.service import ObjectStore

log = logging.getLogger("shanzhi.ops")

READY_TIMEOUT_SECONDS = 3.0


async def readiness(engine: AsyncEngine, store: ObjectStore) -> Health:
    async def database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    checks: dict[str, str] = {}
    failed: list[str] = []
    probes: tuple[tuple[str, Callable[[], Awaitable[None]]], ...] = (
        ("database", database),
        ("storage", store.ping),
    )
    for name, check in probes:
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
