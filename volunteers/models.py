"""Volunteers, teams, activities, enrolments, attendance and inspections.

A volunteer belongs to a home community and is approved by its staff; activities are
organised by a community (optionally for one of its teams) and everything about them is
scoped by the organiser's region path, so staff see and act only within their regions.
Attendance is one row per volunteer and activity: the check-in, the check-out, the signals
judged on the way (flags), and the outcome. Verified attendance adds service minutes and pays
points once through the ledger (key `attendance:<id>`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class VolunteerState(StrEnum):
    pending = "pending"  # signed up, waiting for the home community's staff
    approved = "approved"  # may enrol; has a volunteer number
    rejected = "rejected"  # with a reason; may sign up again
    suspended = "suspended"  # approved once, no longer allowed to enrol


class Volunteer(SQLModel, table=True):
    """A user's volunteer registration: one per user, in one home community."""

    __tablename__ = "volunteer"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'suspended')", name="state_known"
        ),
        CheckConstraint("service_minutes >= 0", name="service_minutes_not_negative"),
        CheckConstraint("state <> 'approved' OR number IS NOT NULL", name="approved_has_number"),
        Index("ix_volunteer_community_path", "community_path", postgresql_using="gist"),
        Index("ix_volunteer_state_created", "state", "created_at"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", unique=True)
    # Issued on approval, e.g. `V2026-0000123`; never reused.
    number: str | None = Field(default=None, max_length=32, unique=True)
    real_name: str = Field(max_length=32)
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    # Free-form slots such as {"weekday_evening": true, "weekend": true} or a note.
    availability: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False)
    )
    community_id: uuid.UUID = Field(foreign_key="region.id")
    community_path: str = Field(sa_type=Ltree)
    state: VolunteerState = Field(sa_type=String(16))
    review_reason: str | None = Field(default=None, max_length=200)
    reviewed_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    reviewed_at: datetime | None = timestamp_field()
    # Verified service time, kept beside the attendance that made it (same transaction).
    service_minutes: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    activities_attended: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class Team(SQLModel, table=True):
    """A "group defense and co-governance" team of one community, with a leader."""

    __tablename__ = "volunteer_team"
    __table_args__ = (
        UniqueConstraint("community_id", "name", name="uq_volunteer_team_community_name"),
        Index("ix_volunteer_team_community_path", "community_path", postgresql_using="gist"),
    )

    id: uuid.UUID = id_field()
    community_id: uuid.UUID = Field(foreign_key="region.id")
    community_path: str = Field(sa_type=Ltree)
    name: str = Field(max_length=64)
    description: str | None = Field(default=None, max_length=500)
    leader_id: uuid.UUID | None = Field(default=None, foreign_key="volunteer.id")
    active: bool = Field(default=True)
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class TeamMember(SQLModel, table=True):
    __tablename__ = "volunteer_team_member"

    team_id: uuid.UUID = Field(foreign_key="volunteer_team.id", primary_key=True)
    volunteer_id: uuid.UUID = Field(foreign_key="volunteer.id", primary_key=True, index=True)
    joined_at: datetime = created_at_field()


class ActivityType(StrEnum):
    """Also the ledger's earning-rule `activity_type`: the reward is the rule's points."""

    public_security_patrol = "public_security_patrol"
    rental_inspection = "rental_inspection"
    fire_safety_check = "fire_safety_check"
    community_service = "community_service"
    civilised_traffic = "civilised_traffic"
    elderly_care = "elderly_care"


# Activity types whose attendance carries an inspection checklist.
INSPECTION_TYPES: frozenset[ActivityType] = frozenset(
    {ActivityType.rental_inspection, ActivityType.fire_safety_check}
)


class ActivityState(StrEnum):
    draft = "draft"
    published = "published"
    cancelled = "cancelled"
    finished = "finished"


