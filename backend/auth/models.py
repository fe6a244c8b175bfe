"""Users (one per WeChat openid), refresh-token families and roles granted on regions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, String, text
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: uuid.UUID = id_field()
    openid: str = Field(max_length=64, unique=True)
    unionid: str | None = Field(default=None, max_length=64, index=True)
    nickname: str | None = Field(default=None, max_length=64)
    # The phone is personal data: kept encrypted, found by a keyed hash, shown masked.
    phone_ciphertext: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    phone_hash: str | None = Field(default=None, max_length=64, index=True)
    phone_masked: str | None = Field(default=None, max_length=16)
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    last_login_at: datetime | None = timestamp_field()


class RefreshToken(SQLModel, table=True):
    """One issued refresh token. Rotation links tokens into a family; reuse revokes it."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = timestamp_field(nullable=False)
    rotated_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()


class Role(StrEnum):
    grid_worker = "grid_worker"
    community_staff = "community_staff"
    mediator = "mediator"
    department_handler = "department_handler"
    admin = "admin"


class RoleGrant(SQLModel, table=True):
    """A role held on a region and everything below it. Revoked grants stay for the record."""

    __tablename__ = "role_grant"
    __table_args__ = (
        Index(
            "uq_role_grant_active",
            "user_id",
            "role",
            "region_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
        Index("ix_role_grant_region_path", "region_path", postgresql_using="gist"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True)
    role: Role = Field(sa_type=String(32))
    region_id: uuid.UUID = Field(foreign_key="region.id")
    region_path: str = Field(sa_type=Ltree)
    granted_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = timestamp_field()
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
