"""Request and response bodies of activities and enrolment: what staff publish, what a
volunteer finds near them, and their place (or place in the queue)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from backend.core.text import RegionCode, Text
from backend.regions.coords import CoordSystem
from volunteers.models import ActivityState, ActivityType, AttendanceState, EnrolmentState
from volunteers.schemas import ActivityBrief, LocationIn, PointOut

MIN_RADIUS_M = 20


MAX_RADIUS_M = 5000


MAX_CAPACITY = 1000


MAX_POLYGON_POINTS = 500


_ACTIVITY_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000ac01"


_ENROLMENT_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000e001"


_TEAM_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000d001"


_VOLUNTEER_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000f001"


_ORGANISER = {"code": "gz.tianhe.shipai.gangding", "name": "岗顶社区", "name_en": "Gangding"}


_RING_EXAMPLE = [
    [113.3331, 23.1361],
    [113.3369, 23.1361],
    [113.3369, 23.1389],
    [113.3331, 23.1389],
    [113.3331, 23.1361],
]


# A GeoJSON position: [longitude, latitude].
Position = Annotated[
    list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2)
]


# --- what staff send -----------------------------------------------------------------------


class PolygonIn(BaseModel):
    """A GeoJSON Polygon: one closed ring of [lng, lat] positions (no holes)."""

    type: Literal["Polygon"]
    coordinates: list[Annotated[list[Position], Field(max_length=MAX_POLYGON_POINTS)]] = Field(
        min_length=1,
        max_length=1,
        description="One ring; its first and last positions are the same point.",
    )


class FenceIn(BaseModel):
    """Where check-in counts: a radius around the place, or a polygon. Exactly one."""

    radius_m: int | None = Field(
        None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M, description="Metres around the place."
    )
    polygon: PolygonIn | None = Field(
        None,
        description="The area, in the coordinate system of `coord` (by default that of "
        "`location`; gcj02 in an update that does not send `location`).",
    )
    coord: CoordSystem | None = Field(None, description="Coordinate system of `polygon`.")

    model_config = ConfigDict(json_schema_extra={"example": {"radius_m": 300}})

    @model_validator(mode="after")
    def _exactly_one(self) -> FenceIn:
        if (self.radius_m is None) == (self.polygon is None):
            raise ValueError("give either radius_m or polygon, not both and not neither")
        return self


_CREATE_EXAMPLE: dict[str, Any] = {
    "type": "public_security_patrol",
    "title": "岗顶夜间治安巡逻",
    "description": "沿天河路、石牌西路巡查，留意门店消防通道和可疑人员。请穿红马甲。",
    "community": "gz.tianhe.shipai.gangding",
    "team": None,
    "place_name": "岗顶社区党群服务中心",
    "address": "天河路 600 号岗顶社区居委会一楼",
    "location": {"lat": 23.13672, "lng": 113.33478, "coord": "gcj02"},
    "fence": {"radius_m": 300},
    "starts_at": "2026-12-05T19:00:00+08:00",
    "ends_at": "2026-12-05T21:00:00+08:00",
    "capacity": 12,
}


class ActivityCreate(BaseModel):
    type: ActivityType = Field(description="Also decides the reward (the earning rule).")
    title: Text = Field(min_length=1, max_length=64)
    description: Text | None = Field(None, max_length=2000)
    community: RegionCode = Field(
        description="Code of the organising community; it records and certifies the service.",
    )
    team: uuid.UUID | None = Field(
        None, description="A team of that community: only its members may enrol."
    )
    place_name: Text = Field(min_length=1, max_length=100)
    address: Text | None = Field(None, max_length=200)
    location: LocationIn = Field(description="The place (the centre of a radius fence).")
    fence: FenceIn
    starts_at: AwareDatetime
    ends_at: AwareDatetime = Field(description="After `starts_at`, at most 24 hours later.")
    capacity: int = Field(ge=1, le=MAX_CAPACITY, description="Places; more volunteers wait.")

    model_config = ConfigDict(json_schema_extra={"example": _CREATE_EXAMPLE})


class ActivityUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. A draft takes any change; a
    published activity only `description`, `address`, `capacity` (not below the enrolled)
    and a later `ends_at`."""

    # Optional but never null: the default is not validated, an explicit null is refused.
    type: ActivityType = Field(None, validate_default=False)
    title: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    description: Text | None = Field(None, max_length=2000)
    community: RegionCode = Field(None, validate_default=False)
    team: uuid.UUID | None = Field(None, description="null: open to every volunteer.")
    place_name: Text = Field(None, min_length=1, max_length=100, validate_default=False)
    address: Text | None = Field(None, max_length=200)
    location: LocationIn = Field(None, validate_default=False)
    fence: FenceIn = Field(None, validate_default=False)
    starts_at: AwareDatetime = Field(None, validate_default=False)
    ends_at: AwareDatetime = Field(None, validate_default=False)
    capacity: int = Field(None, ge=1, le=MAX_CAPACITY, validate_default=False)

    model_config = ConfigDict(
        json_schema_extra={"example": {"capacity": 15, "ends_at": "2026-12-05T21:30:00+08:00"}}
    )


