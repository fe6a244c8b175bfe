"""Attendance: the check-in code, check-in and check-out, tracks, staff review, pay-out.

The server judges with its own clock. What it can judge for sure (the time window, the code,
the enrolment) refuses with a clear reason; what is only a risk signal (the phone's
location, its accuracy, the speed between points, a code shown for another activity) is
kept as a flag on the attendance and sends it to staff review instead of paying at once.

Exactly once, whatever is retried or raced:
- one attendance per (activity, volunteer), inserted with ON CONFLICT DO NOTHING, so two
  taps at once make one check-in and a retry answers the row that exists;
- check-out, approval and rejection lock the attendance row and act on its state: a
  retry finds it past `checked_in`/`review` and answers it as it is;
- the pay-out flips the state with a conditional UPDATE before it moves any counter, and
  the ledger's key `attendance:<id>` makes the points once even if something slips.
Locks are taken in one order (attendance row, then the ledger's member account, then the
volunteer row), so concurrent pay-outs queue and never deadlock.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.core.clock import now
from backend.core.ids import new_id
from backend.regions.coords import to_wgs84
from volunteers.attendance import codes, schemas
from volunteers.attendance.errors import (
    ActivityCancelled,
    ActivityFinished,
    ActivityNotPublished,
    AlreadyCheckedOut,
    CodeClosed,
    EnrolmentCancelled,
    NoShowRecorded,
    NotCheckedIn,
    NotEnrolled,
    OnWaitlist,
    TooEarly,
    TooLate,
    TrackPointInFuture,
    TrackPointTooEarly,
)
from volunteers.attendance.judging import (
    TRACK_CLOCK_SKEW,
    Fix,
    Limits,
    Location,
    Outcome,
    activity_with_organiser,
    flag_of,
    judge_code,
    judge_location,
    service_minutes,
    speed_between,
    speed_flag,
)
from volunteers.attendance.payout import pay_out
from volunteers.auth import ACTIVITY_HOSTS, leads_team, own_volunteer
from volunteers.errors import ActivityNotFound
from volunteers.models import (
    Activity,
    ActivityState,
    Attendance,
    AttendanceState,
    Enrolment,
    EnrolmentState,
    TrackPoint,
)
from volunteers.schemas import RegionBrief

# --- look-ups -------------------------------------------------------------------------------


async def my_attendance(
    session: AsyncSession,
    volunteer_id: uuid.UUID,
    activity_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Attendance | None:
    """The volunteer's attendance at the activity, if they checked in.

    With `for_update` the row is locked and read afresh (never a stale copy from the
    session), so decisions rest on its latest state.
    """
    query = select(Attendance).where(
        col(Attendance.activity_id) == activity_id,
        col(Attendance.volunteer_id) == volunteer_id,
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


# --- the code on the leader's screen --------------------------------------------------------


@dataclass(frozen=True)
class ShownCode:
    code: codes.ShownCode
    activity: Activity
    organiser: RegionBrief


async def checkin_code(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID, *, grace: timedelta
) -> ShownCode:
    """The code to show on site now, for hosts of the organising community or the leader
    of the activity's team; for anyone else the activity does not exist (404).

    One query for staff (the screen polls it), one more for a team leader.
    """
    activity, organiser = await activity_with_organiser(session, activity_id, drafts=True)
    allowed = principal.can(ACTIVITY_HOSTS, activity.region_path) or (
        activity.team_id is not None
        and activity.state != ActivityState.draft
        and await leads_team(session, principal, activity.team_id)
    )
    if not allowed:
        raise ActivityNotFound()
    if activity.state != ActivityState.published:
        raise ActivityNotPublished()
    at = now()
    closes_at = activity.ends_at + grace
    if at > closes_at:
        raise CodeClosed(closed_at=closes_at)
    shown = codes.code_at(activity.code_secret, activity.id, at)
    return ShownCode(shown, activity, organiser)


# --- check-in -------------------------------------------------------------------------------


async def _enrolment_and_attendance(
    session: AsyncSession, activity_id: uuid.UUID, volunteer_id: uuid.UUID
) -> tuple[Enrolment, Attendance | None]:
    """The volunteer's place (it must be a held one) and their attendance, in one query."""
    row = (
        await session.execute(
            select(Enrolment, Attendance)
            .outerjoin(
                Attendance,
                and_(
                    col(Attendance.activity_id) == col(Enrolment.activity_id),
                    col(Attendance.volunteer_id) == col(Enrolment.volunteer_id),
                ),
            )
            .where(
                col(Enrolment.activity_id) == activity_id,
                col(Enrolment.volunteer_id) == volunteer_id,
            )
        )
    ).first()
    if row is None:
        raise NotEnrolled()
    enrolment, attendance = row
    if enrolment.state == EnrolmentState.waitlisted:
        raise OnWaitlist()
    if enrolment.state == EnrolmentState.cancelled:
        raise EnrolmentCancelled()
    if enrolment.state == EnrolmentState.no_show:
        raise NoShowRecorded()
    return enrolment, attendance


