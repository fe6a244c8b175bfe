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

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal
from backend.core.clock import now
from backend.core.config import get_settings
from backend.core.ids import new_id
from points import schemas
from points.errors import (
    AlreadyReversed,
    EarningRuleDuplicate,
    EarningRulesAdminOnly,
    HoldNotFound,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerRequestInvalid,
    NotReversible,
    TransactionNotFound,
)
from points.models import (
    EXPIRY_ACCOUNT_ID,
    HOLDS_ACCOUNT_ID,
    ISSUANCE_ACCOUNT_ID,
    AccountKind,
    HoldState,
    PointsAccount,
    PointsEarningRule,
    PointsPosting,
    PointsTransaction,
    TransactionKind,
)

# Days, daily caps and the expiry policy follow the calendar where the members live.
LEDGER_TIMEZONE = ZoneInfo("Asia/Shanghai")
EXPIRING_SOON = timedelta(days=30)
MAX_POINTS = 1_000_000_000
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


def request_hash(op: str, **fields: Any) -> str:
    """sha256 of the canonical request: the same request gives the same hash, byte for byte."""
    canonical = json.dumps(
        {"op": op, **fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_jsonable,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
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
    local = awarded_at.astimezone(LEDGER_TIMEZONE)
    if policy == "never":
        return None
    if policy == "end_of_next_year":
        return datetime(local.year + 2, 1, 1, tzinfo=LEDGER_TIMEZONE)
    if policy == "end_of_year":
        return datetime(local.year + 1, 1, 1, tzinfo=LEDGER_TIMEZONE)
    if policy.startswith("days:"):
        return awarded_at + timedelta(days=int(policy.removeprefix("days:")))
    raise ValueError(f"unknown points expiry policy {policy!r}")


def _day_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The calendar day (Asia/Shanghai) that `at` falls in."""
    local = at.astimezone(LEDGER_TIMEZONE)
    start = datetime(local.year, local.month, local.day, tzinfo=LEDGER_TIMEZONE)
    return start, start + timedelta(days=1)


def _uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


# --- SQL -----------------------------------------------------------------------------------
# Parameters are cast where they are used: asyncpg needs one type per parameter.
#
# Each write is one statement of data-modifying CTEs. Its order comes from the references
# between them: `tx` (the transaction row) selects from the locked hold and member rows, and
# everything after it — lots, holds, the member's balance, postings — waits for `tx` through
# `EXISTS (SELECT 1 FROM tx)` (a one-time filter, evaluated first). So the locks are taken
# before anything is written, and nothing is written unless `tx` is.

_TX_COLUMNS = """
    id, idempotency_key, request_hash, kind, amount, reason, source_ref, activity_type,
    reverses_id, created_at"""


def _insert_tx(
    source: str,
    amount: str,
    *,
    where: str = "true",
    reverses: str = "NULL",
    source_ref: str = ":source_ref",
) -> str:
    """The transaction row, inserted from `source` when `where` holds and the key is new."""
    return f"""
    tx AS (
        INSERT INTO points_transaction ({_TX_COLUMNS})
        SELECT CAST(:tx_id AS uuid), CAST(:key AS varchar), CAST(:hash AS varchar),
               CAST(:kind AS varchar), {amount}, CAST(:reason AS varchar),
               CAST({source_ref} AS varchar), CAST(:activity_type AS varchar),
               CAST({reverses} AS uuid), CAST(:at AS timestamptz)
        FROM {source}
        WHERE {where}
        ON CONFLICT DO NOTHING
        RETURNING id
    )"""


# The member's account, locked; and its version as this statement's snapshot saw it. If the
# two differ, someone committed to the account while we waited for its lock, so what this
# statement read of the member's lots may be stale: it applies nothing and is run again
# (now holding the lock, nobody can change them).
_MEMBER_BY_CODE = """
    member AS MATERIALIZED (
        SELECT id, balance, version FROM points_account
        WHERE code = CAST(:code AS varchar)
        FOR NO KEY UPDATE
    ), seen AS MATERIALIZED (
        SELECT version FROM points_account WHERE code = CAST(:code AS varchar)
    )"""

_STALE = "(SELECT m.version <> s.version FROM member m, seen s) AS stale"

# Lots drawn oldest first (by expiry, never-expiring last, then id) until `ok.amount` is
# covered; `ok.first_lot`, when set, goes before all others (a reversal takes back the
# award's own lot first).
_DRAWS = """
    draws AS MATERIALIZED (
        SELECT lots.id,
               CAST(LEAST(lots.remaining, ok.amount - (lots.running - lots.remaining)) AS bigint)
                   AS take
        FROM ok, LATERAL (
            SELECT id, remaining,
                   SUM(remaining) OVER (
                       ORDER BY id IS NOT DISTINCT FROM ok.first_lot DESC,
                                expires_at NULLS LAST, id
                   ) AS running
            FROM points_lot
            WHERE account_id = ok.id AND remaining > 0
        ) AS lots
        WHERE lots.running - lots.remaining < ok.amount AND EXISTS (SELECT 1 FROM tx)
    ), drawn AS (
        UPDATE points_lot l SET remaining = l.remaining - d.take
        FROM draws d WHERE l.id = d.id
    )"""

_DRAWN = "(SELECT COALESCE(SUM(take), 0) FROM draws) AS drawn"


def _post(member: str, extra: str = "") -> str:
    """Balances and postings of `moves` (account, signed amount, posting id, lot, member?).

    The member's account (locked already) moves now, and its posting records the balance
    after it and its place (`seq`) in the account's history. System accounts move at commit
    (see `PointsPosting`): their postings go in in account order, so that every commit
    takes their locks in the same order.
    """
    return f"""
    moved AS (
        UPDATE points_account a
        SET balance = a.balance + m.amount, version = a.version + 1
        FROM moves m
        WHERE a.id = m.account_id AND m.is_member AND EXISTS (SELECT 1 FROM tx)
        RETURNING a.id, a.balance, a.version, m.amount, m.posting_id, m.lot_id
    ), posted AS (
        INSERT INTO points_posting (
            id, transaction_id, account_id, amount, balance_after, seq, lot_id, created_at
        )
        SELECT p.posting_id, tx.id, p.account_id, p.amount, p.balance, p.version, p.lot_id,
               CAST(:at AS timestamptz)
        FROM (
            SELECT posting_id, id AS account_id, amount, balance, version, lot_id FROM moved
            UNION ALL
            SELECT posting_id, account_id, amount, NULL, NULL, lot_id FROM moves
            WHERE NOT is_member
        ) AS p, tx
        ORDER BY p.account_id
        RETURNING account_id, balance_after
    )
    SELECT (SELECT id FROM tx) AS transaction_id,
           (SELECT balance_after FROM posted WHERE account_id = {member}) AS member_balance
           {extra}"""


def _statement(*ctes: str, member: str, extra: Sequence[str] = ()) -> Any:
    return text("WITH " + ",".join(ctes) + "," + _post(member, "".join(f", {e}" for e in extra)))


def _moves(
    debit: str,
    credit: str,
    source: str,
    *,
    member: str | None,
    debit_lot: str = "NULL",
    credit_lot: str = "NULL",
) -> str:
    """The two postings: `ok.amount` from `debit` to `credit`; `member` names the side that
    is the member's account ("debit" or "credit"), if either is."""
    return f"""
    moves (account_id, amount, posting_id, lot_id, is_member) AS (
        SELECT CAST({debit} AS uuid), -ok.amount, CAST(:debit_posting AS uuid),
               CAST({debit_lot} AS uuid), {str(member == "debit").lower()}
        FROM {source}
        UNION ALL
        SELECT CAST({credit} AS uuid), ok.amount, CAST(:credit_posting AS uuid),
               CAST({credit_lot} AS uuid), {str(member == "credit").lower()}
        FROM {source}
    )"""


_APPLY_AWARD = _statement(
    """
    member AS MATERIALIZED (
        SELECT id FROM points_account WHERE code = CAST(:code AS varchar) FOR NO KEY UPDATE
    ), ok AS MATERIALIZED (
        SELECT id, CAST(:amount AS bigint) AS amount FROM member
    )""",
    _insert_tx("ok", "ok.amount"),
    """
    lot AS (
        INSERT INTO points_lot (
            id, account_id, transaction_id, points, remaining, expires_at, created_at
        )
        SELECT CAST(:lot_id AS uuid), ok.id, tx.id, ok.amount, ok.amount,
               CAST(:expires_at AS timestamptz), CAST(:at AS timestamptz)
        FROM ok, tx
    )""",
    _moves(":issuance_id", "ok.id", "ok", member="credit", credit_lot=":lot_id"),
    member="(SELECT id FROM member)",
    extra=["(SELECT id FROM member) AS member_id"],
)

_OPEN_ACCOUNT = text(
    """
    INSERT INTO points_account (id, kind, code, owner_id, balance, version, created_at)
    VALUES (CAST(:id AS uuid), CAST(:kind AS varchar), CAST(:code AS varchar),
            CAST(:owner_id AS uuid), 0, 0, CAST(:at AS timestamptz))
    ON CONFLICT (code) DO NOTHING
    """
)

_APPLY_HOLD = _statement(
    _MEMBER_BY_CODE,
    """
    ok AS MATERIALIZED (
        SELECT m.id, CAST(:amount AS bigint) AS amount, NULL::uuid AS first_lot
        FROM member m JOIN seen s ON s.version = m.version
        WHERE m.balance >= CAST(:amount AS bigint)
    )""",
    _insert_tx("ok", "ok.amount"),
    """
    held AS (
        INSERT INTO points_hold (
            id, account_id, transaction_id, points, state, reason, source_ref, expires_at,
            created_at
        )
        SELECT CAST(:hold_id AS uuid), ok.id, tx.id, ok.amount, 'pending',
               CAST(:reason AS varchar), CAST(:source_ref AS varchar),
               CAST(:expires_at AS timestamptz), CAST(:at AS timestamptz)
        FROM ok, tx
    )""",
    _DRAWS,
    """
    hold_lots AS (
        INSERT INTO points_hold_lot (hold_id, lot_id, points)
        SELECT CAST(:hold_id AS uuid), id, take FROM draws
    )""",
    _moves("ok.id", ":holds_id", "ok", member="debit"),
    member="(SELECT id FROM member)",
    extra=[
        "(SELECT id FROM member) AS member_id",
        "(SELECT balance FROM member) AS balance",
        _STALE,
        _DRAWN,
    ],
)

# The hold row is locked first (its state is then the latest), then what it settles into.
# A capture or release is about what the hold was for: it carries the hold's `source_ref`.
_LOCK_HOLD = """
    hold AS MATERIALIZED (
        SELECT id, account_id, points, state, source_ref FROM points_hold
        WHERE id = CAST(:hold_id AS uuid)
        FOR NO KEY UPDATE
    )"""

_SETTLE_HOLD = """
    settled AS (
        UPDATE points_hold
        SET state = CAST(:state AS varchar), settlement_id = tx.id,
            settled_at = CAST(:at AS timestamptz)
        FROM tx
        WHERE points_hold.id = CAST(:hold_id AS uuid)
    )"""

_HOLD_FACTS = [
    "(SELECT id FROM hold) AS hold_id",
    "(SELECT state FROM hold) AS state",
    "(SELECT points FROM hold) AS points",
]

_APPLY_CAPTURE = _statement(
    _LOCK_HOLD,
    """
    counter AS MATERIALIZED (
        SELECT id FROM points_account WHERE code = CAST(:code AS varchar)
    ), ok AS MATERIALIZED (
        SELECT counter.id, hold.points AS amount, hold.source_ref FROM hold, counter
        WHERE hold.state = 'pending'
    )""",
    _insert_tx("ok", "ok.amount", source_ref="ok.source_ref"),
    _SETTLE_HOLD,
    _moves(":holds_id", "ok.id", "ok", member=None),
    member="NULL",
    extra=[*_HOLD_FACTS, "(SELECT id FROM counter) AS counter_id"],
)

# Release takes the member's lock after the hold's and before touching the lots; the lots
# are given back by increments, so no read of them can be stale.
_APPLY_RELEASE = _statement(
    _LOCK_HOLD,
    """
    member AS MATERIALIZED (
        SELECT id FROM points_account
        WHERE id = (SELECT account_id FROM hold)
        FOR NO KEY UPDATE
    ), ok AS MATERIALIZED (
        SELECT member.id, hold.points AS amount, hold.source_ref FROM hold, member
        WHERE hold.state = 'pending'
    )""",
    _insert_tx("ok", "ok.amount", source_ref="ok.source_ref"),
    _SETTLE_HOLD,
    """
    restored AS (
        UPDATE points_lot l SET remaining = l.remaining + hl.points
        FROM points_hold_lot hl
        WHERE hl.hold_id = CAST(:hold_id AS uuid) AND l.id = hl.lot_id
          AND EXISTS (SELECT 1 FROM tx)
    )""",
    _moves(":holds_id", "ok.id", "ok", member="credit"),
    member="(SELECT id FROM member)",
    extra=_HOLD_FACTS,
)

_APPLY_REVERSE = _statement(
    """
    original AS MATERIALIZED (
        SELECT t.id, t.kind, t.amount, t.source_ref, p.account_id AS member_id, p.lot_id
        FROM points_transaction t
        LEFT JOIN points_posting p
            ON p.transaction_id = t.id AND t.kind = 'award'
           AND p.account_id <> CAST(:issuance_id AS uuid)
        WHERE t.id = CAST(:original_id AS uuid)
    ), member AS MATERIALIZED (
        SELECT id, balance, version FROM points_account
        WHERE id = (SELECT member_id FROM original)
        FOR NO KEY UPDATE
    ), seen AS MATERIALIZED (
        SELECT version FROM points_account WHERE id = (SELECT member_id FROM original)
    ), reversal AS MATERIALIZED (
        SELECT id FROM points_transaction WHERE reverses_id = CAST(:original_id AS uuid)
    ), ok AS MATERIALIZED (
        SELECT m.id, o.amount, o.lot_id AS first_lot, o.source_ref
        FROM member m JOIN seen s ON s.version = m.version, original o
        WHERE m.balance >= o.amount AND NOT EXISTS (SELECT 1 FROM reversal)
    )""",
    _insert_tx("ok", "ok.amount", reverses=":original_id", source_ref="ok.source_ref"),
    _DRAWS,
    _moves("ok.id", ":issuance_id", "ok", member="debit", debit_lot="ok.first_lot"),
    member="(SELECT id FROM member)",
    extra=[
        "(SELECT id FROM original) AS original_id",
        "(SELECT kind FROM original) AS original_kind",
        "(SELECT amount FROM original) AS original_amount",
        "(SELECT id FROM reversal) AS reversal_id",
        "(SELECT balance FROM member) AS balance",
        _STALE,
        _DRAWN,
    ],
)

# Expiry takes what is left of the member's lots past their expiry, in one transaction. The
# worker locked the member before (`_DUE_MEMBERS`), so this statement's reads are current.
_APPLY_EXPIRE = _statement(
    """
    due AS MATERIALIZED (
        SELECT id, remaining FROM points_lot
        WHERE account_id = CAST(:member_id AS uuid) AND remaining > 0
          AND expires_at <= CAST(:at AS timestamptz)
    ), ok AS MATERIALIZED (
        SELECT CAST(:member_id AS uuid) AS id, COALESCE(SUM(remaining), 0) AS amount,
               count(*) AS lots
        FROM due
    )""",
    _insert_tx("ok", "ok.amount", where="ok.amount > 0"),
    """
    emptied AS (
        UPDATE points_lot l SET remaining = 0
        FROM due WHERE l.id = due.id AND EXISTS (SELECT 1 FROM tx)
    )""",
    _moves("ok.id", ":expiry_id", "ok", member="debit"),
    member="CAST(:member_id AS uuid)",
    extra=["(SELECT lots FROM ok) AS lots"],
)

# An award that moves nothing: an activity award left empty by the daily cap (or for want of
# a rule), kept so that a retry with its key answers the same.
_RECORD_EMPTY_AWARD = text(
    f"""
    INSERT INTO points_transaction ({_TX_COLUMNS})
    VALUES (CAST(:tx_id AS uuid), CAST(:key AS varchar), CAST(:hash AS varchar), 'award', 0,
            CAST(:reason AS varchar), CAST(:source_ref AS varchar),
            CAST(:activity_type AS varchar), NULL, CAST(:at AS timestamptz))
    ON CONFLICT DO NOTHING
    RETURNING id
    """
)

# Locks the member's account, opening it on first use, and finds an earlier use of the key
# (for the activity award, which reads the day's awards under the lock before it applies).
# A row opened here is invisible to `locked` (same snapshot) but is ours, hence locked.
_LOCK_OR_OPEN_MEMBER = text(
    """
    WITH created AS (
        INSERT INTO points_account (id, kind, code, owner_id, balance, version, created_at)
        VALUES (CAST(:new_id AS uuid), 'member', CAST(:code AS varchar),
                CAST(:owner_id AS uuid), 0, 0, CAST(:at AS timestamptz))
        ON CONFLICT (code) DO NOTHING
        RETURNING id, balance
    ), locked AS MATERIALIZED (
        SELECT id, balance FROM points_account
        WHERE code = CAST(:code AS varchar)
        FOR NO KEY UPDATE
    )
    SELECT 'account' AS row_kind, id, balance, NULL AS request_hash FROM created
    UNION ALL
    SELECT 'account', id, balance, NULL FROM locked
    UNION ALL
    SELECT 'earlier', id, NULL, request_hash FROM points_transaction
    WHERE idempotency_key = CAST(:key AS varchar)
    """
)

_EARLIER = text(
    """
    SELECT t.id, t.kind, t.amount, t.request_hash, t.reason,
           (SELECT p.balance_after FROM points_posting p
            JOIN points_account a ON a.id = p.account_id AND a.kind = 'member'
            WHERE p.transaction_id = t.id) AS member_balance,
           h.id AS hold_id, h.expires_at AS hold_expires_at
    FROM points_transaction t
    LEFT JOIN points_hold h ON h.transaction_id = t.id
    WHERE t.idempotency_key = CAST(:key AS varchar)
    """
)

# Opens the members' accounts that are missing and locks them all, in the order of their
# codes (that is, of the members' ids) in both steps. Rows another transaction opened after
# this statement's snapshot are neither opened nor locked here: the caller runs it again.
_LOCK_OR_OPEN_MEMBERS = text(
    """
    WITH created AS (
        INSERT INTO points_account (id, kind, code, owner_id, balance, version, created_at)
        SELECT wanted.id, 'member', 'member:' || wanted.owner_id, wanted.owner_id, 0, 0,
               CAST(:at AS timestamptz)
        FROM unnest(CAST(:owners AS uuid[]), CAST(:ids AS uuid[])) AS wanted (owner_id, id)
        ORDER BY wanted.owner_id
        ON CONFLICT (code) DO NOTHING
        RETURNING id
    ), locked AS MATERIALIZED (
        SELECT id FROM points_account
        WHERE owner_id = ANY(CAST(:owners AS uuid[]))
        ORDER BY code
        FOR NO KEY UPDATE
    )
    SELECT (SELECT count(*) FROM created) + (SELECT count(*) FROM locked)
    """
)

# Points the member got today from this activity type (reversed awards do not count).
_EARNED_TODAY = text(
    """
    SELECT COALESCE(SUM(t.amount), 0)
    FROM points_transaction t
    JOIN points_posting p ON p.transaction_id = t.id AND p.account_id = CAST(:member_id AS uuid)
    WHERE t.activity_type = CAST(:activity_type AS varchar) AND t.kind = 'award'
      AND t.created_at >= CAST(:start AS timestamptz) AND t.created_at < CAST(:end AS timestamptz)
      AND NOT EXISTS (SELECT 1 FROM points_transaction r WHERE r.reverses_id = t.id)
    """
)

_BALANCE = text(
    """
    SELECT a.balance,
           (SELECT COALESCE(SUM(points), 0) FROM points_hold
            WHERE account_id = a.id AND state = 'pending') AS held,
           (SELECT COALESCE(SUM(remaining), 0) FROM points_lot
            WHERE account_id = a.id AND remaining > 0
              AND expires_at <= CAST(:soon AS timestamptz)) AS expiring_soon,
           (SELECT MIN(expires_at) FROM points_lot
            WHERE account_id = a.id AND remaining > 0) AS expiring_at
    FROM points_account a
    WHERE a.code = CAST(:code AS varchar)
    """
)

_DUE_HOLDS = text(
    """
    SELECT id, account_id FROM points_hold
    WHERE state = 'pending' AND expires_at <= CAST(:at AS timestamptz)
    ORDER BY id
    LIMIT CAST(:limit AS bigint)
    FOR NO KEY UPDATE SKIP LOCKED
    """
)

_LOCK_ACCOUNTS = text(
    """
    SELECT id FROM points_account
    WHERE id = ANY(CAST(:ids AS uuid[]))
    ORDER BY code
    FOR NO KEY UPDATE
    """
)

_DUE_MEMBERS = text(
    """
    SELECT a.id, a.version FROM points_account a
    WHERE a.id IN (
        SELECT account_id FROM points_lot
        WHERE remaining > 0 AND expires_at <= CAST(:at AS timestamptz)
    )
    ORDER BY a.id
    LIMIT CAST(:limit AS bigint)
    FOR NO KEY UPDATE SKIP LOCKED
    """
)

_NO_LIMIT = 2**62


def _params(**values: Any) -> dict[str, Any]:
    """Every parameter the write statements share, with fresh ids and the time."""
    base: dict[str, Any] = {
        "source_ref": None,
        "activity_type": None,
        "at": now(),
        "tx_id": new_id(),
        "debit_posting": new_id(),
        "credit_posting": new_id(),
        "issuance_id": ISSUANCE_ACCOUNT_ID,
        "holds_id": HOLDS_ACCOUNT_ID,
        "expiry_id": EXPIRY_ACCOUNT_ID,
    }
    base.update(values)
    return base


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
    row = (await session.execute(_EARLIER, {"key": key})).one_or_none()
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyConflict()
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
        _OPEN_ACCOUNT,
        {"id": new_id(), "kind": kind.value, "code": code, "owner_id": owner_id, "at": now()},
    )


# A write runs again only when its statement read the member's lots before a concurrent
# writer's commit (see `_MEMBER_BY_CODE`) or found an account missing; by the second run it
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
        rows = (await session.execute(_LOCK_OR_OPEN_MEMBER, params)).all()
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
        if (await session.execute(_LOCK_OR_OPEN_MEMBERS, params)).scalar_one() == len(owners):
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
    params = _params(
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
        row = (await session.execute(_APPLY_AWARD, params)).one()
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
                    _EARNED_TODAY,
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
                _RECORD_EMPTY_AWARD,
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
    params = _params(
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
        row = (await session.execute(_APPLY_HOLD, params)).one()
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
    params = _params(
        code=counter_account_code,
        key=idempotency_key,
        hash=digest,
        kind=TransactionKind.capture.value,
        reason="capture",
        state=HoldState.captured.value,
        hold_id=hold_id,
    )
    for _ in range(_RUNS):
        row = (await session.execute(_APPLY_CAPTURE, params)).one()
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
    params = _params(
        key=key,
        hash=digest,
        kind=TransactionKind.release.value,
        reason=reason,
        state=state.value,
        hold_id=hold_id,
    )
    row = (await session.execute(_APPLY_RELEASE, params)).one()
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
    params = _params(
        key=idempotency_key,
        hash=digest,
        kind=TransactionKind.reverse.value,
        reason=reason,
        original_id=transaction_id,
    )
    for _ in range(_RUNS):
        row = (await session.execute(_APPLY_REVERSE, params)).one()
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
    due = (await session.execute(_DUE_HOLDS, {"at": at, "limit": limit or _NO_LIMIT})).all()
    if not due:
        return 0
    # All their members first, in the order `lock_members` uses.
    await session.execute(_LOCK_ACCOUNTS, {"ids": sorted({_uuid(r.account_id) for r in due})})
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
    members = (await session.execute(_DUE_MEMBERS, {"at": at, "limit": limit or _NO_LIMIT})).all()
    expired = 0
    for account_id, version in [(_uuid(row.id), row.version) for row in members]:
        # The account's version names this state of it: each expiry moves it on, so the key
        # is new for every expiry and the same for a retry of this one.
        params = _params(
            at=at,
            key=f"expire:{account_id}:{version}",
            hash=request_hash("expire", account_id=account_id, version=version, at=at),
            kind=TransactionKind.expire.value,
            reason=EXPIRED_REASON,
            member_id=account_id,
        )
        row = (await session.execute(_APPLY_EXPIRE, params)).one()
        if row.transaction_id is not None:
            expired += row.lots
    return expired


# --- balances and statements ---------------------------------------------------------------


async def balance(session: AsyncSession, member_id: uuid.UUID) -> Balance:
    """What the member has: available, held in pending holds, and what expires soon."""
    row = (
        await session.execute(
            _BALANCE, {"code": member_code(member_id), "soon": now() + EXPIRING_SOON}
        )
    ).one_or_none()
    if row is None:
        return Balance(available=0, held=0, expiring_soon=0, expiring_at=None)
    return Balance(
        available=row.balance,
        held=int(row.held),
        expiring_soon=int(row.expiring_soon),
        expiring_at=row.expiring_at,
    )


async def entries(
    session: AsyncSession,
    member_id: uuid.UUID,
    *,
    after: uuid.UUID | None = None,
    limit: int = 20,
) -> list[Entry]:
    """The member's statement, newest first, each entry with the balance right after it.

    `after` is the id of the last entry of the previous page.
    """
    account = (
        select(PointsAccount.id)
        .where(col(PointsAccount.code) == member_code(member_id))
        .scalar_subquery()
    )
    query = (
        select(PointsPosting, PointsTransaction)
        .join(PointsTransaction, col(PointsTransaction.id) == col(PointsPosting.transaction_id))
        .where(col(PointsPosting.account_id) == account)
        .order_by(col(PointsPosting.seq).desc())
        .limit(limit)
    )
    if after is not None:
        before = (
            select(PointsPosting.seq)
            .where(col(PointsPosting.id) == after, col(PointsPosting.account_id) == account)
            .scalar_subquery()
        )
        query = query.where(col(PointsPosting.seq) < func.coalesce(before, -1))
    rows = (await session.execute(query)).all()
    return [
        Entry(
            id=posting.id,
            transaction_id=tx.id,
            kind=TransactionKind(tx.kind),
            reason=tx.reason,
            source_ref=tx.source_ref,
            activity_type=tx.activity_type,
            amount=posting.amount,
            balance=posting.balance_after,
            created_at=posting.created_at,
        )
        for posting, tx in rows
    ]


# --- earning rules -------------------------------------------------------------------------


def require_rules_admin(principal: Principal) -> None:
    """Earning rules are city-wide: only an admin of a city (a one-label path) sets them."""
    if not any(
        grant.role is Role.admin and "." not in grant.region_path for grant in principal.grants
    ):
        raise EarningRulesAdminOnly()


async def list_earning_rules(session: AsyncSession) -> list[PointsEarningRule]:
    rules = await session.execute(
        select(PointsEarningRule).order_by(col(PointsEarningRule.activity_type))
    )
    return list(rules.scalars())


async def replace_earning_rules(
    session: AsyncSession, principal: Principal, rules: Sequence[schemas.EarningRuleIn]
) -> list[PointsEarningRule]:
    """Make the rules exactly these: listed ones are created or changed, others deactivated
    (kept, so the history of what was awarded stays explained)."""
    require_rules_admin(principal)
    wanted: dict[str, schemas.EarningRuleIn] = {}
    for rule in rules:
        if rule.activity_type in wanted:
            raise EarningRuleDuplicate(activity_type=rule.activity_type)
        wanted[rule.activity_type] = rule
    at = now()
    # One replacement at a time: two adding the same activity type would otherwise collide.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('points.earning_rules', 0))")
    )
    rules_now = select(PointsEarningRule).execution_options(populate_existing=True)
    existing: Mapping[str, PointsEarningRule] = {
        rule.activity_type: rule for rule in (await session.execute(rules_now)).scalars()
    }
    for activity_type, stored in existing.items():
        if activity_type not in wanted and stored.active:
            stored.active = False
            stored.updated_at = at
    for activity_type, rule in wanted.items():
        stored = existing.get(activity_type)
        if stored is None:
            session.add(
                PointsEarningRule(
                    activity_type=activity_type,
                    points=rule.points,
                    daily_cap=rule.daily_cap,
                    active=rule.active,
                    created_at=at,
                    updated_at=at,
                )
            )
            continue
        changes = {"points": rule.points, "daily_cap": rule.daily_cap, "active": rule.active}
        if any(getattr(stored, name) != value for name, value in changes.items()):
            for name, value in changes.items():
                setattr(stored, name, value)
            stored.updated_at = at
    await session.flush()
    return await list_earning_rules(session)


__all__ = [
    "EXPIRY_ACCOUNT_ID",
    "HOLDS_ACCOUNT_ID",
    "ISSUANCE_ACCOUNT_ID",
    "AccountKind",
    "ActivityAward",
    "ActivityOutcome",
    "Balance",
    "Entry",
    "HoldResult",
    "LedgerResult",
    "award",
    "award_for_activity",
    "balance",
    "capture",
    "entries",
    "expire_holds",
    "expire_lots",
    "hold",
    "lock_members",
    "release",
    "reverse",
]
