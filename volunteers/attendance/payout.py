"""Pay-out through the ledger, and staff review of doubtful attendance."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.i18n import Language
from backend.core.pagination import keyset
from backend.regions.models import Region
from points.ledger import service as ledger_service
from volunteers.attendance import schemas
from volunteers.attendance.errors import (
    IllegalTransition,
    MinutesOutsideWindow,
    OwnAttendance,
)
from volunteers.attendance.judging import (
    MAX_TRACK_SHOWN,
    PAYABLE,
    flag_views,
    organiser_columns,
    outside_fence,
    service_minutes,
    window_minutes,
)
from volunteers.auth import VOLUNTEER_MANAGERS
from volunteers.errors import AttendanceNotFound
from volunteers.models import (
    Activity,
    ActivityType,
    Attendance,
    AttendanceState,
    TrackPoint,
    Volunteer,
)
from volunteers.queries import activity_brief
from volunteers.schemas import PointOut, RegionBrief

# --- pay-out --------------------------------------------------------------------------------


async def pay_out(
    session: AsyncSession,
    attendance: Attendance,
    activity: Activity,
    volunteer: Volunteer,
    *,
    minutes: int,
    at: datetime,
) -> Attendance:
    """Verify the attendance: credit its minutes and award its points, exactly once.

    The caller holds the attendance row's lock. The state flips with a conditional UPDATE
    first, so only the call that moved it from `checked_in`/`review` touches the counters
    (a retry or a racing request finds it `verified` and changes nothing); the ledger's
    key `attendance:<id>` makes the award answer the same if it ever runs again.
    """
    flipped = (
        await session.execute(
            update(Attendance)
            .where(
                col(Attendance.id) == attendance.id,
                col(Attendance.state).in_([s.value for s in PAYABLE]),
            )
            .values(
                state=AttendanceState.verified.value,
                verified_at=at,
                minutes=minutes,
                updated_at=at,
            )
            .returning(col(Attendance.id))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if flipped is None:
        await session.refresh(attendance)
        return attendance
    award = await ledger_service.award_for_activity(
        session,
        member_id=volunteer.user_id,
        activity_type=ActivityType(activity.type).value,
        source_ref=f"attendance:{attendance.id}",
        idempotency_key=f"attendance:{attendance.id}",
    )
    await session.execute(
        update(Attendance)
        .where(col(Attendance.id) == attendance.id)
        .values(points=award.points, points_tx_id=award.result.transaction_id)
        .execution_options(synchronize_session=False)
    )
    # One statement each: the counters never go through a read-modify-write.
    await session.execute(
        update(Volunteer)
        .where(col(Volunteer.id) == volunteer.id)
        .values(
            service_minutes=col(Volunteer.service_minutes) + minutes,
            activities_attended=col(Volunteer.activities_attended) + 1,
            updated_at=at,
        )
        .execution_options(synchronize_session=False)
    )
    # The row now holds exactly these values: keep the loaded object in step without
    # reading it back (and without marking it changed).
    for name, value in {
        "state": AttendanceState.verified,
        "verified_at": at,
        "minutes": minutes,
        "updated_at": at,
        "points": award.points,
        "points_tx_id": award.result.transaction_id,
    }.items():
        set_committed_value(attendance, name, value)
    return attendance


# --- staff review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    attendance: Attendance
    activity: Activity
    organiser: RegionBrief
    volunteer: Volunteer


def _review_query(principal: Principal) -> Any:
    return (
        select(Attendance, Activity, Volunteer, *organiser_columns())
        .join(Activity, col(Activity.id) == col(Attendance.activity_id))
        .join(Volunteer, col(Volunteer.id) == col(Attendance.volunteer_id))
        .join(Region, col(Region.id) == col(Activity.region_id))
        .where(region_scope(Attendance.region_path, principal, VOLUNTEER_MANAGERS))
    )


def _reviewed(row: Any) -> Reviewed:
    attendance, activity, volunteer, name, name_en = row
    return Reviewed(
        attendance,
        activity,
        RegionBrief(code=activity.region_path, name=name, name_en=name_en),
        volunteer,
    )


async def list_attendance(
    session: AsyncSession,
    principal: Principal,
    *,
    state: AttendanceState,
    activity_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Reviewed]:
    """Attendance of activities organised within the caller's regions, newest first."""
    query = _review_query(principal).where(col(Attendance.state) == state.value)
    if activity_id is not None:
        query = query.where(col(Attendance.activity_id) == activity_id)
    query = keyset(query, col(Attendance.id), after)
    found = await session.execute(query.limit(limit))
    return [_reviewed(row) for row in found.all()]


