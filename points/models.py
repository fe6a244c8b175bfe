"""The points ledger: accounts, transactions and their postings, lots, holds, earning rules.

Double-entry and append-only, after TigerBeetle and Formance: a transaction moves points
between accounts with postings that sum to zero (a deferred constraint trigger checks it at
commit); transactions and postings are never updated or deleted (a trigger refuses it), a
mistake is undone by a reversal that names the original, at most once. Each account keeps its
balance beside its postings, changed in the same database transaction, and a member's balance
can never go below zero (a CHECK constraint). Every transaction carries an idempotency key,
unique in the database, with the hash of the request that made it.

Points are kept as lots (one per award, with its expiry); a spend draws from the oldest lots
first, so expiry takes exactly what is left of each lot. A hold (a pending transfer) moves
points to the `holds` account; it is captured (to a redemption account) or released (back to
the lots it drew from) exactly once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
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
from sqlmodel import Field, SQLModel

from backend.core.database import Ltree
from backend.core.models import created_at_field, id_field, timestamp_field


class AccountKind(StrEnum):
    member = "member"  # a user's points: `member:<user id>`
    issuance = "issuance"  # where awarded points come from (its balance goes negative)
    redemption = "redemption"  # points spent at a service center: `redemption:<center id>`
    expiry = "expiry"  # points that expired
    holds = "holds"  # points reserved by pending holds


class TransactionKind(StrEnum):
    award = "award"
    reverse = "reverse"
    hold = "hold"
    capture = "capture"
    release = "release"
    expire = "expire"


class HoldState(StrEnum):
    pending = "pending"
    captured = "captured"
    released = "released"
    expired = "expired"


# The system accounts have fixed ids (seeded by the migration), so no operation looks them up.
ISSUANCE_ACCOUNT_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
HOLDS_ACCOUNT_ID = uuid.UUID("00000000-0000-7000-8000-000000000002")
EXPIRY_ACCOUNT_ID = uuid.UUID("00000000-0000-7000-8000-000000000003")
SYSTEM_ACCOUNTS: dict[AccountKind, uuid.UUID] = {
    AccountKind.issuance: ISSUANCE_ACCOUNT_ID,
    AccountKind.holds: HOLDS_ACCOUNT_ID,
    AccountKind.expiry: EXPIRY_ACCOUNT_ID,
}


def _bigint(*, default: int = 0) -> Any:
    return Field(default=default, sa_column=Column(BigInteger, nullable=False))


class PointsAccount(SQLModel, table=True):
    __tablename__ = "points_account"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('member', 'issuance', 'redemption', 'expiry', 'holds')", name="kind_known"
        ),
        # "Never negative", enforced by the database: only issuance may go below zero.
        CheckConstraint("kind = 'issuance' OR balance >= 0", name="balance_not_negative"),
        CheckConstraint("kind <> 'issuance' OR balance <= 0", name="issuance_not_positive"),
        CheckConstraint("(kind = 'member') = (owner_id IS NOT NULL)", name="member_has_owner"),
        CheckConstraint("version >= 0", name="version_not_negative"),
    )

    id: uuid.UUID = id_field()
    kind: AccountKind = Field(sa_type=String(16))
    code: str = Field(max_length=80, unique=True)
    owner_id: uuid.UUID | None = Field(default=None, foreign_key="user_account.id", unique=True)
    balance: int = _bigint()
    # How many postings the account has; each posting carries its number (`seq`).
    version: int = _bigint()
    created_at: datetime = created_at_field()


class PointsTransaction(SQLModel, table=True):
    """One movement of points. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "points_transaction"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('award', 'reverse', 'hold', 'capture', 'release', 'expire')",
            name="kind_known",
        ),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("(kind = 'reverse') = (reverses_id IS NOT NULL)", name="reversal_links"),
        # The daily cap counts today's awards for an activity type.
        Index(
            "ix_points_transaction_activity_created",
            "activity_type",
            "created_at",
            postgresql_where=text("activity_type IS NOT NULL"),
        ),
    )

    id: uuid.UUID = id_field()
    idempotency_key: str = Field(max_length=128, unique=True)
    request_hash: str = Field(max_length=64)
    kind: TransactionKind = Field(sa_type=String(16))
    # The points moved (0 only for an activity award that the daily cap left empty).
    amount: int = _bigint()
    reason: str = Field(max_length=64)
    source_ref: str | None = Field(default=None, max_length=128)
    activity_type: str | None = Field(default=None, max_length=64)
    # Unique: a transaction is reversed at most once.
    reverses_id: uuid.UUID | None = Field(
        default=None, foreign_key="points_transaction.id", unique=True
    )
    created_at: datetime = created_at_field()


