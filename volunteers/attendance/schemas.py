"""Request and response bodies of the check-in code, check-in and out, tracks and review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from backend.core.text import Text
from backend.regions.coords import CoordSystem
from volunteers.models import AttendanceState
from volunteers.schemas import ActivityBrief, PhoneLocationIn, PointOut

MAX_TRACK_POINTS = 500


_ACTIVITY_ID = "0193a1f2-6b1c-7d2e-8f3a-4b5c6d7e8f90"


_ATTENDANCE_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


_BRIEF = {
    "id": _ACTIVITY_ID,
    "type": "public_security_patrol",
    "title": "岗顶社区夜间治安巡逻",
    "state": "published",
    "place_name": "岗顶社区服务站",
    "starts_at": "2026-11-22T19:00:00+08:00",
    "ends_at": "2026-11-22T21:00:00+08:00",
    "organiser": {
        "code": "gz.tianhe.shipai.gangding",
        "name": "岗顶社区",
        "name_en": "Gangding Community",
    },
}


_FLAG = {
    "code": "outside_geofence",
    "at": "check_in",
    "message": "签到位置在活动范围外约 420 米，将由社区工作人员审核",
    "detail": {"distance_m": 420.3},
}


FlagStage = Literal["check_in", "check_out", "track"]


# --- the code on the leader's screen --------------------------------------------------------


class CheckinCodeOut(BaseModel):
    """The rotating code to show on site: as six digits and as a QR."""

    code: str = Field(description="Six digits a volunteer can type when the QR will not scan.")
    qr: str = Field(description="Text to draw as a QR code; the volunteer's phone scans it.")
    valid_from: datetime = Field(description="When this code started to show.")
    refresh_at: datetime = Field(
        description="When the next code shows: poll again then (the old one is still "
        "accepted for one more step)."
    )
    step_seconds: int = Field(description="How long each code shows, in seconds.")
    activity: ActivityBrief

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "492817",
                "qr": f"shanzhi:checkin:{_ACTIVITY_ID}:492817",
                "valid_from": "2026-11-22T19:02:30+08:00",
                "refresh_at": "2026-11-22T19:03:00+08:00",
                "step_seconds": 30,
                "activity": _BRIEF,
            }
        }
    )


# --- check-in, check-out, track -------------------------------------------------------------


class ScanIn(BaseModel):
    """What the volunteer's phone scanned (or the digits typed) and where it is."""

    code: Text = Field(
        min_length=1,
        max_length=200,
        description="The scanned QR text (`shanzhi:checkin:<activity>:<digits>`), or the six "
        "digits typed from the screen.",
    )
    location: PhoneLocationIn

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": f"shanzhi:checkin:{_ACTIVITY_ID}:492817",
                "location": {"lat": 23.13672, "lng": 113.33478, "coord": "gcj02", "accuracy_m": 15},
            }
        }
    )


class FlagOut(BaseModel):
    """A doubtful signal: the attendance goes to staff review instead of paying at once."""

    code: str = Field(
        description="`code_of_other_activity`, `poor_accuracy`, `outside_geofence`, "
        "`impossible_speed`, `no_service_minutes` or `no_check_out`."
    )
    at: str = Field(description="`check_in`, `check_out` or `track`: where it was seen.")
    message: str = Field(description="What it means, in the caller's language.")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Machine-readable facts (distance, speed, ...)."
    )


class AttendanceOut(BaseModel):
    """My attendance at an activity: where it stands and what it earned."""

    id: uuid.UUID
    activity: ActivityBrief
    state: AttendanceState = Field(
        description="`checked_in`, `review` (waits for staff), `verified` (hours and points "
        "credited) or `rejected`."
    )
    checked_in_at: datetime
    checked_out_at: datetime | None = None
    minutes: int | None = Field(None, description="Service minutes credited, once verified.")
    points: int | None = Field(None, description="Points awarded, once verified.")
    flags: list[FlagOut]
    will_be_reviewed: bool = Field(
        description="True when a doubtful signal sends this attendance to staff review "
        "rather than paying at check-out."
    )
    verified_at: datetime | None = None
    review_note: str | None = Field(None, description="What staff wrote when they decided.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ATTENDANCE_ID,
                "activity": _BRIEF,
                "state": "checked_in",
                "checked_in_at": "2026-11-22T18:52:11+08:00",
                "checked_out_at": None,
                "minutes": None,
                "points": None,
                "flags": [_FLAG],
                "will_be_reviewed": True,
                "verified_at": None,
                "review_note": None,
            }
        }
    )


