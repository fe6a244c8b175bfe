"""Uploads: objects a phone posts straight to S3 under a presigned policy."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, String, text
from sqlmodel import Field, SQLModel

from backend.core.models import created_at_field, id_field, timestamp_field


class UploadPurpose(StrEnum):
    case_photo = "case_photo"
    case_video = "case_video"
    resolution_photo = "resolution_photo"
    evidence = "evidence"
    reward_photo = "reward_photo"  # a reward in the points catalog


class UploadState(StrEnum):
    pending = "pending"  # policy handed out; the object may or may not be there yet
    attached = "attached"  # copied to `stored_key`, verified, named by a case or event
    deleted = "deleted"  # never attached; the object was removed by the cleanup job


class Upload(SQLModel, table=True):
    __tablename__ = "upload"
    __table_args__ = (
        Index(
            "ix_upload_pending_created",
            "created_at",
            postgresql_where=text("state = 'pending'"),
        ),
        # Attached uploads whose staging object the cleanup job has still to remove.
        Index(
            "ix_upload_staging_left",
            "expires_at",
            postgresql_where=text("state = 'attached' AND staging_removed_at IS NULL"),
        ),
    )

    id: uuid.UUID = id_field()
    owner_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    purpose: UploadPurpose = Field(sa_type=String(32))
    # Where the phone posts the file: writable by the POST policy until `expires_at`.
    object_key: str = Field(max_length=255, unique=True)
    # The server's copy made on claim, the one checked and the only one ever served: no
    # policy can write it, so what staff see is what was verified.
    stored_key: str | None = Field(default=None, max_length=255, unique=True)
    content_type: str = Field(max_length=64)
    declared_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    size: int | None = Field(default=None, sa_column=Column(BigInteger))  # as stored in S3
    state: UploadState = Field(default=UploadState.pending, sa_type=String(16))
    created_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field(nullable=False)  # the POST policy's expiry
    attached_at: datetime | None = timestamp_field()
    deleted_at: datetime | None = timestamp_field()
    # When the cleanup job removed the staging object of an attached upload (after its
    # policy expired, so nothing can post it again).
    staging_removed_at: datetime | None = timestamp_field()
