"""Periodic jobs of the volunteers domain: activities past their end are finished.

Run by `shanzhi worker` (backend/worker.py, through `jobs(settings)`). A published activity
whose end plus the check-out grace has passed is finished in a transaction of its own,
claimed with `FOR UPDATE SKIP LOCKED`: any number of workers can run side by side, and an
activity a request is changing right now is skipped and looked at again next run. Finishing
records the no-shows (the same rule as the staff `finish`: `activities.finish_locked`)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from backend.core.config import Settings
from backend.core.jobs import Job
from volunteers.activities import service
from volunteers.models import Activity, ActivityState

log = logging.getLogger("shanzhi.worker")


BATCH_SIZE = 100


@dataclass
class FinishCounts:
    activities: int = 0
    no_shows: int = 0
    to_review: int = 0
    waitlist_released: int = 0


async def _claim(
    session: AsyncSession, activity_id: uuid.UUID, cutoff: datetime
) -> Activity | None:
    """The activity, locked, if it is still published and due, and nobody else holds it."""
    return (
        await session.execute(
            select(Activity)
            .where(
                col(Activity.id) == activity_id,
                col(Activity.state) == ActivityState.published.value,
                col(Activity.ends_at) <= cutoff,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def finish_due_activities(
    session: AsyncSession,
    at: datetime,
    *,
    grace_minutes: int,
    batch_size: int = BATCH_SIZE,
) -> FinishCounts:
    """Finish published activities that ended more than `grace_minutes` before `at` (the
    check-out grace: volunteers may still check out until then). Commits after each one.
    Running it again changes nothing: a finished activity is no longer published."""
    cutoff = at - timedelta(minutes=grace_minutes)
    counts = FinishCounts()
    skip: set[uuid.UUID] = set()
    while True:
        query = (
            select(col(Activity.id))
            .where(
                col(Activity.state) == ActivityState.published.value,
                col(Activity.ends_at) <= cutoff,
            )
            .order_by(col(Activity.ends_at), col(Activity.id))
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        if skip:
            query = query.where(col(Activity.id).not_in(skip))
        batch = list((await session.execute(query)).scalars())
        # Only a list of candidates: each is claimed again in its own transaction below.
        await session.rollback()
        for activity_id in batch:
            try:
                activity = await _claim(session, activity_id, cutoff)
                if activity is None:
                    skip.add(activity_id)
                    await session.rollback()
                    continue
                outcome = await service.finish_locked(session, activity, at)
                await session.commit()
            except Exception:
                # One broken activity must not hold up the others; tried again next run.
                log.exception("could not finish activity %s", activity_id)
                await session.rollback()
                skip.add(activity_id)
                continue
            skip.add(activity_id)
            counts.activities += 1
            counts.no_shows += outcome.no_shows
            counts.to_review += outcome.to_review
            counts.waitlist_released += outcome.waitlist_released
        if len(batch) < batch_size:
            break
    log.info(
        "volunteers: %d activities finished, %d no-shows, %d attendance to review, "
        "%d waiting released",
        counts.activities,
        counts.no_shows,
        counts.to_review,
        counts.waitlist_released,
        extra={
            "activities_finished": counts.activities,
            "no_shows": counts.no_shows,
            "attendance_to_review": counts.to_review,
            "waitlist_released": counts.waitlist_released,
        },
    )
    return counts


async def _finish_job(session: AsyncSession, grace_minutes: int) -> int:
    counts = await finish_due_activities(session, now(), grace_minutes=grace_minutes)
    return counts.activities


def jobs(settings: Settings) -> list[Job]:
    grace = settings.volunteer_checkin_grace_minutes
    return [Job("finish_activities", "activities_finished", lambda s: _finish_job(s, grace))]
