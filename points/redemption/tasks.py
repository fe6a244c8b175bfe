"""Periodic jobs of the rewards side: reservations nobody picked up expire.

Run by `shanzhi worker` (backend/worker.py, through `jobs(settings)`). Each redemption
expires in a transaction of its own, claimed with `FOR UPDATE SKIP LOCKED`: any number of
workers can run side by side, a redemption a member is cancelling (or staff are fulfilling)
right now is skipped and looked at again next run, and the job never holds the locks of one
member's accounts while it waits for another's, which is what could deadlock against the
requests of the app."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from backend.core.config import Settings
from backend.core.jobs import Job
from points.models import Redemption, RedemptionState
from points.redemption import service

log = logging.getLogger("shanzhi.worker")


BATCH_SIZE = 100


async def _claim(
    session: AsyncSession, redemption_id: uuid.UUID, at: datetime
) -> Redemption | None:
    """The redemption, locked, if it is still pending and due, and nobody else holds it."""
    return (
        await session.execute(
            select(Redemption)
            .where(
                col(Redemption.id) == redemption_id,
                col(Redemption.state) == RedemptionState.pending,
                col(Redemption.expires_at) <= at,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def expire_redemptions(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """Expire pending redemptions past their pickup time; how many were.

    Each gives its reserved stock back and releases its hold (the points return to the
    member), and becomes `expired`. Commits after each one.
    """
    total = 0
    skip: set[uuid.UUID] = set()
    while True:
        query = (
            select(col(Redemption.id))
            .where(
                col(Redemption.state) == RedemptionState.pending,
                col(Redemption.expires_at) <= at,
            )
            .order_by(col(Redemption.expires_at), col(Redemption.id))
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        if skip:
            query = query.where(col(Redemption.id).not_in(skip))
        batch = list((await session.execute(query)).scalars())
        # Only a list of candidates: each is claimed again in its own transaction below.
        await session.rollback()
        for redemption_id in batch:
            try:
                redemption = await _claim(session, redemption_id, at)
                if redemption is None:
                    skip.add(redemption_id)
                    await session.rollback()
                    continue
                await service.expire_redemption(session, redemption, at)
                await session.commit()
            except Exception:
                # One broken redemption must not hold up the others; tried again next run.
                log.exception("could not expire redemption %s", redemption_id)
                await session.rollback()
                skip.add(redemption_id)
                continue
            total += 1
        if len(batch) < batch_size:
            return total


def jobs(settings: Settings) -> list[Job]:
    return [
        Job(
            "expire_redemptions",
            "redemptions_expired",
            lambda session: expire_redemptions(session, now()),
        )
    ]