class PointsLot(SQLModel, table=True):
    """The points of one award, drawn down by spends (oldest first) and by expiry."""

    __tablename__ = "points_lot"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
        # Spends draw oldest first: the member's lots with points left, by expiry.
        Index(
            "ix_points_lot_account_expiry",
            "account_id",
            "expires_at",
            "id",
            postgresql_where=text("remaining > 0"),
        ),
        # The worker's scan for lots past their expiry.
        Index("ix_points_lot_due", "expires_at", postgresql_where=text("remaining > 0")),
    )

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(foreign_key="points_account.id")
    transaction_id: uuid.UUID = Field(foreign_key="points_transaction.id", unique=True)
    points: int = _bigint()
    remaining: int = _bigint()
    expires_at: datetime | None = timestamp_field()  # null: never expires
    created_at: datetime = created_at_field()


class PointsPosting(SQLModel, table=True):
    """One side of a transaction: a signed amount on one account. Append-only.

    A member's postings carry the running balance and their place in the account's history
    (the statement). A system account's balance is moved at commit instead, by a deferred
    trigger, so its row — hot: every award or every hold goes through it — is locked only
    while the transaction commits; its postings carry neither.
    """

    __tablename__ = "points_posting"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("(balance_after IS NULL) = (seq IS NULL)", name="running_balance_whole"),
        # One posting per account per transaction, so `balance_after` is well defined.
        UniqueConstraint("transaction_id", "account_id"),
        # The account's postings in order: the statement, newest first, and no two writers
        # ever got the same place in an account's history.
        UniqueConstraint("account_id", "seq"),
    )

    id: uuid.UUID = id_field()
    transaction_id: uuid.UUID = Field(foreign_key="points_transaction.id")
    account_id: uuid.UUID = Field(foreign_key="points_account.id")
    amount: int = _bigint()
    balance_after: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    lot_id: uuid.UUID | None = Field(default=None, foreign_key="points_lot.id")
    created_at: datetime = created_at_field()


class PointsHold(SQLModel, table=True):
    """Points reserved for a redemption: captured or released (or expired) exactly once."""

    __tablename__ = "points_hold"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint(
            "state IN ('pending', 'captured', 'released', 'expired')", name="state_known"
        ),
        CheckConstraint(
            "(state = 'pending') = (settlement_id IS NULL)", name="settled_unless_pending"
        ),
        Index(
            "ix_points_hold_pending_due", "expires_at", postgresql_where=text("state = 'pending'")
        ),
        Index(
            "ix_points_hold_pending_account",
            "account_id",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: uuid.UUID = id_field()
    account_id: uuid.UUID = Field(foreign_key="points_account.id")
    transaction_id: uuid.UUID = Field(foreign_key="points_transaction.id", unique=True)
    points: int = _bigint()
    state: HoldState = Field(default=HoldState.pending, sa_type=String(16))
    reason: str = Field(max_length=64)
    source_ref: str | None = Field(default=None, max_length=128)
    expires_at: datetime = timestamp_field(nullable=False)
    # The capture or release that settled it.
    settlement_id: uuid.UUID | None = Field(
        default=None, foreign_key="points_transaction.id", unique=True
    )
    settled_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class PointsHoldLot(SQLModel, table=True):
    """How much a hold drew from each lot, so a release gives the points back to the same lots."""

    __tablename__ = "points_hold_lot"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    hold_id: uuid.UUID = Field(foreign_key="points_hold.id", primary_key=True)
    lot_id: uuid.UUID = Field(foreign_key="points_lot.id", primary_key=True)
    points: int = _bigint()


class PointsEarningRule(SQLModel, table=True):
    """Points per activity type, with a cap per member per day (Asia/Shanghai)."""

    __tablename__ = "points_earning_rule"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
    )

    id: uuid.UUID = id_field()
    activity_type: str = Field(max_length=64, unique=True)
    points: int = Field(sa_column=Column(Integer, nullable=False))
    daily_cap: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


