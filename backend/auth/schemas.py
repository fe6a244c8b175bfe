"""Request and response shapes of login, tokens, the caller's profile and role grants."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.auth.models import Role
from backend.core.text import RegionCode, Verbatim


class WechatLogin(BaseModel):
    code: Verbatim = Field(
        min_length=1, max_length=128, description="The code from `wx.login()` (single use)."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "0a3Xk2000abcd1"}]})


class RefreshRequest(BaseModel):
    refresh_token: Verbatim = Field(min_length=16, max_length=256)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "nJ0x8R4m...Kq2w"}]}
    )


class PhoneBinding(BaseModel):
    code: Verbatim = Field(
        min_length=1,
        max_length=128,
        description="The code from the getPhoneNumber button (`e.detail.code`).",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "e31968a7f94cc5ee25fafc"}]})


class RoleOut(BaseModel):
    role: Role
    region_code: str
    region_name: str


class Me(BaseModel):
    id: uuid.UUID
    nickname: str | None
    phone: str | None = Field(description="Masked, e.g. `138****5678`; null until bound.")
    roles: list[RoleOut]
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "01937a2e-4b6c-7d8e-9f00-112233445566",
                    "nickname": "街坊小李",
                    "phone": "138****5678",
                    "roles": [],
                    "created_at": "2026-11-22T09:30:00+08:00",
                }
            ]
        }
    )


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    expires_at: datetime
    refresh_token: str = Field(description="Single use: each refresh returns a new one.")
    refresh_expires_at: datetime
    user: Me


class RoleGrantCreate(BaseModel):
    user_id: uuid.UUID | None = None
    openid: Verbatim | None = Field(None, min_length=1, max_length=64)
    role: Role
    region_code: RegionCode

    @model_validator(mode="after")
    def _one_user(self) -> RoleGrantCreate:
        if (self.user_id is None) == (self.openid is None):
            raise ValueError("give exactly one of user_id and openid")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "openid": "demo-resident-2",
                    "role": "grid_worker",
                    "region_code": "gz.tianhe.shipai.gangding",
                }
            ]
        }
    )


class RoleGrantOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    nickname: str | None
    role: Role
    region_code: str
    created_at: datetime
