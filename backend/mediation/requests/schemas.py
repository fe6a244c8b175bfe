"""Request and response bodies of the mediation request, invitations and the views.

`MediationOut` is the one read model of a mediation; `service.mediation_view` fills it as the
viewer may see it. No body ever carries a full phone number: a party sees only their own
masked phone, the mediator and the supervising admins every party's masked phone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.cases.schemas import AttachmentOut
from backend.core.text import Line, Text
from backend.mediation.auth import Viewer
from backend.mediation.models import (
    Consent,
    DisputeType,
    MediationState,
    PartyRole,
    Referral,
)
from backend.regions.schemas import LocationIn, RegionBrief

MAX_RESPONDENTS = 5


MAX_EVIDENCE = 9


SUMMARY_CHARS = 40


# Mainland mobile numbers.
MOBILE_PATTERN = r"^1[3-9]\d{9}$"


_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


_PARTY_ID = "0193a1f2-7c4d-7e8f-9a0b-00000000d001"


_DUE = "2026-11-25T09:30:00+08:00"


# --- the request ---------------------------------------------------------------------------


class RespondentIn(BaseModel):
    """The other side of the dispute, as the applicant knows them."""

    name: Line = Field(min_length=1, max_length=32, description="What the applicant calls them.")
    phone: str = Field(
        pattern=MOBILE_PATTERN,
        description="Mainland mobile number. Stored encrypted; never shown to the applicant "
        "again, and to the mediator only masked.",
    )


class MediationRequest(BaseModel):
    """A one-click mediation request: the dispute, where it is, and whom it is with."""

    dispute_type: DisputeType
    description: Text = Field(min_length=5, max_length=2000, description="What happened.")
    claim: Text = Field(min_length=1, max_length=1000, description="What the applicant asks for.")
    location: LocationIn
    address: Line | None = Field(
        None, max_length=200, description="What the applicant calls the place (optional)."
    )
    upload_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_EVIDENCE,
        description="Evidence: uploads (purpose `case_photo` or `case_video`) in display order.",
    )
    applicant_name: Line = Field(
        min_length=1,
        max_length=32,
        description="The applicant's own name, as the other side and the mediator see it. "
        "Their phone is the one bound to their account.",
    )
    preferred_studio_id: uuid.UUID | None = Field(
        None, description="A studio of the mediation supermarket the applicant prefers."
    )
    respondents: list[RespondentIn] = Field(min_length=1, max_length=MAX_RESPONDENTS)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "dispute_type": "neighbours",
                "description": "楼上邻居装修，每天晚上十点后仍在施工，噪音扰民，多次沟通无果",
                "claim": "请求对方晚上十点后停止施工",
                "location": {"lat": 23.13412, "lng": 113.33071, "coord": "gcj02"},
                "address": "岗顶某小区3栋",
                "upload_ids": [],
                "applicant_name": "张三",
                "preferred_studio_id": None,
                "respondents": [{"name": "李四", "phone": "13912345678"}],
            }
        }
    )


# --- advice --------------------------------------------------------------------------------


_ADVICE_EXAMPLE = {
    "route": "court",
    "name": "法院诉讼服务中心",
    "name_en": "Court litigation service center",
    "how": "可携带身份证和相关证据到当地法院诉讼服务中心咨询立案",
    "how_en": "Bring your ID and the evidence to the local court's litigation service center",
}


class RouteOut(BaseModel):
    """Where a dispute can go besides mediation (advice, or the referral at the end)."""

    route: Referral
    name: str = Field(description="Where to go, in Chinese.")
    name_en: str
    how: str = Field(description="What to do there, in Chinese.")
    how_en: str

    model_config = ConfigDict(json_schema_extra={"example": _ADVICE_EXAMPLE})


# --- the read model ------------------------------------------------------------------------


class PartyOut(BaseModel):
    id: uuid.UUID
    role: PartyRole
    name: str
    consent: Consent
    consent_at: datetime | None
    decline_reason: str | None
    phone: str | None = Field(
        description="Masked, e.g. `139****5678`. A party sees only their own; the mediator "
        "and supervisors see every party's. Never in full."
    )
    confirmed_version: int = Field(description="The agreement version this party confirmed.")
    is_you: bool


class AssignedMediator(BaseModel):
    display_name: str
    title: str | None
    studio_name: str | None


class AgreementSummary(BaseModel):
    text: str
    version: int
    judicial_confirmation: bool = Field(description="To be submitted for judicial confirmation.")


class TimelineEntryOut(BaseModel):
    seq: int
    action: str
    from_state: str | None
    to_state: str | None
    by: str = Field(
        description="Who acted, as a role: `applicant`, `respondent`, `mediator`, "
        "`supervisor` or `system`. Never a name or contact detail."
    )
    note: str | None
    data: dict[str, Any] = Field(
        description='What the step was, e.g. `{"step": "consent", "consent": "accepted"}`.'
    )
    at: datetime


_PARTIES_EXAMPLE = [
    {
        "id": "0193a1f2-7c4d-7e8f-9a0b-00000000d000",
        "role": "applicant",
        "name": "张三",
        "consent": "accepted",
        "consent_at": "2026-11-22T09:30:00+08:00",
        "decline_reason": None,
        "phone": "138****5678",
        "confirmed_version": 0,
        "is_you": True,
    },
    {
        "id": _PARTY_ID,
        "role": "respondent",
        "name": "李四",
        "consent": "pending",
        "consent_at": None,
        "decline_reason": None,
        "phone": None,
        "confirmed_version": 0,
        "is_you": False,
    },
]


_MEDIATION_EXAMPLE: dict[str, Any] = {
    "id": _ID,
    "number": "MED-20261122-000042",
    "state": "awaiting_consent",
    "viewer": "applicant",
    "dispute_type": "neighbours",
    "dispute_type_name": "邻里纠纷",
    "dispute_type_name_en": "Neighbour dispute",
    "description": "楼上邻居装修，每天晚上十点后仍在施工，噪音扰民，多次沟通无果",
    "claim": "请求对方晚上十点后停止施工",
    "address": "岗顶某小区3栋",
    "place": {"code": "gz.tianhe.shipai.gangding", "name": "岗顶社区", "name_en": "Gangding"},
    "grid": {"code": "gz.tianhe.shipai.gangding.g05", "name": "岗顶第5网格", "name_en": None},
    "evidence": [],
    "parties": _PARTIES_EXAMPLE,
    "mediator": None,
    "preferred_studio_name": None,
    "consent_due_at": _DUE,
    "due_at": "2026-12-22T09:30:00+08:00",
    "assigned_at": None,
    "escalated_at": None,
    "ended_at": None,
    "agreement": None,
    "referral": None,
    "outcome_note": None,
    "advice": [],
    "timeline": [
        {
            "seq": 1,
            "action": "submit",
            "from_state": None,
            "to_state": "submitted",
            "by": "applicant",
            "note": None,
            "data": {"channel": "miniapp"},
            "at": "2026-11-22T09:30:00+08:00",
        }
    ],
    "created_at": "2026-11-22T09:30:00+08:00",
    "updated_at": None,
}


class MediationOut(BaseModel):
    """A mediation as the viewer may see it (a party, its mediator, or a supervisor)."""

    id: uuid.UUID = Field(description="The case id.")
    number: str = Field(description="Human-readable number, e.g. `MED-20261122-000042`.")
    state: MediationState
    viewer: Viewer = Field(description="How the caller stands to this mediation.")
    dispute_type: DisputeType
    dispute_type_name: str
    dispute_type_name_en: str
    description: str
    claim: str = Field(description="What the applicant asks for.")
    address: str | None
    place: RegionBrief = Field(description="The community where the dispute is.")
    grid: RegionBrief
    evidence: list[AttachmentOut]
    parties: list[PartyOut]
    mediator: AssignedMediator | None = Field(description="Once assigned.")
    preferred_studio_name: str | None = Field(description="The studio the applicant chose.")
    consent_due_at: datetime = Field(description="Respondents answer the invitation by then.")
    due_at: datetime = Field(description="The time limit; past it, the admins above step in.")
    assigned_at: datetime | None
    escalated_at: datetime | None
    ended_at: datetime | None
    agreement: AgreementSummary | None
    referral: RouteOut | None = Field(description="Where a dispute without agreement goes.")
    outcome_note: str | None
    advice: list[RouteOut] = Field(
        description="Other routes, when the dispute was not mediated (declined or unanswered)."
    )
    timeline: list[TimelineEntryOut]
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(json_schema_extra={"example": _MEDIATION_EXAMPLE})


_INVITATION_EXAMPLE = {
    "party_id": _PARTY_ID,
    "name": "李四",
    "code": "K7QW3MZ9XC",
    "share_text": "【善治】张三邀请您参加“邻里纠纷”调解（案件编号 MED-20261122-000042）。"
    "请打开微信小程序“善治”，在“调解邀请”中输入邀请码 K7QW3MZ9XC，"
    "并于 2026-11-25 09:30 前答复是否同意调解。",
    "consent_due_at": _DUE,
}


class InvitationIssued(BaseModel):
    """An invitation code for one respondent, shown this once: forward it in WeChat."""

    party_id: uuid.UUID
    name: str = Field(description="The respondent it is for.")
    code: str = Field(description="10 characters; shown only now (a lost one is re-issued).")
    share_text: str = Field(description="A message to forward in WeChat, in Chinese.")
    consent_due_at: datetime

    model_config = ConfigDict(json_schema_extra={"example": _INVITATION_EXAMPLE})


class MediationCreated(MediationOut):
    """The new mediation, and each respondent's invitation code (this once)."""

    invitations: list[InvitationIssued] = Field(
        description="One per respondent, with its code; empty when answering a retry."
    )
    hint: str | None = Field(
        None,
        description="On a retry: the codes cannot be shown again; re-issue an invitation "
        "to get a new code.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {**_MEDIATION_EXAMPLE, "invitations": [_INVITATION_EXAMPLE], "hint": None}
        }
    )


