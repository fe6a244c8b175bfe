"""Request and response bodies of inspections: the checklist, filing one, and the lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.cases.models import CaseState
from backend.cases.schemas import MAX_ATTACHMENTS
from backend.core.text import Text
from backend.regions.schemas import LocationIn, PointOut
from volunteers.models import ActivityType

ITEM_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"


# More answers than the longest checklist has items can never be valid.
MAX_RESULTS = 20


_ACTIVITY_ID = "0193a1f2-0000-7000-8000-0000000ac701"


_INSPECTION_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


_CASE_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000ca5e"


_UPLOAD_ID = "0193a1f2-7c4d-7e8f-9a0b-0000000f0701"


# --- the checklist -------------------------------------------------------------------------


class ChecklistItemOut(BaseModel):
    code: str = Field(description="Stable code of the item, sent back in `results[].item`.")
    label: str = Field(description="What to check, in Chinese, as shown in the app.")
    label_en: str
    category: str = Field(description="Code of the report category a failed item is filed in.")


class ChecklistOut(BaseModel):
    """What to check at each house during this activity, in order."""

    activity_id: uuid.UUID
    type: ActivityType
    items: list[ChecklistItemOut]

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "activity_id": _ACTIVITY_ID,
                "type": "rental_inspection",
                "items": [
                    {
                        "code": "fire_extinguisher",
                        "label": "灭火器配备且在有效期内",
                        "label_en": "Fire extinguisher present and in date",
                        "category": "fire_hazard",
                    },
                    {
                        "code": "tenant_registration",
                        "label": "租客已办理出租屋登记（派出所）",
                        "label_en": "Tenants registered with the police",
                        "category": "public_security",
                    },
                ],
            }
        }
    )


# --- filing --------------------------------------------------------------------------------


class ResultIn(BaseModel):
    """The answer to one checklist item."""

    item: str = Field(pattern=ITEM_PATTERN, description="The checklist item's code.")
    ok: bool = Field(description="true: the item passed; false: a problem was found.")
    note: Text | None = Field(None, max_length=200, description="What was found (optional).")
    upload_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Photos of a reported problem: uploads of purpose `case_photo` or "
        "`case_video`, as for a report. Only on an item that is reported.",
    )
    report: bool | None = Field(
        None,
        description="File the failed item as a report in the case engine; default true when "
        "`ok` is false. Must not be true on a passed item.",
    )

    @property
    def files_report(self) -> bool:
        return not self.ok and self.report is not False

    @model_validator(mode="after")
    def _report_only_on_a_problem(self) -> ResultIn:
        if self.ok and self.report:
            raise ValueError("only a failed item (ok: false) can be reported")
        if self.upload_ids and not self.files_report:
            raise ValueError("photos go with a failed item that is reported")
        return self


class InspectionCreate(BaseModel):
    """One house inspected: where it is and the answer to each checklist item checked."""

    address: Text = Field(
        min_length=1, max_length=200, description="The house, e.g. street, number, room."
    )
    location: LocationIn = Field(description="Where the house is; its report is filed there.")
    results: list[ResultIn] = Field(
        min_length=1,
        max_length=MAX_RESULTS,
        description="At least one item; each item at most once, in any order.",
    )

    @model_validator(mode="after")
    def _each_item_and_photo_once(self) -> InspectionCreate:
        items = [result.item for result in self.results]
        if len(set(items)) != len(items):
            raise ValueError("each checklist item may be answered only once")
        photos = [upload for result in self.results for upload in result.upload_ids]
        if len(set(photos)) != len(photos):
            raise ValueError("each photo may go with one item only")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "address": "岗顶西街 12 号 302 房",
                "location": {"lat": 23.13412, "lng": 113.33071, "coord": "gcj02"},
                "results": [
                    {"item": "fire_extinguisher", "ok": False, "note": "灭火器已过期两年"},
                    {"item": "escape_route", "ok": True},
                    {
                        "item": "electrical_wiring",
                        "ok": False,
                        "note": "楼道飞线给电动车充电",
                        "upload_ids": [_UPLOAD_ID],
                    },
                    {"item": "tenant_registration", "ok": False, "report": False},
                ],
            }
        }
    )


# --- answers -------------------------------------------------------------------------------

_INSPECTION_EXAMPLE: dict[str, Any] = {
    "id": _INSPECTION_ID,
    "activity_id": _ACTIVITY_ID,
    "address": "岗顶西街 12 号 302 房",
    "location": {"lat": 23.13672, "lng": 113.32557, "coord": "wgs84"},
    "results": [
        {
            "item": "fire_extinguisher",
            "label": "灭火器配备且在有效期内",
            "label_en": "Fire extinguisher present and in date",
            "ok": False,
            "note": "灭火器已过期两年",
            "upload_ids": [],
            "report": True,
            "finding": {
                "case_id": _CASE_ID,
                "number": "RPT-20261122-000123",
                "state": "submitted",
            },
        },
        {
            "item": "escape_route",
            "label": "疏散通道、楼梯畅通无杂物",
            "label_en": "Escape route and stairs clear",
            "ok": True,
            "note": None,
            "upload_ids": [],
            "report": False,
            "finding": None,
        },
    ],
    "created_at": "2026-11-22T10:15:00+08:00",
}


class FindingOut(BaseModel):
    """The report a failed item became, as it stands now."""

    case_id: uuid.UUID
    number: str = Field(description="The report's number, e.g. `RPT-20261122-000123`.")
    state: CaseState


class ResultOut(BaseModel):
    item: str
    label: str = Field(description="The item as the checklist names it (the code if retired).")
    label_en: str
    ok: bool
    note: str | None
    upload_ids: list[uuid.UUID]
    report: bool = Field(description="Whether the item was filed as a report.")
    finding: FindingOut | None = Field(description="The report it became, if it was filed.")


class InspectionOut(BaseModel):
    """A house inspected during an activity, with each item's answer and reports filed."""

    id: uuid.UUID
    activity_id: uuid.UUID
    address: str
    location: PointOut
    results: list[ResultOut]
    created_at: datetime

    model_config = ConfigDict(json_schema_extra={"example": _INSPECTION_EXAMPLE})


class InspectorOut(BaseModel):
    id: uuid.UUID
    number: str | None = Field(description="The volunteer number, e.g. `V2026-0000123`.")
    real_name: str


class StaffInspectionOut(InspectionOut):
    """An inspection as the activity's hosts see it: with the volunteer who filed it."""

    volunteer: InspectorOut

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **_INSPECTION_EXAMPLE,
                "volunteer": {
                    "id": "0193a1f2-0000-7000-8000-00000000f001",
                    "number": "V2026-0000123",
                    "real_name": "陈志愿",
                },
            }
        }
    )
