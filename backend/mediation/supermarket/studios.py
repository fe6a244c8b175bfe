"""Mediation studios: created and changed by admins of their area."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.database import insert_unique
from backend.core.pagination import keyset
from backend.mediation.errors import StudioNotFound
from backend.mediation.models import (
    CARRIED_STATES,
    Mediation,
    Mediator,
    Specialty,
    Studio,
)
from backend.mediation.supermarket import schemas
from backend.mediation.supermarket.errors import (
    StudioNameTaken,
)
from backend.mediation.supermarket.service import (
    ADMINS,
    STUDIO_NAME_CONSTRAINT,
    area_in_scope,
    area_ref,
    regions_by_id,
    require_admin,
    specialty_values,
)

# --- studios -------------------------------------------------------------------------------


async def studio_in_scope(
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
        and set(studio.specialties) == set(specialty_values(data.specialties))
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
    require_admin(principal)
    area = await area_in_scope(session, principal, data.area)
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
        specialties=specialty_values(data.specialties),
        region_id=area.id,
        region_path=area.path,
        active=True,
        created_at=at,
    )
    if not await insert_unique(session, studio, races={STUDIO_NAME_CONSTRAINT}):
        # A concurrent request made it first: the same studio is a retry, another a clash.
        raced = await _studio_named(session, area.id, data.name)
        if raced is not None and _same_studio(raced, data):
            return raced, False
        raise StudioNameTaken(name=data.name)
    return studio, True


async def update_studio(
    session: AsyncSession,
    principal: Principal,
    studio_id: uuid.UUID,
    data: schemas.StudioUpdate,
) -> Studio:
    """Change a studio in the caller's regions. A deactivated studio is no longer offered to
    residents and its mediators get no new cases; the cases they carry stay with them."""
    require_admin(principal)
    studio = await studio_in_scope(session, principal, studio_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "specialties" in changes:
        changes["specialties"] = specialty_values(data.specialties)
    if "name" in changes and changes["name"] != studio.name:
        clash = await _studio_named(session, studio.region_id, changes["name"])
        if clash is not None:
            raise StudioNameTaken(name=changes["name"])
    for name, value in changes.items():
        setattr(studio, name, value)
    studio.updated_at = now()
    taken = StudioNameTaken(name=studio.name)
    await insert_unique(session, errors={STUDIO_NAME_CONSTRAINT: lambda: taken})
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
    require_admin(principal)
    query = (
        select(Studio).where(region_scope(Studio.region_path, principal, ADMINS)).limit(limit + 1)
    )
    if area is not None:
        region = await area_in_scope(session, principal, area)
        query = query.where(Studio.region_path.descendant_of(region.path))  # type: ignore[attr-defined]
    if active is not None:
        query = query.where(col(Studio.active).is_(active))
    query = keyset(query, col(Studio.id), after)
    return list((await session.execute(query)).scalars())


async def studio_views(session: AsyncSession, studios: Sequence[Studio]) -> list[schemas.StudioOut]:
    """The studios with their areas and what their active mediators carry."""
    ids = [studio.id for studio in studios]
    regions = await regions_by_id(session, {studio.region_id for studio in studios})
    staffed: dict[uuid.UUID, tuple[int, int]] = {}
    carried: dict[uuid.UUID, int] = {}
    if ids:
        rows = await session.execute(
            select(col(Mediator.studio_id), func.count(), func.sum(col(Mediator.max_active)))
            .where(col(Mediator.studio_id).in_(ids), col(Mediator.active).is_(True))
            .group_by(col(Mediator.studio_id))
        )
        staffed = {studio_id: (count, int(capacity)) for studio_id, count, capacity in rows.all()}  # type: ignore[misc]
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
        carried = {studio_id: count for studio_id, count in rows.all()}  # type: ignore[misc]
    return [
        schemas.StudioOut(
            id=studio.id,
            name=studio.name,
            name_en=studio.name_en,
            description=studio.description,
            specialties=[Specialty(value) for value in studio.specialties],
            area=area_ref(regions[studio.region_id]),
            active=studio.active,
            mediators=staffed.get(studio.id, (0, 0))[0],
            load=carried.get(studio.id, 0),
            capacity=staffed.get(studio.id, (0, 0))[1],
            created_at=studio.created_at,
            updated_at=studio.updated_at,
        )
        for studio in studios
    ]
