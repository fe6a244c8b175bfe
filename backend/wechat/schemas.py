"""WeChat's response bodies, with WeChat's field names, parsed before anything trusts them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _WechatBody(BaseModel):
    # WeChat adds fields over time; unknown ones must not break parsing.
    model_config = ConfigDict(extra="ignore")


class Code2SessionBody(_WechatBody):
    openid: str = Field(min_length=1)
    session_key: str = Field(min_length=1)
    unionid: str | None = None


class StableTokenBody(_WechatBody):
    access_token: str = Field(min_length=1, max_length=512)
    # WeChat promises at least 300 s in normal mode; never trust a non-positive lifetime.
    expires_in: int = Field(gt=0)


class PhoneInfoBody(_WechatBody):
    phoneNumber: str = Field(min_length=1)
    purePhoneNumber: str = Field(min_length=1)
    countryCode: str = Field(min_length=1)


class PhoneNumberBody(_WechatBody):
    phone_info: PhoneInfoBody


Suggest = Literal["pass", "review", "risky"]


class MsgSecCheckResult(_WechatBody):
    suggest: Suggest
    label: int | None = None


class MsgSecCheckBody(_WechatBody):
    result: MsgSecCheckResult
    trace_id: str | None = None