async def scoped_attendance(
    session: AsyncSession,
    principal: Principal,
    attendance_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Reviewed:
    """An attendance of an activity organised within the caller's regions; else 404."""
    query = _review_query(principal).where(col(Attendance.id) == attendance_id)
    if for_update:
        query = query.with_for_update(of=Attendance).execution_options(populate_existing=True)
    row = (await session.execute(query)).first()
    if row is None:
        raise AttendanceNotFound()
    return _reviewed(row)


async def track_of(session: AsyncSession, attendance_id: uuid.UUID) -> list[TrackPoint]:
    found = await session.execute(
        select(TrackPoint)
        .where(col(TrackPoint.attendance_id) == attendance_id)
        .order_by(col(TrackPoint.recorded_at))
        .limit(MAX_TRACK_SHOWN)
    )
    return list(found.scalars())


async def approve(
    session: AsyncSession,
    principal: Principal,
    attendance_id: uuid.UUID,
    *,
    minutes: int | None,
    note: str | None,
) -> Reviewed:
    """Verify a doubtful (or never checked-out) attendance and pay it.

    Idempotent: approving a verified attendance answers it unchanged; a rejected one is
    409 `attendance.illegal_transition`.
    """
    found = await scoped_attendance(session, principal, attendance_id, for_update=True)
    attendance, activity, volunteer = found.attendance, found.activity, found.volunteer
    if volunteer.user_id == principal.user_id:
        raise OwnAttendance()
    if attendance.state == AttendanceState.verified:
        return found
    if attendance.state == AttendanceState.rejected:
        raise IllegalTransition(state=AttendanceState(attendance.state).value, action="approved")
    most = window_minutes(activity)
    if minutes is None:
        minutes = service_minutes(activity, attendance.checked_in_at, attendance.checked_out_at)
    elif minutes > most:
        raise MinutesOutsideWindow(max_minutes=most)
    at = now()
    attendance.reviewed_by = principal.user_id
    attendance.reviewed_at = at
    attendance.review_note = note
    await session.flush()
    await pay_out(session, attendance, activity, volunteer, minutes=minutes, at=at)
    return found


async def reject(
    session: AsyncSession, principal: Principal, attendance_id: uuid.UUID, *, note: str
) -> Reviewed:
    """Reject an attendance as not genuine: no hours, no points.

    Idempotent: rejecting a rejected attendance answers it unchanged; a verified one is
    409 `attendance.illegal_transition` (its points are in the ledger; reverse them there).
    """
    found = await scoped_attendance(session, principal, attendance_id, for_update=True)
    attendance = found.attendance
    if found.volunteer.user_id == principal.user_id:
        raise OwnAttendance()
    if attendance.state == AttendanceState.rejected:
        return found
    if attendance.state == AttendanceState.verified:
        raise IllegalTransition(state=AttendanceState(attendance.state).value, action="rejected")
    at = now()
    attendance.state = AttendanceState.rejected
    attendance.reviewed_by = principal.user_id
    attendance.reviewed_at = at
    attendance.review_note = note
    attendance.updated_at = at
    await session.flush()
    return found


def _place(
    activity: Activity, at: datetime, lat: float, lng: float, accuracy_m: float
) -> schemas.PlaceAt:
    return schemas.PlaceAt(
        at=at,
        location=PointOut(lat=lat, lng=lng),
        accuracy_m=accuracy_m,
        outside_fence_m=round(outside_fence(activity, lat, lng), 1),
    )


def staff_view(found: Reviewed, language: Language) -> schemas.StaffAttendanceOut:
    attendance, activity, volunteer = found.attendance, found.activity, found.volunteer
    check_out = None
    if (
        attendance.checked_out_at is not None
        and attendance.check_out_lat is not None
        and attendance.check_out_lng is not None
    ):
        check_out = _place(
            activity,
            attendance.checked_out_at,
            attendance.check_out_lat,
            attendance.check_out_lng,
            attendance.check_out_accuracy_m or 0.0,
        )
    return schemas.StaffAttendanceOut(
        id=attendance.id,
        volunteer=schemas.AttendanceVolunteer(
            id=volunteer.id, number=volunteer.number, real_name=volunteer.real_name
        ),
        activity=activity_brief(activity, found.organiser),
        state=attendance.state,
        flags=flag_views(attendance.flags, language),
        check_in=_place(
            activity,
            attendance.checked_in_at,
            attendance.check_in_lat,
            attendance.check_in_lng,
            attendance.check_in_accuracy_m,
        ),
        check_out=check_out,
        minutes=attendance.minutes,
        points=attendance.points,
        verified_at=attendance.verified_at,
        reviewed_at=attendance.reviewed_at,
        review_note=attendance.review_note,
    )


def staff_detail(
    found: Reviewed, track: Sequence[TrackPoint], language: Language
) -> schemas.StaffAttendanceDetail:
    return schemas.StaffAttendanceDetail(
        **staff_view(found, language).model_dump(),
        track=[
            schemas.TrackPointOut(
                at=point.recorded_at,
                location=PointOut(lat=point.lat, lng=point.lng),
                accuracy_m=point.accuracy_m,
            )
            for point in track
        ],
    )
