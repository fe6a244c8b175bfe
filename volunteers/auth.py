"""Who may do what with volunteers and activities, resolved inside the query.

Staff act on what lies within their regions: a volunteer by home community, an activity (and
its enrolments, attendance and inspections) by organising community. Something outside is
not fetched at all, so it answers 404 and its existence never leaks.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal, region_scope
from volunteers.errors import (
    ActivityNotFound,
    NotSignedUp,
    VolunteerNotApproved,
    VolunteerNotFound,
)
from volunteers.models import Activity, Team, TeamMember, Volunteer, VolunteerState

# Approve volunteers, form teams, publish activities, review attendance, certify records.
VOLUNTEER_MANAGERS: tuple[Role, ...] = (Role.community_staff,)
# See an activity's enrolments and show its check-in code on site.
ACTIVITY_HOSTS: tuple[Role, ...] = (Role.community_staff, Role.grid_worker)


async def own_volunteer(
    session: AsyncSession,
    principal: Principal,
    *,
    approved: bool = True,
    for_update: bool = False,
) -> Volunteer:
    """The caller's registration; with `approved`, only an approved one will do."""
    query = select(Volunteer).where(col(Volunteer.user_id) == principal.user_id)
    if for_update:
        query = query.with_for_update()
    volunteer = (await session.execute(query)).scalar_one_or_none()
    if volunteer is None:
        raise NotSignedUp()
    if approved and volunteer.state != VolunteerState.approved:
        raise VolunteerNotApproved()
    return volunteer


async def scoped_volunteer(
    session: AsyncSession,
    principal: Principal,
    volunteer_id: uuid.UUID,
    roles: tuple[Role, ...] = VOLUNTEER_MANAGERS,
    *,
    for_update: bool = False,
) -> Volunteer:
    """A volunteer whose home community lies within the caller's regions for `roles`."""
    query = select(Volunteer).where(
        col(Volunteer.id) == volunteer_id,
        region_scope(Volunteer.community_path, principal, roles),
    )
    if for_update:
        query = query.with_for_update()
    volunteer = (await session.execute(query)).scalar_one_or_none()
    if volunteer is None:
        raise VolunteerNotFound()
    return volunteer


async def scoped_activity(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    roles: tuple[Role, ...] = VOLUNTEER_MANAGERS,
    *,
    for_update: bool = False,
) -> Activity:
    """An activity organised within the caller's regions for `roles`."""
    query = select(Activity).where(
        col(Activity.id) == activity_id,
        region_scope(Activity.region_path, principal, roles),
    )
    if for_update:
        query = query.with_for_update()
    activity = (await session.execute(query)).scalar_one_or_none()
    if activity is None:
        raise ActivityNotFound()
    return activity


async def leads_team(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> bool:
    """Is the caller the (approved) leader of this team?"""

    found = await session.execute(
        select(col(Team.id))
        .join(Volunteer, col(Volunteer.id) == col(Team.leader_id))
        .where(
            col(Team.id) == team_id,
            col(Team.active).is_(True),
            col(Volunteer.user_id) == principal.user_id,
            col(Volunteer.state) == VolunteerState.approved.value,
        )
    )
    return found.first() is not None


async def in_team(session: AsyncSession, volunteer_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    found = await session.execute(
        select(col(TeamMember.team_id)).where(
            col(TeamMember.team_id) == team_id, col(TeamMember.volunteer_id) == volunteer_id
        )
    )
    return found.first() is not None
