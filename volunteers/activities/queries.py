"""Reading activities: views, the nearby search, and staff lists."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now, storable
from backend.core.pagination import CursorInvalid, Page, cut_page, encode_cursor, keyset
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import RegionNotFound
from backend.regions.geo import distance_m_sql
from backend.regions.models import Region
from points.models import PointsEarningRule
from volunteers.activities import schemas
from volunteers.activities.errors import (
    PeriodInvalid,
    PlaceRequired,
)
from volunteers.activities.service import (
    BY_ACTIVITY_CANCELLED,
    METRES_PER_DEGREE,
    position_column,
    require_host,
)
from volunteers.auth import (
    ACTIVITY_HOSTS,
    scoped_activity,
)
from volunteers.errors import ActivityNotFound, NotSignedUp
from volunteers.models import (
    Activity,
    ActivityState,
    Attendance,
    Enrolment,
    EnrolmentState,
    Team,
    TeamMember,
    Volunteer,
)
from volunteers.queries import brief_fields, region_briefs
from volunteers.schemas import ActivityBrief, PointOut

# --- views ---------------------------------------------------------------------------------


async def _teams(
    session: AsyncSession, team_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, schemas.TeamBrief]:
    wanted = {t for t in team_ids if t is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Team.id), col(Team.name)).where(col(Team.id).in_(wanted))
    )
    return {row.id: schemas.TeamBrief(id=row.id, name=row.name) for row in rows}


async def _reward_points(session: AsyncSession, types: Sequence[str]) -> dict[str, int]:
    """Points the ledger's active earning rule gives per activity type."""
    if not types:
        return {}
    rows = await session.execute(
        select(col(PointsEarningRule.activity_type), col(PointsEarningRule.points)).where(
            col(PointsEarningRule.activity_type).in_(set(types)),
            col(PointsEarningRule.active).is_(True),
        )
    )
    return {row.activity_type: int(row.points) for row in rows}


async def _my_enrolments(
    session: AsyncSession, volunteer_id: uuid.UUID | None, activity_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, schemas.MyEnrolment]:
    if volunteer_id is None or not activity_ids:
        return {}
    rows = await session.execute(
        select(
            col(Enrolment.activity_id), col(Enrolment.id), col(Enrolment.state), position_column()
        ).where(
            col(Enrolment.volunteer_id) == volunteer_id,
            col(Enrolment.activity_id).in_(list(activity_ids)),
        )
    )
    return {
        activity_id: schemas.MyEnrolment(
            id=enrolment_id,
            state=state,
            waitlist_position=None if position is None else int(position),
        )
        for activity_id, enrolment_id, state, position in rows.all()
    }


async def _volunteer_of(session: AsyncSession, principal: Principal) -> Volunteer | None:
    return (
        await session.execute(select(Volunteer).where(col(Volunteer.user_id) == principal.user_id))
    ).scalar_one_or_none()


async def activity_items(
    session: AsyncSession,
    activities: Sequence[Activity],
    *,
    volunteer_id: uuid.UUID | None,
    distances: dict[uuid.UUID, float] | None = None,
) -> list[schemas.ActivityItem]:
    organisers = await region_briefs(session, [a.region_id for a in activities])
    teams = await _teams(session, [a.team_id for a in activities])
    rewards = await _reward_points(session, [a.type for a in activities])
    mine = await _my_enrolments(session, volunteer_id, [a.id for a in activities])
    return [
        schemas.ActivityItem(
            **brief_fields(a, organisers[a.region_id]),
            team=teams.get(a.team_id) if a.team_id else None,
            capacity=a.capacity,
            places_left=max(a.capacity - a.enrolled, 0),
            waitlisted=a.waitlisted,
            reward_points=rewards.get(a.type),
            distance_m=(distances or {}).get(a.id),
            my_enrolment=mine.get(a.id),
        )
        for a in activities
    ]


