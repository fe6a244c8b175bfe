"""Request and response shapes of the volunteers domain that more than one part uses.

Each part adds its own below its heading: registry (sign-up, teams, records) here,
activities and enrolment in `activity_schemas.py`, attendance in `attendance_schemas.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from backend.regions.schemas import LocationIn, PointOut, RegionBrief
from volunteers.models import ActivityState, ActivityType

__all__ = ["ActivityBrief", "LocationIn", "PhoneLocationIn", "PointOut", "RegionBrief"]


class PhoneLocationIn(LocationIn):
    """Where the phone says it is, with the accuracy wx.getLocation reports."""

    accuracy_m: float = Field(
        ge=0,
        le=100_000,
        allow_inf_nan=False,
        description="Horizontal accuracy in metres (`accuracy` from wx.getLocation).",
    )

    model_config = {
        "json_schema_extra": {
            "example": {"lat": 23.13672, "lng": 113.33478, "coord": "gcj02", "accuracy_m": 15}
        }
    }


class ActivityBrief(BaseModel):
    """An activity in a list or beside an enrolment, attendance or record."""

    id: uuid.UUID
    type: ActivityType
    title: str
    state: ActivityState
    place_name: str
    starts_at: datetime
    ends_at: datetime
    organiser: RegionBrief = Field(description="The community that organises and certifies.")
