"""The volunteer registry, without HTTP: sign-up and its review, teams, service records, the
certified export and the monthly leaderboard.

A registration is one row per user. Staff see and act on volunteers whose home community
lies within their regions; the service record, by contrast, is certified by whoever organised
the activities ("whoever organises records, whoever records certifies"), so its export is
scoped by the attendance's organising region, wherever the volunteer lives.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.auth.principal import Principal, region_scope
from backend.core.clock import LOCAL_TIME, now
from backend.core.errors import Forbidden
from backend.core.ids import new_id
from backend.core.pagination import keyset
from backend.regions.models import Region, RegionLevel
from backend.regions.schemas import RegionBrief
from points.ledger import queries as ledger_queries
from volunteers.auth import (
    ACTIVITY_HOSTS,
    VOLUNTEER_MANAGERS,
    scoped_volunteer,
)
from volunteers.models import (
    ActivityType,
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)
from volunteers.queries import region_briefs
from volunteers.registrations import schemas
from volunteers.registrations.errors import (
    AlreadyApproved,
    CommunityInvalid,
    NotSuspendable,
    PhoneRequired,
    RegistrationSuspended,
    ReviewClosed,
    ReviewNotAllowed,
)

LEADERBOARD_SIZE = 50


STATE_ZH: dict[VolunteerState, str] = {
    VolunteerState.pending: "待审核",
    VolunteerState.approved: "审核通过",
    VolunteerState.rejected: "被驳回",
    VolunteerState.suspended: "暂停",
}


ACTIVITY_TYPE_ZH: dict[ActivityType, str] = {
    ActivityType.public_security_patrol: "治安巡逻",
    ActivityType.rental_inspection: "出租屋巡查",
    ActivityType.fire_safety_check: "消防安全检查",
    ActivityType.community_service: "社区服务",
    ActivityType.civilised_traffic: "文明交通劝导",
    ActivityType.elderly_care: "关爱长者",
}


def hours(minutes: int) -> float:
    return round(minutes / 60, 1)


def mask_name(name: str) -> str:
    """`陈明` -> `陈*`: enough for neighbours to recognise, not enough to expose."""
    return f"{name[:1]}*"


# --- regions ---------------------------------------------------------------------------------


async def community_by_code(session: AsyncSession, code: str) -> Region | None:
    found = await session.execute(
        select(Region).where(
            col(Region.path) == code, col(Region.level) == RegionLevel.community.value
        )
    )
    return found.scalar_one_or_none()


# --- sign-up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignUp:
    volunteer: Volunteer
    created: bool  # a new registration (else the one there was, maybe updated)


def _availability(stored: dict[str, Any]) -> schemas.Availability:
    known = schemas.Availability.model_fields
    return schemas.Availability.model_validate({k: v for k, v in stored.items() if k in known})


def _skills(stored: list[str]) -> list[schemas.Skill]:
    known = {skill.value for skill in schemas.Skill}
    return [schemas.Skill(skill) for skill in stored if skill in known]


async def sign_up(session: AsyncSession, user: User, body: schemas.VolunteerSignUp) -> SignUp:
    """Register the user as a volunteer of a community, or update what they applied with.

    Idempotent: the same answers while pending change nothing; other answers while pending
    replace the application; after a rejection the application is reviewed anew. An
    approved or suspended volunteer cannot sign up again (409).
    """
    if user.phone_hash is None:
        raise PhoneRequired()
    community = await community_by_code(session, body.community)
    if community is None:
        raise CommunityInvalid(code=body.community)
    answers: dict[str, Any] = {
        "real_name": body.real_name,
        # Each skill once, in the order given.
        "skills": list(dict.fromkeys(skill.value for skill in body.skills)),
        "availability": body.availability.model_dump(),
        "community_id": community.id,
        "community_path": community.path,
    }
    volunteer = await _own_for_update(session, user.id)
    if volunteer is None:
        at = now()
        inserted = await session.execute(
            insert(Volunteer)
            .values(
                id=new_id(),
                user_id=user.id,
                state=VolunteerState.pending.value,
                service_minutes=0,
                activities_attended=0,
                created_at=at,
                **answers,
            )
            # Two first sign-ups at once: one inserts, the other updates what it made.
            .on_conflict_do_nothing(index_elements=["user_id"])
            .returning(col(Volunteer.id))
        )
        if inserted.scalar_one_or_none() is not None:
            created = await _own_for_update(session, user.id)
            assert created is not None
            return SignUp(created, created=True)
        volunteer = await _own_for_update(session, user.id)
        assert volunteer is not None
    if volunteer.state == VolunteerState.approved:
        raise AlreadyApproved()
    if volunteer.state == VolunteerState.suspended:
        raise RegistrationSuspended()
    unchanged = all(getattr(volunteer, name) == value for name, value in answers.items())
    if volunteer.state == VolunteerState.pending and unchanged:
        return SignUp(volunteer, created=False)
    for name, value in answers.items():
        setattr(volunteer, name, value)
    # A rejected application comes back for a new review.
    volunteer.state = VolunteerState.pending
    volunteer.review_reason = None
    volunteer.reviewed_by = None
    volunteer.reviewed_at = None
    volunteer.updated_at = now()
    await session.flush()
    return SignUp(volunteer, created=False)


async def _own_for_update(session: AsyncSession, user_id: uuid.UUID) -> Volunteer | None:
    found = await session.execute(
        select(Volunteer)
        .where(col(Volunteer.user_id) == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.scalar_one_or_none()


async def _teams_of(
    session: AsyncSession, volunteer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[schemas.MyTeam]]:
    teams: dict[uuid.UUID, list[schemas.MyTeam]] = {v: [] for v in volunteer_ids}
    if not volunteer_ids:
        return teams
    rows = await session.execute(
        select(col(TeamMember.volunteer_id), col(Team.id), col(Team.name), col(Team.leader_id))
        .join(Team, col(Team.id) == col(TeamMember.team_id))
        .where(col(TeamMember.volunteer_id).in_(volunteer_ids), col(Team.active).is_(True))
        .order_by(col(Team.name))
    )
    for volunteer_id, team_id, name, leader_id in rows.all():
        teams[volunteer_id].append(
            schemas.MyTeam(id=team_id, name=name, leader=leader_id == volunteer_id)
        )
    return teams


async def profile(session: AsyncSession, volunteer: Volunteer) -> schemas.VolunteerProfile:
    """The volunteer's own view: registration, teams, hours and points."""
    community = (await region_briefs(session, {volunteer.community_id}))[volunteer.community_id]
    teams = (await _teams_of(session, [volunteer.id]))[volunteer.id]
    balance = await ledger_queries.balance(session, volunteer.user_id)
    return schemas.VolunteerProfile(
        id=volunteer.id,
        state=volunteer.state,
        number=volunteer.number,
        review_reason=volunteer.review_reason,
        reviewed_at=volunteer.reviewed_at,
        real_name=volunteer.real_name,
        skills=_skills(volunteer.skills),
        availability=_availability(volunteer.availability),
        community=community,
        teams=teams,
        service_minutes=volunteer.service_minutes,
        service_hours=hours(volunteer.service_minutes),
        activities_attended=volunteer.activities_attended,
        points_available=balance.available,
        created_at=volunteer.created_at,
        updated_at=volunteer.updated_at,
    )


