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

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, exists, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from backend.auth.principal import Principal
from backend.core.clock import LOCAL_TIME, now
from backend.core.errors import Forbidden
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.ids import new_id
from backend.regions.coords import to_wgs84
from volunteers.activities import schemas
from volunteers.activities.errors import (
    ActivityIdempotencyConflict,
    ActivityManagersOnly,
    CapacityBelowEnrolled,
    EndNotLater,
    FieldsLocked,
    IllegalTransition,
    NotEditable,
    NotStarted,
    StartPassed,
)
from volunteers.activities.validation import (
    check_fence,
    check_team,
    check_window,
    organiser,
    polygon_in_wgs84,
)
from volunteers.attendance import codes
from volunteers.auth import (
    ACTIVITY_HOSTS,
    VOLUNTEER_MANAGERS,
    scoped_activity,
)
from volunteers.models import (
    Activity,
    ActivityState,
    Attendance,
    AttendanceState,
    Enrolment,
    EnrolmentState,
)

log = logging.getLogger("shanzhi.volunteers")


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


def local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


def _require_manager(principal: Principal) -> None:
    """Someone who manages activities nowhere is told so rather than shown 404s."""
    if not principal.paths_for(VOLUNTEER_MANAGERS):
        raise ActivityManagersOnly()


def require_host(principal: Principal) -> None:
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


async def lock_activity(session: AsyncSession, activity_id: uuid.UUID) -> Activity | None:
    return (
        await session.execute(
            select(Activity)
            .where(col(Activity.id) == activity_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


# --- creating and changing -----------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    activity: Activity
    replayed: bool


def _replay(earlier: Activity, digest: str) -> Created:
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
    earlier = await earlier_request(
        session, Activity.created_by, principal.user_id, key, digest, ActivityIdempotencyConflict
    )
    if earlier is not None:
        return _replay(earlier, digest)
    at = now()
    region = await organiser(session, principal, body.community)
    if body.team is not None:
        await check_team(session, body.team, region.id)
    lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    polygon = None
    if body.fence.polygon is not None:
        polygon = polygon_in_wgs84(body.fence.polygon, body.fence.coord or body.location.coord)
    check_fence(lat, lng, body.fence.radius_m, polygon)
    check_window(body.starts_at, body.ends_at, at)
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
        winner = await earlier_request(
            session,
            Activity.created_by,
            principal.user_id,
            key,
            digest,
            ActivityIdempotencyConflict,
        )
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
            check_window(activity.starts_at, body.ends_at, at)
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
            await promote(session, activity, free, at)
        return activity

    region_id, region_path = activity.region_id, activity.region_path
    if "community" in given:
        region = await organiser(session, principal, body.community)
        region_id, region_path = region.id, region.path
    team_id = body.team if "team" in given else activity.team_id
    if team_id is not None and (team_id != activity.team_id or region_id != activity.region_id):
        await check_team(session, team_id, region_id)
    lat, lng = activity.lat, activity.lng
    if "location" in given:
        lat, lng = to_wgs84(body.location.lat, body.location.lng, body.location.coord)
    radius_m, polygon = activity.fence_radius_m, activity.fence_polygon
    if "fence" in given:
        radius_m, polygon = body.fence.radius_m, None
        if body.fence.polygon is not None:
            coord = body.fence.coord or (body.location.coord if "location" in given else "gcj02")
            polygon = polygon_in_wgs84(body.fence.polygon, coord)
    check_fence(lat, lng, radius_m, polygon)
    starts_at = body.starts_at if "starts_at" in given else activity.starts_at
    ends_at = body.ends_at if "ends_at" in given else activity.ends_at
    check_window(starts_at, ends_at, at)
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


# --- the waitlist ---------------------------------------------------------------------------


async def promote(session: AsyncSession, activity: Activity, places: int, at: datetime) -> int:
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


def position_column(enrolment: Any = Enrolment) -> Any:
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