# --- the invitation, as the invited party sees it ------------------------------------------


class InvitationOut(BaseModel):
    """What the invited respondent learns before answering: never the applicant's contact."""

    number: str
    state: MediationState
    dispute_type: DisputeType
    dispute_type_name: str
    dispute_type_name_en: str
    description: str
    claim: str
    applicant_name: str
    invited_as: str = Field(description="The name the applicant gave the respondent.")
    place: RegionBrief = Field(description="The community where the dispute is.")
    consent_due_at: datetime
    consent: Consent = Field(description="The respondent's own answer so far.")
    mediation_id: uuid.UUID | None = Field(
        description="Given once the caller accepted: open the mediation with it."
    )
    advice: list[RouteOut] = Field(description="Other routes, when it was not mediated.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "number": "MED-20261122-000042",
                "state": "awaiting_consent",
                "dispute_type": "neighbours",
                "dispute_type_name": "邻里纠纷",
                "dispute_type_name_en": "Neighbour dispute",
                "description": "楼上邻居装修，每天晚上十点后仍在施工，噪音扰民，多次沟通无果",
                "claim": "请求对方晚上十点后停止施工",
                "applicant_name": "张三",
                "invited_as": "李四",
                "place": {
                    "code": "gz.tianhe.shipai.gangding",
                    "name": "岗顶社区",
                    "name_en": "Gangding",
                },
                "consent_due_at": _DUE,
                "consent": "pending",
                "mediation_id": None,
                "advice": [],
            }
        }
    )


