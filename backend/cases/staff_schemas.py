"""Request and response bodies of the staff workbench: the queue, actions, registration, figures."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from backend.cases.models import CaseKind, CaseState, Channel
from backend.cases.schemas import ComplaintTargetIn, Text
from backend.regions.models import RegionLevel
from backend.regions.schemas import LocationIn

_ID = "01937a2e-4b6c-7d8e-9f00-112233445566"
_CATEGORY_EXAMPLE = {
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
    "category": _CATEGORY_EXAMPLE,
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
        "resident who bound this number, and is stored encrypted.",
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


class Rate(BaseModel):
    rate: float | None = Field(
        description="numerator / denominator, 0..1 rounded to 4 decimals; null when the "
        "denominator is 0."
    )
    numerator: int
    denominator: int


class ChannelCounts(BaseModel):
    miniapp: int = 0
    phone: int = 0
    counter: int = 0
    inspection: int = 0


class MediationStateCounts(BaseModel):
    """Mediations created in the period, by the state they are in now."""

    open: int = Field(
        description="Still under way: awaiting consent, awaiting a mediator, assigned, in "
        "session, or with an agreement waiting for every party's confirmation."
    )
    concluded: int = Field(description="Ended with an agreement every party confirmed.")
    no_agreement: int = Field(description="Ended without agreement, referred elsewhere.")
    withdrawn: int = Field(description="Withdrawn by the applicant.")
    not_mediated: int = Field(
        description="Ended before mediation: a respondent declined, or consent never came."
    )


class MediationFigures(BaseModel):
    """Mediation in one region, in aggregate only: no case, party or mediator is named.

    Counts the mediations whose dispute is located in the region and whose case was created
    in the period [from, to); states, consents and outcomes are as they stand now."""

    cases: int = Field(description="Mediations created in the period.")
    consent_rate: Rate = Field(
        description="Numerator: mediations in which every respondent accepted. Denominator: "
        "mediations whose consent is decided: every respondent accepted, or one declined or "
        "let the invitation expire (those end as not mediated). Mediations still waiting for "
        "an answer, and those withdrawn before every answer came, are left out."
    )
    success_rate: Rate = Field(
        description="Numerator: mediations concluded with an agreement. Denominator: "
        "mediations that ended after mediation: concluded or no agreement. Withdrawn and not "
        "mediated ones are left out (no mediation outcome), and so are open ones."
    )
    average_days_to_conclude: float | None = Field(
        description="Concluded mediations: the mean time from the case's creation to its "
        "end, in days, to one decimal; null when none concluded."
    )
    by_state: MediationStateCounts
    escalated: int = Field(
        description="Mediations escalated because their time limit passed while open, "
        "whatever their state now."
    )


class RegionFigures(BaseModel):
    """Figures of one region for the period [from, to): the report and complaint cases
    located in it and created in the period, and the same period's mediations in `mediation`.
    "Now" is the time of the request."""

    code: str
    name: str
    name_en: str | None
    level: RegionLevel
    cases: int = Field(
        description="Reports and complaints created in the period (mediations are counted "
        "apart, in `mediation`)."
    )
    response_rate: Rate = Field(
        description="Numerator: cases whose current round was accepted by its response "
        "deadline. Denominator: cases whose current round was accepted (any state but "
        "submitted and reopened, with an acceptance time), plus cases waiting for acceptance "
        "(submitted or reopened) whose response deadline has passed by now. A reopened case "
        "counts by its new round (it gets fresh deadlines); cases rejected without ever being "
        "accepted are left out."
    )
    on_time_resolution_rate: Rate = Field(
        description="Numerator: cases whose latest resolution came by their resolution "
        "deadline. Denominator: cases with a resolution standing (resolved or closed after "
        "one), plus open cases (submitted, accepted, in progress, reopened) without one whose "
        "resolution deadline has passed by now."
    )
    satisfaction_rate: Rate = Field(
        description="Numerator: cases rated 4 or 5. Denominator: cases with a rating."
    )
    reopen_rate: Rate = Field(
        description="Numerator: cases reopened at least once. Denominator: cases resolved at "
        "least once (resolved now, or reopened since)."
    )
    overdue_now: int = Field(
        description="Cases open now whose current deadline has passed: the response deadline "
        "while submitted or reopened, the resolution deadline while accepted or in progress."
    )
    by_channel: ChannelCounts = Field(description="Cases created in the period, per channel.")
    mediation: MediationFigures


_FIGURES_EXAMPLE = {
    "code": "gz.tianhe.shipai.gangding",
    "name": "岗顶社区",
    "name_en": "Gangding Community",
    "level": "community",
    "cases": 12,
    "response_rate": {"rate": 0.9, "numerator": 9, "denominator": 10},
    "on_time_resolution_rate": {"rate": 0.8571, "numerator": 6, "denominator": 7},
    "satisfaction_rate": {"rate": 0.75, "numerator": 3, "denominator": 4},
    "reopen_rate": {"rate": 0.1667, "numerator": 1, "denominator": 6},
    "overdue_now": 1,
    "by_channel": {"miniapp": 9, "phone": 2, "counter": 1, "inspection": 0},
    "mediation": {
        "cases": 8,
        "consent_rate": {"rate": 0.7143, "numerator": 5, "denominator": 7},
        "success_rate": {"rate": 0.6667, "numerator": 2, "denominator": 3},
        "average_days_to_conclude": 2.3,
        "by_state": {
            "open": 2,
            "concluded": 2,
            "no_agreement": 1,
            "withdrawn": 1,
            "not_mediated": 2,
        },
        "escalated": 1,
    },
}


class CaseStats(BaseModel):
    """A region's figures and those of each region directly below it."""

    period_from: datetime = Field(description="Start of the period (included).")
    period_to: datetime = Field(description="End of the period (excluded).")
    computed_at: datetime = Field(
        description="The “now” of the overdue figures and of the mediation states."
    )
    region: RegionFigures
    children: list[RegionFigures] = Field(
        description="Every region directly below, ordered by code; zero figures when it has "
        "no cases."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "period_from": "2026-11-01T00:00:00+08:00",
                "period_to": "2026-12-01T00:00:00+08:00",
                "computed_at": "2026-11-27T15:00:00+08:00",
                "region": {**_FIGURES_EXAMPLE, "code": "gz.tianhe.shipai", "level": "street"},
                "children": [_FIGURES_EXAMPLE],
            }
        }
    )