# --- review by staff -------------------------------------------------------------------------


def require_staff(principal: Principal) -> None:
    """Staff lists answer 403 to someone who is staff nowhere (and empty lists elsewhere)."""
    if not principal.paths_for(ACTIVITY_HOSTS):
        raise Forbidden()


async def staff_volunteers(
    session: AsyncSession,
    principal: Principal,
    *,
    state: VolunteerState | None,
    community: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[schemas.StaffVolunteer]:
    """Volunteers whose home community lies within the caller's regions, newest first."""
    require_staff(principal)
    query = (
        select(Volunteer, col(User.nickname), col(User.phone_masked))
        .join(User, col(User.id) == col(Volunteer.user_id))
        .where(region_scope(Volunteer.community_path, principal, ACTIVITY_HOSTS))
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Volunteer.state) == state.value)
    if community is not None:
        query = query.where(col(Volunteer.community_path).descendant_of(community))  # type: ignore[attr-defined]
    query = keyset(query, col(Volunteer.id), after)
    rows = (await session.execute(query)).all()
    regions = await region_briefs(session, {volunteer.community_id for volunteer, _, _ in rows})
    return [
        _staff_view(volunteer, nickname, phone, regions[volunteer.community_id])
        for volunteer, nickname, phone in rows
    ]


