"""Factories shared by the tests."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import User


async def make_member(session: AsyncSession) -> User:
    user = User(openid=f"ledger-{secrets.token_hex(6)}", nickname="积分居民")
    session.add(user)
    await session.flush()
    return user


async def settle(session: AsyncSession) -> None:
    """Do now what COMMIT does (the test's transaction never commits): the deferred checks,
    and moving the system accounts' balances."""
    await session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    await session.execute(text("SET CONSTRAINTS ALL DEFERRED"))


async def ledger_violations(session: AsyncSession) -> dict[str, list[Any]]:
    """Every invariant of the ledger, checked over the whole database; empty lists if sound."""
    await settle(session)
    checks = {
        # Double entry: each transaction's postings sum to zero.
        "unbalanced_transactions": """
            SELECT transaction_id FROM points_posting
            GROUP BY transaction_id HAVING SUM(amount) <> 0""",
        # Balances are the sum of the postings; the version counts them, and a member's
        # last posting's running balance is the balance.
        "balances_off": """
            SELECT a.code FROM points_account a
            LEFT JOIN (SELECT account_id, SUM(amount) AS total, COUNT(*) AS n
                       FROM points_posting GROUP BY account_id) p ON p.account_id = a.id
            LEFT JOIN points_posting last
                ON last.account_id = a.id AND last.seq = a.version
            WHERE a.balance <> COALESCE(p.total, 0) OR a.version <> COALESCE(p.n, 0)
               OR (a.kind = 'member' AND a.version > 0
                   AND last.balance_after IS DISTINCT FROM a.balance)""",
        "negative_members": """
            SELECT code FROM points_account WHERE kind <> 'issuance' AND balance < 0""",
        # A member's lots hold exactly their available points.
        "lots_off": """
            SELECT a.code FROM points_account a
            LEFT JOIN (SELECT account_id, SUM(remaining) AS total FROM points_lot
                       GROUP BY account_id) l ON l.account_id = a.id
            WHERE a.kind = 'member' AND a.balance <> COALESCE(l.total, 0)""",
        # The holds account holds exactly the pending holds, each drawn from its lots.
        "holds_off": """
            SELECT a.balance FROM points_account a
            WHERE a.code = 'holds' AND a.balance <> (
                SELECT COALESCE(SUM(points), 0) FROM points_hold WHERE state = 'pending')""",
        "hold_lots_off": """
            SELECT h.id FROM points_hold h
            LEFT JOIN (SELECT hold_id, SUM(points) AS total FROM points_hold_lot
                       GROUP BY hold_id) hl ON hl.hold_id = h.id
            WHERE h.points <> COALESCE(hl.total, 0)""",
        # Reversals and settlements happen at most once.
        "double_reversals": """
            SELECT reverses_id FROM points_transaction WHERE reverses_id IS NOT NULL
            GROUP BY reverses_id HAVING COUNT(*) > 1""",
    }
    found: dict[str, list[Any]] = {}
    for name, sql in checks.items():
        found[name] = list((await session.execute(text(sql))).scalars())
    return found