class Activity(SQLModel, table=True):
    """Something volunteers do at a place in a time window, organised by a community."""

    __tablename__ = "volunteer_activity"
    __table_args__ = (
        CheckConstraint(
            "state IN ('draft', 'published', 'cancelled', 'finished')", name="state_known"
        ),
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("enrolled >= 0 AND enrolled <= capacity", name="enrolled_within_capacity"),
        CheckConstraint("waitlisted >= 0", name="waitlisted_not_negative"),
        # A geofence is a radius around the place, or a polygon, never neither.
        CheckConstraint(
            "(fence_radius_m IS NOT NULL) <> (fence_polygon IS NOT NULL)", name="one_fence"
        ),
        CheckConstraint("fence_radius_m IS NULL OR fence_radius_m > 0", name="radius_positive"),
        # A retried "create" from a phone finds the draft it made.
        UniqueConstraint(
            "created_by", "idempotency_key", name="uq_volunteer_activity_created_by_key"
        ),
        Index("ix_volunteer_activity_region_path", "region_path", postgresql_using="gist"),
        Index("ix_volunteer_activity_state_starts", "state", "starts_at"),
    )

    id: uuid.UUID = id_field()
    type: ActivityType = Field(sa_type=String(32))
    title: str = Field(max_length=64)
    description: str | None = Field(default=None, sa_column=Column(Text))
    # The organising community: it records the service and certifies it.
    region_id: uuid.UUID = Field(foreign_key="region.id")
    region_path: str = Field(sa_type=Ltree)
    # Only the team's members may enrol when set.
    team_id: uuid.UUID | None = Field(default=None, foreign_key="volunteer_team.id", index=True)
    place_name: str = Field(max_length=100)
    address: str | None = Field(default=None, max_length=200)
    # The place (WGS-84), the centre of a radius fence.
    lat: float = Field(sa_column=Column(Double, nullable=False))
    lng: float = Field(sa_column=Column(Double, nullable=False))
    fence_radius_m: int | None = Field(default=None, sa_column=Column(Integer))
    # GeoJSON Polygon in WGS-84.
    fence_polygon: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True))
    )
    starts_at: datetime = timestamp_field(nullable=False)
    ends_at: datetime = timestamp_field(nullable=False)
    capacity: int = Field(sa_column=Column(Integer, nullable=False))
    # Counters kept in the same statement as the enrolment rows they count.
    enrolled: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    waitlisted: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    state: ActivityState = Field(sa_type=String(16))
    cancel_reason: str | None = Field(default=None, max_length=200)
    # The TOTP secret behind the rotating check-in code; never leaves the server.
    code_secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_by: uuid.UUID = Field(foreign_key="user_account.id")
    idempotency_key: str | None = Field(default=None, max_length=128)
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
    published_at: datetime | None = timestamp_field()
    cancelled_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()


class EnrolmentState(StrEnum):
    enrolled = "enrolled"  # holds a place
    waitlisted = "waitlisted"  # waits for a place, in `queued_at` order
    cancelled = "cancelled"  # by the volunteer, or because the activity was cancelled
    no_show = "no_show"  # held a place and never checked in


class Enrolment(SQLModel, table=True):
    """A volunteer's place (or place in the queue) for an activity: one row per pair."""

    __tablename__ = "volunteer_enrolment"
    __table_args__ = (
        CheckConstraint(
            "state IN ('enrolled', 'waitlisted', 'cancelled', 'no_show')", name="state_known"
        ),
        UniqueConstraint(
            "activity_id", "volunteer_id", name="uq_volunteer_enrolment_activity_volunteer"
        ),
        # The waitlist, in order.
        Index(
            "ix_volunteer_enrolment_waitlist",
            "activity_id",
            "queued_at",
            postgresql_where=text("state = 'waitlisted'"),
        ),
        Index("ix_volunteer_enrolment_volunteer_created", "volunteer_id", "created_at"),
    )

    id: uuid.UUID = id_field()
    activity_id: uuid.UUID = Field(foreign_key="volunteer_activity.id")
    volunteer_id: uuid.UUID = Field(foreign_key="volunteer.id")
    state: EnrolmentState = Field(sa_type=String(16))
    # When the volunteer (last) joined: the waitlist is served in this order.
    queued_at: datetime = timestamp_field(nullable=False)
    promoted_at: datetime | None = timestamp_field()
    cancelled_at: datetime | None = timestamp_field()
    # `volunteer`, `activity_cancelled`, `activity_finished` (a waitlisted place never came).
    cancelled_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class AttendanceState(StrEnum):
    checked_in = "checked_in"  # on site, not yet out
    review = "review"  # out, with a doubtful signal: waits for staff
    verified = "verified"  # service minutes credited and points paid (once)
    rejected = "rejected"  # staff found it not genuine


