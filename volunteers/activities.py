"""Activities and enrolment: the rules, without HTTP.

Staff of the organising community create an activity as a draft, publish it, change it
within limits, cancel it or finish it; volunteers find published ones near them or in their
community and enrol, taking a place while there is one and a place in the queue after that.

Every change to an activity's enrolments happens under the activity's row lock
(`SELECT ... FOR UPDATE`), with its counters (`enrolled`, `waitlisted`) changed in the same
transaction, so concurrent enrolments queue on the lock and can never oversell; the database
refuses `enrolled > capacity` whatever the code does. Locks are taken in one order: the
activity, then its enrolments, then their attendance.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import Polygon
from shapely.validation import explain_validity
from sqlalchemy import and_, case, exists, func, literal, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.errors import Forbidden
from backend.core.idempotency import check_idempotency_key, request_hash
from backend.core.ids import new_id
from backend.core.pagination import CursorInvalid, Page, cut_page, encode_cursor
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import RegionNotFound
from backend.regions.models import Region, RegionLevel
from points.models import PointsEarningRule
from volunteers import activity_schemas as schemas
from volunteers import codes
from volunteers.auth import (
    ACTIVITY_HOSTS,
    VOLUNTEER_MANAGERS,
    in_team,
    own_volunteer,
    scoped_activity,
)
from volunteers.errors import ActivityNotFound, NotSignedUp, TeamNotFound
from volunteers.errors_activities import (
    ActivityIdempotencyConflict,
    ActivityManagersOnly,
    CapacityBelowEnrolled,
    EndNotLater,
    EnrolmentClosed,
    EnrolmentNotCancellable,
    EnrolmentNotFound,
    FenceInvalid,
    FieldsLocked,
    IllegalTransition,
    NotEditable,
    NotStarted,
    OrganiserNotCommunity,
    OrganiserOutsideScope,
    PeriodInvalid,
    PlaceRequired,
    StartPassed,
    TeamOnly,
    TooLateToCancel,
    WindowInvalid,
)
from volunteers.geo import EARTH_RADIUS_M, distance_m, outside_fence_m
from volunteers.models import (
    Activity,
    ActivityState,
    Attendance,
    AttendanceState,
    Enrolment,
    EnrolmentState,
    Team,
    TeamMember,
    Volunteer,
)
from volunteers.schemas import ActivityBrief, PointOut
from volunteers.views import brief_fields, region_briefs

log = logging.getLogger("shanzhi.volunteers")

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
MAX_WINDOW = timedelta(hours=24)
# How far ahead an activity may be planned.
MAX_LEAD = timedelta(days=366)
# The place may lie this far outside its polygon (a gate beside the block it guards).
PLACE_NEAR_FENCE_M = 200.0
# No corner of a polygon fence lies farther from the place than the widest radius fence.
MAX_FENCE_REACH_M = float(schemas.MAX_RADIUS_M)
DEFAULT_RADIUS_KM = 5.0
MAX_RADIUS_KM = 50.0
METRES_PER_DEGREE = 111_320.0
IDEMPOTENCY_CONSTRAINT = "uq_volunteer_activity_created_by_key"
# Why an enrolment was cancelled (`Enrolment.cancelled_by`).
BY_VOLUNTEER = "volunteer"
BY_ACTIVITY_CANCELLED = "activity_cancelled"
BY_ACTIVITY_FINISHED = "activity_finished"
NO_CHECK_OUT_FLAG = {"code": "no_check_out", "at": "check_out"}
# What a published activity still takes in an update.
EDITABLE_WHEN_PUBLISHED = frozenset({"description", "address", "capacity", "ends_at"})
HOLDING = (EnrolmentState.enrolled, EnrolmentState.waitlisted)

STATE_ZH = {
    ActivityState.draft: "草稿",
    ActivityState.published: "已发布",
    ActivityState.cancelled: "已取消",
    ActivityState.finished: "已结束",
}


# --- the state machine, as data ------------------------------------------------------------


class Transition(StrEnum):
    publish = "publish"
    cancel = "cancel"
    finish = "finish"


# action -> (states it may start from, the state it leads to)
TRANSITIONS: dict[Transition, tuple[frozenset[ActivityState], ActivityState]] = {
    Transition.publish: (frozenset({ActivityState.draft}), ActivityState.published),
    Transition.cancel: (
        frozenset({ActivityState.draft, ActivityState.published}),
        ActivityState.cancelled,
    ),
    Transition.finish: (frozenset({ActivityState.published}), ActivityState.finished),
}


def _allowed(activity: Activity, action: Transition) -> bool:
    """Is the transition to be applied? False when it already was (a repeat answers the
    activity as it is); 409 when it is not allowed from here."""
    sources, target = TRANSITIONS[action]
    state = ActivityState(activity.state)
    if state is target:
        return False
    if state not in sources:
        raise IllegalTransition(
            from_state=state.value,
            to_state=target.value,
            from_zh=STATE_ZH[state],
            to_zh=STATE_ZH[target],
        )
    return True


# --- small helpers -------------------------------------------------------------------------


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


def _storable(moment: datetime | None) -> bool:
    """Can PostgreSQL take this time? (An offset can push year 1 or 9999 out of range.)"""
    if moment is None:
        return True
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True


def _require_manager(principal: Principal) -> None:
    """Someone who manages activities nowhere is told so rather than shown 404s."""
    if not principal.paths_for(VOLUNTEER_MANAGERS):
        raise ActivityManagersOnly()


def _require_host(principal: Principal) -> None:
    if not principal.paths_for(ACTIVITY_HOSTS):
        raise Forbidden()


async def _managed_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    """The activity, locked: 404 outside the caller's regions, 403 for a host (a grid
    worker) who may see it but not manage it."""
    _require_manager(principal)
    activity = await scoped_activity(
        session, principal, activity_id, ACTIVITY_HOSTS, for_update=True
    )
    if not principal.can(VOLUNTEER_MANAGERS, activity.region_path):
        raise ActivityManagersOnly()
    return activity


async def _lock_activity(session: AsyncSession, activity_id: uuid.UUID) -> Activity | None:
    return (
        await session.execute(
            select(Activity)
            .where(col(Activity.id) == activity_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


# --- validating what staff send ------------------------------------------------------------


async def _organiser(session: AsyncSession, principal: Principal, code: str) -> Region:
    region = (
        await session.execute(select(Region).where(col(Region.path) == code))
    ).scalar_one_or_none()
    if region is None:
        raise RegionNotFound(code=code)
    # Regions are public, so saying which rule failed leaks nothing.
    if RegionLevel(region.level) is not RegionLevel.community:
        raise OrganiserNotCommunity(code=code)
    if not principal.can(VOLUNTEER_MANAGERS, region.path):
        raise OrganiserOutsideScope(code=code)
    return region


async def _check_team(session: AsyncSession, team_id: uuid.UUID, region_id: uuid.UUID) -> None:
    """The team must be an active team of the organising community."""
    found = await session.execute(
        select(col(Team.id)).where(
            col(Team.id) == team_id,
            col(Team.community_id) == region_id,
            col(Team.active).is_(True),
        )
    )
    if found.first() is None:
        raise TeamNotFound()


def _fence_error(reason: str, reason_zh: str) -> FenceInvalid:
    return FenceInvalid(reason=reason, reason_zh=reason_zh)


def polygon_in_wgs84(polygon: schemas.PolygonIn, coord: CoordSystem) -> dict[str, Any]:
    """The polygon as stored: a GeoJSON Polygon in WGS-84, checked to be a usable area."""
    ring = polygon.coordinates[0]
    if len(ring) < 4:
        raise _fence_error(
            "a polygon needs at least 4 positions (3 corners and the first again)",
            "多边形至少需要 4 个点（3 个顶点，再加上与起点相同的终点）",
        )
    if ring[0] != ring[-1]:
        raise _fence_error(
            "the ring is not closed: its last position must repeat the first",
            "多边形没有闭合：最后一个点须与第一个点相同",
        )
    if any(not (-180 <= lng <= 180 and -90 <= lat <= 90) for lng, lat in ring):
        raise _fence_error(
            "a position is outside the range of longitude and latitude",
            "有坐标点超出了经纬度范围（须为 [经度, 纬度]）",
        )
    converted = [[lng, lat] for lat, lng in (to_wgs84(lat, lng, coord) for lng, lat in ring)]
    converted[-1] = converted[0]  # the same corner, exactly, whatever the conversion did
    shape = Polygon(converted)
    if not shape.is_valid or shape.area <= 0:
        raise _fence_error(
            f"the polygon is not a valid area ({explain_validity(shape)})",
            "多边形不是有效的区域（边不能相交，面积不能为零）",
        )
    return {"type": "Polygon", "coordinates": [converted]}


def _check_fence(
    lat: float, lng: float, radius_m: int | None, polygon: dict[str, Any] | None
) -> None:
    if polygon is None:
        return
    corners = polygon["coordinates"][0]
    if any(distance_m(lat, lng, c[1], c[0]) > MAX_FENCE_REACH_M for c in corners):
        raise _fence_error(
            f"the polygon reaches more than {MAX_FENCE_REACH_M:.0f} m from the place",
            f"多边形的范围超出了活动地点 {MAX_FENCE_REACH_M:.0f} 米",
        )
    away = outside_fence_m(
        lat, lng, centre_lat=lat, centre_lng=lng, radius_m=radius_m, polygon=polygon
    )
    if away > PLACE_NEAR_FENCE_M:
        raise _fence_error(
            f"the place lies {away:.0f} m outside the polygon; draw it around the place",
            f"活动地点在多边形之外 {away:.0f} 米，请围绕活动地点划定范围",
        )


def _check_window(starts_at: datetime, ends_at: datetime, at: datetime) -> None:
    if not (_storable(starts_at) and _storable(ends_at)):
        raise WindowInvalid(reason="a time is out of range", reason_zh="时间超出了可用范围")
    if ends_at <= starts_at:
        raise WindowInvalid(
            reason="it must end after it starts", reason_zh="结束时间须晚于开始时间"
        )
    if ends_at - starts_at > MAX_WINDOW:
        raise WindowInvalid(reason="it may last at most 24 hours", reason_zh="一次活动最长 24 小时")
    if starts_at > at + MAX_LEAD:
        raise WindowInvalid(
            reason="it may start at most a year from now", reason_zh="开始时间最多在一年之后"
        )


# --- creating and changing -----------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    activity: Activity
    replayed: bool


async def _by_key(session: AsyncSession, created_by: uuid.UUID, key: str) -> Activity | None:
    return (
        await session.execute(
            select(Activity).where(
                col(Activity.created_by) == created_by, col(Activity.idempotency_key) == key
            )
        )
    ).scalar_one_or_none()


def _replay(earlier: Activity, digest: str) -> Created:
    if earlier.request_hash != digest:
        raise ActivityIdempotencyConflict()
    return Created(earlier, replayed=True)


async def create_activity(
    session: AsyncSession,
    principal: Principal,
    body: schemas.ActivityCreate,
    idempotency_key: str | None,
) -> Created:
    """A new draft organised by a community within the caller's regions.

    Idempotent by `Idempotency-Key` per creator: the same key and body answer the draft the
    first request made (even when two arrive at once: the database keeps one), the same key
    with another body is refused.
    """
    key = check_idempotency_key(idempotency_key)
    _require_manager(principal)
    digest = request_hash("activity.create", body.model_dump(mode="json"))
    earlier = await _by_key(session, principal.user_id, key)
    if earlier is not None:
        return _replay(earlier, digest)
    at = now()
    region = await _organiser(session, principal, body.community)
    if body.team is not None:
        await _check_team(session, body.team, region.id)
    lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    polygon = None
    if body.fence.polygon is not None:
        polygon = polygon_in_wgs84(body.fence.polygon, body.fence.coord or body.location.coord)
    _check_fence(lat, lng, body.fence.radius_m, polygon)
    _check_window(body.starts_at, body.ends_at, at)
    activity_id = new_id()
    inserted = await session.execute(
        insert(Activity)
        .values(
            id=activity_id,
            type=body.type.value,
            title=body.title,
            description=body.description,
            region_id=region.id,
            region_path=region.path,
            team_id=body.team,
            place_name=body.place_name,
            address=body.address,
            lat=lat,
            lng=lng,
            fence_radius_m=body.fence.radius_m,
            fence_polygon=polygon,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            capacity=body.capacity,
            enrolled=0,
            waitlisted=0,
            state=ActivityState.draft.value,
            code_secret=codes.new_secret(),
            created_by=principal.user_id,
            idempotency_key=key,
            request_hash=digest,
            created_at=at,
        )
        .on_conflict_do_nothing(constraint=IDEMPOTENCY_CONSTRAINT)
        .returning(col(Activity.id))
    )
    if inserted.first() is None:
        # A request with this key got there first (and has committed): answer its draft.
        winner = await _by_key(session, principal.user_id, key)
        assert winner is not None, "the key was taken, so its activity exists"
        return _replay(winner, digest)
    activity = await session.get(Activity, activity_id)
    assert activity is not None
    log.info("activity %s created as a draft in %s", activity.id, region.path)
    return Created(activity, replayed=False)


async def update_activity(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    body: schemas.ActivityUpdate,
) -> Activity:
    """Change a draft freely; a published activity only in what volunteers who enrolled can
    live with. Sending the same change again changes nothing more."""
    activity = await _managed_activity(session, principal, activity_id)
    given = set(body.model_fields_set)
    state = ActivityState(activity.state)
    if state in (ActivityState.cancelled, ActivityState.finished):
        raise NotEditable(state=state.value, state_zh=STATE_ZH[state])
    if not given:
        return activity
    at = now()
    if state is ActivityState.published:
        locked = given - EDITABLE_WHEN_PUBLISHED
        if locked:
            raise FieldsLocked(fields=", ".join(sorted(locked)))
        if "ends_at" in given:
            _check_window(activity.starts_at, body.ends_at, at)
            if body.ends_at < activity.ends_at:
                raise EndNotLater()
        if "capacity" in given and body.capacity < activity.enrolled:
            raise CapacityBelowEnrolled(enrolled=activity.enrolled)
        for name in given:
            setattr(activity, name, getattr(body, name))
        activity.updated_at = at
        await session.flush()
        # Places added are offered to the queue at once, in its order.
        free = activity.capacity - activity.enrolled
        if free > 0 and activity.waitlisted > 0:
            await _promote(session, activity, free, at)
        return activity

    region_id, region_path = activity.region_id, activity.region_path
    if "community" in given:
        region = await _organiser(session, principal, body.community)
        region_id, region_path = region.id, region.path
    team_id = body.team if "team" in given else activity.team_id
    if team_id is not None and (team_id != activity.team_id or region_id != activity.region_id):
        await _check_team(session, team_id, region_id)
    lat, lng = activity.lat, activity.lng
    if "location" in given:
        lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    radius_m, polygon = activity.fence_radius_m, activity.fence_polygon
    if "fence" in given:
        radius_m, polygon = body.fence.radius_m, None
        if body.fence.polygon is not None:
            coord = body.fence.coord or (body.location.coord if "location" in given else "gcj02")
            polygon = polygon_in_wgs84(body.fence.polygon, coord)
    _check_fence(lat, lng, radius_m, polygon)
    starts_at = body.starts_at if "starts_at" in given else activity.starts_at
    ends_at = body.ends_at if "ends_at" in given else activity.ends_at
    _check_window(starts_at, ends_at, at)
    for name in given & {"type", "title", "description", "place_name", "address", "capacity"}:
        setattr(activity, name, getattr(body, name))
    activity.region_id, activity.region_path, activity.team_id = region_id, region_path, team_id
    activity.lat, activity.lng = lat, lng
    activity.fence_radius_m, activity.fence_polygon = radius_m, polygon
    activity.starts_at, activity.ends_at = starts_at, ends_at
    activity.updated_at = at
    await session.flush()
    return activity


# --- publishing, cancelling, finishing -----------------------------------------------------


async def publish_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    """Draft -> published: volunteers can find it and enrol. It must start in the future."""
    activity = await _managed_activity(session, principal, activity_id)
    if not _allowed(activity, Transition.publish):
        return activity
    at = now()
    if activity.starts_at <= at:
        raise StartPassed()
    activity.state = ActivityState.published
    activity.published_at = at
    activity.updated_at = at
    await session.flush()
    log.info("activity %s published", activity.id)
    return activity


async def cancel_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID, reason: str
) -> Activity:
    """Draft or published -> cancelled, with the reason. Every volunteer holding a place or
    waiting for one has their enrolment cancelled (`activity_cancelled`), and sees it with
    the reason in their enrolments."""
    activity = await _managed_activity(session, principal, activity_id)
    if not _allowed(activity, Transition.cancel):
        return activity
    at = now()
    released = await session.execute(
        update(Enrolment)
        .where(
            col(Enrolment.activity_id) == activity.id,
            col(Enrolment.state).in_([s.value for s in HOLDING]),
        )
        .values(
            state=EnrolmentState.cancelled.value,
            cancelled_by=BY_ACTIVITY_CANCELLED,
            cancelled_at=at,
            updated_at=at,
        )
        .returning(col(Enrolment.id))
        .execution_options(synchronize_session=False)
    )
    told = len(released.all())
    activity.state = ActivityState.cancelled
    activity.cancel_reason = reason
    activity.cancelled_at = at
    activity.updated_at = at
    activity.enrolled = 0
    activity.waitlisted = 0
    await session.flush()
    log.info(
        "activity %s cancelled: %d enrolments cancelled",
        activity.id,
        told,
        extra={"activity_id": str(activity.id), "enrolments_cancelled": told},
    )
    return activity


@dataclass(frozen=True)
class Finished:
    no_shows: int
    to_review: int
    waitlist_released: int


async def finish_locked(session: AsyncSession, activity: Activity, at: datetime) -> Finished:
    """Finish a published activity whose row the caller holds locked.

    In this transaction: volunteers who held a place and never checked in become no-shows;
    attendance still checked in (never checked out) goes to staff review with the flag
    `no_check_out`; volunteers still waiting never held a place, so their enrolment is
    cancelled (`activity_finished`) and no no-show is recorded. The staff `finish` and the
    worker's job both come here.
    """
    no_shows = await session.execute(
        update(Enrolment)
        .where(
            col(Enrolment.activity_id) == activity.id,
            col(Enrolment.state) == EnrolmentState.enrolled.value,
            ~exists().where(
                col(Attendance.activity_id) == col(Enrolment.activity_id),
                col(Attendance.volunteer_id) == col(Enrolment.volunteer_id),
            ),
        )
        .values(state=EnrolmentState.no_show.value, updated_at=at)
        .returning(col(Enrolment.id))
        .execution_options(synchronize_session=False)
    )
    no_show_count = len(no_shows.all())
    released = await session.execute(
        update(Enrolment)
        .where(
            col(Enrolment.activity_id) == activity.id,
            col(Enrolment.state) == EnrolmentState.waitlisted.value,
        )
        .values(
            state=EnrolmentState.cancelled.value,
            cancelled_by=BY_ACTIVITY_FINISHED,
            cancelled_at=at,
            updated_at=at,
        )
        .returning(col(Enrolment.id))
        .execution_options(synchronize_session=False)
    )
    released_count = len(released.all())
    # A check-out racing this waits for the row and then finds it no longer checked in.
    reviewed = await session.execute(
        update(Attendance)
        .where(
            col(Attendance.activity_id) == activity.id,
            col(Attendance.state) == AttendanceState.checked_in.value,
        )
        .values(
            state=AttendanceState.review.value,
            flags=col(Attendance.flags).op("||")(literal([NO_CHECK_OUT_FLAG], JSONB)),
            updated_at=at,
        )
        .returning(col(Attendance.id))
        .execution_options(synchronize_session=False)
    )
    review_count = len(reviewed.all())
    activity.state = ActivityState.finished
    activity.finished_at = at
    activity.updated_at = at
    # The counters count rows in their state: no-shows no longer hold a place.
    activity.enrolled -= no_show_count
    activity.waitlisted = 0
    await session.flush()
    return Finished(no_show_count, review_count, released_count)


async def finish_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    """Published (and started) -> finished, recording no-shows now rather than when the
    worker would after the check-out grace."""
    activity = await _managed_activity(session, principal, activity_id)
    if not _allowed(activity, Transition.finish):
        return activity
    at = now()
    if at < activity.starts_at:
        raise NotStarted()
    outcome = await finish_locked(session, activity, at)
    log.info(
        "activity %s finished by staff: %d no-shows, %d attendance to review, %d waiting released",
        activity.id,
        outcome.no_shows,
        outcome.to_review,
        outcome.waitlist_released,
    )
    return activity


# --- the waitlist --------------------------------------------------------------------------


async def _promote(session: AsyncSession, activity: Activity, places: int, at: datetime) -> int:
    """Give up to `places` free places to the first in the queue (by `queued_at`, then id);
    the caller holds the activity locked. How many were promoted."""
    first = (
        await session.execute(
            select(col(Enrolment.id))
            .where(
                col(Enrolment.activity_id) == activity.id,
                col(Enrolment.state) == EnrolmentState.waitlisted.value,
            )
            .order_by(col(Enrolment.queued_at), col(Enrolment.id))
            .limit(places)
            .with_for_update()
        )
    ).scalars()
    ids = list(first)
    if not ids:
        return 0
    await session.execute(
        update(Enrolment)
        .where(col(Enrolment.id).in_(ids))
        .values(state=EnrolmentState.enrolled.value, promoted_at=at, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    activity.enrolled += len(ids)
    activity.waitlisted -= len(ids)
    await session.flush()
    log.info("activity %s: %d promoted from the waitlist", activity.id, len(ids))
    return len(ids)


def _position_column(enrolment: Any = Enrolment) -> Any:
    """SQL: the enrolment's place in its activity's queue (1 = next); NULL unless waiting."""
    ahead = aliased(Enrolment)
    count = (
        select(func.count())
        .where(
            col(ahead.activity_id) == enrolment.activity_id,
            col(ahead.state) == EnrolmentState.waitlisted.value,
            tuple_(col(ahead.queued_at), col(ahead.id))
            <= tuple_(enrolment.queued_at, enrolment.id),
        )
        .correlate(enrolment)
        .scalar_subquery()
    )
    return case((enrolment.state == EnrolmentState.waitlisted.value, count), else_=None)


# --- enrolment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    enrolment: Enrolment
    replayed: bool


async def enrol(session: AsyncSession, principal: Principal, activity_id: uuid.UUID) -> Enrolled:
    """Take a place, or a place in the queue when none is left.

    Only approved volunteers, only while the activity is published and has not started,
    and for a team's activity only its members. Idempotent: a volunteer who holds a place
    or waits for one gets that enrolment back; one who cancelled joins again at the end
    of the queue.
    """
    volunteer = await own_volunteer(session, principal)
    # Every enrolment of this activity queues here: the counters cannot oversell.
    activity = await _lock_activity(session, activity_id)
    if activity is None or activity.state == ActivityState.draft:
        raise ActivityNotFound()
    enrolment = (
        await session.execute(
            select(Enrolment)
            .where(
                col(Enrolment.activity_id) == activity.id,
                col(Enrolment.volunteer_id) == volunteer.id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if enrolment is not None and enrolment.state in HOLDING:
        return Enrolled(enrolment, replayed=True)
    if activity.team_id is not None and not await in_team(session, volunteer.id, activity.team_id):
        team = await session.get(Team, activity.team_id)
        raise TeamOnly(team=team.name if team else "")
    at = now()
    if activity.state != ActivityState.published:
        raise _closed(ActivityState(activity.state))
    if at >= activity.starts_at:
        raise EnrolmentClosed(why="has already started", why_zh="已经开始")
    state = (
        EnrolmentState.enrolled
        if activity.enrolled < activity.capacity
        else EnrolmentState.waitlisted
    )
    if enrolment is None:
        enrolment = Enrolment(
            activity_id=activity.id,
            volunteer_id=volunteer.id,
            state=state,
            queued_at=at,
            created_at=at,
        )
        session.add(enrolment)
    else:
        # Back after cancelling: at the end of the queue, as anyone joining now.
        enrolment.state = state
        enrolment.queued_at = at
        enrolment.promoted_at = None
        enrolment.cancelled_at = None
        enrolment.cancelled_by = None
        enrolment.updated_at = at
    if state is EnrolmentState.enrolled:
        activity.enrolled += 1
    else:
        activity.waitlisted += 1
    await session.flush()
    return Enrolled(enrolment, replayed=False)


def _closed(state: ActivityState) -> EnrolmentClosed:
    if state is ActivityState.cancelled:
        return EnrolmentClosed(why="was cancelled", why_zh="已取消")
    return EnrolmentClosed(why="is over", why_zh="已结束")


async def cancel_enrolment(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, *, cancel_hours: float
) -> Enrolment:
    """Give up a place (or leave the queue). A place can be given up until `cancel_hours`
    before the start and goes at once to the first in the queue; leaving the queue is
    possible until the activity ends. Cancelling a cancelled enrolment answers it as it is.
    """
    found = (
        await session.execute(
            select(col(Enrolment.activity_id))
            .join(Volunteer, col(Volunteer.id) == col(Enrolment.volunteer_id))
            .where(col(Enrolment.id) == enrolment_id, col(Volunteer.user_id) == principal.user_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise EnrolmentNotFound()
    activity = await _lock_activity(session, found)
    assert activity is not None, "an enrolment's activity is never deleted"
    enrolment = (
        await session.execute(
            select(Enrolment)
            .where(col(Enrolment.id) == enrolment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    state = EnrolmentState(enrolment.state)
    if state is EnrolmentState.cancelled:
        return enrolment
    activity_state = ActivityState(activity.state)
    if state is EnrolmentState.no_show or activity_state is not ActivityState.published:
        raise EnrolmentNotCancellable(state=activity_state.value, state_zh=STATE_ZH[activity_state])
    at = now()
    if state is EnrolmentState.enrolled:
        deadline = activity.starts_at - timedelta(hours=cancel_hours)
        if at > deadline:
            raise TooLateToCancel(
                deadline=deadline, hours=cancel_hours, deadline_local=_local(deadline)
            )
    enrolment.state = EnrolmentState.cancelled
    enrolment.cancelled_by = BY_VOLUNTEER
    enrolment.cancelled_at = at
    enrolment.updated_at = at
    if state is EnrolmentState.enrolled:
        activity.enrolled -= 1
    else:
        activity.waitlisted -= 1
    await session.flush()
    if state is EnrolmentState.enrolled and activity.waitlisted > 0:
        await _promote(session, activity, 1, at)
    return enrolment


# --- views ---------------------------------------------------------------------------------


async def _teams(
    session: AsyncSession, team_ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, schemas.TeamBrief]:
    wanted = {t for t in team_ids if t is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Team.id, Team.name).where(col(Team.id).in_(wanted)))
    return {row.id: schemas.TeamBrief(id=row.id, name=row.name) for row in rows}


async def _reward_points(session: AsyncSession, types: Sequence[str]) -> dict[str, int]:
    """Points the ledger's active earning rule gives per activity type."""
    if not types:
        return {}
    rows = await session.execute(
        select(PointsEarningRule.activity_type, PointsEarningRule.points).where(
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
            col(Enrolment.activity_id), col(Enrolment.id), col(Enrolment.state), _position_column()
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
    positions = dict(
        (
            await session.execute(
                select(col(Enrolment.id), _position_column()).where(col(Enrolment.id).in_(ids))
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
    """SQL: metres from (lat, lng) to the activity's place, by the haversine formula, as
    the nearest service centers are found (`points.redemption`); least(): rounding can push
    the term a hair above 1."""
    a_lat, a_lng = col(Activity.lat), col(Activity.lng)
    term = func.power(func.sin(func.radians(a_lat - lat) / 2), 2) + func.cos(
        func.radians(literal(lat))
    ) * func.cos(func.radians(a_lat)) * func.power(func.sin(func.radians(a_lng - lng) / 2), 2)
    return (2 * EARTH_RADIUS_M) * func.asin(func.sqrt(func.least(1.0, term)))


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
            if moment.tzinfo is not None and _storable(moment):
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
                await session.execute(select(Region.path).where(col(Region.path) == community))
            ).scalar_one_or_none()
            if region is None:
                raise RegionNotFound(code=community)
            path = region
        elif volunteer is not None:
            path = volunteer.community_path
        else:
            raise PlaceRequired()
        query = query.where(col(Activity.region_path).descendant_of(path))
        after = _decode_after(cursor, datetime)
        if after is not None:
            query = query.where(tuple_(col(Activity.starts_at), col(Activity.id)) > tuple_(*after))
        query = query.order_by(col(Activity.starts_at), col(Activity.id))
    rows = (await session.execute(query.limit(limit + 1))).all()
    shown = rows[:limit]
    activities = [row[0] for row in shown]
    distances = {row[0].id: round(float(row[1]), 1) for row in shown} if near else None
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        key: float | str = float(last[1]) if near else last[0].starts_at.isoformat()
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
    query = (
        select(Enrolment)
        .where(col(Enrolment.volunteer_id) == volunteer.id)
        .order_by(col(Enrolment.id).desc())
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(col(Enrolment.state) == state.value)
    if after is not None:
        query = query.where(col(Enrolment.id) < after)
    found = list((await session.execute(query)).scalars())
    page, next_cursor = cut_page(found, limit)
    return Page(items=await enrolment_views(session, page), next_cursor=next_cursor)


# --- staff lists ---------------------------------------------------------------------------


async def staff_activity(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Activity:
    _require_host(principal)
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
    _require_host(principal)
    if not (_storable(starts_from) and _storable(starts_to)) or (
        starts_from is not None and starts_to is not None and starts_from >= starts_to
    ):
        raise PeriodInvalid()
    query = (
        select(Activity)
        .where(region_scope(Activity.region_path, principal, ACTIVITY_HOSTS))
        .order_by(col(Activity.id).desc())
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(col(Activity.state) == state.value)
    if starts_from is not None:
        query = query.where(col(Activity.starts_at) >= starts_from)
    if starts_to is not None:
        query = query.where(col(Activity.starts_at) < starts_to)
    if after is not None:
        query = query.where(col(Activity.id) < after)
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
            _position_column().label("position"),
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
        .order_by(col(Enrolment.id).desc())
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(col(Enrolment.state) == state.value)
    if after is not None:
        query = query.where(col(Enrolment.id) < after)
    rows = (await session.execute(query)).all()
    shown = rows[:limit]
    return Page(
        items=[
            schemas.StaffEnrolmentOut(
                id=e.id,
                volunteer=schemas.VolunteerBrief(id=e.volunteer_id, number=number, real_name=name),
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
