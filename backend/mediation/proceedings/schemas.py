"""Request and response bodies of a mediation's proceedings: sessions and their minutes, the
agreement and its confirmations, and the outcome with its referral.

The same read models serve every viewer; `backend.mediation.proceedings` leaves out what a
viewer may not see (the minutes, for the parties). No model here carries a phone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from backend.core.text import Text
from backend.mediation.models import (
    MediationState,
    PartyRole,
    Referral,
    SessionMode,
    SessionState,
)
from backend.mediation.requests.schemas import RouteOut

MINUTES_CHARS = 20_000


AGREEMENT_CHARS = 20_000


PLACE_CHARS = 200


NOTE_CHARS = 1_000


MAX_ATTENDEES = 20


_MEDIATION = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


_SESSION = "0193a1f3-1a2b-7c3d-8e4f-5a6b7c8d9e0f"


_APPLICANT = "0193a1f2-7c4d-7e8f-9a0b-000000000001"


_RESPONDENT = "0193a1f2-7c4d-7e8f-9a0b-000000000002"


_AGREEMENT_TEXT = (
    "一、乙方自2026年12月1日起，每日22:00至次日8:00不进行装修施工；"
    "二、乙方于2026年12月15日前修复甲方天花板渗水处，费用由乙方承担。"
)


# --- sessions ------------------------------------------------------------------------------


class SessionCreate(BaseModel):
    """A session to schedule: when, and where (a place, or for an online session a meeting
    link or a note on how to join)."""

    starts_at: AwareDatetime = Field(description="When it starts (in the future).")
    mode: SessionMode = Field(description="`in_person` or `online`.")
    place: Text | None = Field(
        None,
        min_length=1,
        max_length=PLACE_CHARS,
        description="Required in person: where the parties meet. Online: the meeting link "
        "or how to join (optional).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "starts_at": "2026-12-03T14:30:00+08:00",
                "mode": "in_person",
                "place": "石牌街人民调解委员会 二楼调解室",
            }
        }
    )


class SessionUpdate(BaseModel):
    """What to change in a scheduled session; a field left out stays as it is. Send
    `state: "cancelled"` alone to cancel it."""

    # Optional but never null: the default is not validated, an explicit null is refused.
    starts_at: AwareDatetime = Field(
        None, validate_default=False, description="A new start (in the future)."
    )
    mode: SessionMode = Field(None, validate_default=False)
    place: Text | None = Field(
        None,
        min_length=1,
        max_length=PLACE_CHARS,
        description="A new place or meeting link; null clears it (online sessions only).",
    )
    state: Literal["cancelled"] = Field(
        None, validate_default=False, description="`cancelled` to call the session off."
    )

    model_config = ConfigDict(
        json_schema_extra={"example": {"starts_at": "2026-12-04T09:30:00+08:00"}}
    )


class SessionRecord(BaseModel):
    """What happened at a session: who of the parties came, and the minutes."""

    attended: list[uuid.UUID] = Field(
        max_length=MAX_ATTENDEES,
        description="Ids of the parties present (from the parties of this mediation); "
        "may be empty when nobody came.",
    )
    minutes: Text = Field(
        min_length=1,
        max_length=MINUTES_CHARS,
        description="The minutes: seen only by the mediator and the supervising admins.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "attended": [_APPLICANT, _RESPONDENT],
                "minutes": "双方陈述了装修噪音问题，乙方同意调整施工时间，甲方同意暂不追究赔偿。",
            }
        }
    )


class AttendeeOut(BaseModel):
    party_id: uuid.UUID
    role: PartyRole
    name: str


class SessionOut(BaseModel):
    """A session as the viewer may see it: the minutes only for the mediator and the
    supervising admins (null for the parties)."""

    id: uuid.UUID
    mediation_id: uuid.UUID
    starts_at: datetime
    mode: SessionMode
    place: str | None
    state: SessionState = Field(description="`scheduled`, `held` or `cancelled`.")
    attended: list[AttendeeOut] = Field(description="The parties present (once held).")
    minutes: str | None = Field(
        description="The private minutes: only for the mediator and supervising admins; "
        "always null for the parties."
    )
    created_at: datetime
    updated_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _SESSION,
                "mediation_id": _MEDIATION,
                "starts_at": "2026-12-03T14:30:00+08:00",
                "mode": "in_person",
                "place": "石牌街人民调解委员会 二楼调解室",
                "state": "held",
                "attended": [
                    {"party_id": _APPLICANT, "role": "applicant", "name": "张三"},
                    {"party_id": _RESPONDENT, "role": "respondent", "name": "李四"},
                ],
                "minutes": None,
                "created_at": "2026-11-28T10:02:11+08:00",
                "updated_at": "2026-12-03T16:10:45+08:00",
            }
        }
    )


# --- the agreement and the outcome ---------------------------------------------------------


class AgreementIn(BaseModel):
    """The agreement text the mediator puts to the parties."""

    text: Text = Field(min_length=10, max_length=AGREEMENT_CHARS)
    judicial_confirmation: bool = Field(
        False, description="The parties will apply to a court to confirm it (司法确认)."
    )

    model_config = ConfigDict(
        json_schema_extra={"example": {"text": _AGREEMENT_TEXT, "judicial_confirmation": True}}
    )


class ConfirmIn(BaseModel):
    version: int = Field(
        ge=1,
        le=2_147_483_647,
        description="The agreement version the party read and confirms.",
    )

    model_config = ConfigDict(json_schema_extra={"example": {"version": 2}})


class NoAgreementIn(BaseModel):
    """Mediation failed: where the parties may turn next."""

    referral: Referral = Field(description="Where the dispute is referred.")
    note: Text | None = Field(
        None,
        max_length=NOTE_CHARS,
        description="The mediator's words to the parties (shown to them).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "referral": "labour_arbitration",
                "note": "双方对欠薪数额分歧较大，建议向天河区劳动人事争议仲裁委员会申请仲裁。",
            }
        }
    )


class ConfirmationOut(BaseModel):
    party_id: uuid.UUID
    role: PartyRole
    name: str
    confirmed: bool = Field(description="Confirmed the current version.")
    confirmed_at: datetime | None = Field(description="When (null unless `confirmed`).")


class AgreementOut(BaseModel):
    version: int = Field(description="Bumped on every change of the text.")
    text: str
    judicial_confirmation: bool
    confirmations: list[ConfirmationOut]
    confirmed_by_all: bool


class OutcomeOut(BaseModel):
    """Where the mediation stands: the agreement on the table (or reached), or the
    referral when it ended without one."""

    mediation_id: uuid.UUID
    state: MediationState
    agreement: AgreementOut | None = Field(description="Null until one is proposed.")
    awaiting_your_confirmation: bool = Field(
        description="The caller is a party who has not confirmed the current version."
    )
    referral: RouteOut | None
    note: str | None = Field(description="The mediator's note on the outcome.")
    ended_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "mediation_id": _MEDIATION,
                "state": "agreement_pending",
                "agreement": {
                    "version": 2,
                    "text": _AGREEMENT_TEXT,
                    "judicial_confirmation": True,
                    "confirmations": [
                        {
                            "party_id": _APPLICANT,
                            "role": "applicant",
                            "name": "张三",
                            "confirmed": True,
                            "confirmed_at": "2026-12-05T09:12:03+08:00",
                        },
                        {
                            "party_id": _RESPONDENT,
                            "role": "respondent",
                            "name": "李四",
                            "confirmed": False,
                            "confirmed_at": None,
                        },
                    ],
                    "confirmed_by_all": False,
                },
                "awaiting_your_confirmation": True,
                "referral": None,
                "note": None,
                "ended_at": None,
            }
        }
    )