def _staff_view(
    volunteer: Volunteer, nickname: str | None, phone: str | None, community: RegionBrief
) -> schemas.StaffVolunteer:
    return schemas.StaffVolunteer(
        id=volunteer.id,
        state=volunteer.state,
        number=volunteer.number,
        real_name=volunteer.real_name,
        nickname=nickname,
        phone=phone,
        skills=_skills(volunteer.skills),
        availability=_availability(volunteer.availability),
        community=community,
        review_reason=volunteer.review_reason,
        reviewed_at=volunteer.reviewed_at,
        service_minutes=volunteer.service_minutes,
        service_hours=hours(volunteer.service_minutes),
        activities_attended=volunteer.activities_attended,
        created_at=volunteer.created_at,
        updated_at=volunteer.updated_at,
    )


async def staff_volunteer_detail(
    session: AsyncSession, volunteer: Volunteer
) -> schemas.StaffVolunteerDetail:
    user = await session.get(User, volunteer.user_id)
    assert user is not None  # a foreign key
    community = (await region_briefs(session, {volunteer.community_id}))[volunteer.community_id]
    view = _staff_view(volunteer, user.nickname, user.phone_masked, community)
    teams = (await _teams_of(session, [volunteer.id]))[volunteer.id]
    return schemas.StaffVolunteerDetail(**view.model_dump(), teams=teams)


async def volunteer_for_staff(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> Volunteer:
    """A volunteer of the caller's regions (grid workers included); 404 elsewhere."""
    return await scoped_volunteer(session, principal, volunteer_id, ACTIVITY_HOSTS)


async def _for_review(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> Volunteer:
    # Found for anyone who may see it (so a grid worker learns it is not theirs to decide,
    # 403), locked so two reviews at once apply one after the other.
    volunteer = await scoped_volunteer(
        session, principal, volunteer_id, ACTIVITY_HOSTS, for_update=True
    )
    await session.refresh(volunteer)
    if not principal.can(VOLUNTEER_MANAGERS, volunteer.community_path):
        raise ReviewNotAllowed()
    return volunteer


async def _next_number(session: AsyncSession, at: datetime) -> str:
    # A sequence, so approvals never wait on each other; the year is China's.
    serial = (await session.execute(text("SELECT nextval('volunteer_number_seq')"))).scalar_one()
    return f"V{at.astimezone(LOCAL_TIME).year}-{serial:07d}"


async def approve(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> Volunteer:
    """Approve a pending (or rejected, or suspended) registration.

    The first approval issues the volunteer number; a suspended volunteer gets their old one
    back. Approving an approved volunteer changes nothing.
    """
    volunteer = await _for_review(session, principal, volunteer_id)
    if volunteer.state == VolunteerState.approved:
        return volunteer
    at = now()
    if volunteer.number is None:
        volunteer.number = await _next_number(session, at)
    volunteer.state = VolunteerState.approved
    volunteer.review_reason = None
    volunteer.reviewed_by = principal.user_id
    volunteer.reviewed_at = at
    volunteer.updated_at = at
    await session.flush()
    return volunteer


async def reject(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID, reason: str
) -> Volunteer:
    """Reject a pending registration with a reason the volunteer sees. Rejecting a rejected
    one again keeps it rejected with the new reason; an approved or suspended one is 409."""
    volunteer = await _for_review(session, principal, volunteer_id)
    if volunteer.state in (VolunteerState.approved, VolunteerState.suspended):
        state = VolunteerState(volunteer.state)
        raise ReviewClosed(state=state.value, state_zh=STATE_ZH[state])
    at = now()
    volunteer.state = VolunteerState.rejected
    volunteer.review_reason = reason
    volunteer.reviewed_by = principal.user_id
    volunteer.reviewed_at = at
    volunteer.updated_at = at
    await session.flush()
    return volunteer


async def suspend(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID, reason: str
) -> Volunteer:
    """Stop an approved volunteer from enrolling (their number and record stay). Suspending
    a suspended one changes nothing; a pending or rejected one is 409."""
    volunteer = await _for_review(session, principal, volunteer_id)
    if volunteer.state == VolunteerState.suspended:
        return volunteer
    if volunteer.state != VolunteerState.approved:
        state = VolunteerState(volunteer.state)
        raise NotSuspendable(state=state.value, state_zh=STATE_ZH[state])
    at = now()
    volunteer.state = VolunteerState.suspended
    volunteer.review_reason = reason
    volunteer.reviewed_by = principal.user_id
    volunteer.reviewed_at = at
    volunteer.updated_at = at
    await session.flush()
    return volunteer
