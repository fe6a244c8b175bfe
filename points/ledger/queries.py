"""Reading the ledger: the member's balance and statement with running balances."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import now
from points.ledger.service import EXPIRING_SOON, Balance, Entry, member_code
from points.ledger.sql import (
    BALANCE,
)
from points.models import (
    PointsAccount,
    PointsPosting,
    PointsTransaction,
    TransactionKind,
)

# --- balances and statements ---------------------------------------------------------------


async def balance(session: AsyncSession, member_id: uuid.UUID) -> Balance:
    """What the member has: available, held in pending holds, and what expires soon."""
    row = (
        await session.execute(
            BALANCE, {"code": member_code(member_id), "soon": now() + EXPIRING_SOON}
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
        select(col(PointsAccount.id))
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
            select(col(PointsPosting.seq))
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
            balance=posting.balance_after,  # type: ignore[arg-type]
            created_at=posting.created_at,
        )
        for posting, tx in rows
    ]