def _detail_fields(activity: Activity) -> dict[str, Any]:
    return {
        "description": activity.description,
        "address": activity.address,
        "location": PointOut(lat=activity.lat, lng=activity.lng),
        "fence": schemas.FenceOut(radius_m=activity.fence_radius_m, polygon=activity.fence_polygon),
        "enrolled": activity.enrolled,
        "cancel_reason": activity.cancel_reason,
        "published_at": activity.published_at,
        "cancelled_at": activity.cancelled_at,
        "finished_at": activity.finished_at,
    }


async def activity_view(
    session: AsyncSession, activity: Activity, *, volunteer_id: uuid.UUID | None
) -> schemas.ActivityOut:
    [item] = await activity_items(session, [activity], volunteer_id=volunteer_id)
    return schemas.ActivityOut(**item.model_dump(), **_detail_fields(activity))


async def staff_activity_view(
    session: AsyncSession, activity: Activity
) -> schemas.StaffActivityOut:
    [item] = await activity_items(session, [activity], volunteer_id=None)
    enrolments = dict.fromkeys(schemas.EnrolmentCounts.model_fields, 0)
    rows = await session.execute(
        select(col(Enrolment.state), func.count())
        .where(col(Enrolment.activity_id) == activity.id)
        .group_by(col(Enrolment.state))
    )
    enrolments.update({state: int(n) for state, n in rows.all()})
    attendance = dict.fromkeys(schemas.AttendanceCounts.model_fields, 0)
    rows = await session.execute(
        select(col(Attendance.state), func.count())
        .where(col(Attendance.activity_id) == activity.id)
        .group_by(col(Attendance.state))
    )
    attendance.update({state: int(n) for state, n in rows.all()})
    return schemas.StaffActivityOut(
        **item.model_dump(),
        **_detail_fields(activity),
        enrolments=schemas.EnrolmentCounts(**enrolments),
        attendance=schemas.AttendanceCounts(**attendance),
        created_at=activity.created_at,
        updated_at=activity.updated_at,
    )


async def enrolment_views(
    session: AsyncSession, enrolments: Sequence[Enrolment]
) -> list[schemas.EnrolmentOut]:
    if not enrolments:
        return []
    ids = [e.id for e in enrolments]
    activities = {
        a.id: a
        for a in (
            await session.execute(
                select(Activity).where(col(Activity.id).in_({e.activity_id for e in enrolments}))
            )
        ).scalars()
    }
    organisers = await region_briefs(session, [a.region_id for a in activities.values()])
    positions = dict(  # type: ignore[var-annotated]
        (
            await session.execute(
                select(col(Enrolment.id), position_column()).where(col(Enrolment.id).in_(ids))
            )
        ).all()
    )
    views = []
    for e in enrolments:
        activity = activities[e.activity_id]
        position = positions.get(e.id)
        views.append(
            schemas.EnrolmentOut(
                id=e.id,
                activity=ActivityBrief(**brief_fields(activity, organisers[activity.region_id])),
                state=e.state,
                waitlist_position=None if position is None else int(position),
                queued_at=e.queued_at,
                promoted_at=e.promoted_at,
                cancelled_at=e.cancelled_at,
                cancelled_by=e.cancelled_by,
                cancel_reason=activity.cancel_reason
                if e.cancelled_by == BY_ACTIVITY_CANCELLED
                else None,
                created_at=e.created_at,
            )
        )
    return views


# --- finding activities --------------------------------------------------------------------


def _distance_column(lat: float, lng: float) -> Any:
    """SQL: metres from (lat, lng) to the activity's place."""
    return distance_m_sql(col(Activity.lat), col(Activity.lng), lat, lng)


