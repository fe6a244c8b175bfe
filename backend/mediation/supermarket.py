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

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from backend.auth.errors import UserNotFound
from backend.auth.models import Role, RoleGrant, User
from backend.auth.principal import Principal, path_within, region_scope
from backend.cases import workflow
from backend.cases.models import Case
from backend.core.clock import now
from backend.core.ids import new_id
from backend.mediation import assignment
from backend.mediation import supermarket_schemas as schemas
from backend.mediation.auth import SUPERVISORS, Viewer, visible_mediation
from backend.mediation.errors import STATE_ZH, MediationNotFound, MediatorNotFound, StudioNotFound
from backend.mediation.errors_supermarket import (
    ApplicantChoosesStudio,
    MediatorExists,
    MediatorInactive,
    MediatorOutsideArea,
    MediatorOutsideStudio,
    MediatorWrongSpecialty,
    NotAMediator,
    NotAssignable,
    StudioChoiceClosed,
    StudioNameTaken,
    StudioUnfit,
    SupermarketAdminsOnly,
    SupervisorsOnly,
)
from backend.mediation.models import (
    CARRIED_STATES,
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
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import OutsideGrids, RegionNotFound
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


def _constraint(error: IntegrityError) -> str | None:
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(error.orig, "constraint_name", None)
    return name if isinstance(name, str) else None


def _require_admin(principal: Principal) -> None:
    """Someone who administers no region at all is told so rather than shown 404s."""
    if not principal.paths_for(ADMINS):
        raise SupermarketAdminsOnly()


async def _area_in_scope(session: AsyncSession, principal: Principal, code: str) -> Region:
    """The region, if the caller administers it or a region above; otherwise 404."""
    region = (
        await session.execute(
            select(Region).where(
                col(Region.path) == code, region_scope(Region.path, principal, ADMINS)
            )
        )
    ).scalar_one_or_none()
    if region is None:
        raise RegionNotFound(code=code)
    return region


def _area_ref(region: Region) -> schemas.AreaRef:
    return schemas.AreaRef(code=region.path, name=region.name, name_en=region.name_en)


def _studio_ref(studio: Studio | None) -> schemas.StudioRef | None:
    if studio is None:
        return None
    return schemas.StudioRef(id=studio.id, name=studio.name, name_en=studio.name_en)


def _specialties(values: list[Specialty] | list[str]) -> list[str]:
    return [Specialty(value).value for value in values]


async def _regions(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Region]:
    if not ids:
        return {}
    found = await session.execute(select(Region).where(col(Region.id).in_(ids)))
    return {region.id: region for region in found.scalars()}


# --- studios -------------------------------------------------------------------------------


async def _studio_in_scope(
    session: AsyncSession, principal: Principal, studio_id: uuid.UUID, *, lock: bool = False
) -> Studio:
    query = select(Studio).where(
        col(Studio.id) == studio_id, region_scope(Studio.region_path, principal, ADMINS)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    studio = (await session.execute(query)).scalar_one_or_none()
    if studio is None:
        raise StudioNotFound()
    return studio


def _same_studio(studio: Studio, data: schemas.StudioCreate) -> bool:
    return (
        studio.name_en == data.name_en
        and studio.description == data.description
        and set(studio.specialties) == set(_specialties(data.specialties))
    )


async def _studio_named(session: AsyncSession, region_id: uuid.UUID, name: str) -> Studio | None:
    found = await session.execute(
        select(Studio).where(col(Studio.region_id) == region_id, col(Studio.name) == name)
    )
    return found.scalar_one_or_none()


async def create_studio(
    session: AsyncSession, principal: Principal, data: schemas.StudioCreate
) -> tuple[Studio, bool]:
    """A new studio serving an area the caller administers; (studio, created).

    The name is unique within the area, which also makes the request safe to retry: the
    same studio sent again answers the one made before (created False), a different studio
    of the same name is refused (409).
    """
    _require_admin(principal)
    area = await _area_in_scope(session, principal, data.area)
    existing = await _studio_named(session, area.id, data.name)
    if existing is not None:
        if _same_studio(existing, data):
            return existing, False
        raise StudioNameTaken(name=data.name)
    at = now()
    studio = Studio(
        name=data.name,
        name_en=data.name_en,
        description=data.description,
        specialties=_specialties(data.specialties),
        region_id=area.id,
        region_path=area.path,
        active=True,
        created_at=at,
    )
    try:
        async with session.begin_nested():
            session.add(studio)
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) != STUDIO_NAME_CONSTRAINT:
            raise
        # A concurrent request made it first: the same studio is a retry, another a clash.
        raced = await _studio_named(session, area.id, data.name)
        if raced is not None and _same_studio(raced, data):
            return raced, False
        raise StudioNameTaken(name=data.name) from error
    return studio, True


async def update_studio(
    session: AsyncSession,
    principal: Principal,
    studio_id: uuid.UUID,
    data: schemas.StudioUpdate,
) -> Studio:
    """Change a studio in the caller's regions. A deactivated studio is no longer offered to
    residents and its mediators get no new cases; the cases they carry stay with them."""
    _require_admin(principal)
    studio = await _studio_in_scope(session, principal, studio_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "specialties" in changes:
        changes["specialties"] = _specialties(data.specialties)
    if "name" in changes and changes["name"] != studio.name:
        clash = await _studio_named(session, studio.region_id, changes["name"])
        if clash is not None:
            raise StudioNameTaken(name=changes["name"])
    for name, value in changes.items():
        setattr(studio, name, value)
    studio.updated_at = now()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) == STUDIO_NAME_CONSTRAINT:
            raise StudioNameTaken(name=studio.name) from error
        raise
    return studio


async def list_studios(
    session: AsyncSession,
    principal: Principal,
    *,
    active: bool | None,
    area: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Studio]:
    """The studios whose area lies in the caller's admin regions, newest first."""
    _require_admin(principal)
    query = (
        select(Studio)
        .where(region_scope(Studio.region_path, principal, ADMINS))
        .order_by(col(Studio.id).desc())
        .limit(limit + 1)
    )
    if area is not None:
        region = await _area_in_scope(session, principal, area)
        query = query.where(Studio.region_path.descendant_of(region.path))  # type: ignore[attr-defined]
    if active is not None:
        query = query.where(col(Studio.active).is_(active))
    if after is not None:
        query = query.where(col(Studio.id) < after)
    return list((await session.execute(query)).scalars())


async def studio_views(session: AsyncSession, studios: Sequence[Studio]) -> list[schemas.StudioOut]:
    """The studios with their areas and what their active mediators carry."""
    ids = [studio.id for studio in studios]
    regions = await _regions(session, {studio.region_id for studio in studios})
    staffed: dict[uuid.UUID, tuple[int, int]] = {}
    carried: dict[uuid.UUID, int] = {}
    if ids:
        rows = await session.execute(
            select(col(Mediator.studio_id), func.count(), func.sum(col(Mediator.max_active)))
            .where(col(Mediator.studio_id).in_(ids), col(Mediator.active).is_(True))
            .group_by(col(Mediator.studio_id))
        )
        staffed = {studio_id: (count, int(capacity)) for studio_id, count, capacity in rows.all()}
        rows = await session.execute(
            select(col(Mediator.studio_id), func.count())
            .join(Mediation, col(Mediation.mediator_id) == col(Mediator.id))
            .where(
                col(Mediator.studio_id).in_(ids),
                col(Mediator.active).is_(True),
                col(Mediation.state).in_([state.value for state in CARRIED_STATES]),
            )
            .group_by(col(Mediator.studio_id))
        )
        carried = {studio_id: count for studio_id, count in rows.all()}
    return [
        schemas.StudioOut(
            id=studio.id,
            name=studio.name,
            name_en=studio.name_en,
            description=studio.description,
            specialties=[Specialty(value) for value in studio.specialties],
            area=_area_ref(regions[studio.region_id]),
            active=studio.active,
            mediators=staffed.get(studio.id, (0, 0))[0],
            load=carried.get(studio.id, 0),
            capacity=staffed.get(studio.id, (0, 0))[1],
            created_at=studio.created_at,
            updated_at=studio.updated_at,
        )
        for studio in studios
    ]


# --- mediators -----------------------------------------------------------------------------


async def _mediator_in_scope(
    session: AsyncSession, principal: Principal, mediator_id: uuid.UUID
) -> Mediator:
    mediator = (
        await session.execute(
            select(Mediator)
            .where(
                col(Mediator.id) == mediator_id,
                region_scope(Mediator.region_path, principal, ADMINS),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if mediator is None:
        raise MediatorNotFound()
    return mediator


async def _grant_mediator_role(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, area: Region
) -> None:
    """The `mediator` role on the area, unless the user holds it there already (one active
    grant per user, role and region; the database settles a race)."""
    await session.execute(
        insert(RoleGrant)
        .values(
            id=new_id(),
            user_id=user_id,
            role=Role.mediator.value,
            region_id=area.id,
            region_path=area.path,
            granted_by=principal.user_id,
            created_at=now(),
        )
        .on_conflict_do_nothing(
            index_elements=["user_id", "role", "region_id"],
            index_where=col(RoleGrant.revoked_at).is_(None),
        )
    )


async def _revoke_mediator_role(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, region_id: uuid.UUID
) -> None:
    await session.execute(
        update(RoleGrant)
        .where(
            col(RoleGrant.user_id) == user_id,
            col(RoleGrant.role) == Role.mediator.value,
            col(RoleGrant.region_id) == region_id,
            col(RoleGrant.revoked_at).is_(None),
        )
        .values(revoked_at=now(), revoked_by=principal.user_id)
    )


def _same_mediator(mediator: Mediator, data: schemas.MediatorCreate, area: Region) -> bool:
    return (
        mediator.display_name == data.display_name
        and mediator.title == data.title
        and set(mediator.specialties) == set(_specialties(data.specialties))
        and mediator.region_id == area.id
        and mediator.studio_id == data.studio_id
        and mediator.max_active == data.max_active
    )


async def create_mediator(
    session: AsyncSession, principal: Principal, data: schemas.MediatorCreate
) -> tuple[Mediator, bool]:
    """Register an existing user as a mediator of an area the caller administers and grant
    them the `mediator` role there; (mediator, created).

    A user has one entry: the same registration sent again answers the entry made before
    (created False); a different one is refused (409, change the entry instead).
    """
    _require_admin(principal)
    area = await _area_in_scope(session, principal, data.area)
    condition = (
        col(User.id) == data.user_id
        if data.user_id is not None
        else col(User.openid) == data.openid
    )
    user = (await session.execute(select(User).where(condition))).scalar_one_or_none()
    if user is None:
        raise UserNotFound()
    if data.studio_id is not None:
        studio = await _studio_in_scope(session, principal, data.studio_id)
        if not path_within(area.path, studio.region_path):
            raise MediatorOutsideStudio()
    existing = (
        await session.execute(select(Mediator).where(col(Mediator.user_id) == user.id))
    ).scalar_one_or_none()
    if existing is not None:
        if _same_mediator(existing, data, area):
            return existing, False
        raise MediatorExists()
    at = now()
    mediator = Mediator(
        user_id=user.id,
        studio_id=data.studio_id,
        display_name=data.display_name,
        title=data.title,
        specialties=_specialties(data.specialties),
        region_id=area.id,
        region_path=area.path,
        max_active=data.max_active,
        active=True,
        created_at=at,
    )
    try:
        async with session.begin_nested():
            session.add(mediator)
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) == MEDIATOR_USER_CONSTRAINT:
            raise MediatorExists() from error
        raise
    await _grant_mediator_role(session, principal, user.id, area)
    return mediator, True


async def update_mediator(
    session: AsyncSession,
    principal: Principal,
    mediator_id: uuid.UUID,
    data: schemas.MediatorUpdate,
) -> Mediator:
    """Change a mediator of the caller's regions. Deactivated, or with a `max_active` below
    what they carry, they get no new cases; the ones they carry stay until reassigned. A new
    area moves their `mediator` role with it."""
    _require_admin(principal)
    mediator = await _mediator_in_scope(session, principal, mediator_id)
    changes = data.model_dump(exclude_unset=True, exclude={"area", "studio_id"})
    if "specialties" in changes:
        changes["specialties"] = _specialties(data.specialties)
    area: Region | None = None
    if "area" in data.model_fields_set and data.area != mediator.region_path:
        area = await _area_in_scope(session, principal, data.area)
    studio_id = mediator.studio_id
    if "studio_id" in data.model_fields_set and data.studio_id != mediator.studio_id:
        studio_id = data.studio_id
        if studio_id is not None:
            await _studio_in_scope(session, principal, studio_id)
    if (area is not None or studio_id != mediator.studio_id) and studio_id is not None:
        studio_path = (
            await session.execute(
                select(col(Studio.region_path)).where(col(Studio.id) == studio_id)
            )
        ).scalar_one()
        if not path_within(area.path if area else mediator.region_path, studio_path):
            raise MediatorOutsideStudio()
    for name, value in changes.items():
        setattr(mediator, name, value)
    mediator.studio_id = studio_id
    if area is not None:
        await _revoke_mediator_role(session, principal, mediator.user_id, mediator.region_id)
        await _grant_mediator_role(session, principal, mediator.user_id, area)
        mediator.region_id = area.id
        mediator.region_path = area.path
    mediator.updated_at = now()
    await session.flush()
    return mediator


async def list_mediators(
    session: AsyncSession,
    principal: Principal,
    *,
    studio_id: uuid.UUID | None,
    active: bool | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Mediator]:
    """The mediators whose area lies in the caller's admin regions, newest first."""
    _require_admin(principal)
    query = (
        select(Mediator)
        .where(region_scope(Mediator.region_path, principal, ADMINS))
        .order_by(col(Mediator.id).desc())
        .limit(limit + 1)
    )
    if studio_id is not None:
        query = query.where(col(Mediator.studio_id) == studio_id)
    if active is not None:
        query = query.where(col(Mediator.active).is_(active))
    if after is not None:
        query = query.where(col(Mediator.id) < after)
    return list((await session.execute(query)).scalars())


async def mediator_views(
    session: AsyncSession, mediators: Sequence[Mediator]
) -> list[schemas.MediatorOut]:
    """The mediators with their areas, studios and the cases they carry now."""
    ids = [mediator.id for mediator in mediators]
    regions = await _regions(session, {mediator.region_id for mediator in mediators})
    studio_ids = {mediator.studio_id for mediator in mediators if mediator.studio_id}
    studios: dict[uuid.UUID, Studio] = {}
    loads: dict[uuid.UUID, int] = {}
    if studio_ids:
        found = await session.execute(select(Studio).where(col(Studio.id).in_(studio_ids)))
        studios = {studio.id: studio for studio in found.scalars()}
    if ids:
        rows = await session.execute(
            select(col(Mediation.mediator_id), func.count())
            .where(
                col(Mediation.mediator_id).in_(ids),
                col(Mediation.state).in_([state.value for state in CARRIED_STATES]),
            )
            .group_by(col(Mediation.mediator_id))
        )
        loads = {mediator_id: count for mediator_id, count in rows.all()}
    return [
        schemas.MediatorOut(
            id=mediator.id,
            user_id=mediator.user_id,
            display_name=mediator.display_name,
            title=mediator.title,
            specialties=[Specialty(value) for value in mediator.specialties],
            area=_area_ref(regions[mediator.region_id]),
            studio=_studio_ref(studios.get(mediator.studio_id) if mediator.studio_id else None),
            max_active=mediator.max_active,
            load=loads.get(mediator.id, 0),
            active=mediator.active,
            created_at=mediator.created_at,
            updated_at=mediator.updated_at,
        )
        for mediator in mediators
    ]


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
                area=_area_ref(offer.area),
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
    preferred = _studio_ref(studios[mediation.preferred_studio_id])
    assert preferred is not None
    return schemas.StudioChoiceOut(
        id=mediation.case_id,
        number=case.number,
        state=mediation.state,
        preferred_studio=preferred,
        studio=_studio_ref(studios.get(mediation.studio_id)) if mediation.studio_id else None,
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
        .outerjoin(_AssignedStudio, _AssignedStudio.id == col(Mediation.studio_id))
        .outerjoin(_PreferredStudio, _PreferredStudio.id == col(Mediation.preferred_studio_id))
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
        preferred_studio=_studio_ref(preferred),
        mediator=(
            schemas.MediatorRef(
                id=mediator.id,
                display_name=mediator.display_name,
                title=mediator.title,
                studio=_studio_ref(studio),
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
        .order_by(col(Mediation.case_id).desc())
        .limit(limit + 1)
    )
    if states:
        query = query.where(col(Mediation.state).in_([state.value for state in states]))
    if after is not None:
        query = query.where(col(Mediation.case_id) < after)
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
        .order_by(col(Mediation.case_id).desc())
        .limit(limit + 1)
    )
    if states:
        query = query.where(col(Mediation.state).in_([state.value for state in states]))
    if after is not None:
        query = query.where(col(Mediation.case_id) < after)
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
