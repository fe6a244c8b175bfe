"""Matching a dispute to a mediator: specialty, area, then the lightest load.

A mediator fits a dispute when they have the specialty it needs (`SPECIALTY_FOR`), their
area covers the place of the dispute, they are active (and so is their studio), and they
carry fewer cases than their `max_active`. Of those, the least loaded is chosen, then the
one whose area is smallest (the closest to the dispute), then by id so the choice is stable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.cases import workflow
from backend.cases.models import Case, CaseState
from backend.mediation.models import (
    CARRIED_STATES,
    SPECIALTY_FOR,
    DisputeType,
    Mediation,
    MediationState,
    Mediator,
    Studio,
)

# How many fitting mediators are tried before giving up on a race for the last places.
_CANDIDATES = 5


def load_of_mediator() -> Any:
    """The number of cases each mediator carries now (a subquery correlated to `Mediator`)."""
    return (
        select(func.count())
        .where(
            col(Mediation.mediator_id) == col(Mediator.id),
            col(Mediation.state).in_([s.value for s in CARRIED_STATES]),
        )
        .scalar_subquery()
    )


def _qualified(dispute_type: DisputeType | str, location_path: str, load: Any) -> Any:
    specialty = SPECIALTY_FOR[DisputeType(dispute_type)].value
    return (
        select(Mediator, load.label("load"))
        .outerjoin(Studio, col(Studio.id) == col(Mediator.studio_id))
        .where(
            col(Mediator.active).is_(True),
            or_(col(Mediator.studio_id).is_(None), col(Studio.active).is_(True)),
            col(Mediator.specialties).contains([specialty]),
            func.text2ltree(location_path).op("<@")(col(Mediator.region_path)),
        )
    )


def qualified(dispute_type: DisputeType | str, location_path: str) -> Any:
    """SELECT of (mediator, load) who may take the dispute, whether or not they have room:
    active, in an active studio or none, with the specialty, their area covering the place."""
    return _qualified(dispute_type, location_path, load_of_mediator())


def fitting(dispute_type: DisputeType | str, location_path: str) -> Any:
    """SELECT of mediators that fit, with their load, best first."""
    load = load_of_mediator()
    return (
        _qualified(dispute_type, location_path, load)
        .where(load < col(Mediator.max_active))
        .order_by(load, func.nlevel(col(Mediator.region_path)).desc(), col(Mediator.id))
    )


async def pick_mediator(
    session: AsyncSession,
    dispute_type: DisputeType | str,
    location_path: str,
    *,
    studio_id: uuid.UUID | None = None,
) -> Mediator | None:
    """The mediator the dispute goes to (of `studio_id` only, when given), locked, or None.

    The chosen row is locked first and its load counted afterwards in a statement of its
    own: a statement that waited for the lock still reads with the snapshot it started with,
    so counting in the same statement could miss the case another request just gave them,
    and two disputes assigned at once could both take a mediator's last place.
    """
    query = fitting(dispute_type, location_path)
    if studio_id is not None:
        query = query.where(col(Mediator.studio_id) == studio_id)
    candidates = (await session.execute(query.limit(_CANDIDATES))).all()
    for mediator, _ in candidates:
        locked = (
            await session.execute(
                select(Mediator)
                .where(col(Mediator.id) == mediator.id, col(Mediator.active).is_(True))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if locked is None:
            continue  # deactivated meanwhile
        load = (
            await session.execute(
                select(func.count()).where(
                    col(Mediation.mediator_id) == locked.id,
                    col(Mediation.state).in_([s.value for s in CARRIED_STATES]),
                )
            )
        ).scalar_one()
        if load < locked.max_active:
            return locked
    return None


async def assign(
    session: AsyncSession,
    mediation: Mediation,
    case: Case,
    mediator: Mediator,
    *,
    actor: workflow.Actor,
    at: datetime,
    note: str | None = None,
) -> None:
    """Give the mediation to `mediator` and write it on the case's timeline.

    First assignment accepts the case (submitted -> accepted); a reassignment keeps the
    state and records who had it before.
    """
    first = mediation.mediator_id is None
    data = {"mediator_id": str(mediator.id), "studio_id": str(mediator.studio_id or "")}
    if not first:
        data["previous_mediator_id"] = str(mediation.mediator_id)
    action = (
        workflow.Action.accept
        if first and case.state == CaseState.submitted
        else workflow.Action.assign
    )
    await workflow.apply(
        session,
        case,
        action,
        actor,
        note=note,
        data=data,
        changes={"assignee_id": mediator.user_id}
        | ({"accepted_at": at} if action is workflow.Action.accept else {}),
    )
    mediation.mediator_id = mediator.id
    mediation.studio_id = mediator.studio_id
    mediation.assigned_at = at
    if mediation.state in (MediationState.awaiting_consent, MediationState.awaiting_mediator):
        mediation.state = MediationState.assigned
    mediation.updated_at = at
    mediation.version += 1
    await session.flush()
