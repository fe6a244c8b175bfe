"""The ledger's rules: award, reverse, hold, capture, release, expire; balances and statements.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from backend.core import idempotency
from points.models import (
    HoldState,
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