class TrackPointIn(BaseModel):
    at: AwareDatetime = Field(description="When the phone took this point (with offset).")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees.")
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees.")
    coord: CoordSystem = Field(description="`gcj02` (as wx.getLocation gives it) or `wgs84`.")
    accuracy_m: float | None = Field(
        None, ge=0, le=100_000, allow_inf_nan=False, description="Accuracy in metres."
    )


class TrackIn(BaseModel):
    """A batch of the patrol's track, as the phone recorded it (sent again: nothing added)."""

    points: list[TrackPointIn] = Field(min_length=1, max_length=MAX_TRACK_POINTS)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "points": [
                    {
                        "at": "2026-11-22T19:05:00+08:00",
                        "lat": 23.13672,
                        "lng": 113.33478,
                        "coord": "gcj02",
                        "accuracy_m": 12,
                    },
                    {
                        "at": "2026-11-22T19:06:00+08:00",
                        "lat": 23.13710,
                        "lng": 113.33522,
                        "coord": "gcj02",
                        "accuracy_m": 10,
                    },
                ]
            }
        }
    )


class TrackOut(BaseModel):
    stored: int = Field(description="Points of this attendance's track stored in total.")
    added: int = Field(description="Of this batch, the points that were new.")
    flags: list[FlagOut] = Field(description="The attendance's doubtful signals so far.")
    will_be_reviewed: bool

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"stored": 42, "added": 2, "flags": [], "will_be_reviewed": False}
        }
    )


# --- staff review ---------------------------------------------------------------------------


class AttendanceVolunteer(BaseModel):
    id: uuid.UUID
    number: str | None = Field(None, description="The volunteer number, e.g. `V2026-0000123`.")
    real_name: str


class PlaceAt(BaseModel):
    """Where the phone was at check-in or check-out (stored in WGS-84)."""

    at: datetime
    location: PointOut
    accuracy_m: float
    outside_fence_m: float = Field(description="Metres outside the activity's fence; 0 inside.")


class TrackPointOut(BaseModel):
    at: datetime
    location: PointOut
    accuracy_m: float | None = None


class StaffAttendanceOut(BaseModel):
    """An attendance as staff review it."""

    id: uuid.UUID
    volunteer: AttendanceVolunteer
    activity: ActivityBrief
    state: AttendanceState
    flags: list[FlagOut]
    check_in: PlaceAt
    check_out: PlaceAt | None = None
    minutes: int | None = None
    points: int | None = None
    verified_at: datetime | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ATTENDANCE_ID,
                "volunteer": {
                    "id": "0193a1f2-0000-7000-8000-0000000000b1",
                    "number": "V2026-0000123",
                    "real_name": "陈志愿",
                },
                "activity": _BRIEF,
                "state": "review",
                "flags": [_FLAG],
                "check_in": {
                    "at": "2026-11-22T18:52:11+08:00",
                    "location": {"lat": 23.13912, "lng": 113.32951, "coord": "wgs84"},
                    "accuracy_m": 18,
                    "outside_fence_m": 420.3,
                },
                "check_out": {
                    "at": "2026-11-22T21:03:40+08:00",
                    "location": {"lat": 23.13412, "lng": 113.33071, "coord": "wgs84"},
                    "accuracy_m": 9,
                    "outside_fence_m": 0,
                },
                "minutes": None,
                "points": None,
                "verified_at": None,
                "reviewed_at": None,
                "review_note": None,
            }
        }
    )


class StaffAttendanceDetail(StaffAttendanceOut):
    track: list[TrackPointOut] = Field(description="The uploaded track, oldest point first.")


class ApproveIn(BaseModel):
    note: Text | None = Field(None, max_length=200, description="Why, for the record.")
    minutes: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="Service minutes to credit (at most the activity's window). Default: "
        "check-in to check-out within the window, or check-in to the activity's end for "
        "someone who never checked out.",
    )

    model_config = ConfigDict(
        json_schema_extra={"example": {"note": "现场负责人确认其全程参与", "minutes": 120}}
    )


class RejectIn(BaseModel):
    note: Text = Field(min_length=1, max_length=200, description="Why: the volunteer sees it.")

    model_config = ConfigDict(
        json_schema_extra={"example": {"note": "签到位置距活动地点 3 公里，且负责人未见到本人"}}
    )
