"""Small async factories for the volunteer tests: rows in explicit states, never at random.

They write through the test's session (inside its rolled-back transaction); the demo city
must be loaded first (the `demo` fixture). Anything a test is about goes through HTTP.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from shapely.geometry import shape
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.core.clock import now
from backend.core.ids import new_id
from backend.regions.models import Region
from points.models import PointsEarningRule
from volunteers.attendance import codes
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Enrolment,
    EnrolmentState,
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)

GANGDING = "gz.tianhe.shipai.gangding"  # the demo staff's community
ELSEWHERE = "gz.yuexiu.beijing.fuqian"  # a community of another district


async def user_id_of(session: AsyncSession, openid: str) -> uuid.UUID:
    """The user with this openid, created when missing (as a first login would)."""
    found = await session.execute(select(col(User.id)).where(col(User.openid) == openid))
    user_id = found.scalar_one_or_none()
    if user_id is None:
        user = User(id=new_id(), openid=openid, nickname=openid)
        session.add(user)
        await session.flush()
        user_id = user.id
    return user_id


async def region_of(session: AsyncSession, path: str) -> Region:
    found = await session.execute(select(Region).where(col(Region.path) == path))
    return found.scalar_one()


async def centre_of(session: AsyncSession, path: str) -> tuple[float, float]:
    """A WGS-84 point inside the region (the centroid of its boundary)."""
    region = await region_of(session, path)
    assert region.boundary is not None, f"{path} has no boundary"
    point = shape(region.boundary).representative_point()
    return point.y, point.x


async def make_volunteer(
    session: AsyncSession,
    openid: str,
    *,
    community: str = GANGDING,
    state: VolunteerState = VolunteerState.approved,
    real_name: str = "陈志愿",
) -> Volunteer:
    user_id = await user_id_of(session, openid)
    region = await region_of(session, community)
    volunteer = Volunteer(
        user_id=user_id,
        real_name=real_name,
        skills=["patrol"],
        availability={"weekend": True},
        community_id=region.id,
        community_path=region.path,
        state=state,
        number=f"V-TEST-{uuid.uuid4().hex[:10]}" if state is VolunteerState.approved else None,
    )
    session.add(volunteer)
    await session.flush()
    return volunteer


async def make_team(
    session: AsyncSession,
    *,
    name: str,
    created_by: uuid.UUID,
    community: str = GANGDING,
    leader: Volunteer | None = None,
    members: tuple[Volunteer, ...] = (),
) -> Team:
    region = await region_of(session, community)
    team = Team(
        community_id=region.id,
        community_path=region.path,
        name=name,
        leader_id=leader.id if leader else None,
        created_by=created_by,
    )
    session.add(team)
    await session.flush()
    everyone = {v.id for v in members} | ({leader.id} if leader else set())
    session.add_all(TeamMember(team_id=team.id, volunteer_id=v) for v in everyone)
    await session.flush()
    return team


async def make_activity(
    session: AsyncSession,
    *,
    created_by: uuid.UUID,
    community: str = GANGDING,
    type: ActivityType = ActivityType.public_security_patrol,
    starts_at: datetime | None = None,
    hours: float = 2,
    capacity: int = 10,
    place: tuple[float, float] | None = None,
    radius_m: int | None = 300,
    polygon: dict[str, Any] | None = None,
    state: ActivityState = ActivityState.published,
    team: Team | None = None,
    title: str = "治安巡逻",
) -> Activity:
    """An activity at the community's centre (WGS-84) by default, starting in an hour."""
    region = await region_of(session, community)
    lat, lng = place or await centre_of(session, community)
    starts = starts_at or now() + timedelta(hours=1)
    activity = Activity(
        type=type,
        title=title,
        region_id=region.id,
        region_path=region.path,
        team_id=team.id if team else None,
        place_name="社区服务站",
        lat=lat,
        lng=lng,
        fence_radius_m=None if polygon else radius_m,
        fence_polygon=polygon,
        starts_at=starts,
        ends_at=starts + timedelta(hours=hours),
        capacity=capacity,
        state=state,
        code_secret=codes.new_secret(),
        created_by=created_by,
        published_at=now() if state is not ActivityState.draft else None,
    )
    session.add(activity)
    await session.flush()
    return activity


async def make_enrolment(
    session: AsyncSession,
    activity: Activity,
    volunteer: Volunteer,
    *,
    state: EnrolmentState = EnrolmentState.enrolled,
) -> Enrolment:
    """An enrolment, with the activity's counters kept in step."""
    enrolment = Enrolment(
        activity_id=activity.id, volunteer_id=volunteer.id, state=state, queued_at=now()
    )
    session.add(enrolment)
    await session.flush()
    counter = {
        EnrolmentState.enrolled: Activity.enrolled,
        EnrolmentState.waitlisted: Activity.waitlisted,
    }.get(state)
    if counter is not None:
        await session.execute(
            update(Activity)
            .where(col(Activity.id) == activity.id)
            .values({counter.key: counter + 1})  # type: ignore[attr-defined]
        )
        await session.refresh(activity)
    return enrolment


async def set_earning_rule(
    session: AsyncSession, activity_type: str, points: int, *, daily_cap: int | None = None
) -> None:
    await session.execute(
        insert(PointsEarningRule)
        .values(id=new_id(), activity_type=activity_type, points=points, daily_cap=daily_cap)
        .on_conflict_do_update(
            index_elements=["activity_type"],
            set_={"points": points, "daily_cap": daily_cap, "active": True},
        )
    )


def current_code(activity: Activity, at: datetime | None = None) -> codes.ShownCode:
    return codes.code_at(activity.code_secret, activity.id, at or now())
