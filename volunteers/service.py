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
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.errors import Forbidden
from backend.core.ids import new_id
from backend.core.spreadsheet import csv_text
from backend.regions.models import Region, RegionLevel
from points.ledger import service as ledger_service
from volunteers import schemas
from volunteers.auth import (
    ACTIVITY_HOSTS,
    VOLUNTEER_MANAGERS,
    in_team,
    own_volunteer,
    scoped_volunteer,
)
from volunteers.errors import (
    AlreadyApproved,
    CommunityInvalid,
    CommunityNotFound,
    LeaderboardCommunityRequired,
    LeaderNotMember,
    NoServiceRecord,
    NotSuspendable,
    PhoneRequired,
    RegistrationSuspended,
    ReviewClosed,
    ReviewNotAllowed,
    TeamCommunityInvalid,
    TeamManageNotAllowed,
    TeamMemberNotApproved,
    TeamNameTaken,
    TeamNotFound,
)
from volunteers.models import (
    Activity,
    ActivityType,
    Attendance,
    AttendanceState,
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)
from volunteers.views import activity_brief, region_briefs

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
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


async def _community(session: AsyncSession, code: str) -> Region | None:
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
    community = await _community(session, body.community)
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
    balance = await ledger_service.balance(session, volunteer.user_id)
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


def _require_staff(principal: Principal) -> None:
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
    _require_staff(principal)
    query = (
        select(Volunteer, col(User.nickname), col(User.phone_masked))
        .join(User, col(User.id) == col(Volunteer.user_id))
        .where(region_scope(Volunteer.community_path, principal, ACTIVITY_HOSTS))
        .order_by(col(Volunteer.id).desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Volunteer.state) == state.value)
    if community is not None:
        query = query.where(col(Volunteer.community_path).descendant_of(community))
    if after is not None:
        query = query.where(col(Volunteer.id) < after)
    rows = (await session.execute(query)).all()
    regions = await region_briefs(session, {volunteer.community_id for volunteer, _, _ in rows})
    return [
        _staff_view(volunteer, nickname, phone, regions[volunteer.community_id])
        for volunteer, nickname, phone in rows
    ]


