"""The volunteer's view of their attendance."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.principal import Principal
from backend.core.i18n import Language
from volunteers.attendance import schemas
from volunteers.attendance.judging import Outcome, activity_with_organiser, flag_views
from volunteers.attendance.service import my_attendance
from volunteers.auth import own_volunteer
from volunteers.errors import AttendanceNotFound
from volunteers.models import (
    Attendance,
    AttendanceState,
)
from volunteers.queries import activity_brief

# --- the volunteer's view -------------------------------------------------------------------


async def my_attendance_at(
    session: AsyncSession, principal: Principal, activity_id: uuid.UUID
) -> Outcome:
    volunteer = await own_volunteer(session, principal, approved=False)
    activity, organiser = await activity_with_organiser(session, activity_id, drafts=False)
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
