"""Mediators: appointed to a studio, with specialties and an area."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.errors import UserNotFound
from backend.auth.models import Role, RoleGrant, User
from backend.auth.principal import Principal, path_within, region_scope
from backend.core.clock import now
from backend.core.database import insert_unique
from backend.core.ids import new_id
from backend.core.pagination import keyset
from backend.mediation.errors import MediatorNotFound
from backend.mediation.models import (
    CARRIED_STATES,
    Mediation,
    Mediator,
    Specialty,
    Studio,
)
from backend.mediation.supermarket import schemas
from backend.mediation.supermarket.errors import (
    MediatorExists,
    MediatorOutsideStudio,
)
from backend.mediation.supermarket.service import (
    ADMINS,
    MEDIATOR_USER_CONSTRAINT,
    area_in_scope,
    area_ref,
    regions_by_id,
    require_admin,
    specialty_values,
    studio_ref,
)
from backend.mediation.supermarket.studios import studio_in_scope
from backend.regions.models import Region

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
        and set(mediator.specialties) == set(specialty_values(data.specialties))
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
    require_admin(principal)
    area = await area_in_scope(session, principal, data.area)
    condition = (
        col(User.id) == data.user_id
        if data.user_id is not None
        else col(User.openid) == data.openid
    )
    user = (await session.execute(select(User).where(condition))).scalar_one_or_none()
    if user is None:
        raise UserNotFound()
    if data.studio_id is not None:
        studio = await studio_in_scope(session, principal, data.studio_id)
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
        specialties=specialty_values(data.specialties),
        region_id=area.id,
        region_path=area.path,
        max_active=data.max_active,
        active=True,
        created_at=at,
    )
    await insert_unique(session, mediator, errors={MEDIATOR_USER_CONSTRAINT: MediatorExists})
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
    require_admin(principal)
    mediator = await _mediator_in_scope(session, principal, mediator_id)
    changes = data.model_dump(exclude_unset=True, exclude={"area", "studio_id"})
    if "specialties" in changes:
        changes["specialties"] = specialty_values(data.specialties)
    area: Region | None = None
    if "area" in data.model_fields_set and data.area != mediator.region_path:
        area = await area_in_scope(session, principal, data.area)
    studio_id = mediator.studio_id
    if "studio_id" in data.model_fields_set and data.studio_id != mediator.studio_id:
        studio_id = data.studio_id
        if studio_id is not None:
            await studio_in_scope(session, principal, studio_id)
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
    require_admin(principal)
    query = (
        select(Mediator)
        .where(region_scope(Mediator.region_path, principal, ADMINS))
        .limit(limit + 1)
    )
    if studio_id is not None:
        query = query.where(col(Mediator.studio_id) == studio_id)
    if active is not None:
        query = query.where(col(Mediator.active).is_(active))
    query = keyset(query, col(Mediator.id), after)
    return list((await session.execute(query)).scalars())


async def mediator_views(
    session: AsyncSession, mediators: Sequence[Mediator]
) -> list[schemas.MediatorOut]:
    """The mediators with their areas, studios and the cases they carry now."""
    ids = [mediator.id for mediator in mediators]
    regions = await regions_by_id(session, {mediator.region_id for mediator in mediators})
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
        loads = {mediator_id: count for mediator_id, count in rows.all()}  # type: ignore[misc]
    return [
        schemas.MediatorOut(
            id=mediator.id,
            user_id=mediator.user_id,
            display_name=mediator.display_name,
            title=mediator.title,
            specialties=[Specialty(value) for value in mediator.specialties],
            area=area_ref(regions[mediator.region_id]),
            studio=studio_ref(studios.get(mediator.studio_id) if mediator.studio_id else None),
            max_active=mediator.max_active,
            load=loads.get(mediator.id, 0),
            active=mediator.active,
            created_at=mediator.created_at,
            updated_at=mediator.updated_at,
        )
        for mediator in mediators
    ]