# --- rewards and redemptions ---
# Service centers, the rewards catalog, stock per center, restocks and redemptions.


class LimitPeriod(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    year = "year"


class RedemptionState(StrEnum):
    pending = "pending"  # points held, stock reserved, waiting for pickup
    fulfilled = "fulfilled"  # handed out: the hold is captured
    cancelled = "cancelled"  # by the member before pickup: both came back
    expired = "expired"  # not picked up in time: both came back


class RedemptionChannel(StrEnum):
    app = "app"  # reserved in the mini-program, picked up with a code
    counter = "counter"  # redeemed in one step at the counter with the member's code


class ServiceCenter(SQLModel, table=True):
    """A place where members pick up rewards, serving one community."""

    __tablename__ = "points_service_center"
    __table_args__ = (
        Index("ix_points_service_center_region_path", "region_path", postgresql_using="gist"),
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lng BETWEEN -180 AND 180", name="lng_range"),
    )

    id: uuid.UUID = id_field()
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    region_id: uuid.UUID = Field(foreign_key="region.id", index=True)
    region_path: str = Field(sa_type=Ltree)
    # WGS-84, as every stored location.
    lat: float = Field(sa_column=Column(Double, nullable=False))
    lng: float = Field(sa_column=Column(Double, nullable=False))
    address: str = Field(max_length=200)
    opening_hours: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class Reward(SQLModel, table=True):
    """Goods members redeem points for, offered at the centers of a region."""

    __tablename__ = "points_reward"
    __table_args__ = (
        Index("ix_points_reward_region_path", "region_path", postgresql_using="gist"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint(
            "(limit_count IS NULL) = (limit_period IS NULL)", name="limit_count_and_period"
        ),
        CheckConstraint("limit_count IS NULL OR limit_count > 0", name="limit_positive"),
        CheckConstraint(
            "limit_period IS NULL OR limit_period IN ('day', 'week', 'month', 'year')",
            name="limit_period_known",
        ),
        CheckConstraint(
            "active_from IS NULL OR active_until IS NULL OR active_from < active_until",
            name="window_ordered",
        ),
    )

    id: uuid.UUID = id_field()
    name: str = Field(max_length=64)
    name_en: str = Field(max_length=64)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    price: int = Field(sa_column=Column(Integer, nullable=False))
    photo_upload_id: uuid.UUID | None = Field(default=None, foreign_key="upload.id")
    # The region whose admins manage it; it can be stocked at centers within it.
    region_id: uuid.UUID = Field(foreign_key="region.id")
    region_path: str = Field(sa_type=Ltree)
    # At most `limit_count` items per member per calendar `limit_period` (China time).
    limit_count: int | None = Field(default=None)
    limit_period: LimitPeriod | None = Field(default=None, sa_type=String(8))
    active_from: datetime | None = timestamp_field()
    active_until: datetime | None = timestamp_field()
    active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class RewardStock(SQLModel, table=True):
    """How many of a reward a center has, and how many of those wait for pickup.

    The checks make overselling impossible whatever the code does: `reserved` never exceeds
    `on_hand`, and neither goes below zero.
    """

    __tablename__ = "points_reward_stock"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    reward_id: uuid.UUID = Field(foreign_key="points_reward.id", primary_key=True)
    center_id: uuid.UUID = Field(foreign_key="points_service_center.id", primary_key=True)
    on_hand: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    reserved: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime | None = timestamp_field()


class Restock(SQLModel, table=True):
    """One change of a center's stock by an admin. Append-only: the record of who added what."""

    __tablename__ = "points_restock"
    __table_args__ = (
        UniqueConstraint("actor_id", "idempotency_key"),
        Index("ix_points_restock_stock", "reward_id", "center_id", "created_at"),
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
    )

    id: uuid.UUID = id_field()
    reward_id: uuid.UUID = Field(foreign_key="points_reward.id")
    center_id: uuid.UUID = Field(foreign_key="points_service_center.id")
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    on_hand_after: int = Field(sa_column=Column(Integer, nullable=False))
    actor_id: uuid.UUID = Field(foreign_key="user_account.id")
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class Redemption(SQLModel, table=True):
    """A member's redemption of a reward at a center, from reservation to pickup."""

    __tablename__ = "points_redemption"
    __table_args__ = (
        # A retried request finds its redemption by who sent it and the key it carried (the
        # member in the app; the staff member at the counter).
        UniqueConstraint("requested_by", "idempotency_key"),
        # The code read aloud at the counter names one waiting redemption of that center.
        Index(
            "uq_points_redemption_pending_code",
            "center_id",
            "pickup_code",
            unique=True,
            postgresql_where=text("state = 'pending'"),
        ),
        # The per-member limit counts a member's redemptions of a reward in a period.
        Index("ix_points_redemption_member_reward", "member_id", "reward_id", "created_at"),
        Index("ix_points_redemption_member", "member_id", "id"),
        Index("ix_points_redemption_center_created", "center_id", "created_at"),
        # The expiry job's scan.
        Index(
            "ix_points_redemption_pending_expiry",
            "expires_at",
            postgresql_where=text("state = 'pending'"),
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        CheckConstraint("points_total = quantity * unit_price", name="points_total_adds_up"),
        CheckConstraint(
            "state IN ('pending', 'fulfilled', 'cancelled', 'expired')", name="state_known"
        ),
        CheckConstraint("channel IN ('app', 'counter')", name="channel_known"),
        CheckConstraint("pickup_code ~ '^[0-9]{6}$'", name="pickup_code_digits"),
        CheckConstraint(
            "(state = 'fulfilled') = (fulfilled_at IS NOT NULL AND fulfilled_by IS NOT NULL)",
            name="fulfilled_has_who_and_when",
        ),
    )

    id: uuid.UUID = id_field()
    member_id: uuid.UUID = Field(foreign_key="user_account.id")
    reward_id: uuid.UUID = Field(foreign_key="points_reward.id")
    center_id: uuid.UUID = Field(foreign_key="points_service_center.id")
    quantity: int = Field(sa_column=Column(Integer, nullable=False))
    unit_price: int = Field(sa_column=Column(Integer, nullable=False))
    points_total: int = Field(sa_column=Column(Integer, nullable=False))
    channel: RedemptionChannel = Field(sa_type=String(8))
    state: RedemptionState = Field(
        default=RedemptionState.pending,
        sa_type=String(16),
    )
    # The ledger's hold on the member's points, and the transactions that settled it.
    hold_id: uuid.UUID = Field(foreign_key="points_hold.id")
    settled_transaction_id: uuid.UUID | None = Field(
        default=None, foreign_key="points_transaction.id"
    )
    pickup_code: str = Field(max_length=6)
    qr_payload: str = Field(max_length=128)
    requested_by: uuid.UUID = Field(foreign_key="user_account.id")
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    expires_at: datetime = timestamp_field(nullable=False)
    fulfilled_at: datetime | None = timestamp_field()
    fulfilled_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    cancelled_at: datetime | None = timestamp_field()
    expired_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
