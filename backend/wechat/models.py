"""The WeChat access token, shared by every process so that only one refreshes it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.core.models import timestamp_field


class WechatAccessToken(SQLModel, table=True):
    __tablename__ = "wechat_access_token"

    appid: str = Field(primary_key=True, max_length=64)
    access_token: str = Field(max_length=512)
    expires_at: datetime = timestamp_field(nullable=False)
    refreshed_at: datetime = timestamp_field(nullable=False)
