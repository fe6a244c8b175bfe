"""The ledger's SQL: each write is one statement of data-modifying CTEs (see service.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from backend.core.clock import now
from backend.core.ids import new_id
from points.models import (
    EXPIRY_ACCOUNT_ID,
    HOLDS_ACCOUNT_ID,
    ISSUANCE_ACCOUNT_ID,
)

# --- SQL -----------------------------------------------------------------------------------
# Parameters are cast where they are used: asyncpg needs one type per parameter.
#
# Each write is one statement of data-modifying CTEs. Its order comes from the references
# between them: `tx` (the transaction row) selects from the locked hold and member rows, and
# everything after it — lots, holds, the member's balance, postings — waits for `tx` through
# `EXISTS (SELECT 1 FROM tx)` (a one-time filter, evaluated first). So the locks are taken
# before anything is written, and nothing is written unless `tx` is.

TX_COLUMNS = """
    id, idempotency_key, request_hash, kind, amount, reason, source_ref, activity_type,
    reverses_id, created_at"""


def insert_tx(
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
        INSERT INTO points_transaction ({TX_COLUMNS})
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
MEMBER_BY_CODE = """
    member AS MATERIALIZED (
        SELECT id, balance, version FROM points_account
        WHERE code = CAST(:code AS varchar)
        FOR NO KEY UPDATE
    ), seen AS MATERIALIZED (
        SELECT version FROM points_account WHERE code = CAST(:code AS varchar)
    )"""


STALE = "(SELECT m.version <> s.version FROM member m, seen s) AS stale"


# Lots drawn oldest first (by expiry, never-expiring last, then id) until `ok.amount` is
# covered; `ok.first_lot`, when set, goes before all others (a reversal takes back the
# award's own lot first).
DRAWS = """
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


DRAWN = "(SELECT COALESCE(SUM(take), 0) FROM draws) AS drawn"


def post(member: str, extra: str = "") -> str:
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


def statement(*ctes: str, member: str, extra: Sequence[str] = ()) -> Any:
    return text("WITH " + ",".join(ctes) + "," + post(member, "".join(f", {e}" for e in extra)))


