"""Judging a scan: the code, the place, the speed and the clock. Each doubt is a flag that
sends the attendance to staff review instead of paying out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.i18n import Language
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.geo import distance_m
from backend.regions.models import Region
from volunteers.attendance import codes, geofence, schemas
from volunteers.attendance.errors import (
    CodeExpired,
    CodeUnreadable,
    CodeWrong,
)
from volunteers.errors import ActivityNotFound
from volunteers.models import (
    Activity,
    ActivityState,
    Attendance,
    AttendanceState,
)
from volunteers.schemas import RegionBrief

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


def flag_of(code: str, at: str, **detail: Any) -> dict[str, Any]:
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


def organiser_columns() -> tuple[Any, ...]:
    return (col(Region.name), col(Region.name_en))


async def activity_with_organiser(
    session: AsyncSession, activity_id: uuid.UUID, *, drafts: bool, hold: bool = False
) -> tuple[Activity, RegionBrief]:
    """The activity and its organiser; with `hold`, the activity cannot be finished or
    cancelled until this transaction ends (a check-in judged "published" stays true)."""
    query = (
        select(Activity, *organiser_columns())
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


# --- judging a scan -------------------------------------------------------------------------


async def judge_code(
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
    return flag_of(
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


def judge_location(
    activity: Activity, where: Location, stage: str, limits: Limits
) -> list[dict[str, Any]]:
    flags = []
    if where.accuracy_m > limits.max_accuracy_m:
        flags.append(
            flag_of(
                "poor_accuracy",
                stage,
                accuracy_m=float(where.accuracy_m),
                max_accuracy_m=float(limits.max_accuracy_m),
            )
        )
    outside = outside_fence(activity, where.lat, where.lng)
    if outside > 0:
        flags.append(flag_of("outside_geofence", stage, distance_m=round(outside, 1)))
    return flags


def outside_fence(activity: Activity, lat: float, lng: float) -> float:
    return geofence.outside_fence_m(
        lat,
        lng,
        centre_lat=activity.lat,
        centre_lng=activity.lng,
        radius_m=activity.fence_radius_m,
        polygon=activity.fence_polygon,
    )


@dataclass(frozen=True)
class Fix:
    at: datetime
    lat: float
    lng: float
    accuracy_m: float | None


def speed_between(a: Fix, b: Fix, max_accuracy_m: float) -> float:
    """Speed between two fixes, forgiving each its reported accuracy (capped at the
    threshold): GPS jitter between two close points must not read as a sprint. Phones
    stamp points to the second, so two at one instant count as a second apart."""
    slack = min(a.accuracy_m or 0.0, max_accuracy_m) + min(b.accuracy_m or 0.0, max_accuracy_m)
    metres = max(0.0, distance_m(a.lat, a.lng, b.lat, b.lng) - slack)
    return metres / max((b.at - a.at).total_seconds(), 1.0)


def speed_flag(a: Fix, b: Fix, speed: float, stage: str) -> dict[str, Any]:
    return flag_of(
        "impossible_speed",
        stage,
        speed_mps=round(speed, 1),
        from_at=a.at.astimezone(UTC).isoformat(),
        to_at=b.at.astimezone(UTC).isoformat(),
    )
