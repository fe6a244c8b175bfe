"""Attendance over HTTP: the check-in code, check-in and out, tracks, and staff review.

Thin: every rule lives in `volunteers.attendance`; the settings reach it as plain values.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from backend.auth.principal import CurrentPrincipal, RateLimit
from backend.core.config import Settings
from backend.core.database import SessionDep
from backend.core.deps import SettingsDep
from backend.core.errors import problem_responses
from backend.core.i18n import Language, negotiate
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.ratelimit import RateLimited
from volunteers.attendance import errors, judging, payout, queries, schemas, service
from volunteers.attendance.codes import STEP_SECONDS
from volunteers.attendance.errors import (
    ActivityCancelled,
    ActivityFinished,
    EnrolmentCancelled,
    NoShowRecorded,
    NotEnrolled,
    OnWaitlist,
    TooEarly,
    TooLate,
)
from volunteers.models import AttendanceState
from volunteers.queries import activity_brief

router = APIRouter()


# A wrong code is cheap to try: a few attempts a minute are plenty for a real scan.
_SCAN_LIMIT = ("attendance_scan", "30/minute")


def _language(request: Request, response: Response) -> Language:
    language = negotiate(request.headers.get("accept-language"))
    response.headers["Content-Language"] = language
    return language


def _limits(settings: Settings) -> judging.Limits:
    return judging.Limits(
        grace=timedelta(minutes=settings.volunteer_checkin_grace_minutes),
        max_accuracy_m=settings.volunteer_max_accuracy_m,
        max_speed_mps=settings.volunteer_max_speed_mps,
    )


def _location(body: schemas.ScanIn) -> judging.Location:
    where = body.location
    return judging.Location.reported(where.lat, where.lng, where.coord, where.accuracy_m)


# --- the code on site -----------------------------------------------------------------------


@router.get(
    "/staff/activities/{activity_id}/code",
    operation_id="get_checkin_code",
    tags=["staff"],
    summary="The rotating check-in code to show on site",
    response_model=schemas.CheckinCodeOut,
    responses=problem_responses(*errors.GET_CHECKIN_CODE_ERRORS),
)
async def get_checkin_code(
    activity_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
) -> schemas.CheckinCodeOut:
    """The code volunteers scan to check in and out, for the leader's or the service
    center's screen: six digits and the text of a QR.

    A new code shows every `step_seconds` (30); the screen polls again at `refresh_at`, and
    the code before is still accepted for one step. For community staff and grid workers
    whose regions cover the organising community, and for the leader of the activity's
    team; anyone else gets 404. Shown for a published activity until check-out closes
    (the grace after its end), else 409.
    """
    shown = await service.checkin_code(
        session, principal, activity_id, grace=_limits(settings).grace
    )
    response.headers["Cache-Control"] = "no-store"
    return schemas.CheckinCodeOut(
        code=shown.code.code,
        qr=shown.code.qr,
        valid_from=shown.code.valid_from,
        refresh_at=shown.code.refresh_at,
        step_seconds=STEP_SECONDS,
        activity=activity_brief(shown.activity, shown.organiser),
    )


# --- the volunteer's side -------------------------------------------------------------------

_CHECK_IN_ERRORS = (
    *errors.VOLUNTEER_ERRORS,
    RateLimited,
    ActivityCancelled,
    ActivityFinished,
    NotEnrolled,
    OnWaitlist,
    EnrolmentCancelled,
    NoShowRecorded,
    TooEarly,
    TooLate,
    *errors.CODE_ERRORS,
)


@router.post(
    "/activities/{activity_id}/check-in",
    operation_id="check_in",
    tags=["attendance"],
    summary="Check in on site with the scanned code and my location",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.AttendanceOut,
    responses={
        200: {
            "model": schemas.AttendanceOut,
            "description": "Already checked in: the attendance as it is (nothing changed).",
        },
        **problem_responses(*_CHECK_IN_ERRORS),
    },
)
async def check_in(
    activity_id: uuid.UUID,
    body: schemas.ScanIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    _: Annotated[None, RateLimit(*_SCAN_LIMIT)],
) -> schemas.AttendanceOut:
    """Check in to an activity you hold a place in, with the code scanned from the leader's
    or service center's screen and the phone's location (with its accuracy).

    The server judges with its own clock: check-in opens the configured grace before the
    start and closes at the end; the code must be this activity's current one (or the one
    before). A doubtful signal — a location outside the fence or with poor accuracy, or a
    code shown now by another activity — does not refuse the check-in: it is accepted
    with a flag and goes to staff review (`will_be_reviewed`).

    Idempotent: checking in again answers the same attendance (200), even once the code
    has changed; two check-ins at once make one.
    """
    outcome = await service.check_in(
        session,
        principal,
        activity_id,
        code=body.code,
        location=_location(body),
        limits=_limits(settings),
    )
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return queries.attendance_view(outcome, _language(request, response))


@router.post(
    "/activities/{activity_id}/check-out",
    operation_id="check_out",
    tags=["attendance"],
    summary="Check out on site; clean attendance is verified and paid at once",
    response_model=schemas.AttendanceOut,
    responses=problem_responses(*errors.CHECK_OUT_ERRORS),
)
async def check_out(
    activity_id: uuid.UUID,
    body: schemas.ScanIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    _: Annotated[None, RateLimit(*_SCAN_LIMIT)],
) -> schemas.AttendanceOut:
    """Check out with the code on site and the phone's location, until the configured
    grace after the activity's end.

    Service minutes are the part of your stay inside the activity's window. With no doubtful
    signal at all (check-in, track and check-out), the attendance is `verified` at once:
    the minutes join your service hours and the activity's points are awarded (within the
    daily cap of the earning rules). Otherwise it goes to `review` for staff.

    Idempotent: once checked out, sending it again answers the attendance as it is; a
    retry never pays twice and never fails on a changed code.
    """
    outcome = await service.check_out(
        session,
        principal,
        activity_id,
        code=body.code,
        location=_location(body),
        limits=_limits(settings),
    )
    return queries.attendance_view(outcome, _language(request, response))


@router.post(
    "/activities/{activity_id}/track",
    operation_id="upload_track",
    tags=["attendance"],
    summary="Add points of my patrol's track while checked in",
    response_model=schemas.TrackOut,
    responses=problem_responses(*errors.UPLOAD_TRACK_ERRORS),
)
async def upload_track(
    activity_id: uuid.UUID,
    body: schemas.TrackIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    _: Annotated[None, RateLimit("attendance_track", "60/minute")],
) -> schemas.TrackOut:
    """Send timed points (1–500 a batch) of the track between check-in and check-out.

    Points dated in the future (beyond a minute of clock difference) or before check-in
    opened are refused, naming the first such point. Moving faster than is plausible
    between consecutive points flags the attendance for staff review.

    Idempotent: a point is kept once per instant, so a batch sent again adds nothing
    (`added: 0`).
    """
    outcome = await service.upload_track(
        session, principal, activity_id, body.points, limits=_limits(settings)
    )
    return schemas.TrackOut(
        stored=outcome.stored,
        added=outcome.added,
        flags=judging.flag_views(outcome.attendance.flags, _language(request, response)),
        will_be_reviewed=queries.will_be_reviewed(outcome.attendance),
    )


@router.get(
    "/activities/{activity_id}/attendance",
    operation_id="get_my_attendance",
    tags=["attendance"],
    summary="My attendance at an activity",
    response_model=schemas.AttendanceOut,
    responses=problem_responses(*errors.GET_MY_ATTENDANCE_ERRORS),
)
async def get_my_attendance(
    activity_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.AttendanceOut:
    """Where my attendance at this activity stands: checked in, waiting for review,
    verified (with the minutes and points credited) or rejected (with staff's note).
    404 `attendance.not_found` before I check in."""
    outcome = await queries.my_attendance_at(session, principal, activity_id)
    return queries.attendance_view(outcome, _language(request, response))


# --- staff review ---------------------------------------------------------------------------


@router.get(
    "/staff/attendance",
    operation_id="list_attendance",
    tags=["staff"],
    summary="Attendance waiting for review (or in another state)",
    response_model=Page[schemas.StaffAttendanceOut],
    responses=problem_responses(*errors.LIST_ATTENDANCE_ERRORS),
)
async def list_attendance(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[
        AttendanceState, Query(description="Only attendance in this state (default `review`).")
    ] = AttendanceState.review,
    activity: Annotated[uuid.UUID | None, Query(description="Only this activity's.")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.StaffAttendanceOut]:
    """Attendance at activities organised within your regions (community staff), newest
    first: the volunteer, the activity, the flags that sent it to review, where and how
    accurately the phone was at check-in and check-out, and how far outside the fence."""
    found = await payout.list_attendance(
        session,
        principal,
        state=state,
        activity_id=activity,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    page, next_cursor = cut_page(found, limit, key=lambda row: row.attendance.id)
    language = _language(request, response)
    return Page(items=[payout.staff_view(row, language) for row in page], next_cursor=next_cursor)


@router.get(
    "/staff/attendance/{attendance_id}",
    operation_id="get_attendance",
    tags=["staff"],
    summary="One attendance with its track, for review",
    response_model=schemas.StaffAttendanceDetail,
    responses=problem_responses(*errors.GET_ATTENDANCE_ERRORS),
)
async def get_attendance(
    attendance_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffAttendanceDetail:
    """An attendance at an activity organised within your regions, with the uploaded track
    (oldest point first); elsewhere it does not exist (404)."""
    found = await payout.scoped_attendance(session, principal, attendance_id)
    track = await payout.track_of(session, attendance_id)
    return payout.staff_detail(found, track, _language(request, response))


@router.post(
    "/staff/attendance/{attendance_id}/approve",
    operation_id="approve_attendance",
    tags=["staff"],
    summary="Approve an attendance: credit the hours and pay the points",
    response_model=schemas.StaffAttendanceOut,
    responses=problem_responses(*errors.APPROVE_ATTENDANCE_ERRORS),
)
async def approve_attendance(
    attendance_id: uuid.UUID,
    body: schemas.ApproveIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffAttendanceOut:
    """Verify an attendance in review (or one never checked out): its minutes join the
    volunteer's service hours and the activity's points are awarded through the ledger
    with the key `attendance:<id>`.

    `minutes` defaults to the stay inside the activity's window (to the activity's end
    for someone who never checked out) and may not exceed the window. Community staff
    whose regions cover the organising community; never for your own attendance.

    Idempotent: approving a verified attendance answers it unchanged and pays nothing
    more; a rejected one is 409 `attendance.illegal_transition`.
    """
    found = await payout.approve(
        session, principal, attendance_id, minutes=body.minutes, note=body.note
    )
    return payout.staff_view(found, _language(request, response))


@router.post(
    "/staff/attendance/{attendance_id}/reject",
    operation_id="reject_attendance",
    tags=["staff"],
    summary="Reject an attendance: no hours, no points",
    response_model=schemas.StaffAttendanceOut,
    responses=problem_responses(*errors.REJECT_ATTENDANCE_ERRORS),
)
async def reject_attendance(
    attendance_id: uuid.UUID,
    body: schemas.RejectIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.StaffAttendanceOut:
    """Reject an attendance as not genuine, with a note the volunteer sees.

    Idempotent: rejecting a rejected attendance answers it unchanged; a verified one is
    409 `attendance.illegal_transition`.
    """
    found = await payout.reject(session, principal, attendance_id, note=body.note)
    return payout.staff_view(found, _language(request, response))