async def check_in(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    *,
    code: str,
    location: Location,
    limits: Limits,
) -> Outcome:
    """Check the caller in with the code scanned on site and the phone's location.

    Idempotent: an attendance that exists is answered as it is (even once the code has
    rotated), and two check-ins at once make one row (ON CONFLICT DO NOTHING).
    """
    volunteer = await own_volunteer(session, principal)
    activity, organiser = await activity_with_organiser(
        session, activity_id, drafts=False, hold=True
    )
    if activity.state == ActivityState.cancelled:
        raise ActivityCancelled()
    if activity.state == ActivityState.finished:
        raise ActivityFinished()
    enrolment, existing = await _enrolment_and_attendance(session, activity.id, volunteer.id)
    if existing is not None:
        return Outcome(existing, activity, organiser)
    at = now()
    opens_at = activity.starts_at - limits.grace
    if at < opens_at:
        raise TooEarly(opens_at=opens_at)
    if at > activity.ends_at:
        raise TooLate(closed_at=activity.ends_at)
    flags = await judge_code(session, activity, code, at, "check_in", limits.grace)
    flags += judge_location(activity, location, "check_in", limits)
    inserted = (
        await session.execute(
            insert(Attendance)
            .values(
                id=new_id(),
                activity_id=activity.id,
                volunteer_id=volunteer.id,
                enrolment_id=enrolment.id,
                region_path=activity.region_path,
                state=AttendanceState.checked_in.value,
                flags=flags,
                checked_in_at=at,
                check_in_lat=location.lat,
                check_in_lng=location.lng,
                check_in_accuracy_m=location.accuracy_m,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["activity_id", "volunteer_id"])
            .returning(Attendance)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return Outcome(inserted, activity, organiser, created=True)
    # Another request checked in first (its insert committed while this one waited).
    attendance = await my_attendance(session, volunteer.id, activity.id)
    assert attendance is not None, "the row that made this insert do nothing"
    return Outcome(attendance, activity, organiser)


async def _last_fix(session: AsyncSession, attendance: Attendance, before: datetime) -> Fix:
    """The latest known point of the attendance: its check-in, or a later track point."""
    point = (
        await session.execute(
            select(TrackPoint)
            .where(
                col(TrackPoint.attendance_id) == attendance.id,
                col(TrackPoint.recorded_at) <= before,
            )
            .order_by(col(TrackPoint.recorded_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if point is not None and point.recorded_at > attendance.checked_in_at:
        return Fix(point.recorded_at, point.lat, point.lng, point.accuracy_m)
    return Fix(
        attendance.checked_in_at,
        attendance.check_in_lat,
        attendance.check_in_lng,
        attendance.check_in_accuracy_m,
    )


async def check_out(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    *,
    code: str,
    location: Location,
    limits: Limits,
) -> Outcome:
    """Check the caller out; clean signals are verified and paid in this transaction, any
    flag sends the attendance to staff review.

    Idempotent: the attendance row is locked and an attendance already past `checked_in`
    is answered as it is, so a retry never pays twice and never fails on a rotated code.
    """
    volunteer = await own_volunteer(session, principal)
    activity, organiser = await activity_with_organiser(
        session, activity_id, drafts=False, hold=True
    )
    attendance = await my_attendance(session, volunteer.id, activity.id, for_update=True)
    if attendance is None:
        raise NotCheckedIn()
    if attendance.state != AttendanceState.checked_in:
        return Outcome(attendance, activity, organiser)
    if activity.state == ActivityState.cancelled:
        raise ActivityCancelled()
    at = now()
    closes_at = activity.ends_at + limits.grace
    if at > closes_at:
        raise TooLate(closed_at=closes_at)
    flags = await judge_code(session, activity, code, at, "check_out", limits.grace)
    flags += judge_location(activity, location, "check_out", limits)
    last = await _last_fix(session, attendance, at)
    here = Fix(at, location.lat, location.lng, location.accuracy_m)
    speed = speed_between(last, here, limits.max_accuracy_m)
    if speed > limits.max_speed_mps:
        flags.append(speed_flag(last, here, speed, "check_out"))
    minutes = service_minutes(activity, attendance.checked_in_at, at)
    if minutes == 0:
        # Points for no time on duty would reward a check-in and an immediate check-out.
        flags.append(flag_of("no_service_minutes", "check_out"))
    attendance.checked_out_at = at
    attendance.check_out_lat = location.lat
    attendance.check_out_lng = location.lng
    attendance.check_out_accuracy_m = location.accuracy_m
    attendance.flags = [*attendance.flags, *flags]
    attendance.updated_at = at
    if attendance.flags:
        attendance.state = AttendanceState.review
    await session.flush()
    if not attendance.flags:
        await pay_out(session, attendance, activity, volunteer, minutes=minutes, at=at)
    return Outcome(attendance, activity, organiser)


# --- the track ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackOutcome:
    attendance: Attendance
    stored: int
    added: int


async def upload_track(
    session: AsyncSession,
    principal: Principal,
    activity_id: uuid.UUID,
    points: Sequence[schemas.TrackPointIn],
    *,
    limits: Limits,
) -> TrackOutcome:
    """Add timed points to the caller's track while checked in.

    Idempotent: a point is keyed by its instant (ON CONFLICT DO NOTHING), so a batch sent
    again adds nothing. Moving faster than the threshold between consecutive points (the
    check-in point included) flags the attendance once.
    """
    volunteer = await own_volunteer(session, principal)
    activity, _ = await activity_with_organiser(session, activity_id, drafts=False)
    attendance = await my_attendance(session, volunteer.id, activity.id, for_update=True)
    if attendance is None:
        raise NotCheckedIn()
    if attendance.state != AttendanceState.checked_in:
        raise AlreadyCheckedOut()
    at = now()
    earliest = attendance.checked_in_at - limits.grace
    rows: dict[datetime, dict[str, Any]] = {}
    for index, point in enumerate(points):
        if point.at > at + TRACK_CLOCK_SKEW:
            raise TrackPointInFuture(index=index, at=point.at)
        if point.at < earliest:
            raise TrackPointTooEarly(index=index, at=point.at)
        lat, lng = to_wgs84(point.lat, point.lng, point.coord)
        # The first of two points at one instant wins, as the database keeps the first.
        rows.setdefault(
            point.at,
            {
                "attendance_id": attendance.id,
                "recorded_at": point.at,
                "lat": lat,
                "lng": lng,
                "accuracy_m": point.accuracy_m,
                "received_at": at,
            },
        )
    added = (
        await session.execute(
            insert(TrackPoint)
            .values(list(rows.values()))
            .on_conflict_do_nothing(index_elements=["attendance_id", "recorded_at"])
            .returning(col(TrackPoint.recorded_at))
        )
    ).all()
    already_flagged = any(
        f.get("code") == "impossible_speed" and f.get("at") == "track" for f in attendance.flags
    )
    if added and not already_flagged:
        flag = await _track_speed_flag(session, attendance, limits)
        if flag is not None:
            attendance.flags = [*attendance.flags, flag]
            attendance.updated_at = at
            await session.flush()
    stored = (
        await session.execute(
            select(func.count()).where(col(TrackPoint.attendance_id) == attendance.id)
        )
    ).scalar_one()
    return TrackOutcome(attendance, int(stored), len(added))


async def _track_speed_flag(
    session: AsyncSession, attendance: Attendance, limits: Limits
) -> dict[str, Any] | None:
    """The first pair of consecutive fixes (by time, the check-in among them) too fast."""
    found = await session.execute(
        select(
            col(TrackPoint.recorded_at),
            col(TrackPoint.lat),
            col(TrackPoint.lng),
            col(TrackPoint.accuracy_m),
        )
        .where(col(TrackPoint.attendance_id) == attendance.id)
        .order_by(col(TrackPoint.recorded_at))
    )
    fixes = [Fix(*row) for row in found.all()]
    fixes.append(
        Fix(
            attendance.checked_in_at,
            attendance.check_in_lat,
            attendance.check_in_lng,
            attendance.check_in_accuracy_m,
        )
    )
    fixes.sort(key=lambda fix: fix.at)
    for a, b in itertools.pairwise(fixes):
        speed = speed_between(a, b, limits.max_accuracy_m)
        if speed > limits.max_speed_mps:
            return speed_flag(a, b, speed, "track")
    return None