class CancelIn(BaseModel):
    reason: Text = Field(
        min_length=1, max_length=200, description="Shown to every enrolled volunteer."
    )

    model_config = ConfigDict(json_schema_extra={"example": {"reason": "台风预警，活动取消"}})


# --- what is shown -------------------------------------------------------------------------


class TeamBrief(BaseModel):
    id: uuid.UUID
    name: str


class MyEnrolment(BaseModel):
    id: uuid.UUID
    state: EnrolmentState
    waitlist_position: int | None = Field(description="1 = next in line; null unless waiting.")


_ITEM_EXAMPLE: dict[str, Any] = {
    "id": _ACTIVITY_ID,
    "type": "public_security_patrol",
    "title": "岗顶夜间治安巡逻",
    "state": "published",
    "place_name": "岗顶社区党群服务中心",
    "starts_at": "2026-12-05T19:00:00+08:00",
    "ends_at": "2026-12-05T21:00:00+08:00",
    "organiser": _ORGANISER,
    "team": None,
    "capacity": 12,
    "places_left": 3,
    "waitlisted": 0,
    "reward_points": 10,
    "distance_m": 412.5,
    "my_enrolment": None,
}


class ActivityItem(ActivityBrief):
    """An activity as a volunteer finds it."""

    team: TeamBrief | None = Field(description="Only this team's members may enrol.")
    capacity: int
    places_left: int = Field(description="Capacity minus the volunteers holding a place.")
    waitlisted: int = Field(description="Volunteers waiting for a place.")
    reward_points: int | None = Field(
        description="Points for verified attendance (the ledger's rule); null: none."
    )
    distance_m: float | None = Field(description="From the location given; null without one.")
    my_enrolment: MyEnrolment | None = Field(description="The caller's enrolment, if any.")

    model_config = ConfigDict(json_schema_extra={"example": _ITEM_EXAMPLE})


class FenceOut(BaseModel):
    radius_m: int | None = Field(description="Metres around the place; null for a polygon.")
    polygon: dict[str, Any] | None = Field(description="GeoJSON Polygon; null for a radius.")
    coord: Literal["wgs84"] = "wgs84"


_DETAIL_EXAMPLE: dict[str, Any] = {
    **_ITEM_EXAMPLE,
    "description": _CREATE_EXAMPLE["description"],
    "address": _CREATE_EXAMPLE["address"],
    "location": {"lat": 23.13934, "lng": 113.32942, "coord": "wgs84"},
    "fence": {"radius_m": 300, "polygon": None, "coord": "wgs84"},
    "enrolled": 9,
    "cancel_reason": None,
    "published_at": "2026-11-27T10:00:00+08:00",
    "cancelled_at": None,
    "finished_at": None,
}


class ActivityOut(ActivityItem):
    """One activity, with what a volunteer needs to decide and to get there."""

    description: str | None
    address: str | None
    location: PointOut
    fence: FenceOut
    enrolled: int = Field(description="Volunteers holding a place.")
    cancel_reason: str | None = Field(description="Why it was cancelled; null otherwise.")
    published_at: datetime | None
    cancelled_at: datetime | None
    finished_at: datetime | None

    model_config = ConfigDict(json_schema_extra={"example": _DETAIL_EXAMPLE})