def _staff_view(
    volunteer: Volunteer, nickname: str | None, phone: str | None, community: schemas.RegionBrief
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
    community = await _community(session, body.community)
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
    _require_staff(principal)
    query = (
        select(Team, _members_count())
        .where(region_scope(Team.community_path, principal, ACTIVITY_HOSTS))
        .order_by(col(Team.id).desc())
        .limit(limit)
    )
    if community is not None:
        query = query.where(col(Team.community_path).descendant_of(community))
    if after is not None:
        query = query.where(col(Team.id) < after)
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


# --- records ---------------------------------------------------------------------------------


async def my_records(
    session: AsyncSession, volunteer: Volunteer, *, after: uuid.UUID | None, limit: int
) -> list[schemas.ServiceRecord]:
    """The volunteer's verified attendance, newest first."""
    query = (
        select(Attendance, Activity)
        .join(Activity, col(Activity.id) == col(Attendance.activity_id))
        .where(
            col(Attendance.volunteer_id) == volunteer.id,
            col(Attendance.state) == AttendanceState.verified.value,
        )
        .order_by(col(Attendance.id).desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(Attendance.id) < after)
    rows = (await session.execute(query)).all()
    organisers = await region_briefs(session, {activity.region_id for _, activity in rows})
    return [
        schemas.ServiceRecord(
            id=attendance.id,
            activity=activity_brief(activity, organisers[activity.region_id]),
            checked_in_at=attendance.checked_in_at,
            checked_out_at=attendance.checked_out_at,
            minutes=attendance.minutes or 0,
            points=attendance.points or 0,
            verified_at=attendance.verified_at or attendance.checked_in_at,
        )
        for attendance, activity in rows
    ]


# --- the certified service record ------------------------------------------------------------

RECORD_COLUMNS = (
    "活动名称",
    "活动类型",
    "组织单位",
    "日期",
    "签到时间",
    "签退时间",
    "服务时长（分钟）",
)


@dataclass(frozen=True)
class CertifiedRecord:
    volunteer: Volunteer
    csv: str


async def service_record_csv(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> CertifiedRecord:
    """The volunteer's verified service in activities organised within the caller's regions,
    oldest first, as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese right).

    Only what the caller's regions organised: they record it, so they certify it. With
    nothing of theirs (or no such volunteer) the answer is the same 404.
    """
    if not principal.paths_for(VOLUNTEER_MANAGERS):
        raise Forbidden()
    rows = (
        await session.execute(
            select(Attendance, Activity, col(Region.name))
            .join(Activity, col(Activity.id) == col(Attendance.activity_id))
            .join(Region, col(Region.id) == col(Activity.region_id))
            .where(
                col(Attendance.volunteer_id) == volunteer_id,
                col(Attendance.state) == AttendanceState.verified.value,
                region_scope(Attendance.region_path, principal, VOLUNTEER_MANAGERS),
            )
            .order_by(col(Activity.starts_at), col(Attendance.id))
        )
    ).all()
    volunteer = await session.get(Volunteer, volunteer_id) if rows else None
    if volunteer is None:
        raise NoServiceRecord()
    table: list[list[Any]] = [
        ["志愿服务记录证明"],
        ["志愿者编号", volunteer.number],
        ["姓名", volunteer.real_name],
        [],
        list(RECORD_COLUMNS),
    ]
    total = 0
    certifiers: dict[str, None] = {}
    for attendance, activity, organiser in rows:
        minutes = attendance.minutes or 0
        total += minutes
        certifiers[organiser] = None
        table.append(
            [
                activity.title,
                ACTIVITY_TYPE_ZH.get(activity.type, str(activity.type)),
                organiser,
                activity.starts_at.astimezone(LOCAL_TIME).strftime("%Y-%m-%d"),
                attendance.checked_in_at,
                attendance.checked_out_at,
                minutes,
            ]
        )
    table += [
        ["合计", f"{len(rows)} 次活动", "", "", "", f"{hours(total)} 小时", total],
        [],
        ["证明单位", "、".join(certifiers), "出具时间", now()],
        ["依据《志愿服务记录与证明出具办法》（民政部令第67号），谁组织、谁记录、谁证明"],
    ]
    return CertifiedRecord(volunteer, csv_text(table, time_format="%Y-%m-%d %H:%M"))


# --- the leaderboard -------------------------------------------------------------------------

_LEADERBOARD = text(
    """
    WITH totals AS (
        SELECT volunteer_id, sum(coalesce(minutes, 0)) AS minutes, count(*) AS activities
        FROM volunteer_attendance
        WHERE state = 'verified'
          AND region_path <@ CAST(:community AS ltree)
          AND verified_at >= :start AND verified_at < :end
        GROUP BY volunteer_id
    ), ranked AS (
        SELECT t.minutes, t.activities, v.number, v.real_name, v.user_id,
               rank() OVER (ORDER BY t.minutes DESC) AS rank,
               row_number() OVER (
                   ORDER BY t.minutes DESC, t.activities DESC, v.number, v.id
               ) AS position
        FROM totals t JOIN volunteer v ON v.id = t.volunteer_id
    )
    SELECT minutes, activities, number, real_name, user_id, rank, position
    FROM ranked
    WHERE position <= :size OR user_id = :me
    ORDER BY position
    """
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`2026-11` -> the month's first instant and the next month's, China time."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=LOCAL_TIME)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=LOCAL_TIME)
    return start, end


async def leaderboard(
    session: AsyncSession, principal: Principal, *, community: str | None, month: str | None
) -> schemas.Leaderboard:
    """Verified minutes per volunteer in a month of activities organised by a community.

    Defaults: the caller's home community, this month (China time).
    """
    if community is None:
        home = (
            await session.execute(
                select(col(Volunteer.community_path)).where(
                    col(Volunteer.user_id) == principal.user_id
                )
            )
        ).scalar_one_or_none()
        if home is None:
            raise LeaderboardCommunityRequired()
        community = home
    region = await _community(session, community)
    if region is None:
        raise CommunityNotFound(code=community)
    month = month or now().astimezone(LOCAL_TIME).strftime("%Y-%m")
    start, end = month_bounds(month)
    rows = (
        await session.execute(
            _LEADERBOARD,
            {
                "community": region.path,
                "start": start,
                "end": end,
                "size": LEADERBOARD_SIZE,
                "me": principal.user_id,
            },
        )
    ).all()
    entries = [
        schemas.LeaderboardEntry(
            rank=row.rank,
            number=row.number,
            name=mask_name(row.real_name),
            minutes=int(row.minutes),
            hours=hours(int(row.minutes)),
            activities=row.activities,
        )
        for row in rows
        if row.position <= LEADERBOARD_SIZE
    ]
    mine = next((row for row in rows if row.user_id == principal.user_id), None)
    return schemas.Leaderboard(
        community=schemas.RegionBrief(code=region.path, name=region.name, name_en=region.name_en),
        month=month,
        entries=entries,
        me=schemas.LeaderboardMine(
            rank=mine.rank,
            minutes=int(mine.minutes),
            hours=hours(int(mine.minutes)),
            activities=mine.activities,
        )
        if mine is not None
        else None,
    )


async def my_volunteer(session: AsyncSession, principal: Principal) -> Volunteer:
    """The caller's registration in any state (404 `volunteer.not_signed_up` without)."""
    return await own_volunteer(session, principal, approved=False)
