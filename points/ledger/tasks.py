"""Periodic jobs of the ledger: points past their expiry, and holds nobody settled in time.

Run by `shanzhi worker` (backend/worker.py, through `jobs(settings)`). Each job works in
batches and commits after each; rows another transaction holds are skipped (`SKIP LOCKED`)
and taken on the next run, so any number of workers can run side by side."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.clock import now
from backend.core.config import Settings
from backend.core.jobs import Job
from points.ledger import service

BATCH_SIZE = 100


# Whoever placed a hold (a redemption) settles it at its expiry themselves, with their own
# bookkeeping (stock); this job only sweeps up holds still pending a while after that.
HOLD_GRACE = timedelta(minutes=10)


async def expire_points(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """Move what is left of lots past their expiry to the expiry account; how many lots."""
    total = 0
    while True:
        expired = await service.expire_lots(session, at, limit=batch_size)
        await session.commit()
        total += expired
        if expired == 0:
            return total


async def expire_stale_holds(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """Release holds still pending `HOLD_GRACE` after their expiry; how many were."""
    total = 0
    while True:
        released = await service.expire_holds(session, at - HOLD_GRACE, limit=batch_size)
        await session.commit()
        total += released
        if released == 0:
            return total


def jobs(settings: Settings) -> list[Job]:
    return [
        Job("expire_point_holds", "holds_expired", lambda s: expire_stale_holds(s, now())),
        Job("expire_points", "lots_expired", lambda s: expire_points(s, now())),
    ]
