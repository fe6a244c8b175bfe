"""Teams: created by community staff, with members and a leader."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.ids import new_id
from backend.core.pagination import keyset
from volunteers.auth import (
    ACTIVITY_HOSTS,
    VOLUNTEER_MANAGERS,
    in_team,
    scoped_volunteer,
)
from volunteers.errors import TeamNotFound
from volunteers.models import (
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)
from volunteers.queries import region_briefs
from volunteers.registrations import schemas
from volunteers.registrations.errors import (
    LeaderNotMember,
    TeamCommunityInvalid,
    TeamManageNotAllowed,
    TeamMemberNotApproved,
    TeamNameTaken,
)
from volunteers.registrations.service import community_by_code, require_staff

# --- teams -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamCreated:
    team: Team
    created: bool  # False: a retry found the team this caller made with the same answers


async def _team(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, *, manage: bool = False
) -> Team:
    """A team of the caller's regions (404 elsewhere); with `manage`, locked, and only for
    those who may change it (403 for a grid worker)."""
    query = select(Team).where(
        col(Team.id) == team_id, region_scope(Team.community_path, principal, ACTIVITY_HOSTS)
    )
    if manage:
        query = query.with_for_update().execution_options(populate_existing=True)
    team = (await session.execute(query)).scalar_one_or_none()
    if team is None:
        raise TeamNotFound()
    if manage and not principal.can(VOLUNTEER_MANAGERS, team.community_path):
        raise TeamManageNotAllowed()
    return team


async def _approved_in_scope(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> Volunteer:
    volunteer = await scoped_volunteer(session, principal, volunteer_id, VOLUNTEER_MANAGERS)
    if volunteer.state != VolunteerState.approved:
        raise TeamMemberNotApproved()
    return volunteer


async def create_team(
    session: AsyncSession, principal: Principal, body: schemas.TeamCreate
) -> TeamCreated:
    """A team of a community where the caller manages volunteers, with an optional leader.

    Idempotent: the same request sent again by the same caller answers the team it made;
    any other team of that name in the community is 409.
    """
    community = await community_by_code(session, body.community)
    if community is None:
        raise TeamCommunityInvalid(code=body.community)
    if not principal.can(VOLUNTEER_MANAGERS, community.path):
        raise TeamManageNotAllowed()
    leader = None
    if body.leader_id is not None:
        leader = await _approved_in_scope(session, principal, body.leader_id)
    at = now()
    team_id = (
        await session.execute(
            insert(Team)
            .values(
                id=new_id(),
                community_id=community.id,
                community_path=community.path,
                name=body.name,
                description=body.description,
                leader_id=leader.id if leader else None,
                active=True,
                created_by=principal.user_id,
                created_at=at,
            )
            .on_conflict_do_nothing(constraint="uq_volunteer_team_community_name")
            .returning(col(Team.id))
        )
    ).scalar_one_or_none()
    if team_id is None:
        taken = (
            await session.execute(
                select(Team).where(
                    col(Team.community_id) == community.id, col(Team.name) == body.name
                )
            )
        ).scalar_one()
        same = (
            taken.created_by == principal.user_id
            and taken.description == body.description
            and taken.leader_id == (leader.id if leader else None)
        )
        if not same:
            raise TeamNameTaken(name=body.name)
        return TeamCreated(taken, created=False)
    if leader is not None:
        await _add_member(session, team_id, leader.id)
    team = await session.get(Team, team_id)
    assert team is not None
    return TeamCreated(team, created=True)


async def _add_member(session: AsyncSession, team_id: uuid.UUID, volunteer_id: uuid.UUID) -> None:
    await session.execute(
        insert(TeamMember)
        .values(team_id=team_id, volunteer_id=volunteer_id, joined_at=now())
        .on_conflict_do_nothing(index_elements=["team_id", "volunteer_id"])
    )


async def add_member(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, volunteer_id: uuid.UUID
) -> Team:
    """Add an approved volunteer of the caller's regions; adding a member again is a no-op."""
    team = await _team(session, principal, team_id, manage=True)
    volunteer = await _approved_in_scope(session, principal, volunteer_id)
    await _add_member(session, team.id, volunteer.id)
    return team


