"""Request and response bodies of the mediation supermarket: studios and mediators (admins),
the studios that fit a dispute (residents), the supervisors' list and the mediator's queue.

Mediators appear to residents by display name and title only; no body here carries a phone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from backend.core.text import RegionCode, Text, Verbatim
from backend.mediation.models import (
    Consent,
    DisputeType,
    MediationState,
    PartyRole,
    Specialty,
)

Specialties = Annotated[list[Specialty], Field(min_length=1, max_length=len(Specialty))]


MAX_ACTIVE_LIMIT = 500


_STUDIO_ID = "0193a1f2-0000-7000-8000-0000000051d0"


_MEDIATOR_ID = "0193a1f2-0000-7000-8000-00000000d1a0"


_USER_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


_CASE_ID = "0193a1f2-7c4d-7e8f-9a0b-aabbccddeeff"


_SHIPAI = {"code": "gz.tianhe.shipai", "name": "石牌街", "name_en": "Shipai Subdistrict"}


_STUDIO_REF = {"id": _STUDIO_ID, "name": "石牌街和事佬调解工作室", "name_en": "Shipai Peacemakers"}


_MEDIATOR_CARD = {"display_name": "周叔", "title": "人民调解员"}


def _unique(values: list[Specialty]) -> list[Specialty]:
    return list(dict.fromkeys(values))


class AreaRef(BaseModel):
    code: str = Field(description="The region's code, e.g. `gz.tianhe.shipai`.")
    name: str
    name_en: str | None


class StudioRef(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str | None


class MediatorCard(BaseModel):
    """A mediator as a party sees them: a display name and a title, nothing personal."""

    display_name: str
    title: str | None = Field(description="e.g. 人民调解员, 律师.")


# --- studios (admins) ----------------------------------------------------------------------


class StudioCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=100, description="Unique within its area.")
    name_en: Text | None = Field(None, min_length=1, max_length=100)
    description: Text | None = Field(None, max_length=500, description="Shown to residents.")
    specialties: Specialties = Field(description="The kinds of disputes it takes.")
    area: RegionCode = Field(
        description="Code of the region it serves (cases located within it); it must lie in "
        "a region you administer."
    )

    unique_specialties = field_validator("specialties")(_unique)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "石牌街和事佬调解工作室",
                "name_en": "Shipai Peacemakers Mediation Studio",
                "description": "街道人民调解委员会设立，擅长邻里、婚姻家庭和物业纠纷",
                "specialties": ["neighbourhood", "family", "property"],
                "area": "gz.tianhe.shipai",
            }
        }
    )


class StudioUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. The area never changes."""

    name: Text = Field(None, min_length=1, max_length=100, validate_default=False)
    name_en: Text | None = Field(None, min_length=1, max_length=100, validate_default=False)
    description: Text | None = Field(None, max_length=500, validate_default=False)
    specialties: Specialties = Field(None, validate_default=False)
    active: bool = Field(
        None,
        validate_default=False,
        description="false: its mediators get no new cases and residents no longer see it.",
    )

    unique_specialties = field_validator("specialties")(_unique)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"specialties": ["neighbourhood", "family"]}, {"active": False}]
        }
    )


class StudioOut(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str | None
    description: str | None
    specialties: list[Specialty]
    area: AreaRef
    active: bool
    mediators: int = Field(description="Its active mediators.")
    load: int = Field(description="Cases its active mediators carry now.")
    capacity: int = Field(description="Cases its active mediators may carry at once, together.")
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **_STUDIO_REF,
                "description": "街道人民调解委员会设立，擅长邻里、婚姻家庭和物业纠纷",
                "specialties": ["neighbourhood", "family", "property"],
                "area": _SHIPAI,
                "active": True,
                "mediators": 3,
                "load": 17,
                "capacity": 60,
                "created_at": "2026-11-22T09:30:00+08:00",
                "updated_at": None,
            }
        }
    )


# --- mediators (admins) --------------------------------------------------------------------


