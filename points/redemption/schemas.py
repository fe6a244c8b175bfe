"""Request and response bodies of service centers, the rewards catalog and redemptions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from backend.core.text import RegionCode, Text, Verbatim
from backend.regions.schemas import LocationIn, PointOut
from points.models import LimitPeriod, RedemptionChannel, RedemptionState

CENTER_CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


MAX_QUANTITY = 99


MAX_STOCK_CHANGE = 100_000


MAX_PRICE = 10_000_000


_CENTER_ID = "0193a1f2-0000-7000-8000-00000000c001"


_REWARD_ID = "0193a1f2-0000-7000-8000-00000000a001"


_REDEMPTION_ID = "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"


# --- service centers ---------------------------------------------------------------------


_CENTER_EXAMPLE = {
    "code": "gangding-center",
    "name": "岗顶社区党群服务中心",
    "name_en": "Gangding Community Service Center",
    "region": "gz.tianhe.shipai.gangding",
    "location": {"lat": 23.13412, "lng": 113.33071, "coord": "gcj02"},
    "address": "天河路 600 号岗顶社区居委会一楼",
    "opening_hours": "周一至周六 9:00-12:00, 14:30-18:00",
    "active": True,
}


class ServiceCenterCreate(BaseModel):
    code: str = Field(
        pattern=CENTER_CODE_PATTERN, description="Stable code: lower-case letters, digits, _ -."
    )
    name: Text = Field(min_length=1, max_length=100)
    name_en: Text = Field(min_length=1, max_length=100)
    region: RegionCode = Field(description="Code of the community it serves.")
    location: LocationIn
    address: Text = Field(min_length=1, max_length=200)
    opening_hours: Text | None = Field(None, max_length=200)
    active: bool = True

    model_config = ConfigDict(json_schema_extra={"example": _CENTER_EXAMPLE})


class ServiceCenterUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. Code and community never change."""

    name: Text = Field(None, min_length=1, max_length=100, validate_default=False)
    name_en: Text = Field(None, min_length=1, max_length=100, validate_default=False)
    location: LocationIn = Field(None, validate_default=False)
    address: Text = Field(None, min_length=1, max_length=200, validate_default=False)
    opening_hours: Text | None = Field(None, max_length=200, validate_default=False)
    active: bool = Field(None, validate_default=False)

    model_config = ConfigDict(
        json_schema_extra={"example": {"opening_hours": "每天 9:00-18:00", "active": True}}
    )


class ServiceCenterOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str
    region: str = Field(description="Code of the community it serves.")
    location: PointOut
    address: str
    opening_hours: str | None
    active: bool

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **_CENTER_EXAMPLE,
                "id": _CENTER_ID,
                "location": {"lat": 23.13672, "lng": 113.32557, "coord": "wgs84"},
            }
        }
    )


# --- rewards -----------------------------------------------------------------------------


class LimitIn(BaseModel):
    count: int = Field(ge=1, le=1000, description="Items a member may redeem per period.")
    period: LimitPeriod = Field(description="Calendar day, week, month or year (China time).")


class LimitOut(BaseModel):
    count: int
    period: LimitPeriod


_REWARD_EXAMPLE = {
    "name": "东北大米 5kg",
    "name_en": "Northeast rice, 5 kg",
    "description": "五常稻花香大米，5 公斤装",
    "price": 300,
    "photo_upload_id": None,
    "region": "gz.tianhe",
    "limit": {"count": 2, "period": "month"},
    "active_from": "2026-11-01T00:00:00+08:00",
    "active_until": "2027-12-31T23:59:59+08:00",
    "active": True,
}


class RewardCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=64)
    name_en: Text = Field(min_length=1, max_length=64)
    description: Text = Field("", max_length=2000)
    price: int = Field(ge=1, le=MAX_PRICE, description="Points per item.")
    photo_upload_id: uuid.UUID | None = Field(
        None, description="An upload of purpose `reward_photo` (JPEG, PNG, WebP or HEIC)."
    )
    region: RegionCode = Field(
        description="Code of the region whose service centers may stock it; you must be "
        "admin there.",
    )
    limit: LimitIn | None = Field(None, description="Per-member limit; null: no limit.")
    active_from: AwareDatetime | None = Field(None, description="Redeemable from; null: now.")
    active_until: AwareDatetime | None = Field(None, description="Redeemable until; null: open.")
    active: bool = True

    model_config = ConfigDict(json_schema_extra={"example": _REWARD_EXAMPLE})


class RewardUpdate(BaseModel):
    """Fields to change; a field left out stays as it is. The region never changes."""

    name: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    name_en: Text = Field(None, min_length=1, max_length=64, validate_default=False)
    description: Text = Field(None, max_length=2000, validate_default=False)
    price: int = Field(None, ge=1, le=MAX_PRICE, validate_default=False)
    photo_upload_id: uuid.UUID | None = Field(None, validate_default=False)
    limit: LimitIn | None = Field(None, validate_default=False)
    active_from: AwareDatetime | None = Field(None, validate_default=False)
    active_until: AwareDatetime | None = Field(None, validate_default=False)
    active: bool = Field(None, validate_default=False)

    model_config = ConfigDict(json_schema_extra={"example": {"price": 280, "active": True}})


class RewardOut(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str
    description: str
    price: int
    photo_url: str | None = Field(None, description="Short-lived URL of the photo.")
    region: str
    limit: LimitOut | None
    active_from: datetime | None
    active_until: datetime | None
    active: bool

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                **{k: v for k, v in _REWARD_EXAMPLE.items() if k != "photo_upload_id"},
                "id": _REWARD_ID,
                "photo_url": None,
            }
        }
    )