class DeclineIn(BaseModel):
    reason: Line | None = Field(
        None, max_length=200, description="Why (optional); the applicant and mediator see it."
    )

    model_config = ConfigDict(json_schema_extra={"example": {"reason": "已与对方私下协商解决"}})


class WithdrawIn(BaseModel):
    reason: Line | None = Field(None, max_length=200, description="Why (optional).")

    model_config = ConfigDict(json_schema_extra={"example": {"reason": "双方已自行和解"}})


# --- lists ---------------------------------------------------------------------------------


class MediationListItem(BaseModel):
    """A mediation in the caller's list: enough to show a row and open it."""

    id: uuid.UUID
    number: str
    state: MediationState
    role: PartyRole = Field(description="The caller's side in it.")
    dispute_type: DisputeType
    dispute_type_name: str
    dispute_type_name_en: str
    summary: str = Field(description=f"The first {SUMMARY_CHARS} characters of the description.")
    consent_due_at: datetime
    due_at: datetime
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _ID,
                "number": "MED-20261122-000042",
                "state": "assigned",
                "role": "applicant",
                "dispute_type": "neighbours",
                "dispute_type_name": "邻里纠纷",
                "dispute_type_name_en": "Neighbour dispute",
                "summary": "楼上邻居装修，每天晚上十点后仍在施工，噪音扰民",
                "consent_due_at": _DUE,
                "due_at": "2026-12-22T09:30:00+08:00",
                "ended_at": None,
                "created_at": "2026-11-22T09:30:00+08:00",
                "updated_at": "2026-11-23T10:00:00+08:00",
            }
        }
    )
