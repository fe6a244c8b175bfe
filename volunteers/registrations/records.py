"""Service records: the volunteer's own, the certified record staff issue, and the leaderboard."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal, region_scope
from backend.core.clock import LOCAL_TIME, now
from backend.core.errors import Forbidden
from backend.core.pagination import keyset
from backend.core.spreadsheet import csv_text
from backend.regions.models import Region
from backend.regions.schemas import RegionBrief
from volunteers.auth import (
    VOLUNTEER_MANAGERS,
    own_volunteer,
)
from volunteers.models import (
    Activity,
    Attendance,
    AttendanceState,
    Volunteer,
)
from volunteers.queries import activity_brief, region_briefs
from volunteers.registrations import schemas
from volunteers.registrations.errors import (
    CommunityNotFound,
    LeaderboardCommunityRequired,
    NoServiceRecord,
)
from volunteers.registrations.service import (
    ACTIVITY_TYPE_ZH,
    LEADERBOARD_SIZE,
    community_by_code,
    hours,
    mask_name,
)

# --- records ---------------------------------------------------------------------------------


async def my_records(
    session: AsyncSession, volunteer: Volunteer, *, after: uuid.UUID | None, limit: int
) -> list[schemas.ServiceRecord]:
    """The volunteer's verified attendance, newest first."""
    query = (
        select(Attendance, Activity)
        .join(Activity, col(Activity.id) == col(Attendance.activity_id))
        .where(
            col(Attendance.volunteer_id) == volunteer.id,
            col(Attendance.state) == AttendanceState.verified.value,
        )
        .limit(limit)
    )
    query = keyset(query, col(Attendance.id), after)
    rows = (await session.execute(query)).all()
    organisers = await region_briefs(session, {activity.region_id for _, activity in rows})
    return [
        schemas.ServiceRecord(
            id=attendance.id,
            activity=activity_brief(activity, organisers[activity.region_id]),
            checked_in_at=attendance.checked_in_at,
            checked_out_at=attendance.checked_out_at,
            minutes=attendance.minutes or 0,
            points=attendance.points or 0,
            verified_at=attendance.verified_at or attendance.checked_in_at,
        )
        for attendance, activity in rows
    ]


# --- the certified service record ------------------------------------------------------------

RECORD_COLUMNS = (
    "活动名称",
    "活动类型",
    "组织单位",
    "日期",
    "签到时间",
    "签退时间",
    "服务时长（分钟）",
)


@dataclass(frozen=True)
class CertifiedRecord:
    volunteer: Volunteer
    csv: str


async def service_record_csv(
    session: AsyncSession, principal: Principal, volunteer_id: uuid.UUID
) -> CertifiedRecord:
    """The volunteer's verified service in activities organised within the caller's regions,
    oldest first, as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese right).

    Only what the caller's regions organised: they record it, so they certify it. With
    nothing of theirs (or no such volunteer) the answer is the same 404.
    """
    if not principal.paths_for(VOLUNTEER_MANAGERS):
        raise Forbidden()
    rows = (
        await session.execute(
            select(Attendance, Activity, col(Region.name))
            .join(Activity, col(Activity.id) == col(Attendance.activity_id))
            .join(Region, col(Region.id) == col(Activity.region_id))
            .where(
                col(Attendance.volunteer_id) == volunteer_id,
                col(Attendance.state) == AttendanceState.verified.value,
                region_scope(Attendance.region_path, principal, VOLUNTEER_MANAGERS),
            )
            .order_by(col(Activity.starts_at), col(Attendance.id))
        )
    ).all()
    volunteer = await session.get(Volunteer, volunteer_id) if rows else None
    if volunteer is None:
        raise NoServiceRecord()
    table: list[list[Any]] = [
        ["志愿服务记录证明"],
        ["志愿者编号", volunteer.number],
        ["姓名", volunteer.real_name],
        [],
        list(RECORD_COLUMNS),
    ]
    total = 0
    certifiers: dict[str, None] = {}
    for attendance, activity, organiser in rows:
        minutes = attendance.minutes or 0
        total += minutes
        certifiers[organiser] = None
        table.append(
            [
                activity.title,
                ACTIVITY_TYPE_ZH.get(activity.type, str(activity.type)),
                organiser,
                activity.starts_at.astimezone(LOCAL_TIME).strftime("%Y-%m-%d"),
                attendance.checked_in_at,
                attendance.checked_out_at,
                minutes,
            ]
        )
    table += [
        ["合计", f"{len(rows)} 次活动", "", "", "", f"{hours(total)} 小时", total],
        [],
        ["证明单位", "、".join(certifiers), "出具时间", now()],
        ["依据《志愿服务记录与证明出具办法》（民政部令第67号），谁组织、谁记录、谁证明"],
    ]
    return CertifiedRecord(volunteer, csv_text(table, time_format="%Y-%m-%d %H:%M"))


