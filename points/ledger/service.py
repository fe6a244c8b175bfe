"""The ledger's writes: award, reverse, hold, capture, release, expire.

Every write is one ledger transaction whose postings sum to zero, applied together with the
balances, lots and holds it changes in ONE statement of data-modifying CTEs: an award, a
hold, a capture or a release is a single round trip (plus the caller's BEGIN and COMMIT).
Services only flush; the caller's transaction commits.

Idempotency lives in the database: the transaction's key is UNIQUE and stored with the
sha256 of the canonical request. The statement inserts the transaction with
`ON CONFLICT DO NOTHING` and everything else in it hangs off that row, so a key already used
(or being used by a concurrent request, which the insert waits for) applies nothing; the
earlier result is then answered with `replayed=True`, or 409 `points.idempotency_conflict`
when the request differs. A refusal (not enough points, hold no longer pending) writes
nothing at all, so a refused key stays free.

Locking, so that concurrent writers neither lose updates nor deadlock:
  1. the hold row, then the member's account are locked first (`FOR NO KEY UPDATE`), and
     decisions rest on the locked rows (the latest versions: balance, hold state);
  2. the system accounts (issuance, holds, expiry, redemption:*) move at commit, by a
     deferred trigger, in account order: their rows — the hot ones — are locked only while
     a transaction commits, never across a round trip to the client;
  3. what a statement reads besides the locked rows (the member's lots) is from its
     snapshot, taken before it waited for the lock: when the member's account changed in
     between (its version moved), the statement applies nothing and runs again.
A transaction that makes several ledger writes for different members should call
`lock_members()` with all of them first, so it takes their locks in one order.
Within the transaction, system accounts' balances lag their postings until the commit.

Lots: an award is a lot with an expiry from the policy; spends draw the oldest lots first
(by expiry, then id). The sum of a member's lots' `remaining` equals their balance.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core import idempotency
from backend.core.clock import LOCAL_TIME, now
from backend.core.config import get_settings
from backend.core.ids import new_id
from points.ledger.errors import (
    AlreadyReversed,
    HoldNotFound,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerRequestInvalid,
    NotReversible,
    TransactionNotFound,
)
from points.ledger.sql import (
    APPLY_AWARD,
    APPLY_CAPTURE,
    APPLY_EXPIRE,
    APPLY_HOLD,
    APPLY_RELEASE,
    APPLY_REVERSE,
    DUE_HOLDS,
    DUE_MEMBERS,
    EARLIER,
    EARNED_TODAY,
    LOCK_ACCOUNTS,
    LOCK_OR_OPEN_MEMBER,
    LOCK_OR_OPEN_MEMBERS,
    NO_LIMIT,
    OPEN_ACCOUNT,
    RECORD_EMPTY_AWARD,
    sql_params,
)
from points.models import (
    AccountKind,
    HoldState,
    PointsEarningRule,
    TransactionKind,
)

# Days, daily caps and the expiry policy follow the calendar where the members live.


EXPIRING_SOON = timedelta(days=30)


MAX_POINTS = 1_000_000_000


_COUNTER_CODE = re.compile(r"^redemption:[A-Za-z0-9_.:-]{1,68}$")


_ACTIVITY_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


HOLD_EXPIRED_REASON = "hold_expired"


EXPIRED_REASON = "expired"


HOLD_STATE_ZH: dict[HoldState, str] = {
    HoldState.pending: "冻结",
    HoldState.captured: "兑换",
    HoldState.released: "退回",
    HoldState.expired: "过期退回",
}


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerResult:
    transaction_id: uuid.UUID
    kind: TransactionKind
    points: int  # the points this transaction moved
    # The member's available balance right after it (None when no member account moved).
    member_balance: int | None
    replayed: bool = False  # an earlier call with the same key, answered again


@dataclass(frozen=True)
class HoldResult:
    hold_id: uuid.UUID
    transaction_id: uuid.UUID
    points: int
    expires_at: datetime
    member_balance: int  # available right after the hold
    replayed: bool = False


class ActivityOutcome(StrEnum):
    awarded = "awarded"  # the rule's points, in full
    capped = "capped"  # part of them: the daily cap was reached
    cap_reached = "cap_reached"  # none: the daily cap was already reached
    no_rule = "no_rule"  # none: no active earning rule for this activity type


# The outcome is kept as the transaction's reason, so a replay answers the same.
_ACTIVITY_REASONS: dict[ActivityOutcome, str] = {
    ActivityOutcome.awarded: "activity",
    ActivityOutcome.capped: "activity_capped",
    ActivityOutcome.cap_reached: "activity_cap_reached",
    ActivityOutcome.no_rule: "activity_no_rule",
}


_ACTIVITY_OUTCOMES = {reason: outcome for outcome, reason in _ACTIVITY_REASONS.items()}


@dataclass(frozen=True)
class ActivityAward:
    result: LedgerResult  # `result.points` is what was awarded, possibly 0
    outcome: ActivityOutcome

    @property
    def points(self) -> int:
        return self.result.points


@dataclass(frozen=True)
class Balance:
    available: int
    held: int  # in pending holds
    expiring_soon: int  # of the available points, how many expire within 30 days
    expiring_at: datetime | None  # when the next of the available points expire


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID  # the posting
    transaction_id: uuid.UUID
    kind: TransactionKind
    reason: str
    source_ref: str | None
    activity_type: str | None
    amount: int  # signed: + in, - out
    balance: int  # the running balance right after this entry
    created_at: datetime


# --- helpers -------------------------------------------------------------------------------


def member_code(member_id: uuid.UUID) -> str:
    return f"member:{member_id}"


def request_hash(op: str, **fields: Any) -> str:
    """The kernel's request hash, as the ledger has always stored it (the field `op`)."""
    return idempotency.request_hash(op, fields, tag="op")


