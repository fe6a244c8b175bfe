"""What mediation adds to a case: the dispute, its parties and their consent, the mediator
from the mediation supermarket, the sessions, and the outcome.

A mediation is a case of kind `mediation` (number `MED-...`, timeline, location, category =
the dispute type) plus one `mediation` row keyed by the case id. Confidential by rule: only
its parties, its mediator and admins of regions above it may see it, and the parties'
contact details are never shown to the other side (phones are stored encrypted, found by a
keyed hash, shown masked to the mediator only).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class DisputeType(StrEnum):
    """Also the code of the case category (kind `mediation`) the dispute is filed under."""

    neighbours = "neighbours"
    family = "family"
    labour_wages = "labour_wages"
    property_management = "property_management"
    landlord_tenant = "landlord_tenant"
    consumer = "consumer"
    other = "other"


class Specialty(StrEnum):
    legal = "legal"
    labour = "labour"
    family = "family"
    property = "property"
    neighbourhood = "neighbourhood"


# The specialty a dispute needs; the supermarket matches mediators and studios on it.
SPECIALTY_FOR: dict[DisputeType, Specialty] = {
    DisputeType.neighbours: Specialty.neighbourhood,
    DisputeType.family: Specialty.family,
    DisputeType.labour_wages: Specialty.labour,
    DisputeType.property_management: Specialty.property,
    DisputeType.landlord_tenant: Specialty.property,
    DisputeType.consumer: Specialty.legal,
    DisputeType.other: Specialty.legal,
}


class Studio(SQLModel, table=True):
    """A mediation studio of the supermarket: its specialties and the area it serves."""

    __tablename__ = "mediation_studio"
    __table_args__ = (
        UniqueConstraint("region_id", "name", name="uq_mediation_studio_region_name"),
        Index("ix_mediation_studio_region_path", "region_path", postgresql_using="gist"),
    )

    id: uuid.UUID = id_field()
    name: str = Field(max_length=100)
    name_en: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    specialties: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    # The area served: cases located within it.
    region_id: uuid.UUID = Field(foreign_key="region.id")
    region_path: str = Field(sa_type=Ltree)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class Mediator(SQLModel, table=True):
    """A mediator's entry in the supermarket (the user also holds the `mediator` role)."""

    __tablename__ = "mediator"
    __table_args__ = (
        CheckConstraint("max_active > 0", name="max_active_positive"),
        Index("ix_mediator_region_path", "region_path", postgresql_using="gist"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", unique=True)
    studio_id: uuid.UUID | None = Field(default=None, foreign_key="mediation_studio.id", index=True)
    display_name: str = Field(max_length=32)
    title: str | None = Field(default=None, max_length=64)  # e.g. 人民调解员, 律师
    specialties: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    region_id: uuid.UUID = Field(foreign_key="region.id")
    region_path: str = Field(sa_type=Ltree)
    # Cases at once before the automatic assignment passes them by.
    max_active: int = Field(default=20, sa_column=Column(Integer, nullable=False))
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class MediationState(StrEnum):
    awaiting_consent = "awaiting_consent"  # respondents invited, not all accepted yet
    awaiting_mediator = "awaiting_mediator"  # all consented, no mediator fits yet
    assigned = "assigned"  # a mediator has it
    in_session = "in_session"  # a session has been scheduled
    agreement_pending = "agreement_pending"  # an agreement text waits for every party
    concluded = "concluded"  # agreement confirmed by all parties
    no_agreement = "no_agreement"  # ended without agreement, with a referral
    withdrawn = "withdrawn"  # by the applicant
    not_mediated = "not_mediated"  # a respondent declined, or consent never came


OPEN_MEDIATION_STATES = (
    MediationState.awaiting_consent,
    MediationState.awaiting_mediator,
    MediationState.assigned,
    MediationState.in_session,
    MediationState.agreement_pending,
)
# States in which a mediator carries the case (its load).
CARRIED_STATES = (
    MediationState.assigned,
    MediationState.in_session,
    MediationState.agreement_pending,
)


class Referral(StrEnum):
    """Where a dispute goes when mediation does not settle it."""

    court = "court"  # 法院诉讼服务中心
    labour_arbitration = "labour_arbitration"  # 劳动人事争议仲裁委员会
    labour_inspection = "labour_inspection"  # 劳动保障监察
    consumer_association = "consumer_association"  # 消费者协会 / 12315
    housing_authority = "housing_authority"  # 住建部门（物业监管）
    legal_aid = "legal_aid"  # 法律援助中心
    other = "other"


class Mediation(SQLModel, table=True):
    __tablename__ = "mediation"
    __table_args__ = (
        CheckConstraint(
            "state IN ('awaiting_consent', 'awaiting_mediator', 'assigned', 'in_session', "
            "'agreement_pending', 'concluded', 'no_agreement', 'withdrawn', 'not_mediated')",
            name="state_known",
        ),
        CheckConstraint(
            "state NOT IN ('assigned', 'in_session', 'agreement_pending', 'concluded') "
            "OR mediator_id IS NOT NULL",
            name="carried_has_mediator",
        ),
        CheckConstraint("agreement_version >= 0", name="agreement_version_not_negative"),
        Index("ix_mediation_mediator_state", "mediator_id", "state"),
        Index("ix_mediation_state_consent_due", "state", "consent_due_at"),
        Index("ix_mediation_state_due", "state", "due_at"),
        Index("ix_mediation_region_path", "region_path", postgresql_using="gist"),
    )

    case_id: uuid.UUID = Field(foreign_key="case_file.id", primary_key=True)
    dispute_type: DisputeType = Field(sa_type=String(32))
    # What the applicant asks for (the description is on the case).
    claim: str = Field(sa_column=Column(Text, nullable=False))
    state: MediationState = Field(sa_type=String(24))
    applicant_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    # Where the dispute is (the case's grid path), copied for scoping without a join.
    region_path: str = Field(sa_type=Ltree)
    # The applicant's choice from the studios that fit, if any.
    preferred_studio_id: uuid.UUID | None = Field(default=None, foreign_key="mediation_studio.id")
    studio_id: uuid.UUID | None = Field(default=None, foreign_key="mediation_studio.id")
    mediator_id: uuid.UUID | None = Field(default=None, foreign_key="mediator.id")
    assigned_at: datetime | None = timestamp_field()
    consent_due_at: datetime = timestamp_field(nullable=False)
    # The time limit of the mediation; passed while open, it is escalated.
    due_at: datetime = timestamp_field(nullable=False)
    escalated_at: datetime | None = timestamp_field()
    # The agreement on the table: each change bumps the version, and confirmations count
    # only for the version a party saw.
    agreement_text: str | None = Field(default=None, sa_column=Column(Text))
    agreement_version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    judicial_confirmation: bool = Field(default=False)
    referral: Referral | None = Field(default=None, sa_type=String(32))
    outcome_note: str | None = Field(default=None, sa_column=Column(Text))
    ended_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))


