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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.i18n import Language
from backend.core.ids import new_id
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.models import Region
from points.ledger import service as ledger_service
from volunteers import attendance_schemas as schemas
from volunteers import codes, geo
from volunteers.auth import ACTIVITY_HOSTS, VOLUNTEER_MANAGERS, leads_team, own_volunteer
from volunteers.errors import ActivityNotFound, AttendanceNotFound
from volunteers.errors_attendance import (
    ActivityCancelled,
    ActivityFinished,
    ActivityNotPublished,
    AlreadyCheckedOut,
    CodeClosed,
    CodeExpired,
    CodeUnreadable,
    CodeWrong,
    EnrolmentCancelled,
    IllegalTransition,
    MinutesOutsideWindow,
    NoShowRecorded,
    NotCheckedIn,
    NotEnrolled,
    OnWaitlist,
    OwnAttendance,
    TooEarly,
    TooLate,
    TrackPointInFuture,
    TrackPointTooEarly,
)
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Attendance,
    AttendanceState,
    Enrolment,
    EnrolmentState,
    TrackPoint,
    Volunteer,
)
from volunteers.schemas import PointOut, RegionBrief
from volunteers.views import activity_brief

# A phone's clock may run this far ahead of the server's before its points are refused.
TRACK_CLOCK_SKEW = timedelta(seconds=60)
# The most track points a detail answer carries (a four-hour patrol at one point a second).
MAX_TRACK_SHOWN = 15_000
# States in which an attendance may still be paid: the pay-out moves it to `verified`.
PAYABLE = (AttendanceState.checked_in, AttendanceState.review)


@dataclass(frozen=True)
class Limits:
    """The settings the judgement uses, as plain values."""

    grace: timedelta  # check-in opens this long before the start; check-out closes after
    max_accuracy_m: float
    max_speed_mps: float


@dataclass(frozen=True)
class Location:
    """A phone's point in WGS-84 with its accuracy."""

    lat: float
    lng: float
    accuracy_m: float

    @classmethod
    def reported(cls, lat: float, lng: float, coord: CoordSystem, accuracy_m: float) -> Location:
        wgs_lat, wgs_lng = to_wgs84(lat, lng, coord)
        return cls(wgs_lat, wgs_lng, accuracy_m)


@dataclass(frozen=True)
class Outcome:
    attendance: Attendance
    activity: Activity
    organiser: RegionBrief
    created: bool = False  # a new row (201) rather than the one that existed (200)


# --- flags ----------------------------------------------------------------------------------

_FLAG_MESSAGES: dict[str, dict[Language, str]] = {
    "code_of_other_activity": {
        "zh-CN": "扫描的是另一个活动（{other_title}）的签到码，将由社区工作人员审核",
        "en": "The code scanned belongs to another activity ({other_title}); staff will "
        "review this attendance",
    },
    "poor_accuracy": {
        "zh-CN": "定位精度约 {accuracy_m} 米，未达到 {max_accuracy_m} 米以内的要求，"
        "将由社区工作人员审核",
        "en": "The location was only accurate to about {accuracy_m} m (needed: within "
        "{max_accuracy_m} m); staff will review this attendance",
    },
    "outside_geofence": {
        "zh-CN": "位置在活动范围外约 {distance_m} 米，将由社区工作人员审核",
        "en": "The location was about {distance_m} m outside the activity's area; staff will "
        "review this attendance",
    },
    "impossible_speed": {
        "zh-CN": "两次定位之间的移动速度约 {speed_mps} 米/秒，超出正常范围，将由社区工作人员审核",
        "en": "Moving at about {speed_mps} m/s between two points is not plausible; staff "
        "will review this attendance",
    },
    "no_service_minutes": {
        "zh-CN": "签到与签退之间没有落在活动时段内的服务时长，将由社区工作人员审核",
        "en": "No service time fell inside the activity's window between check-in and "
        "check-out; staff will review this attendance",
    },
    "no_check_out": {
        "zh-CN": "活动结束后未签退，将由社区工作人员审核",
        "en": "There was no check-out after the activity ended; staff will review this attendance",
    },
}
_FLAG_FALLBACK: dict[Language, str] = {
    "zh-CN": "存在需要人工核实的情况，将由社区工作人员审核",
    "en": "Something needs a closer look; staff will review this attendance",
}


def _flag(code: str, at: str, **detail: Any) -> dict[str, Any]:
    return {"code": code, "at": at, "detail": detail}


def _shown(value: Any) -> Any:
    # Whole metres and one decimal of speed read better in a sentence than raw floats.
    if isinstance(value, float):
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return value


def flag_views(flags: Sequence[dict[str, Any]], language: Language) -> list[schemas.FlagOut]:
    views = []
    for flag in flags:
        detail = dict(flag.get("detail") or {})
        templates = _FLAG_MESSAGES.get(flag["code"], _FLAG_FALLBACK)
        template = templates.get(language) or templates["zh-CN"]
        try:
            message = template.format(**{k: _shown(v) for k, v in detail.items()})
        except (KeyError, IndexError, ValueError):
            message = (_FLAG_FALLBACK.get(language) or _FLAG_FALLBACK["zh-CN"]).format()
        views.append(
            schemas.FlagOut(
                code=flag["code"], at=flag.get("at", ""), message=message, detail=detail
            )
        )
    return views


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


