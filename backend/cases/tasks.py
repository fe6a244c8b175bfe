"""Periodic jobs of the case engine, and the worker loop that runs them (`shanzhi worker`).

Each job takes its cases in batches with `FOR UPDATE SKIP LOCKED` and commits each batch, so
any number of workers can run side by side: a case one worker holds is skipped by the others,
and a case a worker finished no longer matches once its transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.cases import workflow
from backend.cases.models import Case, CaseEvent, CaseKind, CaseState
from backend.cases.workbench import RESOLUTION_STATES, RESPONSE_STATES
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.mediation import tasks as mediation_tasks
from backend.storage import service as storage_service
from backend.storage.service import ObjectStore
from points import tasks as points_tasks
from volunteers import tasks as volunteers_tasks

log = logging.getLogger("shanzhi.worker")

BATCH_SIZE = 100
SYSTEM_ACTOR = workflow.Actor(None, workflow.SYSTEM)
RESPONSE_OVERDUE = "response_overdue"
RESOLUTION_OVERDUE = "resolution_overdue"


# --- escalation --------------------------------------------------------------------------


def _escalated_for(reason: str, deadline: Any) -> Any:
    """SQL: a system escalation for this very deadline is already on the case's timeline."""
    return (
        select(CaseEvent.id)
        .where(
            CaseEvent.case_id == Case.id,  # type: ignore[arg-type]
            CaseEvent.action == workflow.Action.escalate.value,  # type: ignore[arg-type]
            CaseEvent.actor_role == workflow.SYSTEM,  # type: ignore[arg-type]
            CaseEvent.data["reason"].astext == reason,  # type: ignore[index]
            cast(CaseEvent.data["deadline"].astext, DateTime(timezone=True)) == deadline,  # type: ignore[index]
        )
        .exists()
    )


def _as_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _overdue_reason(case: Case, at: datetime) -> tuple[str, datetime] | None:
    state = CaseState(case.state)
    if state in RESPONSE_STATES and case.response_due_at < at:
        return RESPONSE_OVERDUE, case.response_due_at
    if state in RESOLUTION_STATES and case.resolution_due_at < at:
        return RESOLUTION_OVERDUE, case.resolution_due_at
    return None


@dataclass
class _Batch:
    selected: int = 0
    done: int = 0


async def _escalate_batch(
    session: AsyncSession, at: datetime, limit: int, skip: set[uuid.UUID]
) -> _Batch:
    conditions = []
    for reason, column in (
        (RESPONSE_OVERDUE, Case.response_due_at),
        (RESOLUTION_OVERDUE, Case.resolution_due_at),
    ):
        states = RESPONSE_STATES if reason == RESPONSE_OVERDUE else RESOLUTION_STATES
        conditions.append(
            and_(
                Case.state.in_(states),  # type: ignore[attr-defined]
                column < at,
                ~_escalated_for(reason, column),
            )
        )
    query = (
        select(Case)
        .where(
            or_(*conditions),
            # A case queued at the top (the city) has nowhere higher to go.
            func.nlevel(Case.queue_path) > 1,
            # Mediation keeps its own time limit (consent, then the mediation's own).
            Case.kind != CaseKind.mediation,  # type: ignore[arg-type]
        )
        .order_by(Case.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Case)  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Case.id.not_in(skip))  # type: ignore[attr-defined]
    cases = list((await session.execute(query)).scalars())
    batch = _Batch(selected=len(cases))
    if not cases:
        return batch
    # The rows are ours now. Another worker may have escalated some of them and committed
    # after this statement's snapshot was taken: a fresh statement sees its events.
    ids = [case.id for case in cases]
    done_rows = await session.execute(
        select(CaseEvent.case_id, CaseEvent.data).where(
            CaseEvent.case_id.in_(ids),  # type: ignore[attr-defined]
            CaseEvent.action == workflow.Action.escalate.value,  # type: ignore[arg-type]
            CaseEvent.actor_role == workflow.SYSTEM,  # type: ignore[arg-type]
        )
    )
    already = {
        (case_id, data.get("reason"), _as_time(data.get("deadline")))
        for case_id, data in done_rows.all()
    }
    for case in cases:
        overdue = _overdue_reason(case, at)
        target = workflow.parent_of(case.queue_path)
        if overdue is None or target is None or (case.id, *overdue) in already:
            # Not this run's to do after all; keep it out of the next batches.
            skip.add(case.id)
            continue
        reason, deadline = overdue
        try:
            async with session.begin_nested():
                await workflow.apply(
                    session,
                    case,
                    workflow.Action.escalate,
                    SYSTEM_ACTOR,
                    data={
                        "reason": reason,
                        "from": case.queue_path,
                        "to": target,
                        "deadline": deadline.isoformat(),
                    },
                    changes={"queue_path": target, "escalation_level": case.escalation_level + 1},
                )
        except Exception:
            # One broken case must not hold up the others; it is tried again next run.
            log.exception("could not escalate case %s", case.id)
            skip.add(case.id)
            continue
        batch.done += 1
    return batch