class RestockIn(BaseModel):
    center: uuid.UUID = Field(description="The service center's id.")
    add: int = Field(
        ge=-MAX_STOCK_CHANGE,
        le=MAX_STOCK_CHANGE,
        description="Items added (negative: written off, never below what is reserved).",
    )

    model_config = ConfigDict(json_schema_extra={"example": {"center": _CENTER_ID, "add": 50}})

    @field_validator("add")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("add must not be 0")
        return value


class StockOut(BaseModel):
    reward: uuid.UUID
    center: uuid.UUID
    on_hand: int = Field(description="Items at the center, reserved ones included.")
    reserved: int = Field(description="Items reserved for pickup.")
    left: int = Field(description="Items still free to redeem: on_hand - reserved.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "reward": _REWARD_ID,
                "center": _CENTER_ID,
                "on_hand": 62,
                "reserved": 4,
                "left": 58,
            }
        }
    )


# --- the member's catalog ------------------------------------------------------------------


class CatalogItem(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str
    description: str
    price: int = Field(description="Points per item.")
    photo_url: str | None
    left: int = Field(description="Items left to redeem at this center.")
    limit: LimitOut | None
    allowance: int | None = Field(
        description="Items you may still redeem this period; null: no limit."
    )
    active_until: datetime | None


class CenterCatalog(BaseModel):
    center: ServiceCenterOut
    distance_m: float | None = Field(description="From the location given; null without one.")
    rewards: list[CatalogItem]


class Catalog(BaseModel):
    centers: list[CenterCatalog] = Field(description="Nearest first when a location is given.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "centers": [
                    {
                        "center": ServiceCenterOut.model_config["json_schema_extra"]["example"],  # type: ignore[index]
                        "distance_m": 412.5,
                        "rewards": [
                            {
                                "id": _REWARD_ID,
                                "name": "东北大米 5kg",
                                "name_en": "Northeast rice, 5 kg",
                                "description": "五常稻花香大米，5 公斤装",
                                "price": 300,
                                "photo_url": None,
                                "left": 58,
                                "limit": {"count": 2, "period": "month"},
                                "allowance": 1,
                                "active_until": "2027-12-31T23:59:59+08:00",
                            }
                        ],
                    }
                ]
            }
        }
    )


# --- redemptions ---------------------------------------------------------------------------


class RedemptionCreate(BaseModel):
    reward: uuid.UUID = Field(description="The reward's id.")
    center: uuid.UUID = Field(description="The service center to pick it up at.")
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)

    model_config = ConfigDict(
        json_schema_extra={"example": {"reward": _REWARD_ID, "center": _CENTER_ID, "quantity": 1}}
    )


class CounterRedemptionCreate(RedemptionCreate):
    member_code: Verbatim = Field(
        min_length=1, max_length=200, description="The code shown on the member's phone."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "member_code": "SZM1AZOh8gAAcACAAAAAAAAAAAEBp2z8Cq3N7xk4Qm1UcA",
                "reward": _REWARD_ID,
                "center": _CENTER_ID,
                "quantity": 1,
            }
        }
    )


class FulfilIn(BaseModel):
    center: uuid.UUID = Field(description="The service center you are handing it out at.")

    model_config = ConfigDict(json_schema_extra={"example": {"center": _CENTER_ID}})


class RewardBrief(BaseModel):
    id: uuid.UUID
    name: str
    name_en: str


class CenterBrief(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str
    address: str


class RedemptionOut(BaseModel):
    id: uuid.UUID
    reward: RewardBrief
    center: CenterBrief
    quantity: int
    unit_price: int
    points_total: int
    channel: RedemptionChannel
    state: RedemptionState
    pickup_code: str | None = Field(
        description="Six digits to read out at the counter; null once no longer pending."
    )
    qr_payload: str | None = Field(
        description="Show as a QR code for staff to scan; null once no longer pending."
    )
    expires_at: datetime = Field(description="Pick it up before this, or it expires.")
    created_at: datetime
    fulfilled_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": _REDEMPTION_ID,
                "reward": {"id": _REWARD_ID, "name": "东北大米 5kg", "name_en": "Rice, 5 kg"},
                "center": {
                    "id": _CENTER_ID,
                    "code": "gangding-center",
                    "name": "岗顶社区党群服务中心",
                    "name_en": "Gangding Community Service Center",
                    "address": "天河路 600 号岗顶社区居委会一楼",
                },
                "quantity": 1,
                "unit_price": 300,
                "points_total": 300,
                "channel": "app",
                "state": "pending",
                "pickup_code": "482913",
                "qr_payload": "SZR1AZOh8nxNfo-aCxwtPk9aa3tB0nbUd1Xe8oc",
                "expires_at": "2026-11-30T10:15:00+08:00",
                "created_at": "2026-11-27T10:15:00+08:00",
                "fulfilled_at": None,
                "cancelled_at": None,
                "expired_at": None,
            }
        }
    )


class MemberCodeOut(BaseModel):
    code: str = Field(description="Show as a QR code at the counter; refresh every minute.")
    expires_at: datetime = Field(description="When staff can no longer scan it.")
    refresh_after: datetime = Field(description="When the app should fetch a new one.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "SZM1AZOh8gAAcACAAAAAAAAAAAEBp2z8Cq3N7xk4Qm1UcA",
                "expires_at": "2026-11-27T10:17:00+08:00",
                "refresh_after": "2026-11-27T10:16:00+08:00",
            }
        }
    )