def _check_key(key: str) -> None:
    if not idempotency.valid_key(key):
        raise LedgerRequestInvalid(detail="idempotency_key must be 1-128 visible ASCII characters")


def _check_points(points: int) -> None:
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise LedgerRequestInvalid(detail=f"points must be a whole number from 1 to {MAX_POINTS}")


def _check_text(name: str, value: str | None, limit: int, *, required: bool) -> None:
    if value is None:
        if required:
            raise LedgerRequestInvalid(detail=f"{name} is required")
        return
    if not isinstance(value, str) or not 0 < len(value) <= limit or "\x00" in value:
        raise LedgerRequestInvalid(detail=f"{name} must be 1-{limit} characters")


def _check_time(name: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise LedgerRequestInvalid(detail=f"{name} must be a time with a time zone")


def expires_at_for(awarded_at: datetime, policy: str) -> datetime | None:
    """When points awarded at `awarded_at` expire under `policy` (None: never).

    `end_of_next_year`: at the end of the next calendar year (awarded in 2026, they last
    through 2027); `end_of_year`: at the end of this one; `days:<n>`: n days later.
    """
    local = awarded_at.astimezone(LOCAL_TIME)
    if policy == "never":
        return None
    if policy == "end_of_next_year":
        return datetime(local.year + 2, 1, 1, tzinfo=LOCAL_TIME)
    if policy == "end_of_year":
        return datetime(local.year + 1, 1, 1, tzinfo=LOCAL_TIME)
    if policy.startswith("days:"):
        return awarded_at + timedelta(days=int(policy.removeprefix("days:")))
    raise ValueError(f"unknown points expiry policy {policy!r}")


def _day_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The calendar day (Asia/Shanghai) that `at` falls in."""
    local = at.astimezone(LOCAL_TIME)
    start = datetime(local.year, local.month, local.day, tzinfo=LOCAL_TIME)
    return start, start + timedelta(days=1)


def _uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


# --- replays -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Earlier:
    transaction_id: uuid.UUID
    kind: TransactionKind
    amount: int
    reason: str
    member_balance: int | None
    hold_id: uuid.UUID | None
    hold_expires_at: datetime | None


async def _earlier(session: AsyncSession, key: str, digest: str) -> _Earlier | None:
    """The transaction this key made before, if any; 409 if it was for another request."""
    row = (await session.execute(EARLIER, {"key": key})).one_or_none()
    if row is None:
        return None
    idempotency.same_request(row.request_hash, digest, IdempotencyConflict)
    return _Earlier(
        transaction_id=_uuid(row.id),
        kind=TransactionKind(row.kind),
        amount=row.amount,
        reason=row.reason,
        member_balance=row.member_balance,
        hold_id=_uuid(row.hold_id) if row.hold_id is not None else None,
        hold_expires_at=row.hold_expires_at,
    )


def _replayed(earlier: _Earlier) -> LedgerResult:
    return LedgerResult(
        transaction_id=earlier.transaction_id,
        kind=earlier.kind,
        points=earlier.amount,
        member_balance=earlier.member_balance,
        replayed=True,
    )


async def _replay(session: AsyncSession, key: str, digest: str) -> LedgerResult:
    earlier = await _earlier(session, key, digest)
    assert earlier is not None, "the key's transaction exists: the insert yielded to it"
    return _replayed(earlier)


def _hold_replayed(earlier: _Earlier) -> HoldResult:
    if earlier.hold_id is None or earlier.hold_expires_at is None:
        # The key made another kind of transaction, so the request was not this one.
        raise IdempotencyConflict()
    return HoldResult(
        hold_id=earlier.hold_id,
        transaction_id=earlier.transaction_id,
        points=earlier.amount,
        expires_at=earlier.hold_expires_at,
        member_balance=earlier.member_balance or 0,
        replayed=True,
    )


async def _open_account(
    session: AsyncSession, kind: AccountKind, code: str, owner_id: uuid.UUID | None
) -> None:
    """Open an account on first use (a concurrent opener wins harmlessly)."""
    await session.execute(
        OPEN_ACCOUNT,
        {"id": new_id(), "kind": kind.value, "code": code, "owner_id": owner_id, "at": now()},
    )


# A write runs again only when its statement read the member's lots before a concurrent
# writer's commit (see `MEMBER_BY_CODE`) or found an account missing; by the second run it
# holds the lock (or the account exists), so two runs are enough.
_RUNS = 2


# --- locking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Locked:
    account_id: uuid.UUID | None
    balance: int
    earlier_hash: str | None


async def _lock_or_open_member(session: AsyncSession, member_id: uuid.UUID, key: str) -> _Locked:
    """Lock the member's account (opened on first use) and look up the key."""
    code = member_code(member_id)
    for _ in range(3):
        params = {"code": code, "key": key, "new_id": new_id(), "owner_id": member_id, "at": now()}
        rows = (await session.execute(LOCK_OR_OPEN_MEMBER, params)).all()
        accounts = [row for row in rows if row.row_kind == "account"]
        earlier = next((row.request_hash for row in rows if row.row_kind == "earlier"), None)
        if accounts:
            return _Locked(_uuid(accounts[0].id), accounts[0].balance, earlier)
        # A concurrent request opened the account after this statement's snapshot was
        # taken (the insert waited for it): look again with a fresh one.
    raise RuntimeError(f"could not open the points account of {member_id}")


async def lock_members(session: AsyncSession, member_ids: Sequence[uuid.UUID]) -> None:
    """Lock these members' accounts (opening missing ones) in the order of their ids, until
    the transaction ends.

    Call it first in a transaction that writes to several members' points: two such
    transactions then take the members' locks in the same order, and cannot deadlock.
    """
    owners = sorted(set(member_ids))
    for _ in range(3):
        params = {"owners": owners, "ids": [new_id() for _ in owners], "at": now()}
        if (await session.execute(LOCK_OR_OPEN_MEMBERS, params)).scalar_one() == len(owners):
            return
        # Some were opened by another transaction while this one waited: lock them too.
    raise RuntimeError("could not lock the members' points accounts")


# --- award ---------------------------------------------------------------------------------


async def award(
    session: AsyncSession,
    *,
    member_id: uuid.UUID,
    points: int,
    reason: str,
    source_ref: str | None,
    idempotency_key: str,
    expires_at: datetime | None = None,
) -> LedgerResult:
    """Award points to a member: issuance -> member, as a new lot.

    The lot expires at `expires_at`, or else by the `points_expiry_policy` setting (by
    default at the end of the next calendar year, Asia/Shanghai). One statement (two the
    first time, when the member's account is opened).
    """
    _check_points(points)
    _check_text("reason", reason, 64, required=True)
    _check_text("source_ref", source_ref, 128, required=False)
    _check_key(idempotency_key)
    _check_time("expires_at", expires_at)
    digest = request_hash(
        "award",
        member_id=member_id,
        points=points,
        reason=reason,
        source_ref=source_ref,
        expires_at=expires_at,
    )
    return await _apply_award(
        session,
        member_id=member_id,
        points=points,
        reason=reason,
        source_ref=source_ref,
        key=idempotency_key,
        digest=digest,
        expires_at=expires_at,
        activity_type=None,
    )


async def _apply_award(
    session: AsyncSession,
    *,
    member_id: uuid.UUID,
    points: int,
    reason: str,
    source_ref: str | None,
    key: str,
    digest: str,
    expires_at: datetime | None,
    activity_type: str | None,
) -> LedgerResult:
    at = now()
    if expires_at is None:
        expires_at = expires_at_for(at, get_settings().points_expiry_policy)
    code = member_code(member_id)
    params = sql_params(
        at=at,
        code=code,
        key=key,
        hash=digest,
        kind=TransactionKind.award.value,
        amount=points,
        reason=reason,
        source_ref=source_ref,
        activity_type=activity_type,
        lot_id=new_id(),
        expires_at=expires_at,
    )
    for _ in range(_RUNS):
        row = (await session.execute(APPLY_AWARD, params)).one()
        if row.transaction_id is not None:
            return LedgerResult(
                transaction_id=_uuid(row.transaction_id),
                kind=TransactionKind.award,
                points=points,
                member_balance=row.member_balance,
            )
        if row.member_id is not None:
            break  # the key was used: answer what it made
        earlier = await _earlier(session, key, digest)
        if earlier is not None:
            return _replayed(earlier)
        await _open_account(session, AccountKind.member, code, member_id)
    return await _replay(session, key, digest)


# --- award for an activity -----------------------------------------------------------------


async def award_for_activity(
    session: AsyncSession,
    *,
    member_id: uuid.UUID,
    activity_type: str,
    source_ref: str | None,
    idempotency_key: str,
) -> ActivityAward:
    """Award the points of the activity type's earning rule, within its daily cap.

    The cap counts what the member got from this activity type today (Asia/Shanghai,
    reversed awards not counted) and cuts the award down to what is left of it; when
    nothing is left, or no active rule exists, the answer says so and awards 0 — not an
    error. Either way the key is used: a retry answers the same.
    """
    if not isinstance(activity_type, str) or not _ACTIVITY_TYPE.fullmatch(activity_type):
        raise LedgerRequestInvalid(detail="activity_type must be a lower-case code")
    _check_text("source_ref", source_ref, 128, required=False)
    _check_key(idempotency_key)
    digest = request_hash(
        "activity", member_id=member_id, activity_type=activity_type, source_ref=source_ref
    )
    rule = (
        await session.execute(
            select(PointsEarningRule).where(
                col(PointsEarningRule.activity_type) == activity_type,
                col(PointsEarningRule.active).is_(True),
            )
        )
    ).scalar_one_or_none()
    # The day's awards are read under the member's lock, so two at once cannot both fit.
    locked = await _lock_or_open_member(session, member_id, idempotency_key)
    if locked.earlier_hash is not None:
        return await _activity_replay(session, idempotency_key, digest)
    points, outcome = 0, ActivityOutcome.no_rule
    if rule is not None:
        points, outcome = rule.points, ActivityOutcome.awarded
        if rule.daily_cap is not None:
            start, end = _day_bounds(now())
            earned = (
                await session.execute(
                    EARNED_TODAY,
                    {
                        "member_id": locked.account_id,
                        "activity_type": activity_type,
                        "start": start,
                        "end": end,
                    },
                )
            ).scalar_one()
            left = max(rule.daily_cap - int(earned), 0)
            if left == 0:
                points, outcome = 0, ActivityOutcome.cap_reached
            elif left < rule.points:
                points, outcome = left, ActivityOutcome.capped
    reason = _ACTIVITY_REASONS[outcome]
    if points == 0:
        tx_id = new_id()
        inserted = (
            await session.execute(
                RECORD_EMPTY_AWARD,
                {
                    "tx_id": tx_id,
                    "key": idempotency_key,
                    "hash": digest,
                    "reason": reason,
                    "source_ref": source_ref,
                    "activity_type": activity_type,
                    "at": now(),
                },
            )
        ).scalar_one_or_none()
        if inserted is None:
            return await _activity_replay(session, idempotency_key, digest)
        result = LedgerResult(tx_id, TransactionKind.award, 0, locked.balance)
        return ActivityAward(result, outcome)
    result = await _apply_award(
        session,
        member_id=member_id,
        points=points,
        reason=reason,
        source_ref=source_ref,
        key=idempotency_key,
        digest=digest,
        expires_at=None,
        activity_type=activity_type,
    )
    if result.replayed:
        return await _activity_replay(session, idempotency_key, digest)
    return ActivityAward(result, outcome)


async def _activity_replay(session: AsyncSession, key: str, digest: str) -> ActivityAward:
    earlier = await _earlier(session, key, digest)
    assert earlier is not None
    outcome = _ACTIVITY_OUTCOMES.get(earlier.reason)
    if outcome is None:
        raise IdempotencyConflict()
    return ActivityAward(_replayed(earlier), outcome)


# --- hold ----------------------------------------------------------------------------------


async def hold(
    session: AsyncSession,
    *,
    member_id: uuid.UUID,
    points: int,
    reason: str,
    source_ref: str | None,
    idempotency_key: str,
    expires_at: datetime,
) -> HoldResult:
    """Reserve points: member -> holds, drawn from the member's oldest lots first.

    409 `points.insufficient_balance` (with the available amount) when the member has fewer.
    The hold is then captured or released exactly once; past `expires_at` the worker
    releases it. One statement (two when a concurrent writer to the member committed
    while it waited for the lock).
    """
    _check_points(points)
    _check_text("reason", reason, 64, required=True)
    _check_text("source_ref", source_ref, 128, required=False)
    _check_key(idempotency_key)
    _check_time("expires_at", expires_at)
    if expires_at is None:
        raise LedgerRequestInvalid(detail="expires_at is required")
    digest = request_hash(
        "hold",
        member_id=member_id,
        points=points,
        reason=reason,
        source_ref=source_ref,
        expires_at=expires_at,
    )
    hold_id = new_id()
    params = sql_params(
        code=member_code(member_id),
        key=idempotency_key,
        hash=digest,
        kind=TransactionKind.hold.value,
        amount=points,
        reason=reason,
        source_ref=source_ref,
        hold_id=hold_id,
        expires_at=expires_at,
    )
    for _ in range(_RUNS):
        row = (await session.execute(APPLY_HOLD, params)).one()
        if row.transaction_id is not None:
            # The lots always cover the balance; anything else is a broken ledger.
            assert row.drawn == points, f"lots covered {row.drawn} of {points} held points"
            return HoldResult(
                hold_id=hold_id,
                transaction_id=_uuid(row.transaction_id),
                points=points,
                expires_at=expires_at,
                member_balance=row.member_balance,
            )
        if not row.stale:
            break
    # Refused or already done: a retry answers the first result, even if the points are
    # gone by now; anything else is a refusal that wrote nothing.
    earlier = await _earlier(session, idempotency_key, digest)
    if earlier is not None:
        return _hold_replayed(earlier)
    available = row.balance if row.member_id is not None else 0
    if available < points:
        raise InsufficientBalance(available=available, requested=points)
    raise RuntimeError("hold neither applied nor refused")


# --- capture and release -------------------------------------------------------------------


async def capture(
    session: AsyncSession,
    *,
    hold_id: uuid.UUID,
    counter_account_code: str,
    idempotency_key: str,
) -> LedgerResult:
    """Spend a pending hold: holds -> the counter account (e.g. `redemption:<center id>`,
    opened on first use). 409 `points.hold_not_pending` once it is captured, released or
    expired — unless this is a retry of the capture itself."""
    if not isinstance(counter_account_code, str) or not _COUNTER_CODE.fullmatch(
        counter_account_code
    ):
        raise LedgerRequestInvalid(detail="counter_account_code must be redemption:<id>")
    _check_key(idempotency_key)
    digest = request_hash("capture", hold_id=hold_id, counter_account_code=counter_account_code)
    params = sql_params(
        code=counter_account_code,
        key=idempotency_key,
        hash=digest,
        kind=TransactionKind.capture.value,
        reason="capture",
        state=HoldState.captured.value,
        hold_id=hold_id,
    )
    for _ in range(_RUNS):
        row = (await session.execute(APPLY_CAPTURE, params)).one()
        if row.transaction_id is not None:
            return LedgerResult(
                transaction_id=_uuid(row.transaction_id),
                kind=TransactionKind.capture,
                points=row.points,
                member_balance=None,
            )
        if row.hold_id is None or row.counter_id is not None:
            break
        await _open_account(session, AccountKind.redemption, counter_account_code, None)
    return await _refused_settlement(session, row, idempotency_key, digest)


async def _refused_settlement(
    session: AsyncSession, row: Any, key: str, digest: str
) -> LedgerResult:
    # A retry of the settlement itself answers it (it may have waited for the first one).
    earlier = await _earlier(session, key, digest)
    if earlier is not None:
        return _replayed(earlier)
    if row.hold_id is None:
        raise HoldNotFound()
    settled = HoldState(row.state)
    if settled is HoldState.pending:
        raise RuntimeError("settlement neither applied nor refused")
    raise HoldNotPending(state=settled.value, state_zh=HOLD_STATE_ZH[settled])


async def release(
    session: AsyncSession,
    *,
    hold_id: uuid.UUID,
    idempotency_key: str,
    reason: str,
) -> LedgerResult:
    """Give a pending hold back: holds -> member, into the same lots it drew from.

    409 `points.hold_not_pending` once it is captured, released or expired — unless this
    is a retry of the release itself.
    """
    _check_key(idempotency_key)
    _check_text("reason", reason, 64, required=True)
    digest = request_hash("release", hold_id=hold_id, reason=reason)
    return await _apply_release(
        session,
        hold_id=hold_id,
        key=idempotency_key,
        digest=digest,
        reason=reason,
        state=HoldState.released,
    )


async def _apply_release(
    session: AsyncSession,
    *,
    hold_id: uuid.UUID,
    key: str,
    digest: str,
    reason: str,
    state: HoldState,
) -> LedgerResult:
    params = sql_params(
        key=key,
        hash=digest,
        kind=TransactionKind.release.value,
        reason=reason,
        state=state.value,
        hold_id=hold_id,
    )
    row = (await session.execute(APPLY_RELEASE, params)).one()
    if row.transaction_id is None:
        return await _refused_settlement(session, row, key, digest)
    return LedgerResult(
        transaction_id=_uuid(row.transaction_id),
        kind=TransactionKind.release,
        points=row.points,
        member_balance=row.member_balance,
    )


# --- reverse -------------------------------------------------------------------------------


async def reverse(
    session: AsyncSession,
    *,
    transaction_id: uuid.UUID,
    reason: str,
    idempotency_key: str,
) -> LedgerResult:
    """Undo an award with its mirror (member -> issuance), linked to it; once only.

    The points come back out of the award's own lot first, then the oldest others: an award
    already partly spent can be reversed only while the member still has the points
    (else 409 `points.insufficient_balance`).
    """
    _check_key(idempotency_key)
    _check_text("reason", reason, 64, required=True)
    digest = request_hash("reverse", transaction_id=transaction_id, reason=reason)
    params = sql_params(
        key=idempotency_key,
        hash=digest,
        kind=TransactionKind.reverse.value,
        reason=reason,
        original_id=transaction_id,
    )
    for _ in range(_RUNS):
        row = (await session.execute(APPLY_REVERSE, params)).one()
        if row.transaction_id is not None:
            assert row.drawn == row.original_amount, f"lots covered {row.drawn} of the award"
            return LedgerResult(
                transaction_id=_uuid(row.transaction_id),
                kind=TransactionKind.reverse,
                points=row.original_amount,
                member_balance=row.member_balance,
            )
        if not row.stale:
            break
    earlier = await _earlier(session, idempotency_key, digest)
    if earlier is not None:
        return _replayed(earlier)
    if row.original_id is None:
        raise TransactionNotFound()
    if row.original_kind != TransactionKind.award or row.original_amount == 0:
        raise NotReversible()
    if row.reversal_id is not None or row.balance >= row.original_amount:
        # Reversed by another key (maybe just now, which the insert waited for).
        raise AlreadyReversed()
    raise InsufficientBalance(available=row.balance, requested=row.original_amount)


# --- the worker's jobs ---------------------------------------------------------------------


async def expire_holds(session: AsyncSession, at: datetime, *, limit: int | None = None) -> int:
    """Release pending holds whose `expires_at` is at or before `at`; how many were.

    Each becomes `expired` and its points go back to the lots they came from (key
    `hold:<id>:expire`). Holds another transaction has locked are skipped (the next run
    takes them). Flushes only: the caller commits, e.g. after each batch of `limit`.
    """
    due = (await session.execute(DUE_HOLDS, {"at": at, "limit": limit or NO_LIMIT})).all()
    if not due:
        return 0
    # All their members first, in the order `lock_members` uses.
    await session.execute(LOCK_ACCOUNTS, {"ids": sorted({_uuid(r.account_id) for r in due})})
    for row in due:
        hold_id = _uuid(row.id)
        await _apply_release(
            session,
            hold_id=hold_id,
            key=f"hold:{hold_id}:expire",
            digest=request_hash("release", hold_id=hold_id, reason=HOLD_EXPIRED_REASON),
            reason=HOLD_EXPIRED_REASON,
            state=HoldState.expired,
        )
    return len(due)


async def expire_lots(session: AsyncSession, at: datetime, *, limit: int | None = None) -> int:
    """Expire what is left of lots whose `expires_at` is at or before `at`; how many lots.

    One `expire` transaction per member (member -> expiry, key `expire:<account>:<version>`)
    takes exactly the lots' remaining points. Members another transaction has locked are
    skipped (the next run takes them). Flushes only; `limit` caps the members per call.
    """
    members = (await session.execute(DUE_MEMBERS, {"at": at, "limit": limit or NO_LIMIT})).all()
    expired = 0
    for account_id, version in [(_uuid(row.id), row.version) for row in members]:
        # The account's version names this state of it: each expiry moves it on, so the key
        # is new for every expiry and the same for a retry of this one.
        params = sql_params(
            at=at,
            key=f"expire:{account_id}:{version}",
            hash=request_hash("expire", account_id=account_id, version=version, at=at),
            kind=TransactionKind.expire.value,
            reason=EXPIRED_REASON,
            member_id=account_id,
        )
        row = (await session.execute(APPLY_EXPIRE, params)).one()
        if row.transaction_id is not None:
            expired += row.lots
    return expired
