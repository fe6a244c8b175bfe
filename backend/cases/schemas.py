"""Request and response bodies of submissions and the resident's side of cases.

`CaseOut` is the one read model of a case: the resident's app and the staff workbench both
show it (built by `service.case_view`, which hides what the viewer may not see).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.cases.models import CaseKind, CaseState, Channel, ComplaintTarget
from backend.core.text import Text
from backend.regions.schemas import LocationIn, PointOut, RegionBrief

MAX_ATTACHMENTS = 9


SUMMARY_CHARS = 40


_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


# --- Submitting --------------------------------------------------------------------------


CATEGORY_EXAMPLE = {
    "id": "0193a1f2-0000-7000-8000-000000000004",
    "kind": "report",
    "code": "road_facilities",
    "name": "道路设施",
    "name_en": "Road facilities",
    "response_hours": 4,
    "resolution_hours": 72,
    "handling_unit": "城管中队",
    "handling_unit_en": "Urban management squad",
    "position": 40,
    "active": True,
}


class ReportCreate(BaseModel):
    """A one-click report (随手拍): what, where, and up to 9 photos or videos."""

    category: Text = Field(
        min_length=1, max_length=64, description="The category's id or its code."
    )
    description: Text = Field(min_length=5, max_length=1000)
    location: LocationIn
    address: Text | None = Field(
        None, max_length=200, description="What the resident calls the place (optional)."
    )
    upload_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Uploads (purpose `case_photo` or `case_video`) in display order.",
    )
    anonymous: bool = Field(False, description="Hide the resident's identity from staff.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "category": "road_facilities",
                "description": "岗顶路口井盖破损，行人容易踩空",
                "location": {"lat": 23.13412, "lng": 113.33071, "coord": "gcj02"},
                "address": "天河路岗顶地铁站B出口",
                "upload_ids": [_ID],
                "anonymous": False,
            }
        }
    )


class ComplaintTargetIn(BaseModel):
    type: ComplaintTarget = Field(description="department, property_company or business.")
    name: Text = Field(min_length=1, max_length=100)


class ComplaintCreate(ReportCreate):
    """A one-click complaint: a report that names whom it is about."""

    target: ComplaintTargetIn

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "category": "property_management",
                "description": "小区电梯停运一周，物业一直不维修",
                "location": {"lat": 23.13412, "lng": 113.33071, "coord": "gcj02"},
                "address": "岗顶某小区3栋",
                "upload_ids": [],
                "anonymous": True,
                "target": {"type": "property_company", "name": "某某物业服务有限公司"},
            }
        }
    )


# --- The case read model -----------------------------------------------------------------


class CategoryBrief(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str
    handling_unit: str
    handling_unit_en: str


class PersonOut(BaseModel):
    id: uuid.UUID
    nickname: str | None = None


class ReporterOut(PersonOut):
    """The resident a case is for: shown to them, and to staff when they submitted it."""

    phone: str | None = Field(None, description="Masked, e.g. `138****5678`.")


class TargetOut(BaseModel):
    type: ComplaintTarget
    name: str


class AttachmentOut(BaseModel):
    id: uuid.UUID = Field(description="The upload's id.")
    url: str = Field(description="Short-lived URL to fetch the file.")
    content_type: str
    event_seq: int | None = Field(None, description="The timeline event it came with.")


class CaseEventOut(BaseModel):
    seq: int
    action: str
    from_state: CaseState | None
    to_state: CaseState | None
    note: str | None
    actor_role: str = Field(description="`resident`, a staff role, or `system`.")
    actor: PersonOut | None = Field(
        None, description="Who acted; given for staff only, never for residents."
    )
    data: dict[str, Any]
    created_at: datetime


_CASE_EXAMPLE: dict[str, Any] = {
    "id": _ID,
    "number": "RPT-20261122-000123",
    "kind": "report",
    "state": "submitted",
    "version": 1,
    "category": {
        key: CATEGORY_EXAMPLE[key]
        for key in (
            "id",
            "code",
            "name",
            "name_en",
            "handling_unit",
            "handling_unit_en",
        )
    },
    "description": "岗顶路口井盖破损，行人容易踩空",
    "location": {"lat": 23.13146, "lng": 113.32531, "coord": "wgs84"},
    "address": "天河路岗顶地铁站B出口",
    "grid": {
        "code": "gz.tianhe.shipai.gangding.g01",
        "name": "岗顶第1网格",
        "name_en": "Gangding Grid 1",
    },
    "queue": {
        "code": "gz.tianhe.shipai.gangding",
        "name": "岗顶社区",
        "name_en": "Gangding Community",
    },
    "channel": "miniapp",
    "anonymous": False,
    "reporter": {
        "id": "0193a1f2-0000-7000-8000-00000000aaaa",
        "nickname": "居民小陈",
        "phone": "138****5678",
    },
    "contact_phone": "138****5678",
    "target": None,
    "priority": "normal",
    "escalation_level": 0,
    "assignee_id": None,
    "supporters": 2,
    "response_due_at": "2026-11-22T13:30:00Z",
    "resolution_due_at": "2026-11-25T09:30:00Z",
    "accepted_at": None,
    "resolved_at": None,
    "closed_at": None,
    "rejected_reason": None,
    "rating": None,
    "rating_comment": None,
    "reopen_count": 0,
    "created_at": "2026-11-22T09:30:00Z",
    "updated_at": None,
    "attachments": [
        {
            "id": "0193a1f2-0000-7000-8000-00000000bbbb",
            "url": "https://s3.example.cn/shanzhi/u/...jpg?X-Amz-Signature=...",
            "content_type": "image/jpeg",
            "event_seq": 1,
        }
    ],
    "timeline": [
        {
            "seq": 1,
            "action": "submit",
            "from_state": None,
            "to_state": "submitted",
            "note": None,
            "actor_role": "resident",
            "actor": None,
            "data": {"channel": "miniapp"},
            "created_at": "2026-11-22T09:30:00Z",
        }
    ],
}


class CaseOut(BaseModel):
    """A case as its reporter or the staff handling it see it."""

    id: uuid.UUID
    number: str = Field(description="Human-readable number, e.g. `RPT-20261122-000123`.")
    kind: CaseKind
    state: CaseState
    version: int = Field(description="Send back to staff actions (optimistic locking).")
    category: CategoryBrief
    description: str
    location: PointOut
    address: str | None
    grid: RegionBrief
    queue: RegionBrief = Field(description="The region whose staff handle it now.")
    channel: Channel
    anonymous: bool
    reporter: ReporterOut | None = Field(
        None,
        description="Null to staff when the case is anonymous, or staff registered it for "
        "a resident (whether or not the number belongs to an account).",
    )
    contact_phone: str | None = Field(
        None,
        description="Masked: the number staff registered the case with, else the reporter's "
        "bound phone; hidden when anonymous.",
    )
    target: TargetOut | None = Field(None, description="Whom a complaint is about.")
    priority: str
    escalation_level: int
    assignee_id: uuid.UUID | None
    supporters: int = Field(description="Residents who added their +1.")
    response_due_at: datetime
    resolution_due_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rejected_reason: str | None
    rating: int | None
    rating_comment: str | None
    reopen_count: int
    created_at: datetime
    updated_at: datetime | None
    attachments: list[AttachmentOut]
    timeline: list[CaseEventOut]

    model_config = ConfigDict(json_schema_extra={"example": _CASE_EXAMPLE})


class PossibleDuplicate(BaseModel):
    """An open case nearby in the same category: support it instead of reporting again."""

    id: uuid.UUID
    number: str
    state: CaseState
    distance_m: int = Field(description="Metres from the submitted point.")
    created_at: datetime
    supporters: int
    summary: str = Field(description=f"The first {SUMMARY_CHARS} characters of the description.")


class SubmissionOut(CaseOut):
    """The submitted case, and open cases nearby that may be the same problem."""

    possible_duplicates: list[PossibleDuplicate] = Field(
        description="Open cases of the same category within 100 m from the last 3 days, "
        "nearest first, at most 5."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **_CASE_EXAMPLE,
                "possible_duplicates": [
                    {
                        "id": "0193a1f0-0000-7000-8000-00000000cccc",
                        "number": "RPT-20261121-000098",
                        "state": "accepted",
                        "distance_m": 48,
                        "created_at": "2026-11-21T16:02:00Z",
                        "supporters": 3,
                        "summary": "路口井盖松动，晚上看不清",
                    }
                ],
            }
        }
    )


class CaseListItem(BaseModel):
    """A case in a list: enough to show a row and open the case."""

    id: uuid.UUID
    number: str
    kind: CaseKind
    state: CaseState
    category: CategoryBrief
    summary: str = Field(description=f"The first {SUMMARY_CHARS} characters of the description.")
    address: str | None
    supporters: int
    rating: int | None
    response_due_at: datetime
    resolution_due_at: datetime
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ID,
                "number": "RPT-20261122-000123",
                "kind": "report",
                "state": "in_progress",
                "category": _CASE_EXAMPLE["category"],
                "summary": "岗顶路口井盖破损，行人容易踩空",
                "address": "天河路岗顶地铁站B出口",
                "supporters": 2,
                "rating": None,
                "response_due_at": "2026-11-22T13:30:00Z",
                "resolution_due_at": "2026-11-25T09:30:00Z",
                "created_at": "2026-11-22T09:30:00Z",
                "updated_at": "2026-11-22T10:05:00Z",
            }
        }
    )


# --- The resident's actions --------------------------------------------------------------


class SupportOut(BaseModel):
    supporters: int = Field(description="Residents who support the case, counting the caller.")

    model_config = ConfigDict(json_schema_extra={"example": {"supporters": 3}})


class RatingIn(BaseModel):
    rating: int = Field(ge=1, le=5, description="1 (very dissatisfied) to 5 (very satisfied).")
    comment: Text | None = Field(None, max_length=500)

    model_config = ConfigDict(
        json_schema_extra={"example": {"rating": 5, "comment": "处理很及时，谢谢网格员"}}
    )


class ReopenIn(BaseModel):
    reason: Text = Field(min_length=5, max_length=500)

    model_config = ConfigDict(
        json_schema_extra={"example": {"reason": "井盖换了新的，但是仍然松动，踩上去会响"}}
    )