def _organiser_columns() -> tuple[Any, ...]:
    return (col(Region.name), col(Region.name_en))


async def _activity_with_organiser(
    session: AsyncSession, activity_id: uuid.UUID, *, drafts: bool, hold: bool = False
) -> tuple[Activity, RegionBrief]:
    """The activity and its organiser; with `hold`, the activity cannot be finished or
    cancelled until this transaction ends (a check-in judged "published" stays true)."""
    query = (
        select(Activity, *_organiser_columns())
        .join(Region, col(Region.id) == col(Activity.region_id))
        .where(col(Activity.id) == activity_id)
    )
    if not drafts:
        query = query.where(col(Activity.state) != ActivityState.draft.value)
    if hold:
        # KEY SHARE: check-ins do not wait for each other, only for finish and cancel.
        query = query.with_for_update(key_share=True, of=Activity).execution_options(
            populate_existing=True
        )
    row = (await session.execute(query)).first()
    if row is None:
        raise ActivityNotFound()
    activity, name, name_en = row
    return activity, RegionBrief(code=activity.region_path, name=name, name_en=name_en)


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
    activity, organiser = await _activity_with_organiser(session, activity_id, drafts=True)
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


# --- judging a scan -------------------------------------------------------------------------


async def _judge_code(
    session: AsyncSession, activity: Activity, text: str, at: datetime, stage: str, grace: timedelta
) -> list[dict[str, Any]]:
    """The flags the scanned code raises (none when it is this activity's), or a refusal.

    One step of grace is accepted; an older code of this activity is `code_expired`. A code
    shown now by another activity is doubtful rather than wrong (the volunteer may stand
    at the wrong screen, or a screen was photographed and sent around): it goes to review.
    """
    scanned = codes.parse_scanned(text)
    if scanned is None:
        raise CodeUnreadable()
    if scanned.activity_id is None or scanned.activity_id == activity.id:
        verdict = codes.judge(activity.code_secret, scanned.code, at)
        if verdict is codes.CodeVerdict.valid:
            return []
        if verdict is codes.CodeVerdict.expired:
            raise CodeExpired()
        if scanned.activity_id is None:
            other = await _open_activity_showing(session, activity, scanned.code, at, grace)
            if other is not None:
                return [_other_activity_flag(other, stage)]
        raise CodeWrong()
    other = (
        await session.execute(
            select(Activity).where(
                col(Activity.id) == scanned.activity_id,
                col(Activity.state) == ActivityState.published.value,
            )
        )
    ).scalar_one_or_none()
    if other is not None and codes.judge(other.code_secret, scanned.code, at) is (
        codes.CodeVerdict.valid
    ):
        return [_other_activity_flag(other, stage)]
    raise CodeWrong()


def _other_activity_flag(other: Activity, stage: str) -> dict[str, Any]:
    return _flag(
        "code_of_other_activity", stage, other_activity_id=str(other.id), other_title=other.title
    )


async def _open_activity_showing(
    session: AsyncSession, activity: Activity, code: str, at: datetime, grace: timedelta
) -> Activity | None:
    """Another activity of the same organiser, open for check-in now, whose code this is."""
    found = await session.execute(
        select(Activity)
        .where(
            col(Activity.region_path) == activity.region_path,
            col(Activity.id) != activity.id,
            col(Activity.state) == ActivityState.published.value,
            col(Activity.starts_at) <= at + grace,
            col(Activity.ends_at) >= at - grace,
        )
        .limit(200)
    )
    for other in found.scalars():
        if codes.judge(other.code_secret, code, at) is codes.CodeVerdict.valid:
            return other
    return None


def _judge_location(
    activity: Activity, where: Location, stage: str, limits: Limits
) -> list[dict[str, Any]]:
    flags = []
    if where.accuracy_m > limits.max_accuracy_m:
        flags.append(
            _flag(
                "poor_accuracy",
                stage,
                accuracy_m=float(where.accuracy_m),
                max_accuracy_m=float(limits.max_accuracy_m),
            )
        )
    outside = _outside_fence(activity, where.lat, where.lng)
    if outside > 0:
        flags.append(_flag("outside_geofence", stage, distance_m=round(outside, 1)))
    return flags


def _outside_fence(activity: Activity, lat: float, lng: float) -> float:
    return geo.outside_fence_m(
        lat,
        lng,
        centre_lat=activity.lat,
        centre_lng=activity.lng,
        radius_m=activity.fence_radius_m,
        polygon=activity.fence_polygon,
    )


@dataclass(frozen=True)
class _Fix:
    at: datetime
    lat: float
    lng: float
    accuracy_m: float | None


