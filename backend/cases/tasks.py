"""Periodic jobs of the case engine: escalation past a deadline, closing unrated cases.

Each job takes its cases in batches with `FOR UPDATE SKIP LOCKED` and commits each batch, so
any number of workers can run side by side: a case one worker holds is skipped by the others,
and a case a worker finished no longer matches once its transaction has committed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.cases import workflow
from backend.cases.models import Case, CaseEvent, CaseKind, CaseState
from backend.cases.staff.service import RESOLUTION_STATES, RESPONSE_STATES
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.jobs import Job, alone

log = logging.getLogger("shanzhi.worker")


BATCH_SIZE = 100


SYSTEM_ACTOR = workflow.Actor(None, workflow.SYSTEM)


RESPONSE_OVERDUE = "response_overdue"


RESOLUTION_OVERDUE = "resolution_overdue"


# --- escalation --------------------------------------------------------------------------


def _escalated_for(reason: str, deadline: Any) -> Any:
    """SQL: a system escalation for this very deadline is already on the case's timeline."""
    return (
        select(col(CaseEvent.id))
        .where(
            CaseEvent.case_id == Case.id,  # type: ignore[arg-type]
            CaseEvent.action == workflow.Action.escalate.value,  # type: ignore[arg-type]
            CaseEvent.actor_role == workflow.SYSTEM,  # type: ignore[arg-type]
            CaseEvent.data["reason"].astext == reason,
            cast(CaseEvent.data["deadline"].astext, DateTime(timezone=True)) == deadline,
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
                column < at,  # type: ignore[arg-type]
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
        .order_by(col(Case.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Case)
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
        select(col(CaseEvent.case_id), col(CaseEvent.data)).where(
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
        async with alone(session, "escalate case %s", case.id) as item:
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
        if item.failed:
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
            col(Case.resolved_at) <= cutoff,
            # A mediation ends with its outcome; there is nothing to rate.
            Case.kind != CaseKind.mediation,  # type: ignore[arg-type]
        )
        .order_by(col(Case.resolved_at), col(Case.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Case.id.not_in(skip))  # type: ignore[attr-defined]
    cases = list((await session.execute(query)).scalars())
    batch = _Batch(selected=len(cases))
    for case in cases:
        async with alone(session, "close case %s", case.id) as item:
            await workflow.apply(
                session,
                case,
                workflow.Action.close,
                SYSTEM_ACTOR,
                data={"reason": "not_rated"},
                changes={"closed_at": now()},
            )
        if item.failed:
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


def jobs(settings: Settings) -> list[Job]:
    # Looked up when they run (not bound here), so a test can replace one.
    return [
        Job("escalate_overdue", "escalated", lambda session: escalate_overdue(session, now())),
        Job(
            "close_unrated",
            "closed",
            lambda session: close_unrated(session, now(), settings.case_autoclose_days),
        ),
    ]
