"""The ledger's invariants over random sequences of award, hold, capture, release, reverse,
expire and replays, checked after every step against the database and a model of the lots.

Each example works on a fresh member inside a savepoint of the test's transaction, rolled
back at its end, with the clock frozen and moved by the example itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import clock, now
from backend.core.ids import new_id
from points.ledger import queries as ledger_queries
from points.ledger import service as ledger_service
from points.ledger.errors import (
    AlreadyReversed,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientBalance,
)
from points.models import PointsAccount, PointsLot, PointsTransaction
from tests.factories.points import ledger_violations, make_member

START = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
COUNTER = "redemption:property-test-center"


@dataclass
class Lot:
    id: uuid.UUID
    remaining: int
    expires_at: datetime | None

    def order(self) -> tuple[int, datetime, uuid.UUID]:
        # Oldest first: by expiry (never-expiring last), then id.
        return (self.expires_at is None, self.expires_at or START, self.id)


@dataclass
class Hold:
    id: uuid.UUID
    points: int
    expires_at: datetime
    drawn: dict[uuid.UUID, int]
    state: str = "pending"


@dataclass
class Model:
    """What the ledger should hold for the example's member."""

    lots: dict[uuid.UUID, Lot] = field(default_factory=dict)
    holds: list[Hold] = field(default_factory=list)
    awards: list[tuple[uuid.UUID, int, uuid.UUID]] = field(default_factory=list)
    reversed: set[uuid.UUID] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)

    @property
    def available(self) -> int:
        return sum(lot.remaining for lot in self.lots.values())

    @property
    def held(self) -> int:
        return sum(h.points for h in self.holds if h.state == "pending")

    def draw(self, points: int, first: uuid.UUID | None = None) -> dict[uuid.UUID, int]:
        drawn: dict[uuid.UUID, int] = {}
        candidates = sorted(
            (lot for lot in self.lots.values() if lot.remaining > 0),
            key=lambda lot: (lot.id != first, *lot.order()),
        )
        for lot in candidates:
            if points == 0:
                break
            take = min(lot.remaining, points)
            lot.remaining -= take
            points -= take
            drawn[lot.id] = take
        assert points == 0
        return drawn

    def settle(self, held: Hold, state: str) -> None:
        held.state = state
        if state in ("released", "expired"):
            for lot_id, points in held.drawn.items():
                self.lots[lot_id].remaining += points


# A step: (operation, a number, another number); what the numbers mean depends on it.
STEPS = st.tuples(
    st.sampled_from(
        ["award", "award", "hold", "hold", "capture", "release", "reverse", "expire", "replay"]
    ),
    st.integers(min_value=1, max_value=120),
    st.integers(min_value=0, max_value=40),
)


async def _lot_of(session: AsyncSession, transaction_id: uuid.UUID) -> PointsLot:
    lot = (
        await session.execute(
            select(PointsLot).where(col(PointsLot.transaction_id) == transaction_id)
        )
    ).scalar_one()
    return lot


