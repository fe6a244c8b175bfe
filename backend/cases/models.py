"""Cases (reports, complaints, mediation), their categories, timeline and attachments."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class CaseKind(StrEnum):
    report = "report"
    complaint = "complaint"
    mediation = "mediation"


# The prefix of a case number: RPT-20261122-000123.
NUMBER_PREFIX: dict[CaseKind, str] = {
    CaseKind.report: "RPT",
    CaseKind.complaint: "CMP",
    CaseKind.mediation: "MED",
}


class CaseState(StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    rejected = "rejected"
    reopened = "reopened"


OPEN_STATES = (
    CaseState.submitted,
    CaseState.accepted,
    CaseState.in_progress,
    CaseState.reopened,
)


class Channel(StrEnum):
    miniapp = "miniapp"
    phone = "phone"
    counter = "counter"
    inspection = "inspection"


class ComplaintTarget(StrEnum):
    department = "department"
    property_company = "property_company"
    business = "business"


class Category(SQLModel, table=True):
    """What a case is about, with its SLA and the unit that handles it by default."""

    __tablename__ = "case_category"
    __table_args__ = (UniqueConstraint("kind", "code"),)

    id: uuid.UUID = id_field()
    kind: CaseKind = Field(sa_type=String(16))
    code: str = Field(max_length=64)
    name: str = Field(max_length=64)
    name_en: str = Field(max_length=64)
    response_hours: int = Field(sa_column=Column(Integer, nullable=False))
    resolution_hours: int = Field(sa_column=Column(Integer, nullable=False))
    handling_unit: str = Field(max_length=64)
    handling_unit_en: str = Field(max_length=64)
    position: int = Field(default=0)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()


class Case(SQLModel, table=True):
    __tablename__ = "case_file"
    __table_args__ = (
        # A retried submission finds its case by the submitter's idempotency key.
        UniqueConstraint("submitted_by", "idempotency_key"),
        Index("ix_case_file_location_path", "location_path", postgresql_using="gist"),
        Index("ix_case_file_queue_path", "queue_path", postgresql_using="gist"),
        Index("ix_case_file_reporter_created", "reporter_id", "created_at"),
        # Possible duplicates: open cases of a category near a point (lat/lng box).
        Index(
            "ix_case_file_open_category_place",
            "category_id",
            "lat",
            "lng",
            postgresql_include=["created_at"],
            postgresql_where=text("state IN ('submitted','accepted','in_progress','reopened')"),
        ),
        # The worker's scans: overdue responses, overdue resolutions, unrated resolutions.
        Index(
            "ix_case_file_response_due_open",
            "response_due_at",
            postgresql_where=text("state IN ('submitted','reopened')"),
        ),
        Index(
            "ix_case_file_resolution_due_open",
            "resolution_due_at",
            postgresql_where=text("state IN ('accepted','in_progress')"),
        ),
        Index(
            "ix_case_file_resolved_unrated",
            "resolved_at",
            postgresql_where=text("state = 'resolved' AND rating IS NULL"),
        ),
        Index("ix_case_file_created_at", "created_at"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: uuid.UUID = id_field()
    number: str = Field(max_length=32, unique=True)
    kind: CaseKind = Field(sa_type=String(16))
    category_id: uuid.UUID = Field(foreign_key="case_category.id")
    description: str = Field(sa_column=Column(Text, nullable=False))
    state: CaseState = Field(default=CaseState.submitted, sa_type=String(16))
    priority: str = Field(default="normal", max_length=16)
    channel: Channel = Field(default=Channel.miniapp, sa_type=String(16))
    # The resident the case is for (null when staff registered it for an unknown caller).
    reporter_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    # Who submitted it: the resident, or the staff member who registered it.
    submitted_by: uuid.UUID = Field(foreign_key="user_account.id")
    anonymous: bool = Field(default=False)
    contact_phone_ciphertext: bytes | None = Field(default=None)
    contact_phone_masked: str | None = Field(default=None, max_length=16)
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    # Where it is (WGS-84) and which grid that is; the queue is where it is handled now
    # (the grid's community, or a parent region after escalation).
    lat: float = Field(sa_column=Column(Double, nullable=False))
    lng: float = Field(sa_column=Column(Double, nullable=False))
    address: str | None = Field(default=None, max_length=200)
    grid_id: uuid.UUID = Field(foreign_key="region.id")
    location_path: str = Field(sa_type=Ltree)
    queue_path: str = Field(sa_type=Ltree)
    escalation_level: int = Field(default=0)
    target_type: ComplaintTarget | None = Field(default=None, sa_type=String(32))
    target_name: str | None = Field(default=None, max_length=100)
    assignee_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", index=True)
    supporters: int = Field(default=0)
    version: int = Field(default=1)
    response_due_at: datetime = timestamp_field(nullable=False)
    resolution_due_at: datetime = timestamp_field(nullable=False)
    accepted_at: datetime | None = timestamp_field()
    resolved_at: datetime | None = timestamp_field()
    closed_at: datetime | None = timestamp_field()
    rejected_reason: str | None = Field(default=None, max_length=32)
    rating: int | None = Field(default=None)
    rating_comment: str | None = Field(default=None, max_length=500)
    reopen_count: int = Field(default=0)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class CaseEvent(SQLModel, table=True):
    """One step of a case's timeline. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="case_file.id")
    seq: int
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str | None = Field(default=None, max_length=16)
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    actor_role: str = Field(max_length=32)  # resident, a staff role, or system
    note: str | None = Field(default=None, sa_column=Column(Text))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()


class CaseAttachment(SQLModel, table=True):
    __tablename__ = "case_attachment"

    id: uuid.UUID = id_field()
    case_id: uuid.UUID = Field(foreign_key="case_file.id", index=True)
    event_id: uuid.UUID | None = Field(default=None, foreign_key="case_event.id")
    upload_id: uuid.UUID = Field(foreign_key="upload.id", unique=True)
    position: int = Field(default=0)


class CaseSupport(SQLModel, table=True):
    """A resident's "+1" on an open case instead of reporting it again."""

    __tablename__ = "case_support"

    case_id: uuid.UUID = Field(foreign_key="case_file.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", primary_key=True)
    created_at: datetime = created_at_field()