async def escalate_overdue(
    session: AsyncSession, at: datetime, *, batch_size: int = BATCH_SIZE
) -> int:
    """Escalate cases past a deadline to the region above their queue; how many were.

    A case is overdue when it is past its response deadline while submitted or reopened,
    or past its resolution deadline while accepted or in progress. Each missed deadline
    escalates once: the system `escalate` event records the deadline it was for (with
    `reason` response_overdue or resolution_overdue, `from` and `to`), and a case with
    such an event for its current deadline is left alone. Commits after each batch.
    """
    total = 0
    skip: set[uuid.UUID] = set()
    while True:
        batch = await _escalate_batch(session, at, batch_size, skip)
        await session.commit()
        total += batch.done
        if batch.selected < batch_size:
            return total


# --- closing unrated cases ---------------------------------------------------------------


async def _close_batch(
    session: AsyncSession, cutoff: datetime, limit: int, skip: set[uuid.UUID]
) -> _Batch:
    query = (
        select(Case)
        .where(
            Case.state == CaseState.resolved,  # type: ignore[arg-type]
            Case.rating.is_(None),  # type: ignore[union-attr]
            Case.resolved_at <= cutoff,  # type: ignore[operator]
            # A mediation ends with its outcome; there is nothing to rate.
            Case.kind != CaseKind.mediation,  # type: ignore[arg-type]
        )
        .order_by(Case.resolved_at, Case.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Case.id.not_in(skip))  # type: ignore[attr-defined]
    cases = list((await session.execute(query)).scalars())
    batch = _Batch(selected=len(cases))
    for case in cases:
        try:
            async with session.begin_nested():
                await workflow.apply(
                    session,
                    case,
                    workflow.Action.close,
                    SYSTEM_ACTOR,
                    data={"reason": "not_rated"},
                    changes={"closed_at": now()},
                )
        except Exception:
            log.exception("could not close case %s", case.id)
            skip.add(case.id)
            continue
        batch.done += 1
    return batch


async def close_unrated(
    session: AsyncSession, at: datetime, days: int, *, batch_size: int = BATCH_SIZE
) -> int:
    """Close resolved cases nobody rated within `days` of their resolution; how many were.

    Each gets a system `close` event. Commits after each batch.
    """
    cutoff = at - timedelta(days=days)
    total = 0
    skip: set[uuid.UUID] = set()
    while True:
        batch = await _close_batch(session, cutoff, batch_size, skip)
        await session.commit()
        total += batch.done
        if batch.selected < batch_size:
            return total


# --- uploads nobody used -----------------------------------------------------------------


async def purge_uploads(session: AsyncSession, store: ObjectStore) -> int:
    """Remove unattached uploads, one committed batch at a time; how many were."""
    total = 0
    while True:
        removed = await storage_service.purge_unattached(session, store)
        await session.commit()
        total += removed
        if removed == 0:
            return total


# --- the loop ----------------------------------------------------------------------------

Job = Callable[[AsyncSession], Awaitable[int]]


async def run_jobs(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    store: ObjectStore | None,
) -> bool:
    """Run every job once, each in its own session; False if any of them failed."""
    jobs: list[tuple[str, str, Job]] = [
        ("escalate_overdue", "escalated", lambda session: escalate_overdue(session, now())),
        (
            "close_unrated",
            "closed",
            lambda session: close_unrated(session, now(), settings.case_autoclose_days),
        ),
    ]
    if store is not None:
        jobs.append(("purge_uploads", "purged", lambda session: purge_uploads(session, store)))
    jobs.extend(points_tasks.jobs(settings))
    jobs.extend(volunteers_tasks.jobs(settings))
    jobs.extend(mediation_tasks.jobs(settings))
    healthy = True
    counts: dict[str, int | None] = {}
    for name, verb, job in jobs:
        try:
            async with factory() as session:
                counts[verb] = await job(session)
        except Exception:
            log.exception("job %s failed; it runs again next time", name)
            counts[verb] = None
            healthy = False
    # One line per run: how many cases each job handled ("failed" for a job that broke).
    log.info(
        "worker run: %s",
        ", ".join(f"{name} {'failed' if n is None else n}" for name, n in counts.items()),
        extra={"counts": counts},
    )
    return healthy


async def run_worker(settings: Settings, *, once: bool, interval: float) -> bool:
    """Run the jobs every `interval` seconds until SIGINT or SIGTERM (or once).

    A signal stops the loop between runs or cuts the wait short; a run in progress is
    cancelled, and its open batch rolls back (what it already committed stays).
    Answers whether the last run succeeded.
    """
    assert settings.database_url
    engine = create_engine(settings.database_url, pool_size=2)
    factory = create_sessionmaker(engine)
    store = ObjectStore(settings) if settings.s3_endpoint else None
    if store is None:
        log.info("no S3 endpoint configured: unattached uploads are not purged")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    healthy = True
    try:
        while not stop.is_set():
            run = asyncio.create_task(run_jobs(factory, settings, store))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                break
            stopped.cancel()
            healthy = run.result()
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await engine.dispose()
    log.info("worker stopped")
    return healthy
