"""Request and response bodies of the staff workbench: the queue, actions, registration."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from backend.cases.models import CaseKind, CaseState, Channel
from backend.cases.schemas import ComplaintTargetIn
from backend.core.text import Text
from backend.regions.schemas import LocationIn

_ID = "01937a2e-4b6c-7d8e-9f00-112233445566"


CATEGORY_EXAMPLE = {
    "id": "01937a2e-0000-7000-8000-000000000001",
    "code": "road_damage",
    "name": "道路破损",
    "name_en": "Damaged road",
}


class StaffAction(StrEnum):
    """What staff may do to a case from the workbench."""

    accept = "accept"
    assign = "assign"
    start = "start"
    resolve = "resolve"
    reject = "reject"
    escalate = "escalate"
    comment = "comment"


class RejectReason(StrEnum):
    duplicate = "duplicate"
    out_of_scope = "out_of_scope"
    insufficient_information = "insufficient_information"
    not_government_matter = "not_government_matter"
    other = "other"


class RegisterChannel(StrEnum):
    """How a resident reached staff who register the case for them."""

    phone = "phone"
    counter = "counter"


class CategoryRef(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str


class UserRef(BaseModel):
    id: uuid.UUID
    nickname: str | None


_ITEM_EXAMPLE = {
    "id": _ID,
    "number": "RPT-20261122-000123",
    "kind": "report",
    "category": CATEGORY_EXAMPLE,
    "state": "submitted",
    "priority": "normal",
    "channel": "miniapp",
    "grid_code": "gz.tianhe.shipai.gangding.g05",
    "queue_code": "gz.tianhe.shipai.gangding",
    "escalation_level": 0,
    "assignee": None,
    "deadline": "2026-11-23T09:30:00+08:00",
    "overdue": False,
    "created_at": "2026-11-22T09:30:00+08:00",
    "summary": "岗顶路口的井盖松动，电动车经过时响声很大，担心有人摔倒",
    "supporters": 2,
    "version": 1,
}


class StaffCaseItem(BaseModel):
    """A case as the workbench lists it. The reporter is never shown here."""

    id: uuid.UUID
    number: str = Field(description="Human-readable number, e.g. `RPT-20261122-000123`.")
    kind: CaseKind
    category: CategoryRef
    state: CaseState
    priority: str
    channel: Channel
    grid_code: str = Field(description="The grid where the case is.")
    queue_code: str = Field(description="The region whose staff handle it now.")
    escalation_level: int = Field(description="How many times it moved up a level.")
    assignee: UserRef | None
    deadline: datetime | None = Field(
        description="The deadline that matters now: the response deadline while submitted or "
        "reopened, the resolution deadline while accepted or in progress; null otherwise."
    )
    overdue: bool = Field(description="The deadline above has passed.")
    created_at: datetime
    summary: str = Field(description="The first 60 characters of the description.")
    supporters: int = Field(description="Residents who added their “+1”.")
    version: int = Field(description="Send it back with an action (optimistic locking).")

    model_config = ConfigDict(json_schema_extra={"example": _ITEM_EXAMPLE})


class StaffActionBody(BaseModel):
    version: int = Field(ge=1, description="The case's version as the staff member saw it.")
    note: Text | None = Field(
        None,
        max_length=1000,
        description="Shown on the timeline; required to resolve, comment, reject `other`.",
    )
    assignee_id: uuid.UUID | None = Field(None, description="`assign`: who takes the case.")
    reason: RejectReason | None = Field(None, description="`reject`: why.")
    upload_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=9,
        description="`resolve`: photos of the result (uploads with purpose `resolution_photo`).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": 1},
                {"version": 2, "assignee_id": _ID, "note": "请今天下午到现场查看"},
                {
                    "version": 3,
                    "note": "已更换井盖并加固",
                    "upload_ids": ["01937a2e-4b6c-7d8e-9f00-aabbccddeeff"],
                },
                {"version": 1, "reason": "duplicate", "note": "与 RPT-20261122-000120 相同"},
            ]
        }
    )


class CaseRegistration(BaseModel):
    """A case staff register for a resident who phoned or came to the counter."""

    kind: Literal["report", "complaint"]
    category: Text = Field(
        min_length=1, max_length=64, description="The category's id or its code (of that kind)."
    )
    description: Text = Field(min_length=5, max_length=1000)
    location: LocationIn
    address: Text | None = Field(None, max_length=200, description="The place as the caller says.")
    channel: RegisterChannel
    resident_phone: Annotated[str, StringConstraints(pattern=r"^1[3-9]\d{9}$")] | None = Field(
        None,
        description="The caller's mainland mobile number (11 digits); links the case to the "
        "resident who bound this number (never shown to staff), and is stored encrypted.",
    )
    target: ComplaintTargetIn | None = Field(None, description="Complaints: whom it is about.")

    @model_validator(mode="after")
    def _target_only_for_complaints(self) -> CaseRegistration:
        if self.target is not None and self.kind != "complaint":
            raise ValueError("only complaints have a target")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "report",
                    "category": "road_facilities",
                    "description": "居民来电：岗顶路口的井盖松动",
                    "location": {"lat": 23.13405, "lng": 113.32935, "coord": "wgs84"},
                    "address": "天河路与石牌西路交界",
                    "channel": "phone",
                    "resident_phone": "13800135678",
                }
            ]
        }
    )