async def _step(
    session: AsyncSession, model: Model, member_id: uuid.UUID, op: str, a: int, b: int
) -> None:
    if op == "award":
        # b: 0 for the policy's expiry, else that many days from now.
        kwargs: dict[str, Any] = {
            "member_id": member_id,
            "points": a,
            "reason": "volunteer_service",
            "source_ref": f"attendance:{new_id()}",
            "idempotency_key": f"award:{new_id()}",
            "expires_at": now() + timedelta(days=b) if b else None,
        }
        result = await ledger_service.award(session, **kwargs)
        lot = await _lot_of(session, result.transaction_id)
        model.lots[lot.id] = Lot(lot.id, a, lot.expires_at)
        model.awards.append((result.transaction_id, a, lot.id))
        model.calls.append(("award", kwargs, result))
        assert result.member_balance == model.available
    elif op == "hold":
        kwargs = {
            "member_id": member_id,
            "points": a,
            "reason": "redemption",
            "source_ref": f"redemption:{new_id()}",
            "idempotency_key": f"hold:{new_id()}",
            "expires_at": now() + timedelta(hours=b + 1),
        }
        available = model.available
        if a > available:
            try:
                await ledger_service.hold(session, **kwargs)
            except InsufficientBalance as refused:
                assert refused.extra() == {"available": available, "requested": a}
            else:
                raise AssertionError("a hold beyond the balance was accepted")
            return
        result = await ledger_service.hold(session, **kwargs)
        model.holds.append(Hold(result.hold_id, a, kwargs["expires_at"], model.draw(a)))
        model.calls.append(("hold", kwargs, result))
    elif op in ("capture", "release"):
        if not model.holds:
            return
        held = model.holds[a % len(model.holds)]
        kwargs = {"hold_id": held.id, "idempotency_key": f"{op}:{new_id()}"}
        if op == "capture":
            kwargs["counter_account_code"] = COUNTER
        else:
            kwargs["reason"] = "cancelled"
        call = ledger_service.capture if op == "capture" else ledger_service.release
        if held.state != "pending":
            try:
                await call(session, **kwargs)
            except HoldNotPending as refused:
                assert refused.params["state"] == held.state
            else:
                raise AssertionError("a settled hold was settled again")
            return
        result = await call(session, **kwargs)
        model.settle(held, "captured" if op == "capture" else "released")
        model.calls.append((op, kwargs, result))
    elif op == "reverse":
        if not model.awards:
            return
        transaction_id, points, lot_id = model.awards[a % len(model.awards)]
        kwargs = {
            "transaction_id": transaction_id,
            "reason": "mistake",
            "idempotency_key": f"reverse:{new_id()}",
        }
        if transaction_id in model.reversed:
            try:
                await ledger_service.reverse(session, **kwargs)
            except AlreadyReversed:
                return
            raise AssertionError("an award was reversed twice")
        available = model.available
        if points > available:
            try:
                await ledger_service.reverse(session, **kwargs)
            except InsufficientBalance as refused:
                assert refused.extra() == {"available": available, "requested": points}
            else:
                raise AssertionError("a reversal beyond the balance was accepted")
            return
        result = await ledger_service.reverse(session, **kwargs)
        model.draw(points, first=lot_id)
        model.reversed.add(transaction_id)
        model.calls.append(("reverse", kwargs, result))
    elif op == "expire":
        clock.advance(timedelta(days=b, hours=a % 24))
        at = now()
        await ledger_service.expire_holds(session, at)
        for held in model.holds:
            if held.state == "pending" and held.expires_at <= at:
                model.settle(held, "expired")
        await ledger_service.expire_lots(session, at)
        for lot in model.lots.values():
            if lot.expires_at is not None and lot.expires_at <= at:
                lot.remaining = 0
    elif op == "replay":
        if not model.calls:
            return
        name, kwargs, first = model.calls[a % len(model.calls)]
        call = getattr(ledger_service, name)
        again = await call(session, **kwargs)
        assert again.replayed and again.transaction_id == first.transaction_id
        # The same key with another request is refused, and applies nothing either.
        changed = dict(kwargs)
        if "points" in changed:
            changed["points"] += 1
        elif "counter_account_code" in changed:
            changed["counter_account_code"] = "redemption:elsewhere"
        else:
            changed["reason"] = "other"
        try:
            await call(session, **changed)
        except IdempotencyConflict:
            pass
        else:
            raise AssertionError("a key was applied to a different request")


async def _check(session: AsyncSession, model: Model, member_id: uuid.UUID) -> None:
    violations = await ledger_violations(session)
    assert not any(violations.values()), violations
    balance = await ledger_queries.balance(session, member_id)
    assert (balance.available, balance.held) == (model.available, model.held)
    rows = await session.execute(
        select(PointsLot.id, PointsLot.remaining)
        .join(PointsAccount, col(PointsAccount.id) == col(PointsLot.account_id))
        .where(col(PointsAccount.owner_id) == member_id)
    )
    stored = {lot_id: remaining for lot_id, remaining in rows.all()}
    assert stored == {lot.id: lot.remaining for lot in model.lots.values()}
    # Each key applied once: one transaction per successful call, whatever was replayed.
    keys = [kwargs["idempotency_key"] for _, kwargs, _ in model.calls]
    if keys:
        count = (
            await session.execute(
                select(func.count()).where(col(PointsTransaction.idempotency_key).in_(keys))
            )
        ).scalar_one()
        assert count == len(set(keys)) == len(keys)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=14))
async def test_the_ledger_keeps_its_invariants(
    session: AsyncSession, steps: list[tuple[str, int, int]]
) -> None:
    clock.freeze(START)
    savepoint = await session.begin_nested()
    try:
        member = await make_member(session)
        model = Model()
        for op, a, b in steps:
            await _step(session, model, member.id, op, a, b)
            await _check(session, model, member.id)
    finally:
        await savepoint.rollback()
        clock.reset()