# --- the leaderboard -------------------------------------------------------------------------

_LEADERBOARD = text(
    """
    WITH totals AS (
        SELECT volunteer_id, sum(coalesce(minutes, 0)) AS minutes, count(*) AS activities
        FROM volunteer_attendance
        WHERE state = 'verified'
          AND region_path <@ CAST(:community AS ltree)
          AND verified_at >= :start AND verified_at < :end
        GROUP BY volunteer_id
    ), ranked AS (
        SELECT t.minutes, t.activities, v.number, v.real_name, v.user_id,
               rank() OVER (ORDER BY t.minutes DESC) AS rank,
               row_number() OVER (
                   ORDER BY t.minutes DESC, t.activities DESC, v.number, v.id
               ) AS position
        FROM totals t JOIN volunteer v ON v.id = t.volunteer_id
    )
    SELECT minutes, activities, number, real_name, user_id, rank, position
    FROM ranked
    WHERE position <= :size OR user_id = :me
    ORDER BY position
    """
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`2026-11` -> the month's first instant and the next month's, China time."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=LOCAL_TIME)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=LOCAL_TIME)
    return start, end


async def leaderboard(
    session: AsyncSession, principal: Principal, *, community: str | None, month: str | None
) -> schemas.Leaderboard:
    """Verified minutes per volunteer in a month of activities organised by a community.

    Defaults: the caller's home community, this month (China time).
    """
    if community is None:
        home = (
            await session.execute(
                select(col(Volunteer.community_path)).where(
                    col(Volunteer.user_id) == principal.user_id
                )
            )
        ).scalar_one_or_none()
        if home is None:
            raise LeaderboardCommunityRequired()
        community = home
    region = await community_by_code(session, community)
    if region is None:
        raise CommunityNotFound(code=community)
    month = month or now().astimezone(LOCAL_TIME).strftime("%Y-%m")
    start, end = month_bounds(month)
    rows = (
        await session.execute(
            _LEADERBOARD,
            {
                "community": region.path,
                "start": start,
                "end": end,
                "size": LEADERBOARD_SIZE,
                "me": principal.user_id,
            },
        )
    ).all()
    entries = [
        schemas.LeaderboardEntry(
            rank=row.rank,
            number=row.number,
            name=mask_name(row.real_name),
            minutes=int(row.minutes),
            hours=hours(int(row.minutes)),
            activities=row.activities,
        )
        for row in rows
        if row.position <= LEADERBOARD_SIZE
    ]
    mine = next((row for row in rows if row.user_id == principal.user_id), None)
    return schemas.Leaderboard(
        community=RegionBrief(code=region.path, name=region.name, name_en=region.name_en),
        month=month,
        entries=entries,
        me=schemas.LeaderboardMine(
            rank=mine.rank,
            minutes=int(mine.minutes),
            hours=hours(int(mine.minutes)),
            activities=mine.activities,
        )
        if mine is not None
        else None,
    )


async def my_volunteer(session: AsyncSession, principal: Principal) -> Volunteer:
    """The caller's registration in any state (404 `volunteer.not_signed_up` without)."""
    return await own_volunteer(session, principal, approved=False)