class PartyRole(StrEnum):
    applicant = "applicant"
    respondent = "respondent"


class Consent(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"


class MediationParty(SQLModel, table=True):
    """A side of the dispute. The applicant is a user from the start; a respondent is named
    by the applicant and becomes a user by redeeming the invitation."""

    __tablename__ = "mediation_party"
    __table_args__ = (
        CheckConstraint("role IN ('applicant', 'respondent')", name="role_known"),
        CheckConstraint(
            "consent IN ('pending', 'accepted', 'declined', 'expired')", name="consent_known"
        ),
        UniqueConstraint("case_id", "user_id", name="uq_mediation_party_case_user"),
        Index("ix_mediation_party_user", "user_id"),
    )

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="mediation.case_id", index=True)
    role: PartyRole = Field(sa_type=String(16))
    user_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    name: str = Field(max_length=32)
    phone_ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    phone_hash: str | None = Field(default=None, max_length=64)
    phone_masked: str | None = Field(default=None, max_length=16)
    # The invitation: only its hash is kept; the code is shown to the applicant once
    # (and again on request, re-issued) to forward in WeChat.
    invitation_hash: str | None = Field(default=None, max_length=64, unique=True)
    invited_at: datetime | None = timestamp_field()
    consent: Consent = Field(sa_type=String(16))
    consent_at: datetime | None = timestamp_field()
    decline_reason: str | None = Field(default=None, max_length=200)
    # The agreement version this party confirmed (0: none).
    confirmed_version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    confirmed_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class SessionMode(StrEnum):
    in_person = "in_person"
    online = "online"


class SessionState(StrEnum):
    scheduled = "scheduled"
    held = "held"
    cancelled = "cancelled"


class MediationSession(SQLModel, table=True):
    """A scheduled meeting. Its minutes are private: the mediator and admins above only."""

    __tablename__ = "mediation_session"
    __table_args__ = (
        CheckConstraint("mode IN ('in_person', 'online')", name="mode_known"),
        CheckConstraint("state IN ('scheduled', 'held', 'cancelled')", name="state_known"),
        Index("ix_mediation_session_case_starts", "case_id", "starts_at"),
    )

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="mediation.case_id")
    starts_at: datetime = timestamp_field(nullable=False)
    mode: SessionMode = Field(sa_type=String(16))
    place: str | None = Field(default=None, max_length=200)
    state: SessionState = Field(sa_type=String(16))
    # Party ids present, recorded after the session.
    attended: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    minutes: str | None = Field(default=None, sa_column=Column(Text))
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
