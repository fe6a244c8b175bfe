"""The mediation supermarket: studios and mediators (kept by the admins of an area), the
studios a resident may choose from, assignment by the supervisors, and a mediator's queue.

Rules only (no HTTP): every function takes a session and plain values, and only flushes.
Every read is scoped in SQL first (outside the caller's regions a studio, a mediator or a
mediation does not exist for them); what the caller may do is checked after.

Areas: a studio serves the cases located within its area; a mediator takes cases within
theirs, which must lie within (or equal) their studio's area, so a studio never sends a
mediator outside the area it serves.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal, path_within, region_scope
from backend.cases import workflow
from backend.cases.models import Case
from backend.core.clock import now
from backend.core.pagination import keyset
from backend.mediation.auth import SUPERVISORS, Viewer, visible_mediation
from backend.mediation.errors import STATE_ZH, MediationNotFound, MediatorNotFound, StudioNotFound
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    SPECIALTY_FOR,
    DisputeType,
    Mediation,
    MediationParty,
    MediationSession,
    MediationState,
    Mediator,
    SessionState,
    Specialty,
    Studio,
)
from backend.mediation.supermarket import assignment, schemas
from backend.mediation.supermarket.errors import (
    ApplicantChoosesStudio,
    MediatorInactive,
    MediatorOutsideArea,
    MediatorWrongSpecialty,
    NotAMediator,
    NotAssignable,
    StudioChoiceClosed,
    StudioUnfit,
    SupermarketAdminsOnly,
    SupervisorsOnly,
)
from backend.regions import service as regions_service
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import OutsideGrids
from backend.regions.models import Region
from backend.regions.service import GridMap

# Studios and mediators are kept by the admins of their area.
ADMINS: tuple[Role, ...] = (Role.admin,)


# A studio is "busy" when each mediator who would take the case carries this share of their
# maximum: a new case may wait longer there.
BUSY_SHARE = 0.8


# The studios that fit one place are those of the few regions above it; a cap all the same.
MAX_FITTING_STUDIOS = 100


STUDIO_NAME_CONSTRAINT = "uq_mediation_studio_region_name"


MEDIATOR_USER_CONSTRAINT = "uq_mediator_user_id"


SPECIALTY_ZH = {
    Specialty.legal: "法律",
    Specialty.labour: "劳动",
    Specialty.family: "婚姻家庭",
    Specialty.property: "物业与房屋",
    Specialty.neighbourhood: "邻里",
}


def require_admin(principal: Principal) -> None:
    """Someone who administers no region at all is told so rather than shown 404s."""
    if not principal.paths_for(ADMINS):
        raise SupermarketAdminsOnly()


def area_ref(region: Region) -> schemas.AreaRef:
    return schemas.AreaRef(code=region.path, name=region.name, name_en=region.name_en)


def studio_ref(studio: Studio | None) -> schemas.StudioRef | None:
    if studio is None:
        return None
    return schemas.StudioRef(id=studio.id, name=studio.name, name_en=studio.name_en)


def specialty_values(values: list[Specialty] | list[str]) -> list[str]:
    return [Specialty(value).value for value in values]


async def regions_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Region]:
    if not ids:
        return {}
    found = await session.execute(select(Region).where(col(Region.id).in_(ids)))
    return {region.id: region for region in found.scalars()}


# --- choosing a studio ---------------------------------------------------------------------


def place_at(grid_map: GridMap, lat: float, lng: float, coord: CoordSystem) -> schemas.AreaRef:
    """The grid a point lies in (404 `regions.outside_grids` outside every grid)."""
    found = grid_map.locate(*to_wgs84(lat, lng, coord))
    if found is None:
        raise OutsideGrids()
    grid = found.grid
    return schemas.AreaRef(code=grid.code, name=grid.name, name_en=grid.name_en)


@dataclass(frozen=True)
class _Offer:
    studio: Studio
    area: Region
    mediators: list[tuple[Mediator, int]]  # (mediator, load) who would take the dispute

    @property
    def has_room(self) -> bool:
        return any(load < mediator.max_active for mediator, load in self.mediators)

    @property
    def busy(self) -> bool:
        return all(load >= BUSY_SHARE * mediator.max_active for mediator, load in self.mediators)


async def _offers(
    session: AsyncSession,
    dispute_type: DisputeType,
    place_path: str,
    studio_id: uuid.UUID | None = None,
) -> list[_Offer]:
    """Active studios with the specialty whose area holds the place, each with the mediators
    who would take the dispute there (with their load)."""
    specialty = SPECIALTY_FOR[dispute_type].value
    query = (
        select(Studio, Region)
        .join(Region, col(Region.id) == col(Studio.region_id))
        .where(
            col(Studio.active).is_(True),
            col(Studio.specialties).contains([specialty]),
            func.text2ltree(place_path).op("<@")(col(Studio.region_path)),
        )
    )
    if studio_id is not None:
        query = query.where(col(Studio.id) == studio_id)
    studios = (await session.execute(query)).all()
    if not studios:
        return []
    found = await session.execute(
        assignment.qualified(dispute_type, place_path)
        .where(col(Mediator.studio_id).in_([studio.id for studio, _ in studios]))
        .order_by(col(Mediator.display_name), col(Mediator.id))
    )
    staff: dict[uuid.UUID, list[tuple[Mediator, int]]] = defaultdict(list)
    for mediator, load in found.all():
        staff[mediator.studio_id].append((mediator, load))
    return [_Offer(studio, area, staff[studio.id]) for studio, area in studios]


async def list_fitting_studios(
    session: AsyncSession, dispute_type: DisputeType, place: schemas.AreaRef
) -> schemas.FittingStudios:
    """The studios a resident may choose for a dispute at a place: active, with the needed
    specialty, serving an area that holds the place, and with a mediator who has room."""
    offers = [offer for offer in await _offers(session, dispute_type, place.code) if offer.has_room]
    offers.sort(key=lambda o: (o.busy, -o.area.path.count("."), o.studio.name, o.studio.id))
    return schemas.FittingStudios(
        dispute_type=dispute_type,
        specialty=SPECIALTY_FOR[dispute_type],
        place=place,
        items=[
            schemas.FittingStudio(
                id=offer.studio.id,
                name=offer.studio.name,
                name_en=offer.studio.name_en,
                description=offer.studio.description,
                specialties=[Specialty(value) for value in offer.studio.specialties],
                area=area_ref(offer.area),
                mediator_count=len(offer.mediators),
                mediators=[
                    schemas.MediatorCard(display_name=m.display_name, title=m.title)
                    for m, _ in offer.mediators
                ],
                availability="busy" if offer.busy else "available",
            )
            for offer in offers[:MAX_FITTING_STUDIOS]
        ],
    )


async def _choice_view(
    session: AsyncSession, mediation: Mediation, case: Case, *, assigned_now: bool
) -> schemas.StudioChoiceOut:
    ids = {i for i in (mediation.preferred_studio_id, mediation.studio_id) if i is not None}
    found = await session.execute(select(Studio).where(col(Studio.id).in_(ids)))
    studios = {studio.id: studio for studio in found.scalars()}
    mediator = None
    if mediation.mediator_id is not None:
        mediator = await session.get(Mediator, mediation.mediator_id)
    assert mediation.preferred_studio_id is not None
    preferred = studio_ref(studios[mediation.preferred_studio_id])
    assert preferred is not None
    return schemas.StudioChoiceOut(
        id=mediation.case_id,
        number=case.number,
        state=mediation.state,
        preferred_studio=preferred,
        studio=studio_ref(studios.get(mediation.studio_id)) if mediation.studio_id else None,
        mediator=(
            schemas.MediatorCard(display_name=mediator.display_name, title=mediator.title)
            if mediator is not None
            else None
        ),
        assigned_now=assigned_now,
    )


async def choose_mediation_studio(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, studio_id: uuid.UUID
) -> schemas.StudioChoiceOut:
    """The applicant's choice of studio, until a mediator is assigned.

    The studio must fit the dispute now (409 `mediation.studio_unfit` otherwise). While the
    respondents are still deciding the choice is kept for the assignment that follows their
    consent; a mediation already waiting for a mediator is assigned at once to the studio's
    fitting mediator with the lightest load. Choosing the same studio again changes nothing.
    """
    seen = await visible_mediation(session, principal, case_id, for_update=True)
    if seen.viewer is not Viewer.applicant:
        raise ApplicantChoosesStudio()
    mediation, case = seen.mediation, seen.case
    state = MediationState(mediation.state)
    if mediation.mediator_id is not None or state not in OPEN_MEDIATION_STATES:
        raise StudioChoiceClosed()
    studio = await session.get(Studio, studio_id)
    if studio is None:
        raise StudioNotFound()
    dispute_type = DisputeType(mediation.dispute_type)
    offers = await _offers(session, dispute_type, mediation.region_path, studio_id)
    if not offers or not offers[0].has_room:
        raise StudioUnfit()
    waiting = state is MediationState.awaiting_mediator
    if mediation.preferred_studio_id == studio_id and not waiting:
        return await _choice_view(session, mediation, case, assigned_now=False)
    at = now()
    actor = workflow.Actor(principal.user_id, workflow.RESIDENT)
    if mediation.preferred_studio_id != studio_id:
        await workflow.apply(
            session,
            case,
            workflow.Action.comment,
            actor,
            data={"step": "studio_chosen", "studio_id": str(studio_id)},
        )
        mediation.preferred_studio_id = studio_id
        mediation.updated_at = at
        mediation.version += 1
        await session.flush()
    if waiting:
        mediator = await assignment.pick_mediator(
            session, dispute_type, mediation.region_path, studio_id=studio_id
        )
        if mediator is None:
            raise StudioUnfit()  # its last place was taken meanwhile; nothing is kept
        await assignment.assign(session, mediation, case, mediator, actor=actor, at=at)
    return await _choice_view(session, mediation, case, assigned_now=waiting)


# --- supervision ---------------------------------------------------------------------------

_AssignedStudio = aliased(Studio)


_PreferredStudio = aliased(Studio)


def _supervised_query() -> Any:
    return (
        select(Mediation, col(Case.number), Mediator, _AssignedStudio, _PreferredStudio)
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .outerjoin(Mediator, col(Mediator.id) == col(Mediation.mediator_id))
        .outerjoin(_AssignedStudio, col(_AssignedStudio.id) == col(Mediation.studio_id))
        .outerjoin(_PreferredStudio, col(_PreferredStudio.id) == col(Mediation.preferred_studio_id))
    )


def _is_open(mediation: Mediation) -> bool:
    return MediationState(mediation.state) in OPEN_MEDIATION_STATES


def _supervised_item(row: Any, at: datetime) -> schemas.SupervisedMediation:
    mediation, number, mediator, studio, preferred = row
    end = mediation.ended_at or at
    return schemas.SupervisedMediation(
        id=mediation.case_id,
        number=number,
        dispute_type=mediation.dispute_type,
        state=mediation.state,
        place_code=mediation.region_path,
        preferred_studio=studio_ref(preferred),
        mediator=(
            schemas.MediatorRef(
                id=mediator.id,
                display_name=mediator.display_name,
                title=mediator.title,
                studio=studio_ref(studio),
            )
            if mediator is not None
            else None
        ),
        created_at=mediation.created_at,
        days_open=max((end - mediation.created_at).days, 0),
        due_at=mediation.due_at,
        overdue=_is_open(mediation) and mediation.due_at < at,
        escalated=mediation.escalated_at is not None,
        escalated_at=mediation.escalated_at,
    )


async def list_supervised_mediations(
    session: AsyncSession,
    principal: Principal,
    *,
    states: Sequence[MediationState],
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.SupervisedMediation]:
    """The mediations located in the regions the caller supervises, newest first (`limit`
    + 1 rows: the extra one says there is a next page)."""
    if not principal.paths_for(SUPERVISORS):
        raise SupervisorsOnly()
    query = (
        _supervised_query()
        .where(region_scope(Mediation.region_path, principal, SUPERVISORS))
        .limit(limit + 1)
    )
    if states:
        query = query.where(col(Mediation.state).in_([state.value for state in states]))
    query = keyset(query, col(Mediation.case_id), after)
    at = now()
    return [_supervised_item(row, at) for row in (await session.execute(query)).all()]


async def supervised_mediation(
    session: AsyncSession, case_id: uuid.UUID
) -> schemas.SupervisedMediation:
    row = (
        await session.execute(_supervised_query().where(col(Mediation.case_id) == case_id))
    ).one()
    return _supervised_item(row, now())


def _not_assignable(mediation: Mediation) -> NotAssignable | None:
    state = MediationState(mediation.state)
    if state is MediationState.awaiting_consent:
        return NotAssignable(
            reason_zh="被申请人尚未全部同意调解",
            reason_en="the respondents have not all agreed to mediation yet",
        )
    if state not in OPEN_MEDIATION_STATES:
        return NotAssignable(
            reason_zh=f"调解已结束（{STATE_ZH[state]}）",
            reason_en=f"it has ended ({state.value})",
        )
    return None


async def assign_mediation(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    mediator_id: uuid.UUID,
    note: str | None,
) -> schemas.SupervisedMediation:
    """A supervisor gives a mediation waiting for a mediator to one, or an open one to
    another. The mediator must be active (in an active studio), have the specialty and cover
    the place; a supervisor may go beyond their `max_active`. Assigning the mediator it
    already has answers it unchanged.

    Only the admins above the mediation see it here: to its parties and its mediator (and
    anyone else) it does not exist on this path.
    """
    seen = await visible_mediation(session, principal, case_id, for_update=True)
    if seen.viewer is not Viewer.supervisor:
        raise MediationNotFound()
    mediation, case = seen.mediation, seen.case
    refusal = _not_assignable(mediation)
    if refusal is not None:
        raise refusal
    mediator = await session.get(Mediator, mediator_id)
    if mediator is None:
        raise MediatorNotFound()
    if mediation.mediator_id == mediator.id:
        return await supervised_mediation(session, case_id)
    studio = await session.get(Studio, mediator.studio_id) if mediator.studio_id else None
    if not mediator.active or (studio is not None and not studio.active):
        raise MediatorInactive()
    needed = SPECIALTY_FOR[DisputeType(mediation.dispute_type)]
    if needed.value not in mediator.specialties:
        raise MediatorWrongSpecialty(specialty=needed.value, specialty_zh=SPECIALTY_ZH[needed])
    if not path_within(mediation.region_path, mediator.region_path):
        raise MediatorOutsideArea()
    await assignment.assign(
        session,
        mediation,
        case,
        mediator,
        actor=workflow.Actor(principal.user_id, Role.admin.value),
        at=now(),
        note=note,
    )
    return await supervised_mediation(session, case_id)


# --- the mediator's queue ------------------------------------------------------------------


async def list_my_mediation_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    states: Sequence[MediationState],
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.MediatorCaseItem]:
    """The cases assigned to the caller's mediator entry, newest first (`limit` + 1 rows).

    An entry an admin deactivated still lists the cases it carries: they are the mediator's
    to finish until a supervisor reassigns them.
    """
    entry = (
        await session.execute(
            select(col(Mediator.id)).where(col(Mediator.user_id) == principal.user_id)
        )
    ).scalar_one_or_none()
    if entry is None:
        raise NotAMediator()
    query = (
        select(Mediation, col(Case.number))
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .where(col(Mediation.mediator_id) == entry)
        .limit(limit + 1)
    )
    if states:
        query = query.where(col(Mediation.state).in_([state.value for state in states]))
    query = keyset(query, col(Mediation.case_id), after)
    rows = (await session.execute(query)).all()
    ids = [mediation.case_id for mediation, _ in rows]
    at = now()
    parties: dict[uuid.UUID, list[schemas.PartyName]] = defaultdict(list)
    sessions: dict[uuid.UUID, datetime] = {}
    if ids:
        found = await session.execute(
            select(MediationParty)
            .where(col(MediationParty.case_id).in_(ids))
            .order_by(col(MediationParty.role), col(MediationParty.id))
        )
        for party in found.scalars():
            parties[party.case_id].append(
                schemas.PartyName(role=party.role, name=party.name, consent=party.consent)
            )
        upcoming = await session.execute(
            select(col(MediationSession.case_id), func.min(col(MediationSession.starts_at)))
            .where(
                col(MediationSession.case_id).in_(ids),
                col(MediationSession.state) == SessionState.scheduled.value,
                col(MediationSession.starts_at) >= at,
            )
            .group_by(col(MediationSession.case_id))
        )
        sessions = {case_id: starts_at for case_id, starts_at in upcoming.all()}
    return [
        schemas.MediatorCaseItem(
            id=mediation.case_id,
            number=number,
            dispute_type=mediation.dispute_type,
            state=mediation.state,
            parties=parties[mediation.case_id],
            assigned_at=mediation.assigned_at,
            next_session_at=sessions.get(mediation.case_id),
            next_deadline=mediation.due_at if _is_open(mediation) else None,
            overdue=_is_open(mediation) and mediation.due_at < at,
        )
        for mediation, number in rows
    ]


async def area_in_scope(session: AsyncSession, principal: Principal, code: str) -> Region:
    """The region, if the caller administers it or a region above; otherwise 404."""
    return await regions_service.region_in_scope(session, principal, code, ADMINS)