def _encode_after(key: float | str, row_id: uuid.UUID) -> str:
    raw = json.dumps([key, str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_after(cursor: str | None, kind: type) -> tuple[Any, uuid.UUID] | None:
    """A list cursor: the sort key and id of the last item shown."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        parsed_id = uuid.UUID(row_id)
        if kind is float and isinstance(key, int | float) and not isinstance(key, bool):
            if math.isfinite(key):
                return float(key), parsed_id
        elif kind is datetime and isinstance(key, str):
            moment = datetime.fromisoformat(key)
            if moment.tzinfo is not None and storable(moment):
                return moment, parsed_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        pass
    raise CursorInvalid()


@dataclass(frozen=True)
class Near:
    lat: float
    lng: float
    coord: CoordSystem
    radius_km: float


async def list_activities(
    session: AsyncSession,
    principal: Principal,
    *,
    near: Near | None,
    community: str | None,
    cursor: str | None,
    limit: int,
) -> Page[schemas.ActivityItem]:
    """Published activities that have not ended: near a place (nearest first), or of a
    community (soonest first), or of the caller's home community. A team's activities are
    listed for its members only."""
    at = now()
    volunteer = await _volunteer_of(session, principal)
    query = select(Activity).where(
        col(Activity.state) == ActivityState.published.value,
        col(Activity.ends_at) > at,
    )
    if volunteer is None:
        query = query.where(col(Activity.team_id).is_(None))
    else:
        query = query.where(
            or_(
                col(Activity.team_id).is_(None),
                col(Activity.team_id).in_(
                    select(col(TeamMember.team_id)).where(
                        col(TeamMember.volunteer_id) == volunteer.id
                    )
                ),
            )
        )
    distance = None
    if near is not None:
        lat, lng = to_wgs84(near.lat, near.lng, near.coord)
        radius_m = near.radius_km * 1000
        distance = _distance_column(lat, lng).label("distance")
        # A box around the circle first, so most rows are ruled out without trigonometry.
        dlat = radius_m / METRES_PER_DEGREE
        query = query.where(col(Activity.lat).between(lat - dlat, lat + dlat))
        cos_lat = math.cos(math.radians(lat))
        if cos_lat > 0.01:
            dlng = dlat / cos_lat
            query = query.where(col(Activity.lng).between(lng - dlng, lng + dlng))
        query = query.add_columns(distance).where(distance <= radius_m)
        after = _decode_after(cursor, float)
        if after is not None:
            query = query.where(tuple_(distance, col(Activity.id)) > tuple_(*after))
        query = query.order_by(distance, col(Activity.id))
    else:
        if community is not None:
            region = (
                await session.execute(select(col(Region.path)).where(col(Region.path) == community))
            ).scalar_one_or_none()
            if region is None:
                raise RegionNotFound(code=community)
            path = region
        elif volunteer is not None:
            path = volunteer.community_path
        else:
            raise PlaceRequired()
        query = query.where(col(Activity.region_path).descendant_of(path))  # type: ignore[attr-defined]
        after = _decode_after(cursor, datetime)
        if after is not None:
            query = query.where(tuple_(col(Activity.starts_at), col(Activity.id)) > tuple_(*after))
        query = query.order_by(col(Activity.starts_at), col(Activity.id))
    rows = (await session.execute(query.limit(limit + 1))).all()
    shown = rows[:limit]
    activities = [row[0] for row in shown]
    distances = {row[0].id: round(float(row[1]), 1) for row in shown} if near else None  # type: ignore[misc]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        key: float | str = float(last[1]) if near else last[0].starts_at.isoformat()  # type: ignore[misc]
        next_cursor = _encode_after(key, last[0].id)
    items = await activity_items(
        session,
        activities,
        volunteer_id=volunteer.id if volunteer else None,
        distances=distances,
    )
    return Page(items=items, next_cursor=next_cursor)


async def get_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> schemas.ActivityOut:
    """One activity for a volunteer (or anyone logged in); a draft exists only for staff
    who host activities where it is organised."""
    activity = await session.get(Activity, activity_id)
    if activity is None or (
        activity.state == ActivityState.draft
        and not principal.can(ACTIVITY_HOSTS, activity.region_path)
    ):
        raise ActivityNotFound()
    volunteer = await _volunteer_of(session, principal)
    return await activity_view(session, activity, volunteer_id=volunteer.id if volunteer else None)


async def list_my_enrolments(
    session: AsyncSession,
    principal: Principal,
    *,
    state: EnrolmentState | None,
    after: uuid.UUID | None,
    limit: int,
) -> Page[schemas.EnrolmentOut]:
    """The caller's enrolments, newest first (any registration state: a suspended volunteer
    still sees what they did)."""
    volunteer = await _volunteer_of(session, principal)
    if volunteer is None:
        raise NotSignedUp()
    query = select(Enrolment).where(col(Enrolment.volunteer_id) == volunteer.id).limit(limit + 1)
    if state is not None:
        query = query.where(col(Enrolment.state) == state.value)
    query = keyset(query, col(Enrolment.id), after)
    found = list((await session.execute(query)).scalars())
    page, next_cursor = cut_page(found, limit)
    return Page(items=await enrolment_views(session, page), next_cursor=next_cursor)


# --- staff lists ---------------------------------------------------------------------------


async def staff_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    require_host(principal)
    return await scoped_activity(session, principal, activity_id, ACTIVITY_HOSTS)


async def list_staff_activities(
    session: AsyncSession,
    principal: Principal,
    *,
    state: ActivityState | None,
    starts_from: datetime | None,
    starts_to: datetime | None,
    after: uuid.UUID | None,
    limit: int,
) -> Page[schemas.StaffActivityItem]:
    """Activities organised within the caller's regions, newest first; `starts_from` and
    `starts_to` bound the start (from included, to excluded)."""
    require_host(principal)
    if not (storable(starts_from) and storable(starts_to)) or (
        starts_from is not None and starts_to is not None and starts_from >= starts_to
    ):
        raise PeriodInvalid()
    query = (
        select(Activity)
        .where(region_scope(Activity.region_path, principal, ACTIVITY_HOSTS))
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(col(Activity.state) == state.value)
    if starts_from is not None:
        query = query.where(col(Activity.starts_at) >= starts_from)
    if starts_to is not None:
        query = query.where(col(Activity.starts_at) < starts_to)
    query = keyset(query, col(Activity.id), after)
    found = list((await session.execute(query)).scalars())
    page, next_cursor = cut_page(found, limit)
    organisers = await region_briefs(session, [a.region_id for a in page])
    teams = await _teams(session, [a.team_id for a in page])
    return Page(
        items=[
            schemas.StaffActivityItem(
                **brief_fields(a, organisers[a.region_id]),
                team=teams.get(a.team_id) if a.team_id else None,
                capacity=a.capacity,
                enrolled=a.enrolled,
                waitlisted=a.waitlisted,
                places_left=max(a.capacity - a.enrolled, 0),
                created_at=a.created_at,
            )
            for a in page
        ],
        next_cursor=next_cursor,
    )


async def list_activity_enrolments(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    *,
    state: EnrolmentState | None,
    after: uuid.UUID | None,
    limit: int,
) -> Page[schemas.StaffEnrolmentOut]:
    """The roster of an activity hosted within the caller's regions, newest first."""
    activity = await staff_activity(session, principal, activity_id)
    query = (
        select(
            Enrolment,
            col(Volunteer.number),
            col(Volunteer.real_name),
            col(Attendance.state).label("attendance_state"),
            position_column().label("position"),
        )
        .join(Volunteer, col(Volunteer.id) == col(Enrolment.volunteer_id))
        .outerjoin(
            Attendance,
            and_(
                col(Attendance.activity_id) == col(Enrolment.activity_id),
                col(Attendance.volunteer_id) == col(Enrolment.volunteer_id),
            ),
        )
        .where(col(Enrolment.activity_id) == activity.id)
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(col(Enrolment.state) == state.value)
    query = keyset(query, col(Enrolment.id), after)
    rows = (await session.execute(query)).all()
    shown = rows[:limit]
    return Page(
        items=[
            schemas.StaffEnrolmentOut(
                id=e.id,
                volunteer=schemas.RosterVolunteer(id=e.volunteer_id, number=number, real_name=name),
                state=e.state,
                waitlist_position=None if position is None else int(position),
                queued_at=e.queued_at,
                promoted_at=e.promoted_at,
                cancelled_at=e.cancelled_at,
                cancelled_by=e.cancelled_by,
                attendance_state=attendance_state,
            )
            for e, number, name, attendance_state, position in shown
        ],
        next_cursor=encode_cursor(shown[-1][0].id) if len(rows) > limit else None,
    )
