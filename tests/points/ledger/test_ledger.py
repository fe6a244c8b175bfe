"""The points ledger: double entry, idempotency, holds, reversals, lots and expiry, the daily
cap, the member's statement over HTTP, and the database's own guarantees."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.core.clock import LOCAL_TIME, clock, now
from backend.core.database import create_sessionmaker
from backend.core.ids import new_id
from points.ledger import queries as ledger_queries
from points.ledger import service as ledger_service
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
from points.ledger.service import ActivityOutcome, expires_at_for
from points.models import (
    EXPIRY_ACCOUNT_ID,
    HOLDS_ACCOUNT_ID,
    ISSUANCE_ACCOUNT_ID,
    HoldState,
    PointsAccount,
    PointsEarningRule,
    PointsHold,
    PointsHoldLot,
    PointsLot,
    PointsPosting,
    PointsTransaction,
)
from tests.conftest import Login, assert_problem, bearer
from tests.factories.points import ledger_violations, make_member, settle

SHANGHAI = LOCAL_TIME


# --- factories and checks --------------------------------------------------------------


def key(prefix: str = "t") -> str:
    return f"{prefix}:{secrets.token_hex(8)}"


async def give(
    session: AsyncSession, member: User, points: int, *, expires_at: datetime | None = None
) -> ledger_service.LedgerResult:
    return await ledger_service.award(
        session,
        member_id=member.id,
        points=points,
        reason="volunteer_service",
        source_ref=f"attendance:{new_id()}",
        idempotency_key=key("award"),
        expires_at=expires_at,
    )


async def hold(
    session: AsyncSession, member: User, points: int, *, hours: float = 24, idem: str | None = None
) -> ledger_service.HoldResult:
    return await ledger_service.hold(
        session,
        member_id=member.id,
        points=points,
        reason="redemption",
        source_ref=f"redemption:{new_id()}",
        idempotency_key=idem or key("hold"),
        expires_at=now() + timedelta(hours=hours),
    )


async def account(session: AsyncSession, account_id: uuid.UUID) -> PointsAccount:
    await settle(session)
    found = (
        await session.execute(
            select(PointsAccount)
            .where(col(PointsAccount.id) == account_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return found


async def member_account(session: AsyncSession, member: User) -> PointsAccount:
    found = (
        await session.execute(
            select(PointsAccount)
            .where(col(PointsAccount.owner_id) == member.id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return found


async def lots_of(session: AsyncSession, member: User) -> list[PointsLot]:
    acct = await member_account(session, member)
    rows = await session.execute(
        select(PointsLot)
        .where(col(PointsLot.account_id) == acct.id)
        .order_by(col(PointsLot.expires_at), col(PointsLot.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


async def assert_ledger_sound(session: AsyncSession) -> None:
    violations = await ledger_violations(session)
    assert not any(violations.values()), violations


# --- awards --------------------------------------------------------------------------------


async def test_award_opens_the_account_and_a_lot_with_the_policy_expiry(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    issuance_before = (await account(session, ISSUANCE_ACCOUNT_ID)).balance
    result = await give(session, member, 120)
    assert result.points == 120 and result.member_balance == 120 and not result.replayed
    acct = await member_account(session, member)
    assert acct.code == f"member:{member.id}" and acct.balance == 120 and acct.version == 1
    assert (await account(session, ISSUANCE_ACCOUNT_ID)).balance == issuance_before - 120
    postings = (
        await session.execute(
            select(PointsPosting).where(col(PointsPosting.transaction_id) == result.transaction_id)
        )
    ).scalars()
    assert sorted((p.account_id, p.amount) for p in postings) == sorted(
        [(acct.id, 120), (ISSUANCE_ACCOUNT_ID, -120)]
    )
    [lot] = await lots_of(session, member)
    assert lot.points == lot.remaining == 120
    # Default policy: the end of the next calendar year, Shanghai time.
    year = now().astimezone(SHANGHAI).year
    assert lot.expires_at == datetime(year + 2, 1, 1, tzinfo=SHANGHAI)
    await assert_ledger_sound(session)


def test_expiry_policies_follow_the_shanghai_calendar() -> None:
    # 2026-12-31 17:00 UTC is already 2027-01-01 01:00 in Shanghai.
    new_year = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert expires_at_for(new_year, "end_of_next_year") == datetime(2029, 1, 1, tzinfo=SHANGHAI)
    assert expires_at_for(new_year, "end_of_year") == datetime(2028, 1, 1, tzinfo=SHANGHAI)
    before = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai, still 2026
    assert expires_at_for(before, "end_of_next_year") == datetime(2028, 1, 1, tzinfo=SHANGHAI)
    assert expires_at_for(before, "days:30") == before + timedelta(days=30)
    assert expires_at_for(before, "never") is None


async def test_an_award_is_replayed_and_a_different_request_with_its_key_refused(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    idem = key("attendance")
    kwargs: dict[str, Any] = {
        "member_id": member.id,
        "points": 30,
        "reason": "volunteer_service",
        "source_ref": "attendance:1",
        "idempotency_key": idem,
    }
    first = await ledger_service.award(session, **kwargs)
    again = await ledger_service.award(session, **kwargs)
    assert again.replayed and again.transaction_id == first.transaction_id
    assert again.points == 30 and again.member_balance == 30
    assert (await member_account(session, member)).balance == 30
    with pytest.raises(IdempotencyConflict):
        await ledger_service.award(session, **{**kwargs, "points": 31})
    with pytest.raises(IdempotencyConflict):
        await ledger_service.hold(
            session,
            member_id=member.id,
            points=5,
            reason="redemption",
            source_ref=None,
            idempotency_key=idem,
            expires_at=now() + timedelta(hours=1),
        )
    count = (
        await session.execute(
            select(func.count()).where(col(PointsTransaction.idempotency_key) == idem)
        )
    ).scalar_one()
    assert count == 1 and (await member_account(session, member)).balance == 30
    await assert_ledger_sound(session)


async def test_bad_ledger_requests_are_refused_before_anything_is_written(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    for points in (0, -5, True, 10**12):
        with pytest.raises(LedgerRequestInvalid):
            await ledger_service.award(
                session,
                member_id=member.id,
                points=points,
                reason="x",
                source_ref=None,
                idempotency_key=key(),
            )
    with pytest.raises(LedgerRequestInvalid):
        await ledger_service.award(
            session, member_id=member.id, points=1, reason="x", source_ref=None, idempotency_key=""
        )
    with pytest.raises(LedgerRequestInvalid):
        await ledger_service.capture(
            session, hold_id=new_id(), counter_account_code="issuance", idempotency_key=key()
        )
    assert (await ledger_queries.balance(session, member.id)).available == 0


# --- holds ---------------------------------------------------------------------------------


async def test_hold_then_capture_moves_the_points_to_the_center_once(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    await give(session, member, 100)
    holds_before = (await account(session, HOLDS_ACCOUNT_ID)).balance
    held = await hold(session, member, 70)
    assert held.points == 70 and held.member_balance == 30
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held) == (30, 70)
    assert (await account(session, HOLDS_ACCOUNT_ID)).balance == holds_before + 70

    center = f"redemption:{new_id()}"
    fulfil = key("fulfil")
    captured = await ledger_service.capture(
        session, hold_id=held.hold_id, counter_account_code=center, idempotency_key=fulfil
    )
    assert captured.points == 70 and captured.member_balance is None
    counter_id = (
        await session.execute(select(PointsAccount.id).where(col(PointsAccount.code) == center))
    ).scalar_one()
    counter = await account(session, counter_id)
    assert counter.kind == "redemption" and counter.balance == 70
    assert (await account(session, HOLDS_ACCOUNT_ID)).balance == holds_before
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held) == (30, 0)

    # A retry of the capture answers it again; any other settlement is refused.
    again = await ledger_service.capture(
        session, hold_id=held.hold_id, counter_account_code=center, idempotency_key=fulfil
    )
    assert again.replayed and again.transaction_id == captured.transaction_id
    with pytest.raises(HoldNotPending) as refused:
        await ledger_service.capture(
            session, hold_id=held.hold_id, counter_account_code=center, idempotency_key=key()
        )
    assert refused.value.params["state"] == "captured"
    with pytest.raises(HoldNotPending):
        await ledger_service.release(
            session, hold_id=held.hold_id, idempotency_key=key(), reason="cancelled"
        )
    with pytest.raises(HoldNotFound):
        await ledger_service.release(session, hold_id=new_id(), idempotency_key=key(), reason="x")
    stored = await session.get(PointsHold, held.hold_id, populate_existing=True)
    assert stored is not None and stored.state == HoldState.captured
    assert stored.settlement_id == captured.transaction_id
    await assert_ledger_sound(session)


async def test_release_gives_the_points_back_to_the_same_lots(session: AsyncSession) -> None:
    member = await make_member(session)
    soon = now() + timedelta(days=5)
    await give(session, member, 40, expires_at=now() + timedelta(days=90))
    await give(session, member, 30, expires_at=soon)
    held = await hold(session, member, 50)
    later, sooner = sorted(
        await lots_of(session, member), key=lambda lot: -lot.expires_at.timestamp()
    )  # type: ignore[union-attr]
    # The sooner-expiring lot is drawn first, the rest from the other.
    assert (sooner.remaining, later.remaining) == (0, 20)
    drawn = dict(
        (
            await session.execute(
                select(PointsHoldLot.lot_id, PointsHoldLot.points).where(
                    col(PointsHoldLot.hold_id) == held.hold_id
                )
            )
        ).all()
    )
    assert drawn == {sooner.id: 30, later.id: 20}
    released = await ledger_service.release(
        session, hold_id=held.hold_id, idempotency_key=key("cancel"), reason="cancelled"
    )
    assert released.member_balance == 70
    later, sooner = sorted(
        await lots_of(session, member), key=lambda lot: -lot.expires_at.timestamp()
    )  # type: ignore[union-attr]
    assert (sooner.remaining, later.remaining) == (30, 40)
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held) == (70, 0)
    assert balance.expiring_soon == 30 and balance.expiring_at == soon
    await assert_ledger_sound(session)


async def test_a_refused_hold_writes_nothing_and_says_what_is_available(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    idem = key("hold")
    with pytest.raises(InsufficientBalance) as nothing_yet:
        await hold(session, member, 10, idem=idem)
    assert nothing_yet.value.extra() == {"available": 0, "requested": 10}
    await give(session, member, 25)
    with pytest.raises(InsufficientBalance) as short:
        await hold(session, member, 26, idem=idem)
    assert short.value.extra() == {"available": 25, "requested": 26}
    assert (
        await session.execute(
            select(func.count()).where(col(PointsTransaction.idempotency_key) == idem)
        )
    ).scalar_one() == 0
    # The key was not used up by the refusals.
    held = await hold(session, member, 25, idem=idem)
    assert held.member_balance == 0 and not held.replayed
    await assert_ledger_sound(session)


async def test_a_hold_retried_after_the_points_are_gone_is_answered_not_refused(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    await give(session, member, 50)
    expires_at = now() + timedelta(hours=2)
    kwargs: dict[str, Any] = {
        "member_id": member.id,
        "points": 50,
        "reason": "redemption",
        "source_ref": "redemption:r1",
        "idempotency_key": key("hold"),
        "expires_at": expires_at,
    }
    first = await ledger_service.hold(session, **kwargs)
    again = await ledger_service.hold(session, **kwargs)
    assert again.replayed and again.hold_id == first.hold_id
    assert again.transaction_id == first.transaction_id and again.expires_at == expires_at
    with pytest.raises(IdempotencyConflict):
        await ledger_service.hold(session, **{**kwargs, "points": 49})


# --- reversals -----------------------------------------------------------------------------


async def test_an_award_is_reversed_once_only(session: AsyncSession) -> None:
    member = await make_member(session)
    awarded = await give(session, member, 40)
    await give(session, member, 10)
    idem = key("correction")
    reversed_ = await ledger_service.reverse(
        session, transaction_id=awarded.transaction_id, reason="mistake", idempotency_key=idem
    )
    assert reversed_.points == 40 and reversed_.member_balance == 10
    stored = await session.get(PointsTransaction, reversed_.transaction_id)
    assert stored is not None and stored.reverses_id == awarded.transaction_id
    # Mirror postings: member -> issuance; the award's own lot is emptied.
    lots = {lot.transaction_id: lot for lot in await lots_of(session, member)}
    assert lots[awarded.transaction_id].remaining == 0
    again = await ledger_service.reverse(
        session, transaction_id=awarded.transaction_id, reason="mistake", idempotency_key=idem
    )
    assert again.replayed and again.transaction_id == reversed_.transaction_id
    with pytest.raises(AlreadyReversed):
        await ledger_service.reverse(
            session, transaction_id=awarded.transaction_id, reason="mistake", idempotency_key=key()
        )
    with pytest.raises(NotReversible):
        await ledger_service.reverse(
            session,
            transaction_id=reversed_.transaction_id,
            reason="mistake",
            idempotency_key=key(),
        )
    held = await hold(session, member, 5)
    with pytest.raises(NotReversible):
        await ledger_service.reverse(
            session, transaction_id=held.transaction_id, reason="x", idempotency_key=key()
        )
    with pytest.raises(TransactionNotFound):
        await ledger_service.reverse(
            session, transaction_id=new_id(), reason="x", idempotency_key=key()
        )
    assert (await member_account(session, member)).balance == 5
    await assert_ledger_sound(session)


async def test_a_partly_spent_award_is_reversed_only_while_the_member_has_the_points(
    session: AsyncSession,
) -> None:
    member = await make_member(session)
    awarded = await give(session, member, 100)
    held = await hold(session, member, 80)
    with pytest.raises(InsufficientBalance) as refused:
        await ledger_service.reverse(
            session, transaction_id=awarded.transaction_id, reason="mistake", idempotency_key=key()
        )
    assert refused.value.extra() == {"available": 20, "requested": 100}
    await ledger_service.release(
        session, hold_id=held.hold_id, idempotency_key=key(), reason="cancel"
    )
    done = await ledger_service.reverse(
        session, transaction_id=awarded.transaction_id, reason="mistake", idempotency_key=key()
    )
    assert done.member_balance == 0
    await assert_ledger_sound(session)


# --- what the database guarantees on its own ------------------------------------------


async def test_postings_and_transactions_are_append_only(session: AsyncSession) -> None:
    member = await make_member(session)
    awarded = await give(session, member, 10)
    statements = (
        "UPDATE points_posting SET amount = amount + 1 WHERE transaction_id = :id",
        "DELETE FROM points_posting WHERE transaction_id = :id",
        "UPDATE points_transaction SET reason = 'edited' WHERE id = :id",
        "DELETE FROM points_transaction WHERE id = :id",
    )
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(statement), {"id": awarded.transaction_id})
    assert (await member_account(session, member)).balance == 10
    await assert_ledger_sound(session)


async def _unbalanced(session: AsyncSession) -> uuid.UUID:
    """A transaction with a single posting, written by hand, bypassing the service."""
    tx_id = new_id()
    await session.execute(
        text(
            "INSERT INTO points_transaction (id, idempotency_key, request_hash, kind, amount, "
            "reason, created_at) VALUES (:id, :key, :hash, 'award', 5, 'forged', now())"
        ),
        {"id": tx_id, "key": key("forged"), "hash": "0" * 64},
    )
    await session.execute(
        text(
            "INSERT INTO points_posting (id, transaction_id, account_id, amount, balance_after, "
            "seq, created_at) VALUES (:id, :tx, :account, 5, 5, :seq, now())"
        ),
        {"id": new_id(), "tx": tx_id, "account": EXPIRY_ACCOUNT_ID, "seq": -secrets.randbits(40)},
    )
    return tx_id


async def test_an_unbalanced_transaction_is_refused_at_commit(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="unbalanced"):
        async with session.begin_nested():
            await _unbalanced(session)
            # What COMMIT does with deferred constraints, at the end of this savepoint.
            await session.execute(text("SET CONSTRAINTS points_posting_balanced IMMEDIATE"))
    await session.execute(text("SET CONSTRAINTS points_posting_balanced DEFERRED"))


async def test_an_unbalanced_transaction_never_commits(engine: AsyncEngine) -> None:
    factory = create_sessionmaker(engine)
    async with factory() as session:
        tx_id = await _unbalanced(session)
        with pytest.raises(IntegrityError, match="unbalanced"):
            await session.commit()
    async with factory() as session:
        assert await session.get(PointsTransaction, tx_id) is None


async def test_the_database_refuses_a_negative_member_balance(session: AsyncSession) -> None:
    member = await make_member(session)
    await give(session, member, 10)
    acct = await member_account(session, member)
    with pytest.raises(IntegrityError, match="ck_points_account_balance_not_negative"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE points_account SET balance = balance - 11 WHERE id = :id"),
                {"id": acct.id},
            )
    with pytest.raises(IntegrityError, match="ck_points_lot_remaining_within_points"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE points_lot SET remaining = -1 WHERE account_id = :id"),
                {"id": acct.id},
            )
    assert (await member_account(session, member)).balance == 10


# --- lots and expiry -----------------------------------------------------------------------


async def test_spends_draw_the_oldest_lots_first(session: AsyncSession) -> None:
    member = await make_member(session)
    base = now()
    third = await give(session, member, 10, expires_at=base + timedelta(days=30))
    first = await give(session, member, 10, expires_at=base + timedelta(days=10))
    second = await give(session, member, 10, expires_at=base + timedelta(days=20))
    never = await ledger_service.award(
        session,
        member_id=member.id,
        points=10,
        reason="x",
        source_ref=None,
        idempotency_key=key(),
        expires_at=None,
    )
    await hold(session, member, 15)
    remaining = {lot.transaction_id: lot.remaining for lot in await lots_of(session, member)}
    assert remaining[first.transaction_id] == 0
    assert remaining[second.transaction_id] == 5
    assert remaining[third.transaction_id] == 10
    assert remaining[never.transaction_id] == 10
    await hold(session, member, 10)
    remaining = {lot.transaction_id: lot.remaining for lot in await lots_of(session, member)}
    assert remaining[second.transaction_id] == 0 and remaining[third.transaction_id] == 5
    await assert_ledger_sound(session)


async def test_expiry_takes_exactly_what_is_left_and_the_statement_shows_it(
    session: AsyncSession,
) -> None:
    clock.freeze(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    member = await make_member(session)
    expiry_before = (await account(session, EXPIRY_ACCOUNT_ID)).balance
    await give(session, member, 100, expires_at=now() + timedelta(days=10))
    await give(session, member, 50)  # the policy: end of 2027
    held = await hold(session, member, 30, hours=24 * 20)  # drawn from the 100 first
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held, balance.expiring_soon) == (120, 30, 70)
    assert await ledger_service.expire_lots(session, now()) == 0

    clock.advance(timedelta(days=10))
    assert await ledger_service.expire_lots(session, now()) == 1
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held, balance.expiring_soon) == (50, 30, 0)
    assert balance.expiring_at == datetime(2028, 1, 1, tzinfo=SHANGHAI)
    assert (await account(session, EXPIRY_ACCOUNT_ID)).balance == expiry_before + 70
    [latest, *_] = await ledger_queries.entries(session, member.id, limit=10)
    assert (latest.kind, latest.amount, latest.balance, latest.reason) == (
        "expire",
        -70,
        50,
        "expired",
    )
    assert await ledger_service.expire_lots(session, now()) == 0

    # Held points of an expired lot come back to it when released, and expire next run.
    await ledger_service.release(
        session, hold_id=held.hold_id, idempotency_key=key(), reason="cancel"
    )
    assert (await ledger_queries.balance(session, member.id)).available == 80
    assert await ledger_service.expire_lots(session, now()) == 1
    assert (await ledger_queries.balance(session, member.id)).available == 50
    assert (await account(session, EXPIRY_ACCOUNT_ID)).balance == expiry_before + 100
    kinds = [(e.kind, e.amount) for e in await ledger_queries.entries(session, member.id, limit=10)]
    assert kinds == [
        ("expire", -30),
        ("release", 30),
        ("expire", -70),
        ("hold", -30),
        ("award", 50),
        ("award", 100),
    ]
    await assert_ledger_sound(session)


async def test_holds_past_their_expiry_are_released_by_the_worker(session: AsyncSession) -> None:
    member = await make_member(session)
    await give(session, member, 60)
    held = await hold(session, member, 40, hours=1)
    kept = await hold(session, member, 10, hours=48)
    clock.advance(timedelta(hours=2))
    assert await ledger_service.expire_holds(session, now()) >= 1
    stored = await session.get(PointsHold, held.hold_id, populate_existing=True)
    assert stored is not None and stored.state == HoldState.expired
    still = await session.get(PointsHold, kept.hold_id, populate_existing=True)
    assert still is not None and still.state == HoldState.pending
    balance = await ledger_queries.balance(session, member.id)
    assert (balance.available, balance.held) == (50, 10)
    with pytest.raises(HoldNotPending) as late:
        await ledger_service.capture(
            session,
            hold_id=held.hold_id,
            counter_account_code=f"redemption:{new_id()}",
            idempotency_key=key(),
        )
    assert late.value.params["state"] == "expired"
    [latest, _, placed, *_] = await ledger_queries.entries(session, member.id)
    assert (latest.kind, latest.reason, latest.amount) == ("release", "hold_expired", 40)
    # What the hold was for, on both of its lines of the statement.
    assert latest.source_ref == placed.source_ref and placed.source_ref.startswith("redemption:")
    await assert_ledger_sound(session)


# --- earning rules and the daily cap -------------------------------------------------------


async def _rule(session: AsyncSession, points: int, daily_cap: int | None) -> str:
    activity_type = f"cleanup_{secrets.token_hex(3)}"
    session.add(PointsEarningRule(activity_type=activity_type, points=points, daily_cap=daily_cap))
    await session.flush()
    return activity_type


async def test_the_daily_cap_limits_what_an_activity_awards(session: AsyncSession) -> None:
    clock.freeze(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai
    member = await make_member(session)
    activity = await _rule(session, points=20, daily_cap=50)

    async def attend(idem: str | None = None) -> ledger_service.ActivityAward:
        return await ledger_service.award_for_activity(
            session,
            member_id=member.id,
            activity_type=activity,
            source_ref=f"attendance:{new_id()}" if idem is None else "attendance:fixed",
            idempotency_key=idem or key("attendance"),
        )

    outcomes = [await attend() for _ in range(3)]
    assert [(a.outcome, a.points) for a in outcomes] == [
        (ActivityOutcome.awarded, 20),
        (ActivityOutcome.awarded, 20),
        (ActivityOutcome.capped, 10),
    ]
    idem = key("attendance")
    full = await attend(idem)
    assert (full.outcome, full.points, full.result.replayed) == (
        ActivityOutcome.cap_reached,
        0,
        False,
    )
    again = await attend(idem)
    assert (again.outcome, again.points, again.result.replayed) == (
        ActivityOutcome.cap_reached,
        0,
        True,
    )
    assert (await ledger_queries.balance(session, member.id)).available == 50
    # A reversed award no longer counts against the cap.
    await ledger_service.reverse(
        session,
        transaction_id=outcomes[0].result.transaction_id,
        reason="mistake",
        idempotency_key=key(),
    )
    assert (await attend()).points == 20
    # A new day (Shanghai midnight is 16:00 UTC) starts a new cap.
    clock.advance(timedelta(hours=15))
    assert (await attend()).outcome == ActivityOutcome.awarded
    replayed = await ledger_service.award_for_activity(
        session,
        member_id=member.id,
        activity_type=activity,
        source_ref="attendance:fixed",
        idempotency_key=idem,
    )
    assert replayed.outcome == ActivityOutcome.cap_reached and replayed.result.replayed
    no_rule = await ledger_service.award_for_activity(
        session,
        member_id=member.id,
        activity_type="no_such_activity",
        source_ref=None,
        idempotency_key=key(),
    )
    assert (no_rule.outcome, no_rule.points) == (ActivityOutcome.no_rule, 0)
    with pytest.raises(NotReversible):
        await ledger_service.reverse(
            session,
            transaction_id=no_rule.result.transaction_id,
            reason="x",
            idempotency_key=key(),
        )
    assert (await ledger_queries.balance(session, member.id)).available == 50 - 20 + 20 + 20
    await assert_ledger_sound(session)


async def test_only_city_admins_set_the_earning_rules(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    city = bearer(await login("demo-city-admin"))
    body = {
        "rules": [
            {"activity_type": "community_cleanup", "points": 20, "daily_cap": 40},
            {"activity_type": "elderly_visit", "points": 30},
        ]
    }
    saved = await client.put("/v1/admin/points/earning-rules", json=body, headers=city)
    assert saved.status_code == 200, saved.text
    rules = {r["activity_type"]: r for r in saved.json()}
    assert rules["community_cleanup"]["daily_cap"] == 40 and rules["elderly_visit"]["active"]
    # Rules left out are deactivated, not deleted.
    body = {"rules": [{"activity_type": "community_cleanup", "points": 25, "daily_cap": None}]}
    saved = await client.put("/v1/admin/points/earning-rules", json=body, headers=city)
    rules = {r["activity_type"]: r for r in saved.json()}
    assert rules["community_cleanup"]["points"] == 25
    assert rules["community_cleanup"]["daily_cap"] is None
    assert rules["elderly_visit"]["active"] is False
    listed = await client.get("/v1/admin/points/earning-rules", headers=city)
    assert listed.status_code == 200 and listed.json() == saved.json()

    duplicate = {
        "rules": [
            {"activity_type": "elderly_visit", "points": 1},
            {"activity_type": "elderly_visit", "points": 2},
        ]
    }
    assert_problem(
        await client.put("/v1/admin/points/earning-rules", json=duplicate, headers=city),
        422,
        "points.earning_rule_duplicate",
    )
    invalid = {"rules": [{"activity_type": "Bad Type", "points": 0}]}
    assert_problem(
        await client.put("/v1/admin/points/earning-rules", json=invalid, headers=city),
        422,
        "request.invalid",
    )
    district = bearer(await login("demo-district-admin"))
    assert_problem(
        await client.put("/v1/admin/points/earning-rules", json=body, headers=district),
        403,
        "points.earning_rules_admin_only",
    )
    resident = bearer(await login("demo-resident"))
    assert_problem(
        await client.get("/v1/admin/points/earning-rules", headers=resident),
        403,
        "points.earning_rules_admin_only",
    )


# --- the statement over HTTP ---------------------------------------------------------------


async def test_members_see_their_own_balance_and_statement(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    me = uuid.UUID(tokens["user"]["id"])
    resident = await session.get(User, me)
    assert resident is not None
    for points in (10, 20, 30):
        await give(session, resident, points)
    await hold(session, resident, 25)
    await session.commit()

    headers = bearer(tokens)
    got = await client.get("/v1/points/balance", headers=headers)
    assert got.status_code == 200, got.text
    assert got.json()["available"] == 35 and got.json()["held"] == 25
    assert got.json()["expiring_soon"] == 0 and got.json()["expiring_at"] is not None

    first = await client.get("/v1/points/entries", params={"limit": 3}, headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [(e["kind"], e["amount"], e["balance"]) for e in page["items"]] == [
        ("hold", -25, 35),
        ("award", 30, 60),
        ("award", 20, 30),
    ]
    assert page["items"][0]["reason"] == "redemption"
    assert page["items"][0]["source_ref"].startswith("redemption:")
    second = await client.get(
        "/v1/points/entries",
        params={"limit": 3, "cursor": page["next_cursor"]},
        headers=headers,
    )
    rest = second.json()
    assert [(e["kind"], e["amount"], e["balance"]) for e in rest["items"]] == [("award", 10, 10)]
    assert rest["next_cursor"] is None

    # Someone else sees only their own (nothing), whatever cursor they send.
    other = bearer(await login("demo-resident-2"))
    assert (await client.get("/v1/points/balance", headers=other)).json()["available"] == 0
    theirs = await client.get(
        "/v1/points/entries", params={"cursor": page["next_cursor"]}, headers=other
    )
    assert theirs.status_code == 200 and theirs.json()["items"] == []
    assert_problem(await client.get("/v1/points/balance"), 401, "auth.unauthenticated")
    assert_problem(
        await client.get("/v1/points/entries", params={"cursor": "%%%"}, headers=headers),
        400,
        "request.cursor_invalid",
    )


# --- concurrency on the real database ------------------------------------------------------


async def _committed_member(engine: AsyncEngine, points: int) -> User:
    async with create_sessionmaker(engine)() as session:
        member = await make_member(session)
        if points:
            await give(session, member, points)
        await session.commit()
    return member


async def test_parallel_holds_never_overdraw(engine: AsyncEngine) -> None:
    member = await _committed_member(engine, 100)
    factory = create_sessionmaker(engine)

    async def try_hold() -> str:
        async with factory() as session:
            try:
                await hold(session, member, 10)
                await session.commit()
                return "held"
            except InsufficientBalance as refused:
                await session.rollback()
                assert refused.code == "points.insufficient_balance"
                assert refused.extra()["available"] < 10
                return "refused"

    outcomes = await asyncio.gather(*(try_hold() for _ in range(24)))
    assert outcomes.count("held") == 10 and outcomes.count("refused") == 14
    async with factory() as session:
        balance = await ledger_queries.balance(session, member.id)
        assert (balance.available, balance.held) == (0, 100)
        await assert_ledger_sound(session)


async def test_concurrent_writers_neither_deadlock_nor_lose_updates(engine: AsyncEngine) -> None:
    """Awards, holds, captures to one counter and releases on a few members, all at once."""
    members = [await _committed_member(engine, 50) for _ in range(4)]
    counter = f"redemption:{new_id()}"
    factory = create_sessionmaker(engine)
    errors: list[BaseException] = []

    async def worker(member: User, rounds: int) -> int:
        captured = 0
        for i in range(rounds):
            async with factory() as session:
                try:
                    await give(session, member, 5)
                    held = await hold(session, member, 7)
                    if i % 2:
                        await ledger_service.capture(
                            session,
                            hold_id=held.hold_id,
                            counter_account_code=counter,
                            idempotency_key=key("fulfil"),
                        )
                        captured += 7
                    else:
                        await ledger_service.release(
                            session, hold_id=held.hold_id, idempotency_key=key(), reason="x"
                        )
                    await session.commit()
                except InsufficientBalance:
                    await session.rollback()
                except BaseException as error:  # a deadlock or lost update would land here
                    errors.append(error)
                    raise
        return captured

    captured = await asyncio.gather(*(worker(m, 6) for m in members for _ in range(3)))
    assert not errors
    async with factory() as session:
        total = sum([(await ledger_queries.balance(session, m.id)).available for m in members])
        counter_balance = (
            await session.execute(
                select(PointsAccount.balance).where(col(PointsAccount.code) == counter)
            )
        ).scalar_one()
        assert counter_balance == sum(captured)
        # 4 members x 50, plus 5 per round for 4 x 3 x 6 rounds, less what was captured.
        assert total == 4 * 50 + 5 * 4 * 3 * 6 - sum(captured)
        await assert_ledger_sound(session)


async def test_a_hold_is_settled_exactly_once_under_contention(engine: AsyncEngine) -> None:
    member = await _committed_member(engine, 100)
    factory = create_sessionmaker(engine)
    async with factory() as session:
        held = await hold(session, member, 60)
        await session.commit()
    counter = f"redemption:{new_id()}"
    same_key = key("fulfil")

    async def settle_it(i: int) -> str:
        async with factory() as session:
            try:
                if i % 3 == 0:
                    result = await ledger_service.release(
                        session, hold_id=held.hold_id, idempotency_key=key(), reason="cancel"
                    )
                else:
                    # Two in three are retries of one capture, sent at once.
                    result = await ledger_service.capture(
                        session,
                        hold_id=held.hold_id,
                        counter_account_code=counter,
                        idempotency_key=same_key,
                    )
                await session.commit()
                return f"{result.kind}:{'replayed' if result.replayed else 'applied'}"
            except HoldNotPending:
                await session.rollback()
                return "not_pending"

    outcomes = await asyncio.gather(*(settle_it(i) for i in range(12)))
    applied = [o for o in outcomes if o.endswith(":applied")]
    assert len(applied) == 1, outcomes
    if applied == ["capture:applied"]:
        # Every retry of the capture got its answer; every release was refused.
        assert outcomes.count("capture:replayed") == 7 and outcomes.count("not_pending") == 4
    else:
        # The other releases and every capture (retries included) were refused.
        assert outcomes.count("not_pending") == 11
    async with factory() as session:
        settled = await session.get(PointsHold, held.hold_id)
        assert settled is not None and settled.state != HoldState.pending
        await assert_ledger_sound(session)


async def test_awards_to_several_members_in_one_transaction_do_not_deadlock(
    engine: AsyncEngine,
) -> None:
    """Transactions that award the same members in opposite orders, after lock_members."""
    members = [await _committed_member(engine, 0) for _ in range(3)]
    factory = create_sessionmaker(engine)

    async def batch(order: list[User]) -> None:
        async with factory() as session:
            await ledger_service.lock_members(session, [m.id for m in order])
            for member in order:
                await give(session, member, 1)
            await session.commit()

    orders = [members, list(reversed(members))] * 6
    await asyncio.gather(*(batch(order) for order in orders))
    async with factory() as session:
        for member in members:
            assert (await ledger_queries.balance(session, member.id)).available == 12
        await assert_ledger_sound(session)
