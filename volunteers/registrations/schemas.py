"""Request and response bodies of sign-up, review, teams, records and the leaderboard."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from backend.core.text import Line, RegionCode, Text
from backend.regions.schemas import RegionBrief
from volunteers.models import VolunteerState
from volunteers.schemas import ActivityBrief

# --- registry: sign-up, approval, teams, records -------------------------------------------

MAX_SKILLS = 10


_VOLUNTEER_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000f001"


_TEAM_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000f101"


_GANGDING = {
    "code": "gz.tianhe.shipai.gangding",
    "name": "岗顶社区",
    "name_en": "Gangding Community",
}


class Skill(StrEnum):
    """What a volunteer can offer; the app shows each as a tag."""

    patrol = "patrol"  # public-security patrol
    first_aid = "first_aid"
    fire_safety = "fire_safety"
    legal = "legal"  # legal advice
    mediation = "mediation"
    elderly_care = "elderly_care"
    tutoring = "tutoring"
    driving = "driving"
    translation = "translation"
    other = "other"


class Availability(BaseModel):
    """When the volunteer can usually serve."""

    weekday_daytime: bool = False
    weekday_evening: bool = False
    weekend: bool = False
    note: Line | None = Field(None, max_length=100, description="Anything else, e.g. shifts.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "weekday_daytime": False,
                "weekday_evening": True,
                "weekend": True,
                "note": "周三晚上值班，不能参加",
            }
        },
    )


class VolunteerSignUp(BaseModel):
    real_name: Line = Field(min_length=2, max_length=32, description="Real name, as on the ID.")
    skills: list[Skill] = Field(default_factory=list, max_length=MAX_SKILLS)
    availability: Availability = Field(default_factory=Availability)
    community: RegionCode = Field(
        description="Code of the home community, e.g. `gz.tianhe.shipai.gangding` "
        "(`GET /v1/regions/locate` finds it from the phone's location).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "real_name": "陈明",
                "skills": ["patrol", "first_aid"],
                "availability": {"weekday_evening": True, "weekend": True},
                "community": "gz.tianhe.shipai.gangding",
            }
        }
    )


class MyTeam(BaseModel):
    id: uuid.UUID
    name: str
    leader: bool = Field(description="true when you lead this team.")


class VolunteerProfile(BaseModel):
    """The caller's registration: its state, what they offer, and what they have done."""

    id: uuid.UUID
    state: VolunteerState = Field(
        description="`pending` (waiting for the community), `approved`, `rejected` (see "
        "`review_reason`; sign up again to re-apply) or `suspended`."
    )
    number: str | None = Field(description="Volunteer number, issued on approval.")
    review_reason: str | None = Field(description="Why the community rejected or suspended.")
    reviewed_at: datetime | None
    real_name: str
    skills: list[Skill]
    availability: Availability
    community: RegionBrief = Field(description="The home community.")
    teams: list[MyTeam]
    service_minutes: int = Field(description="Verified service time, in minutes.")
    service_hours: float = Field(description="The same, in hours with one decimal.")
    activities_attended: int = Field(description="Activities with verified attendance.")
    points_available: int = Field(description="Points available to spend.")
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _VOLUNTEER_ID,
                "state": "approved",
                "number": "V2026-0000123",
                "review_reason": None,
                "reviewed_at": "2026-11-20T10:02:00+08:00",
                "real_name": "陈明",
                "skills": ["patrol", "first_aid"],
                "availability": {
                    "weekday_daytime": False,
                    "weekday_evening": True,
                    "weekend": True,
                    "note": None,
                },
                "community": _GANGDING,
                "teams": [{"id": _TEAM_ID, "name": "岗顶平安巡逻队", "leader": True}],
                "service_minutes": 370,
                "service_hours": 6.2,
                "activities_attended": 3,
                "points_available": 35,
                "created_at": "2026-11-19T21:15:00+08:00",
                "updated_at": "2026-11-20T10:02:00+08:00",
            }
        }
    )


class StaffVolunteer(BaseModel):
    """A volunteer as community staff see them: the phone masked, never in full."""

    id: uuid.UUID
    state: VolunteerState
    number: str | None
    real_name: str
    nickname: str | None = Field(description="WeChat nickname.")
    phone: str | None = Field(description="Masked, e.g. `138****5678`.")
    skills: list[Skill]
    availability: Availability
    community: RegionBrief
    review_reason: str | None
    reviewed_at: datetime | None
    service_minutes: int
    service_hours: float
    activities_attended: int
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _VOLUNTEER_ID,
                "state": "pending",
                "number": None,
                "real_name": "陈明",
                "nickname": "居民小陈",
                "phone": "138****5678",
                "skills": ["patrol"],
                "availability": {
                    "weekday_daytime": False,
                    "weekday_evening": True,
                    "weekend": True,
                    "note": None,
                },
                "community": _GANGDING,
                "review_reason": None,
                "reviewed_at": None,
                "service_minutes": 0,
                "service_hours": 0.0,
                "activities_attended": 0,
                "created_at": "2026-11-19T21:15:00+08:00",
                "updated_at": None,
            }
        }
    )


