"""Demo volunteers, a team and tonight's patrols."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import LOCAL_TIME, now
from backend.core.ids import new_id
from backend.demo.city import (
    DECIMALS,
    GRID_COLUMNS,
    GRID_DLAT,
    GRID_DLNG,
    GRID_ROWS,
    edge,
    ensure_users,
)
from backend.demo.rewards import DEMO_CENTERS, DEMO_NAMESPACE
from backend.regions.models import Region
from points.models import PointsEarningRule
from volunteers.attendance import codes
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Team,
    TeamMember,
    Volunteer,
    VolunteerState,
)

# --- volunteers --------------------------------------------------------------------------

# Points per activity type (the ledger's earning rules), at most 30 a day per member each.
DEMO_EARNING_RULES: dict[ActivityType, int] = {
    ActivityType.public_security_patrol: 10,
    ActivityType.rental_inspection: 15,
    ActivityType.fire_safety_check: 15,
    ActivityType.community_service: 8,
    ActivityType.civilised_traffic: 5,
    ActivityType.elderly_care: 5,
}


DEMO_DAILY_CAP = 30


DEMO_VOLUNTEER = "demo-resident"


DEMO_TEAM = "岗顶平安巡逻队"


_GANGDING_CENTER = DEMO_CENTERS[0]


def _tonight(at: datetime) -> datetime:
    """20:00 China time today, or the next full hour when that has passed."""
    local = at.astimezone(LOCAL_TIME)
    evening = local.replace(hour=20, minute=0, second=0, microsecond=0)
    if local < evening:
        return evening
    return local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def load_demo_volunteers(session: AsyncSession) -> None:
    """The earning rules, `demo-resident` as an approved volunteer of Gangding leading its
    patrol team, and two published activities there (a patrol tonight and a rental-house
    inspection tomorrow, fenced around the community's service center). What is already
    there (maybe edited) stays as it is."""
    await session.execute(
        insert(PointsEarningRule)
        .values(
            [
                {
                    "id": new_id(),
                    "activity_type": activity_type.value,
                    "points": points,
                    "daily_cap": DEMO_DAILY_CAP,
                    "active": True,
                }
                for activity_type, points in DEMO_EARNING_RULES.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["activity_type"])
    )
    found = await session.execute(
        select(Region).where(col(Region.path) == _GANGDING_CENTER.community)
    )
    gangding = found.scalar_one_or_none()
    if gangding is None:
        return  # not the demo city
    users = await ensure_users(session)
    staff = users["demo-community-staff"]
    at = now()
    registered = await session.execute(
        select(col(Volunteer.id)).where(col(Volunteer.user_id) == users[DEMO_VOLUNTEER])
    )
    if registered.first() is None:
        serial = (await session.execute(text("SELECT nextval('volunteer_number_seq')"))).scalar()
        session.add(
            Volunteer(
                id=new_id(),
                user_id=users[DEMO_VOLUNTEER],
                number=f"V{at.astimezone(LOCAL_TIME).year}-{serial:07d}",
                real_name="陈明",
                skills=["patrol", "first_aid"],
                availability={
                    "weekday_daytime": False,
                    "weekday_evening": True,
                    "weekend": True,
                    "note": None,
                },
                community_id=gangding.id,
                community_path=gangding.path,
                state=VolunteerState.approved,
                reviewed_by=staff,
                reviewed_at=at,
                created_at=at,
            )
        )
        await session.flush()
    # Whoever signed up as demo-resident before the demo loaded leads only once approved.
    leader = (
        await session.execute(
            select(col(Volunteer.id)).where(
                col(Volunteer.user_id) == users[DEMO_VOLUNTEER],
                col(Volunteer.state) == VolunteerState.approved.value,
            )
        )
    ).scalar_one_or_none()
    await session.execute(
        insert(Team)
        .values(
            id=new_id(),
            community_id=gangding.id,
            community_path=gangding.path,
            name=DEMO_TEAM,
            description="群防群治治安巡逻队，每晚 8 点在社区服务中心集合",
            leader_id=leader,
            active=True,
            created_by=staff,
            created_at=at,
        )
        # The team's name is unique in its community: once there, it stays as it is.
        .on_conflict_do_nothing()
    )
    team = (
        await session.execute(
            select(col(Team.id)).where(
                col(Team.community_id) == gangding.id, col(Team.name) == DEMO_TEAM
            )
        )
    ).scalar_one()
    if leader is not None:
        await session.execute(
            insert(TeamMember)
            .values(team_id=team, volunteer_id=leader, joined_at=at)
            .on_conflict_do_nothing()
        )
    west = edge(_GANGDING_CENTER.street_west, GRID_DLNG, _GANGDING_CENTER.position * GRID_COLUMNS)
    centre = {
        "lat": round(_GANGDING_CENTER.street_south + GRID_ROWS * GRID_DLAT / 2, DECIMALS),
        "lng": round(west + GRID_COLUMNS * GRID_DLNG / 2, DECIMALS),
    }
    tonight = _tonight(at)
    tomorrow = (at.astimezone(LOCAL_TIME) + timedelta(days=1)).replace(
        hour=9, minute=30, second=0, microsecond=0
    )
    activities: list[tuple[str, dict[str, Any]]] = [
        (
            "activity:gangding-patrol",
            {
                "type": ActivityType.public_security_patrol.value,
                "title": "岗顶社区夜间治安巡逻",
                "description": "沿天河路、岗顶路巡逻，留意消防通道和可疑情况，发现隐患随手拍上报。",
                "starts_at": tonight,
                "ends_at": tonight + timedelta(hours=2),
                "capacity": 10,
            },
        ),
        (
            "activity:gangding-rental-inspection",
            {
                "type": ActivityType.rental_inspection.value,
                "title": "岗顶社区出租屋安全巡查",
                "description": "逐户检查灭火器、逃生通道、电线和租客登记，不合格项即时上报。",
                "starts_at": tomorrow,
                "ends_at": tomorrow + timedelta(hours=2),
                "capacity": 6,
            },
        ),
    ]
    await session.execute(
        insert(Activity)
        .values(
            [
                {
                    "id": uuid.uuid5(DEMO_NAMESPACE, key),
                    **activity,
                    "region_id": gangding.id,
                    "region_path": gangding.path,
                    "team_id": None,
                    "place_name": _GANGDING_CENTER.name,
                    "address": _GANGDING_CENTER.address,
                    **centre,
                    "fence_radius_m": 300,
                    "enrolled": 0,
                    "waitlisted": 0,
                    "state": ActivityState.published.value,
                    "code_secret": codes.new_secret(),
                    "created_by": staff,
                    "created_at": at,
                    "published_at": at,
                }
                for key, activity in activities
            ]
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
