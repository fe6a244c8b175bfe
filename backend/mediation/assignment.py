"""Matching a dispute to a mediator: specialty, area, then the lightest load.

A mediator fits a dispute when they have the specialty it needs (`SPECIALTY_FOR`), their
area covers the place of the dispute, they are active (and so is their studio), and they
carry fewer cases than their `max_active`. Of those, the least loaded is chosen, then the
one whose area is smallest (the closest to the dispute), then by id so the choice is stable.
"""

from __future__ import annotations

import uuid
from datetime import datetime

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


def _load() -> object:
    """The number of cases each mediator carries now (a correlated subquery)."""
    return (
        select(func.count())
        .where(
            col(Mediation.mediator_id) == col(Mediator.id),
            col(Mediation.state).in_([s.value for s in CARRIED_STATES]),
        )
        .scalar_subquery()
    )


def fitting(dispute_type: DisputeType | str, location_path: str) -> object:
    """SELECT of mediators that fit, with their load, best first."""
    specialty = SPECIALTY_FOR[DisputeType(dispute_type)].value
    load = _load()
    return (
        select(Mediator, load.label("load"))  # type: ignore[attr-defined]
        .outerjoin(Studio, col(Studio.id) == col(Mediator.studio_id))
        .where(
            col(Mediator.active).is_(True),
            or_(col(Mediator.studio_id).is_(None), col(Studio.active).is_(True)),
            col(Mediator.specialties).contains([specialty]),
            func.text2ltree(location_path).op("<@")(col(Mediator.region_path)),
            load < col(Mediator.max_active),
        )
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

    The chosen row is locked and its load counted again, so two disputes assigned at once
    cannot both take a mediator's last place.
    """
    query = fitting(dispute_type, location_path)
    if studio_id is not None:
        query = query.where(col(Mediator.studio_id) == studio_id)  # type: ignore[attr-defined]
    candidates = (await session.execute(query.limit(_CANDIDATES))).all()  # type: ignore[attr-defined]
    for mediator, _ in candidates:
        locked = (
            await session.execute(
                select(Mediator, _load().label("load"))  # type: ignore[attr-defined]
                .where(col(Mediator.id) == mediator.id)
                .with_for_update(of=Mediator)
                .execution_options(populate_existing=True)
            )
        ).first()
        if locked is not None and locked[1] < locked[0].max_active:
            return locked[0]  # type: ignore[no-any-return]
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
