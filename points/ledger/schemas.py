"""Request and response bodies of the member's points statement and the earning rules."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from points.models import TransactionKind

ACTIVITY_TYPE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


class BalanceOut(BaseModel):
    """The member's points: what they can spend, what is reserved, and what expires soon."""

    available: int = Field(description="Points that can be spent now.")
    held: int = Field(description="Points reserved by redemptions not yet picked up.")
    expiring_soon: int = Field(
        description="Of the available points, those expiring within 30 days."
    )
    expiring_at: datetime | None = Field(
        description="When the next of the available points expire; null if none will."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "available": 320,
                "held": 50,
                "expiring_soon": 40,
                "expiring_at": "2026-12-31T16:00:00Z",
            }
        }
    )


class EntryOut(BaseModel):
    """One line of the statement: points in (+) or out (-), with the balance after it."""

    id: uuid.UUID = Field(description="The entry; pass the last one's `next_cursor` to page.")
    transaction_id: uuid.UUID
    kind: TransactionKind = Field(
        description="award, reverse (an award taken back), hold (reserved for a redemption), "
        "release (a reservation given back), or expire."
    )
    reason: str = Field(description="Why, as a stable code the app shows in words.")
    source_ref: str | None = Field(
        description="What it is about, e.g. `redemption:<id>` or `attendance:<id>`."
    )
    activity_type: str | None = Field(description="For points earned by an activity, its type.")
    amount: int = Field(description="Signed: positive in, negative out.")
    balance: int = Field(description="The available balance right after this entry.")
    created_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
                "transaction_id": "0193a1f2-7c4d-7e8f-9a0b-1c2d3e4f5a6c",
                "kind": "award",
                "reason": "activity",
                "source_ref": "attendance:0193a1f2-0000-7000-8000-000000000042",
                "activity_type": "community_cleanup",
                "amount": 20,
                "balance": 320,
                "created_at": "2026-11-22T10:30:00+08:00",
            }
        }
    )


class EarningRuleIn(BaseModel):
    activity_type: str = Field(
        pattern=ACTIVITY_TYPE_PATTERN,
        description="The activity type, as volunteers name it: lower-case letters, digits, "
        "`_`, `.`, `-`.",
    )
    points: int = Field(ge=1, le=100_000, description="Points per activity.")
    daily_cap: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Most points a member may earn from this activity type per day "
        "(Asia/Shanghai); null: no cap.",
    )
    active: bool = Field(True, description="An inactive rule awards nothing.")


class EarningRulesIn(BaseModel):
    """The complete set of rules: rules not listed are deactivated (never deleted)."""

    rules: list[EarningRuleIn] = Field(max_length=500)

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "rules": [
                    {
                        "activity_type": "community_cleanup",
                        "points": 20,
                        "daily_cap": 40,
                        "active": True,
                    },
                    {"activity_type": "elderly_visit", "points": 30, "daily_cap": None},
                ]
            }
        }
    )


class EarningRuleOut(BaseModel):
    activity_type: str
    points: int
    daily_cap: int | None
    active: bool
    updated_at: datetime | None

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "example": {
                "activity_type": "community_cleanup",
                "points": 20,
                "daily_cap": 40,
                "active": True,
                "updated_at": "2026-11-20T09:00:00+08:00",
            }
        },
    )