class StaffVolunteerDetail(StaffVolunteer):
    teams: list[MyTeam] = Field(description="Teams the volunteer is in (`leader`: leads it).")


class ReviewReason(BaseModel):
    reason: Line = Field(min_length=1, max_length=200, description="Shown to the volunteer.")

    model_config = ConfigDict(json_schema_extra={"example": {"reason": "请填写真实姓名后重新报名"}})


# --- teams ---------------------------------------------------------------------------------


class TeamCreate(BaseModel):
    community: RegionCode = Field(description="Code of the team's community.")
    name: Line = Field(min_length=1, max_length=64, description="Unique in the community.")
    description: Text | None = Field(None, max_length=500)
    leader_id: uuid.UUID | None = Field(
        None, description="An approved volunteer to lead it; they join as a member."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "community": "gz.tianhe.shipai.gangding",
                "name": "岗顶平安巡逻队",
                "description": "群防群治巡逻队，每周三、周六晚巡逻",
                "leader_id": _VOLUNTEER_ID,
            }
        }
    )


class TeamMemberAdd(BaseModel):
    volunteer_id: uuid.UUID

    model_config = ConfigDict(json_schema_extra={"example": {"volunteer_id": _VOLUNTEER_ID}})


class TeamLeaderSet(BaseModel):
    volunteer_id: uuid.UUID | None = Field(
        description="A member of the team; null leaves the team without a leader."
    )

    model_config = ConfigDict(json_schema_extra={"example": {"volunteer_id": _VOLUNTEER_ID}})


class TeamPerson(BaseModel):
    volunteer_id: uuid.UUID
    number: str | None
    real_name: str


class TeamMemberOut(TeamPerson):
    leader: bool
    joined_at: datetime


class TeamOut(BaseModel):
    id: uuid.UUID
    community: RegionBrief
    name: str
    description: str | None
    leader: TeamPerson | None
    members_count: int
    active: bool
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _TEAM_ID,
                "community": _GANGDING,
                "name": "岗顶平安巡逻队",
                "description": "群防群治巡逻队，每周三、周六晚巡逻",
                "leader": {
                    "volunteer_id": _VOLUNTEER_ID,
                    "number": "V2026-0000123",
                    "real_name": "陈明",
                },
                "members_count": 12,
                "active": True,
                "created_at": "2026-11-20T10:30:00+08:00",
            }
        }
    )


class TeamDetail(TeamOut):
    members: list[TeamMemberOut] = Field(description="The leader first, then by joining.")


# --- records and the leaderboard -----------------------------------------------------------


class ServiceRecord(BaseModel):
    """One verified attendance: what the volunteer did, how long, and what it paid."""

    id: uuid.UUID = Field(description="The attendance.")
    activity: ActivityBrief
    checked_in_at: datetime
    checked_out_at: datetime | None
    minutes: int
    points: int
    verified_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "0193a1f2-7c4d-7e8f-9a0b-00000000f201",
                "activity": {
                    "id": "0193a1f2-7c4d-7e8f-9a0b-00000000f301",
                    "type": "public_security_patrol",
                    "title": "岗顶社区夜间治安巡逻",
                    "state": "finished",
                    "place_name": "岗顶社区党群服务中心",
                    "starts_at": "2026-11-21T20:00:00+08:00",
                    "ends_at": "2026-11-21T22:00:00+08:00",
                    "organiser": _GANGDING,
                },
                "checked_in_at": "2026-11-21T19:56:10+08:00",
                "checked_out_at": "2026-11-21T22:01:30+08:00",
                "minutes": 120,
                "points": 10,
                "verified_at": "2026-11-21T22:01:30+08:00",
            }
        }
    )


class LeaderboardEntry(BaseModel):
    rank: int = Field(description="1 is first; equal minutes share a rank.")
    number: str | None = Field(description="Volunteer number.")
    name: str = Field(description="Masked: the first character and `*`, e.g. `陈*`.")
    minutes: int
    hours: float = Field(description="Hours with one decimal.")
    activities: int = Field(description="Activities with verified attendance that month.")


class LeaderboardMine(BaseModel):
    rank: int
    minutes: int
    hours: float
    activities: int


class Leaderboard(BaseModel):
    community: RegionBrief
    month: str = Field(description="`YYYY-MM`, China time.")
    entries: list[LeaderboardEntry] = Field(description="The top 50, most minutes first.")
    me: LeaderboardMine | None = Field(
        description="Your place, when you served with this community that month."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "community": _GANGDING,
                "month": "2026-11",
                "entries": [
                    {
                        "rank": 1,
                        "number": "V2026-0000123",
                        "name": "陈*",
                        "minutes": 480,
                        "hours": 8.0,
                        "activities": 4,
                    }
                ],
                "me": {"rank": 1, "minutes": 480, "hours": 8.0, "activities": 4},
            }
        }
    )