def moves(
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


APPLY_AWARD = statement(
    """
    member AS MATERIALIZED (
        SELECT id FROM points_account WHERE code = CAST(:code AS varchar) FOR NO KEY UPDATE
    ), ok AS MATERIALIZED (
        SELECT id, CAST(:amount AS bigint) AS amount FROM member
    )""",
    insert_tx("ok", "ok.amount"),
    """
    lot AS (
        INSERT INTO points_lot (
            id, account_id, transaction_id, points, remaining, expires_at, created_at
        )
        SELECT CAST(:lot_id AS uuid), ok.id, tx.id, ok.amount, ok.amount,
               CAST(:expires_at AS timestamptz), CAST(:at AS timestamptz)
        FROM ok, tx
    )""",
    moves(":issuance_id", "ok.id", "ok", member="credit", credit_lot=":lot_id"),
    member="(SELECT id FROM member)",
    extra=["(SELECT id FROM member) AS member_id"],
)


OPEN_ACCOUNT = text(
    """
    INSERT INTO points_account (id, kind, code, owner_id, balance, version, created_at)
    VALUES (CAST(:id AS uuid), CAST(:kind AS varchar), CAST(:code AS varchar),
            CAST(:owner_id AS uuid), 0, 0, CAST(:at AS timestamptz))
    ON CONFLICT (code) DO NOTHING
    """
)


APPLY_HOLD = statement(
    MEMBER_BY_CODE,
    """
    ok AS MATERIALIZED (
        SELECT m.id, CAST(:amount AS bigint) AS amount, NULL::uuid AS first_lot
        FROM member m JOIN seen s ON s.version = m.version
        WHERE m.balance >= CAST(:amount AS bigint)
    )""",
    insert_tx("ok", "ok.amount"),
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
    DRAWS,
    """
    hold_lots AS (
        INSERT INTO points_hold_lot (hold_id, lot_id, points)
        SELECT CAST(:hold_id AS uuid), id, take FROM draws
    )""",
    moves("ok.id", ":holds_id", "ok", member="debit"),
    member="(SELECT id FROM member)",
    extra=[
        "(SELECT id FROM member) AS member_id",
        "(SELECT balance FROM member) AS balance",
        STALE,
        DRAWN,
    ],
)


# The hold row is locked first (its state is then the latest), then what it settles into.
# A capture or release is about what the hold was for: it carries the hold's `source_ref`.
LOCK_HOLD = """
    hold AS MATERIALIZED (
        SELECT id, account_id, points, state, source_ref FROM points_hold
        WHERE id = CAST(:hold_id AS uuid)
        FOR NO KEY UPDATE
    )"""


SETTLE_HOLD = """
    settled AS (
        UPDATE points_hold
        SET state = CAST(:state AS varchar), settlement_id = tx.id,
            settled_at = CAST(:at AS timestamptz)
        FROM tx
        WHERE points_hold.id = CAST(:hold_id AS uuid)
    )"""


HOLD_FACTS = [
    "(SELECT id FROM hold) AS hold_id",
    "(SELECT state FROM hold) AS state",
    "(SELECT points FROM hold) AS points",
]


APPLY_CAPTURE = statement(
    LOCK_HOLD,
    """
    counter AS MATERIALIZED (
        SELECT id FROM points_account WHERE code = CAST(:code AS varchar)
    ), ok AS MATERIALIZED (
        SELECT counter.id, hold.points AS amount, hold.source_ref FROM hold, counter
        WHERE hold.state = 'pending'
    )""",
    insert_tx("ok", "ok.amount", source_ref="ok.source_ref"),
    SETTLE_HOLD,
    moves(":holds_id", "ok.id", "ok", member=None),
    member="NULL",
    extra=[*HOLD_FACTS, "(SELECT id FROM counter) AS counter_id"],
)


# Release takes the member's lock after the hold's and before touching the lots; the lots
# are given back by increments, so no read of them can be stale.
APPLY_RELEASE = statement(
    LOCK_HOLD,
    """
    member AS MATERIALIZED (
        SELECT id FROM points_account
        WHERE id = (SELECT account_id FROM hold)
        FOR NO KEY UPDATE
    ), ok AS MATERIALIZED (
        SELECT member.id, hold.points AS amount, hold.source_ref FROM hold, member
        WHERE hold.state = 'pending'
    )""",
    insert_tx("ok", "ok.amount", source_ref="ok.source_ref"),
    SETTLE_HOLD,
    """
    restored AS (
        UPDATE points_lot l SET remaining = l.remaining + hl.points
        FROM points_hold_lot hl
        WHERE hl.hold_id = CAST(:hold_id AS uuid) AND l.id = hl.lot_id
          AND EXISTS (SELECT 1 FROM tx)
    )""",
    moves(":holds_id", "ok.id", "ok", member="credit"),
    member="(SELECT id FROM member)",
    extra=HOLD_FACTS,
)


APPLY_REVERSE = statement(
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
    insert_tx("ok", "ok.amount", reverses=":original_id", source_ref="ok.source_ref"),
    DRAWS,
    moves("ok.id", ":issuance_id", "ok", member="debit", debit_lot="ok.first_lot"),
    member="(SELECT id FROM member)",
    extra=[
        "(SELECT id FROM original) AS original_id",
        "(SELECT kind FROM original) AS original_kind",
        "(SELECT amount FROM original) AS original_amount",
        "(SELECT id FROM reversal) AS reversal_id",
        "(SELECT balance FROM member) AS balance",
        STALE,
        DRAWN,
    ],
)


# Expiry takes what is left of the member's lots past their expiry, in one transaction. The
# worker locked the member before (`DUE_MEMBERS`), so this statement's reads are current.
APPLY_EXPIRE = statement(
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
    insert_tx("ok", "ok.amount", where="ok.amount > 0"),
    """
    emptied AS (
        UPDATE points_lot l SET remaining = 0
        FROM due WHERE l.id = due.id AND EXISTS (SELECT 1 FROM tx)
    )""",
    moves("ok.id", ":expiry_id", "ok", member="debit"),
    member="CAST(:member_id AS uuid)",
    extra=["(SELECT lots FROM ok) AS lots"],
)


# An award that moves nothing: an activity award left empty by the daily cap (or for want of
# a rule), kept so that a retry with its key answers the same.
RECORD_EMPTY_AWARD = text(
    f"""
    INSERT INTO points_transaction ({TX_COLUMNS})
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
LOCK_OR_OPEN_MEMBER = text(
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


EARLIER = text(
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
LOCK_OR_OPEN_MEMBERS = text(
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
EARNED_TODAY = text(
    """
    SELECT COALESCE(SUM(t.amount), 0)
    FROM points_transaction t
    JOIN points_posting p ON p.transaction_id = t.id AND p.account_id = CAST(:member_id AS uuid)
    WHERE t.activity_type = CAST(:activity_type AS varchar) AND t.kind = 'award'
      AND t.created_at >= CAST(:start AS timestamptz) AND t.created_at < CAST(:end AS timestamptz)
      AND NOT EXISTS (SELECT 1 FROM points_transaction r WHERE r.reverses_id = t.id)
    """
)


BALANCE = text(
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


DUE_HOLDS = text(
    """
    SELECT id, account_id FROM points_hold
    WHERE state = 'pending' AND expires_at <= CAST(:at AS timestamptz)
    ORDER BY id
    LIMIT CAST(:limit AS bigint)
    FOR NO KEY UPDATE SKIP LOCKED
    """
)


LOCK_ACCOUNTS = text(
    """
    SELECT id FROM points_account
    WHERE id = ANY(CAST(:ids AS uuid[]))
    ORDER BY code
    FOR NO KEY UPDATE
    """
)


DUE_MEMBERS = text(
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


NO_LIMIT = 2**62


def sql_params(**values: Any) -> dict[str, Any]:
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
