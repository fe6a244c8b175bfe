"""Who may see a mediation, resolved inside the query: its parties, its mediator, and
admins of regions above it. Nobody else learns that it exists (404), not even staff of the
region or a mediator of another case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal, region_scope
from backend.cases.models import Case
from backend.mediation.errors import MediationNotFound
from backend.mediation.models import Consent, Mediation, MediationParty, Mediator, PartyRole

# Supervise mediation in their regions: see every case, its minutes, reassign, escalate.
SUPERVISORS: tuple[Role, ...] = (Role.admin,)


class Viewer(StrEnum):
    """How the caller stands to a mediation (what they may see follows from it)."""

    applicant = "applicant"
    respondent = "respondent"
    mediator = "mediator"
    supervisor = "supervisor"


@dataclass(frozen=True)
class Seen:
    mediation: Mediation
    case: Case
    viewer: Viewer
    party: MediationParty | None  # the caller's party row, when a party


def _is_party(principal: Principal) -> ColumnElement[bool]:
    # A respondent who declined is no longer a party to what follows.
    return exists().where(
        col(MediationParty.case_id) == col(Mediation.case_id),
        col(MediationParty.user_id) == principal.user_id,
        col(MediationParty.consent) != Consent.declined.value,
    )


def _is_mediator(principal: Principal) -> ColumnElement[bool]:
    return exists().where(
        col(Mediator.id) == col(Mediation.mediator_id),
        col(Mediator.user_id) == principal.user_id,
    )


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on `Mediation`: the caller is a party, its mediator, or a supervisor
    of a region above it."""
    return or_(
        _is_party(principal),
        _is_mediator(principal),
        region_scope(Mediation.region_path, principal, SUPERVISORS),
    )


async def visible_mediation(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Seen:
    """The mediation and how the caller stands to it; 404 when they may not see it."""
    query = select(Mediation).where(col(Mediation.case_id) == case_id, visible_to(principal))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    mediation = (await session.execute(query)).scalar_one_or_none()
    if mediation is None:
        raise MediationNotFound()
    # Read after the lock, in a statement of its own: a request that waited for the lock
    # sees the case as the one before it left it (its version, its state).
    case = (
        await session.execute(
            select(Case).where(col(Case.id) == case_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    party = (
        await session.execute(
            select(MediationParty).where(
                col(MediationParty.case_id) == case_id,
                col(MediationParty.user_id) == principal.user_id,
            )
        )
    ).scalar_one_or_none()
    if party is not None and party.consent != Consent.declined:
        viewer = Viewer(PartyRole(party.role).value)
    elif mediation.mediator_id is not None and await _mediates(
        session, principal, mediation.mediator_id
    ):
        viewer = Viewer.mediator
    else:
        viewer = Viewer.supervisor
    return Seen(mediation, case, viewer, party)


async def _mediates(session: AsyncSession, principal: Principal, mediator_id: uuid.UUID) -> bool:
    found = await session.execute(
        select(col(Mediator.id)).where(
            col(Mediator.id) == mediator_id, col(Mediator.user_id) == principal.user_id
        )
    )
    return found.first() is not None


async def own_mediator(session: AsyncSession, principal: Principal) -> Mediator | None:
    """The caller's entry in the supermarket, if they are an active mediator there."""
    found = await session.execute(
        select(Mediator).where(
            col(Mediator.user_id) == principal.user_id, col(Mediator.active).is_(True)
        )
    )
    return found.scalar_one_or_none()