def _speed(a: _Fix, b: _Fix, max_accuracy_m: float) -> float:
    """Speed between two fixes, forgiving each its reported accuracy (capped at the
    threshold): GPS jitter between two close points must not read as a sprint. Phones
    stamp points to the second, so two at one instant count as a second apart."""
    slack = min(a.accuracy_m or 0.0, max_accuracy_m) + min(b.accuracy_m or 0.0, max_accuracy_m)
    metres = max(0.0, geo.distance_m(a.lat, a.lng, b.lat, b.lng) - slack)
    return metres / max((b.at - a.at).total_seconds(), 1.0)


def _speed_flag(a: _Fix, b: _Fix, speed: float, stage: str) -> dict[str, Any]:
    return _flag(
        "impossible_speed",
        stage,
        speed_mps=round(speed, 1),
        from_at=a.at.astimezone(UTC).isoformat(),
        to_at=b.at.astimezone(UTC).isoformat(),
    )


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
    activity, organiser = await _activity_with_organiser(
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
    flags = await _judge_code(session, activity, code, at, "check_in", limits.grace)
    flags += _judge_location(activity, location, "check_in", limits)
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


# --- check-out ------------------------------------------------------------------------------


def service_minutes(
    activity: Activity, checked_in_at: datetime, checked_out_at: datetime | None
) -> int:
    """Whole minutes of the stay that fall inside the activity's window (never negative);
    without a check-out, the stay runs to the activity's end."""
    start = max(checked_in_at, activity.starts_at)
    end = min(checked_out_at or activity.ends_at, activity.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def window_minutes(activity: Activity) -> int:
    return int((activity.ends_at - activity.starts_at).total_seconds() // 60)


async def _last_fix(session: AsyncSession, attendance: Attendance, before: datetime) -> _Fix:
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
        return _Fix(point.recorded_at, point.lat, point.lng, point.accuracy_m)
    return _Fix(
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
    activity, organiser = await _activity_with_organiser(
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
    flags = await _judge_code(session, activity, code, at, "check_out", limits.grace)
    flags += _judge_location(activity, location, "check_out", limits)
    last = await _last_fix(session, attendance, at)
    here = _Fix(at, location.lat, location.lng, location.accuracy_m)
    speed = _speed(last, here, limits.max_accuracy_m)
    if speed > limits.max_speed_mps:
        flags.append(_speed_flag(last, here, speed, "check_out"))
    minutes = service_minutes(activity, attendance.checked_in_at, at)
    if minutes == 0:
        # Points for no time on duty would reward a check-in and an immediate check-out.
        flags.append(_flag("no_service_minutes", "check_out"))
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
    activity, _ = await _activity_with_organiser(session, activity_id, drafts=False)
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
    fixes = [_Fix(*row) for row in found.all()]
    fixes.append(
        _Fix(
            attendance.checked_in_at,
            attendance.check_in_lat,
            attendance.check_in_lng,
            attendance.check_in_accuracy_m,
        )
    )
    fixes.sort(key=lambda fix: fix.at)
    for a, b in itertools.pairwise(fixes):
        speed = _speed(a, b, limits.max_accuracy_m)
        if speed > limits.max_speed_mps:
            return _speed_flag(a, b, speed, "track")
    return None


# --- the volunteer's view -------------------------------------------------------------------


async def my_attendance_at(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Outcome:
    volunteer = await own_volunteer(session, principal, approved=False)
    activity, organiser = await _activity_with_organiser(session, activity_id, drafts=False)
    attendance = await my_attendance(session, volunteer.id, activity.id)
    if attendance is None:
        raise AttendanceNotFound()
    return Outcome(attendance, activity, organiser)


def will_be_reviewed(attendance: Attendance) -> bool:
    return attendance.state == AttendanceState.review or (
        attendance.state == AttendanceState.checked_in and bool(attendance.flags)
    )


def attendance_view(outcome: Outcome, language: Language) -> schemas.AttendanceOut:
    attendance = outcome.attendance
    return schemas.AttendanceOut(
        id=attendance.id,
        activity=activity_brief(outcome.activity, outcome.organiser),
        state=attendance.state,
        checked_in_at=attendance.checked_in_at,
        checked_out_at=attendance.checked_out_at,
        minutes=attendance.minutes,
        points=attendance.points,
        flags=flag_views(attendance.flags, language),
        will_be_reviewed=will_be_reviewed(attendance),
        verified_at=attendance.verified_at,
        review_note=attendance.review_note,
    )


# --- staff review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    attendance: Attendance
    activity: Activity
    organiser: RegionBrief
    volunteer: Volunteer


def _review_query(principal: Principal) -> Any:
    return (
        select(Attendance, Activity, Volunteer, *_organiser_columns())
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
    if after is not None:
        query = query.where(col(Attendance.id) < after)
    found = await session.execute(query.order_by(col(Attendance.id).desc()).limit(limit))
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
        outside_fence_m=round(_outside_fence(activity, lat, lng), 1),
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
        volunteer=schemas.VolunteerBrief(
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


__all__ = [
    "Limits",
    "Location",
    "Outcome",
    "approve",
    "check_in",
    "check_out",
    "checkin_code",
    "list_attendance",
    "my_attendance",
    "pay_out",
    "reject",
    "upload_track",
]