class MediatorCreate(BaseModel):
    """Who: an existing user, by `user_id` or `openid` (exactly one)."""

    user_id: uuid.UUID | None = Field(None, description="The user's id.")
    openid: Verbatim | None = Field(
        None, min_length=1, max_length=64, description="The user's WeChat openid."
    )
    display_name: Text = Field(min_length=1, max_length=32, description="Shown to the parties.")
    title: Text | None = Field(None, min_length=1, max_length=64, description="e.g. 人民调解员.")
    specialties: Specialties
    area: RegionCode = Field(
        description="Code of the region they take cases in; it must lie in a region you "
        "administer (and within their studio's area). They are granted the `mediator` role "
        "on it."
    )
    studio_id: uuid.UUID | None = Field(None, description="The studio they work in, if any.")
    max_active: int = Field(
        20,
        ge=1,
        le=MAX_ACTIVE_LIMIT,
        description="Cases at once before the automatic assignment passes them by.",
    )

    unique_specialties = field_validator("specialties")(_unique)

    @model_validator(mode="after")
    def _one_user(self) -> MediatorCreate:
        if (self.user_id is None) == (self.openid is None):
            raise ValueError("give exactly one of user_id and openid")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "openid": "demo-mediator",
                "display_name": "周叔",
                "title": "人民调解员",
                "specialties": ["neighbourhood", "family", "property", "labour"],
                "area": "gz.tianhe.shipai",
                "studio_id": _STUDIO_ID,
                "max_active": 20,
            }
        }
    )


class MediatorUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. `studio_id: null` leaves the studio."""

    display_name: Text = Field(None, min_length=1, max_length=32, validate_default=False)
    title: Text | None = Field(None, min_length=1, max_length=64, validate_default=False)
    specialties: Specialties = Field(None, validate_default=False)
    area: RegionCode = Field(
        None,
        validate_default=False,
        description="A new area; the `mediator` role moves with it. Cases they carry stay.",
    )
    studio_id: uuid.UUID | None = Field(None, validate_default=False)
    max_active: int = Field(None, ge=1, le=MAX_ACTIVE_LIMIT, validate_default=False)
    active: bool = Field(
        None,
        validate_default=False,
        description="false: no new cases; the cases they carry stay until reassigned.",
    )

    unique_specialties = field_validator("specialties")(_unique)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"max_active": 10}, {"active": False}]}
    )


class MediatorOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    title: str | None
    specialties: list[Specialty]
    area: AreaRef
    studio: StudioRef | None
    max_active: int
    load: int = Field(description="Cases they carry now (assigned, in session, agreement).")
    active: bool
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _MEDIATOR_ID,
                "user_id": _USER_ID,
                **_MEDIATOR_CARD,
                "specialties": ["neighbourhood", "family", "property", "labour"],
                "area": _SHIPAI,
                "studio": _STUDIO_REF,
                "max_active": 20,
                "load": 6,
                "active": True,
                "created_at": "2026-11-22T09:30:00+08:00",
                "updated_at": None,
            }
        }
    )


# --- choosing a studio (residents) ---------------------------------------------------------


Availability = Literal["available", "busy"]


class FittingStudio(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str | None
    description: str | None
    specialties: list[Specialty]
    area: AreaRef = Field(description="The region it serves.")
    mediator_count: int = Field(description="Its mediators who take this kind of dispute here.")
    mediators: list[MediatorCard]
    availability: Availability = Field(
        description="`busy` when each of those mediators carries at least 80% of the cases "
        "they may carry at once (a new case may then wait longer); `available` otherwise."
    )


class FittingStudios(BaseModel):
    """The active studios that take a dispute type at a place and have a mediator with room:
    available first, then the studio closest to the place (smallest area), then by name."""

    dispute_type: DisputeType
    specialty: Specialty = Field(description="The specialty this dispute type needs.")
    place: AreaRef = Field(description="The grid the point lies in.")
    items: list[FittingStudio]

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "dispute_type": "neighbours",
                "specialty": "neighbourhood",
                "place": {
                    "code": "gz.tianhe.shipai.gangding.g05",
                    "name": "岗顶第5网格",
                    "name_en": "Gangding Grid 5",
                },
                "items": [
                    {
                        **_STUDIO_REF,
                        "description": "街道人民调解委员会设立，擅长邻里、婚姻家庭和物业纠纷",
                        "specialties": ["neighbourhood", "family", "property"],
                        "area": _SHIPAI,
                        "mediator_count": 1,
                        "mediators": [_MEDIATOR_CARD],
                        "availability": "available",
                    }
                ],
            }
        }
    )


class StudioChoice(BaseModel):
    studio_id: uuid.UUID = Field(description="One of the studios that fit the dispute.")

    model_config = ConfigDict(json_schema_extra={"example": {"studio_id": _STUDIO_ID}})


class StudioChoiceOut(BaseModel):
    """The mediation after the applicant's choice."""

    id: uuid.UUID = Field(description="The mediation's (case's) id.")
    number: str
    state: MediationState
    preferred_studio: StudioRef
    studio: StudioRef | None = Field(description="The studio of the assigned mediator.")
    mediator: MediatorCard | None = Field(description="Once a mediator has been assigned.")
    assigned_now: bool = Field(description="This choice assigned a mediator at once.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _CASE_ID,
                "number": "MED-20261122-000012",
                "state": "assigned",
                "preferred_studio": _STUDIO_REF,
                "studio": _STUDIO_REF,
                "mediator": _MEDIATOR_CARD,
                "assigned_now": True,
            }
        }
    )