async def remove_member(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, volunteer_id: uuid.UUID
) -> Team:
    """Take a volunteer off the team (no-op when not in it); the leader leaves the lead."""
    team = await _team(session, principal, team_id, manage=True)
    await session.execute(
        delete(TeamMember).where(
            col(TeamMember.team_id) == team.id, col(TeamMember.volunteer_id) == volunteer_id
        )
    )
    if team.leader_id == volunteer_id:
        team.leader_id = None
        team.updated_at = now()
        await session.flush()
    return team


async def set_leader(
    session: AsyncSession,
    principal: Principal,
    team_id: uuid.UUID,
    volunteer_id: uuid.UUID | None,
) -> Team:
    """Make a member (approved) the leader, or leave the team without one (None)."""
    team = await _team(session, principal, team_id, manage=True)
    if volunteer_id is not None and team.leader_id != volunteer_id:
        if not await in_team(session, volunteer_id, team.id):
            raise LeaderNotMember()
        volunteer = await session.get(Volunteer, volunteer_id)
        if volunteer is None or volunteer.state != VolunteerState.approved:
            raise TeamMemberNotApproved()
    if team.leader_id != volunteer_id:
        team.leader_id = volunteer_id
        team.updated_at = now()
        await session.flush()
    return team


async def team_for_staff(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> Team:
    return await _team(session, principal, team_id)


def _members_count() -> Any:
    return (
        select(func.count())
        .where(col(TeamMember.team_id) == col(Team.id))
        .correlate(Team)
        .scalar_subquery()
    )


async def staff_teams(
    session: AsyncSession,
    principal: Principal,
    *,
    community: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.TeamOut]:
    """Teams of communities within the caller's regions, newest first."""
    require_staff(principal)
    query = (
        select(Team, _members_count())
        .where(region_scope(Team.community_path, principal, ACTIVITY_HOSTS))
        .limit(limit)
    )
    if community is not None:
        query = query.where(col(Team.community_path).descendant_of(community))  # type: ignore[attr-defined]
    query = keyset(query, col(Team.id), after)
    rows = (await session.execute(query)).all()
    return await _team_views(session, [(team, count) for team, count in rows])


async def _team_views(
    session: AsyncSession, teams: Sequence[tuple[Team, int]]
) -> list[schemas.TeamOut]:
    regions = await region_briefs(session, {team.community_id for team, _ in teams})
    leader_ids = {team.leader_id for team, _ in teams if team.leader_id is not None}
    leaders: dict[uuid.UUID, schemas.TeamPerson] = {}
    if leader_ids:
        rows = await session.execute(
            select(col(Volunteer.id), col(Volunteer.number), col(Volunteer.real_name)).where(
                col(Volunteer.id).in_(leader_ids)
            )
        )
        leaders = {
            vid: schemas.TeamPerson(volunteer_id=vid, number=number, real_name=name)
            for vid, number, name in rows.all()
        }
    return [
        schemas.TeamOut(
            id=team.id,
            community=regions[team.community_id],
            name=team.name,
            description=team.description,
            leader=leaders.get(team.leader_id) if team.leader_id else None,
            members_count=count,
            active=team.active,
            created_at=team.created_at,
        )
        for team, count in teams
    ]


async def team_detail(session: AsyncSession, team: Team) -> schemas.TeamDetail:
    await session.refresh(team)
    rows = (
        await session.execute(
            select(
                col(Volunteer.id),
                col(Volunteer.number),
                col(Volunteer.real_name),
                col(TeamMember.joined_at),
            )
            .join(TeamMember, col(TeamMember.volunteer_id) == col(Volunteer.id))
            .where(col(TeamMember.team_id) == team.id)
            .order_by(col(TeamMember.joined_at), col(Volunteer.id))
        )
    ).all()
    members = sorted(
        (
            schemas.TeamMemberOut(
                volunteer_id=vid,
                number=number,
                real_name=name,
                leader=vid == team.leader_id,
                joined_at=joined_at,
            )
            for vid, number, name, joined_at in rows
        ),
        key=lambda member: not member.leader,  # stable: the leader first, then by joining
    )
    [view] = await _team_views(session, [(team, len(members))])
    return schemas.TeamDetail(**view.model_dump(), members=members)