class EnrolmentCounts(BaseModel):
    enrolled: int
    waitlisted: int
    cancelled: int
    no_show: int


class AttendanceCounts(BaseModel):
    checked_in: int
    review: int
    verified: int
    rejected: int


class StaffActivityOut(ActivityOut):
    """One activity as its organisers see it: the detail and how it is going."""

    enrolments: EnrolmentCounts
    attendance: AttendanceCounts
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **_DETAIL_EXAMPLE,
                "my_enrolment": None,
                "distance_m": None,
                "enrolments": {"enrolled": 9, "waitlisted": 0, "cancelled": 2, "no_show": 0},
                "attendance": {"checked_in": 0, "review": 0, "verified": 0, "rejected": 0},
                "created_at": "2026-11-27T09:40:00+08:00",
                "updated_at": "2026-11-27T10:00:00+08:00",
            }
        }
    )


class StaffActivityItem(ActivityBrief):
    """An activity in the staff list."""

    team: TeamBrief | None
    capacity: int
    enrolled: int
    waitlisted: int
    places_left: int
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **{k: v for k, v in _ITEM_EXAMPLE.items() if k in ActivityBrief.model_fields},
                "team": {"id": _TEAM_ID, "name": "岗顶平安巡逻队"},
                "capacity": 12,
                "enrolled": 9,
                "waitlisted": 0,
                "places_left": 3,
                "created_at": "2026-11-27T09:40:00+08:00",
            }
        }
    )


# --- enrolments ----------------------------------------------------------------------------


class EnrolmentOut(BaseModel):
    """A volunteer's place (or place in the queue) for an activity."""

    id: uuid.UUID
    activity: ActivityBrief
    state: EnrolmentState
    waitlist_position: int | None = Field(description="1 = next in line; null unless waiting.")
    queued_at: datetime = Field(description="When you (last) enrolled: the queue's order.")
    promoted_at: datetime | None = Field(description="When you got a place from the waitlist.")
    cancelled_at: datetime | None
    cancelled_by: str | None = Field(
        description="`volunteer` (you), `activity_cancelled` (the organiser called it off: "
        "see `cancel_reason`) or `activity_finished` (still waiting when it ended)."
    )
    cancel_reason: str | None = Field(description="Why the organiser cancelled the activity.")
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ENROLMENT_ID,
                "activity": {
                    k: v for k, v in _ITEM_EXAMPLE.items() if k in ActivityBrief.model_fields
                },
                "state": "waitlisted",
                "waitlist_position": 2,
                "queued_at": "2026-11-27T10:15:00+08:00",
                "promoted_at": None,
                "cancelled_at": None,
                "cancelled_by": None,
                "cancel_reason": None,
                "created_at": "2026-11-27T10:15:00+08:00",
            }
        }
    )


class RosterVolunteer(BaseModel):
    id: uuid.UUID
    number: str | None = Field(description="The volunteer number, e.g. `V2026-0000123`.")
    real_name: str


class StaffEnrolmentOut(BaseModel):
    """An enrolment on an activity's roster."""

    id: uuid.UUID
    volunteer: RosterVolunteer
    state: EnrolmentState
    waitlist_position: int | None
    queued_at: datetime
    promoted_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    attendance_state: AttendanceState | None = Field(description="null: never checked in.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ENROLMENT_ID,
                "volunteer": {
                    "id": _VOLUNTEER_ID,
                    "number": "V2026-0000123",
                    "real_name": "陈志愿",
                },
                "state": "enrolled",
                "waitlist_position": None,
                "queued_at": "2026-11-27T10:15:00+08:00",
                "promoted_at": None,
                "cancelled_at": None,
                "cancelled_by": None,
                "attendance_state": "checked_in",
            }
        }
    )


__all__ = [
    "ActivityCreate",
    "ActivityItem",
    "ActivityOut",
    "ActivityState",
    "ActivityUpdate",
    "AttendanceCounts",
    "CancelIn",
    "EnrolmentCounts",
    "EnrolmentOut",
    "FenceIn",
    "FenceOut",
    "MyEnrolment",
    "PolygonIn",
    "RosterVolunteer",
    "StaffActivityItem",
    "StaffActivityOut",
    "StaffEnrolmentOut",
    "TeamBrief",
]