# --- supervision (admins above) ------------------------------------------------------------


class MediatorRef(BaseModel):
    id: uuid.UUID
    display_name: str
    title: str | None
    studio: StudioRef | None


class SupervisedMediation(BaseModel):
    """A mediation as its supervisors list it: no parties' contact details, no minutes."""

    id: uuid.UUID = Field(description="The mediation's (case's) id.")
    number: str = Field(description="e.g. `MED-20261122-000012`.")
    dispute_type: DisputeType
    state: MediationState
    place_code: str = Field(description="The grid where the dispute is.")
    preferred_studio: StudioRef | None = Field(description="The applicant's choice, if any.")
    mediator: MediatorRef | None
    created_at: datetime
    days_open: int = Field(description="Whole days from the request to now (or to its end).")
    due_at: datetime = Field(description="The time limit of the mediation.")
    overdue: bool = Field(description="Still open and past its time limit.")
    escalated: bool
    escalated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _CASE_ID,
                "number": "MED-20261122-000012",
                "dispute_type": "neighbours",
                "state": "assigned",
                "place_code": "gz.tianhe.shipai.gangding.g05",
                "preferred_studio": _STUDIO_REF,
                "mediator": {"id": _MEDIATOR_ID, **_MEDIATOR_CARD, "studio": _STUDIO_REF},
                "created_at": "2026-11-22T09:30:00+08:00",
                "days_open": 3,
                "due_at": "2026-12-22T09:30:00+08:00",
                "overdue": False,
                "escalated": False,
                "escalated_at": None,
            }
        }
    )


class Assignment(BaseModel):
    mediator_id: uuid.UUID = Field(description="An active mediator who fits the dispute.")
    note: Text | None = Field(
        None, min_length=1, max_length=500, description="Why; shown on the case's timeline."
    )

    model_config = ConfigDict(
        json_schema_extra={"example": {"mediator_id": _MEDIATOR_ID, "note": "原调解员休假，改派"}}
    )


# --- the mediator's queue ------------------------------------------------------------------


class PartyName(BaseModel):
    role: PartyRole
    name: str
    consent: Consent


class MediatorCaseItem(BaseModel):
    """A case in the mediator's own queue: the parties by name only (no phones here)."""

    id: uuid.UUID = Field(description="The mediation's (case's) id.")
    number: str
    dispute_type: DisputeType
    state: MediationState
    parties: list[PartyName]
    assigned_at: datetime | None
    next_session_at: datetime | None = Field(description="The next scheduled session, if any.")
    next_deadline: datetime | None = Field(
        description="The time limit of the mediation while it is open; null once it ended."
    )
    overdue: bool = Field(description="Open and past its time limit.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _CASE_ID,
                "number": "MED-20261122-000012",
                "dispute_type": "neighbours",
                "state": "in_session",
                "parties": [
                    {"role": "applicant", "name": "陈明", "consent": "accepted"},
                    {"role": "respondent", "name": "李四", "consent": "accepted"},
                ],
                "assigned_at": "2026-11-23T10:00:00+08:00",
                "next_session_at": "2026-11-26T15:00:00+08:00",
                "next_deadline": "2026-12-22T09:30:00+08:00",
                "overdue": False,
            }
        }
    )