class Attendance(SQLModel, table=True):
    """A volunteer at an activity: check-in, check-out, the signals judged, the outcome."""

    __tablename__ = "volunteer_attendance"
    __table_args__ = (
        CheckConstraint(
            "state IN ('checked_in', 'review', 'verified', 'rejected')", name="state_known"
        ),
        CheckConstraint("minutes IS NULL OR minutes >= 0", name="minutes_not_negative"),
        # Checking in twice is one check-in.
        UniqueConstraint(
            "activity_id", "volunteer_id", name="uq_volunteer_attendance_activity_volunteer"
        ),
        Index("ix_volunteer_attendance_region_state", "region_path", postgresql_using="gist"),
        Index("ix_volunteer_attendance_state_checked_in", "state", "checked_in_at"),
        Index("ix_volunteer_attendance_volunteer_checked_in", "volunteer_id", "checked_in_at"),
        # The leaderboard: verified minutes per community per month.
        Index(
            "ix_volunteer_attendance_verified",
            "verified_at",
            postgresql_where=text("state = 'verified'"),
        ),
    )

    id: uuid.UUID = id_field()
    activity_id: uuid.UUID = Field(foreign_key="volunteer_activity.id")
    volunteer_id: uuid.UUID = Field(foreign_key="volunteer.id")
    enrolment_id: uuid.UUID = Field(foreign_key="volunteer_enrolment.id", unique=True)
    # The organising community's path, copied so review queues filter without a join.
    region_path: str = Field(sa_type=Ltree)
    state: AttendanceState = Field(sa_type=String(16))
    # Doubtful signals: [{"code": "poor_accuracy", "at": "check_in", "detail": {...}}].
    flags: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False)
    )
    checked_in_at: datetime = timestamp_field(nullable=False)
    check_in_lat: float = Field(sa_column=Column(Double, nullable=False))
    check_in_lng: float = Field(sa_column=Column(Double, nullable=False))
    check_in_accuracy_m: float = Field(sa_column=Column(Double, nullable=False))
    checked_out_at: datetime | None = timestamp_field()
    check_out_lat: float | None = Field(default=None, sa_column=Column(Double))
    check_out_lng: float | None = Field(default=None, sa_column=Column(Double))
    check_out_accuracy_m: float | None = Field(default=None, sa_column=Column(Double))
    # Service minutes credited (inside the activity's window), set when verified.
    minutes: int | None = Field(default=None, sa_column=Column(Integer))
    points: int | None = Field(default=None, sa_column=Column(Integer))
    points_tx_id: uuid.UUID | None = Field(default=None, foreign_key="points_transaction.id")
    verified_at: datetime | None = timestamp_field()
    reviewed_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    reviewed_at: datetime | None = timestamp_field()
    review_note: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class TrackPoint(SQLModel, table=True):
    """One timed point of a patrol's track (WGS-84), as the phone reported it."""

    __tablename__ = "volunteer_track_point"

    attendance_id: uuid.UUID = Field(foreign_key="volunteer_attendance.id", primary_key=True)
    # One point per instant: a track sent again adds nothing (ON CONFLICT DO NOTHING).
    recorded_at: datetime = Field(
        sa_type=DateTime(timezone=True),
        primary_key=True,
    )
    lat: float = Field(sa_column=Column(Double, nullable=False))
    lng: float = Field(sa_column=Column(Double, nullable=False))
    accuracy_m: float | None = Field(default=None, sa_column=Column(Double))
    received_at: datetime = created_at_field()


class Inspection(SQLModel, table=True):
    """A house inspected during an inspection activity, with its checklist results."""

    __tablename__ = "volunteer_inspection"
    __table_args__ = (
        UniqueConstraint(
            "volunteer_id", "idempotency_key", name="uq_volunteer_inspection_volunteer_key"
        ),
        Index("ix_volunteer_inspection_activity", "activity_id", "created_at"),
        Index("ix_volunteer_inspection_region_path", "region_path", postgresql_using="gist"),
    )

    id: uuid.UUID = id_field()
    activity_id: uuid.UUID = Field(foreign_key="volunteer_activity.id")
    attendance_id: uuid.UUID = Field(foreign_key="volunteer_attendance.id", index=True)
    volunteer_id: uuid.UUID = Field(foreign_key="volunteer.id")
    region_path: str = Field(sa_type=Ltree)
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    address: str = Field(max_length=200)
    lat: float = Field(sa_column=Column(Double, nullable=False))
    lng: float = Field(sa_column=Column(Double, nullable=False))
    # [{"item": "fire_extinguisher", "ok": false, "note": "...", "case_id": "..."}]
    results: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_at_field()


class InspectionFinding(SQLModel, table=True):
    """A failed checklist item that became a report in the case engine."""

    __tablename__ = "volunteer_inspection_finding"

    inspection_id: uuid.UUID = Field(foreign_key="volunteer_inspection.id", primary_key=True)
    item: str = Field(sa_type=String(48), primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="case_file.id", unique=True)
    created_at: datetime = created_at_field()
