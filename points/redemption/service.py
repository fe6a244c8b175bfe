"""Redemption: reserving points and stock, the counter, and settling (fulfil, cancel, expire).

A redemption reserves stock and holds the member's points in one transaction, and gives a
pickup code; staff of that center fulfil it (the stock leaves, the hold is captured to the
center's redemption account), or the member cancels it, or it expires, and both come back.
At the counter, staff redeem in one step with the member's rotating code.

Overselling is impossible by construction: stock is reserved by one conditional UPDATE, and
the database's checks refuse `reserved > on_hand` and negative amounts whatever the code does.

Locks are always taken in the same order, so concurrent requests queue and never deadlock:
a member's advisory lock (serialises that member's redemptions, which makes the per-member
limit exact), then the redemption row, then the stock row, then the ledger's accounts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.auth.principal import Principal
from backend.core.clock import now
from backend.core.database import insert_unique, violated_constraint
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.ids import new_id
from backend.core.pagination import keyset
from points.ledger import service as ledger_service
from points.ledger.errors import HoldNotPending, IdempotencyConflict
from points.models import (
    LimitPeriod,
    Redemption,
    RedemptionChannel,
    RedemptionState,
    Reward,
    RewardStock,
    ServiceCenter,
)
from points.redemption import schemas
from points.redemption.catalog import (
    PERIOD_ZH,
    STAFF_ROLES,
    center_in_scope,
    counted_use,
    counter_account,
    is_available,
)
from points.redemption.codes import PICKUP_CODE, PICKUP_CODE_ATTEMPTS, Signer, new_pickup_code
from points.redemption.errors import (
    MemberCodeInvalid,
    OutOfStock,
    OwnRedemption,
    RedemptionLimitReached,
    RedemptionNotFound,
    RedemptionNotPending,
    RewardNotAvailable,
    RewardNotFound,
    ServiceCenterClosed,
    ServiceCenterNotFound,
)
from points.redemption.export import STATE_ZH

log = logging.getLogger("shanzhi.points")


HOLD_GRACE = timedelta(days=1)


IDEMPOTENCY_CONSTRAINT = "uq_points_redemption_requested_by"


PICKUP_CODE_CONSTRAINT = "uq_points_redemption_pending_code"


# --- redeeming -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    redemption: Redemption
    replayed: bool  # an earlier request with the same key, answered again


async def _lock_member(session: AsyncSession, member_id: uuid.UUID) -> None:
    """Serialise one member's redemptions (until the transaction ends)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"points.redemption:{member_id}"},
    )


def _replay(earlier: Redemption, digest: str) -> Outcome:
    return Outcome(earlier, replayed=True)


async def _redeemable(
    session: AsyncSession,
    member_id: uuid.UUID,
    reward_id: uuid.UUID,
    center: ServiceCenter,
    quantity: int,
    at: datetime,
) -> Reward:
    """The reward, if it may be redeemed now, here, in this quantity, by this member."""
    reward = await session.get(Reward, reward_id)
    if reward is None:
        raise RewardNotFound()
    if not center.active:
        raise ServiceCenterClosed()
    if not is_available(reward, at):
        raise RewardNotAvailable()
    if reward.limit_count is not None and reward.limit_period is not None:
        used = (await counted_use(session, member_id, [reward], at)).get(reward.id, 0)
        left = max(reward.limit_count - used, 0)
        if quantity > left:
            period = LimitPeriod(reward.limit_period)
            raise RedemptionLimitReached(
                limit=reward.limit_count,
                left=left,
                period=period.value,
                period_zh=PERIOD_ZH[period.value],
            )
    return reward


def _stock_table() -> Any:
    return RewardStock.__table__  # type: ignore[attr-defined]


async def _reserve(
    session: AsyncSession, reward_id: uuid.UUID, center_id: uuid.UUID, quantity: int
) -> None:
    """Reserve `quantity` items in one conditional UPDATE, or refuse: out of stock."""
    stock = _stock_table()
    reserved = await session.execute(
        update(stock)
        .where(
            stock.c.reward_id == reward_id,
            stock.c.center_id == center_id,
            stock.c.on_hand - stock.c.reserved >= quantity,
        )
        .values(reserved=stock.c.reserved + quantity, updated_at=now())
    )
    if reserved.rowcount != 1:  # type: ignore[attr-defined]
        raise OutOfStock()


async def _take_free(
    session: AsyncSession, reward_id: uuid.UUID, center_id: uuid.UUID, quantity: int
) -> None:
    """Hand out `quantity` unreserved items at the counter, or refuse: out of stock."""
    stock = _stock_table()
    taken = await session.execute(
        update(stock)
        .where(
            stock.c.reward_id == reward_id,
            stock.c.center_id == center_id,
            stock.c.on_hand - stock.c.reserved >= quantity,
        )
        .values(on_hand=stock.c.on_hand - quantity, updated_at=now())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise OutOfStock()


async def _settle_stock(session: AsyncSession, redemption: Redemption, *, handed_out: bool) -> None:
    """The reserved items leave the shelf (fulfilled) or become free again (not)."""
    stock = _stock_table()
    q = redemption.quantity
    values: dict[str, Any] = {"reserved": stock.c.reserved - q, "updated_at": now()}
    if handed_out:
        values["on_hand"] = stock.c.on_hand - q
    settled = await session.execute(
        update(stock)
        .where(
            stock.c.reward_id == redemption.reward_id,
            stock.c.center_id == redemption.center_id,
            stock.c.reserved >= q,
        )
        .values(**values)
    )
    if settled.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"stock of redemption {redemption.id} is not reserved")


async def _insert(session: AsyncSession, make: Any) -> Redemption:
    """Insert the redemption, drawing another pickup code if the center has it pending."""
    for attempt in range(PICKUP_CODE_ATTEMPTS):
        redemption: Redemption = make(new_pickup_code())
        last = attempt == PICKUP_CODE_ATTEMPTS - 1
        if await insert_unique(session, redemption, races=() if last else {PICKUP_CODE_CONSTRAINT}):
            return redemption
    raise AssertionError("unreachable: the last attempt raises")


async def create_redemption(
    session: AsyncSession,
    *,
    signer: Signer,
    member_id: uuid.UUID,
    body: schemas.RedemptionCreate,
    idempotency_key: str | None,
    pickup_hours: int,
) -> Outcome:
    """Reserve a reward for the member and hold its points; or answer the earlier request.

    Checks, in order: the reward exists (404), the center is open (404/409), the reward is
    in its active window (409), the member's limit (409); then reserves the stock (409
    `points.out_of_stock`) and holds the points (409 `points.insufficient_balance`). Any
    refusal rolls the whole transaction back, the reservation included.
    """
    key = check_idempotency_key(idempotency_key)
    digest = request_hash("redeem", body.model_dump(mode="json"))
    await _lock_member(session, member_id)
    earlier = await earlier_request(
        session, Redemption.requested_by, member_id, key, digest, IdempotencyConflict
    )
    if earlier is not None:
        return _replay(earlier, digest)
    at = now()
    center = await session.get(ServiceCenter, body.center)
    if center is None:
        raise ServiceCenterNotFound()
    reward = await _redeemable(session, member_id, body.reward, center, body.quantity, at)
    redemption_id = new_id()
    expires_at = at + timedelta(hours=pickup_hours)
    points_total = reward.price * body.quantity
    await _reserve(session, reward.id, center.id, body.quantity)
    held = await ledger_service.hold(
        session,
        member_id=member_id,
        points=points_total,
        reason="redemption",
        source_ref=f"redemption:{redemption_id}",
        idempotency_key=f"redemption:{redemption_id}:hold",
        # The redemption expires first (the worker releases the hold then); the ledger's
        # own hold expiry is only a safety net.
        expires_at=expires_at + HOLD_GRACE,
    )
    redemption = await _insert(
        session,
        lambda code: Redemption(
            id=redemption_id,
            member_id=member_id,
            reward_id=reward.id,
            center_id=center.id,
            quantity=body.quantity,
            unit_price=reward.price,
            points_total=points_total,
            channel=RedemptionChannel.app,
            state=RedemptionState.pending,
            hold_id=held.hold_id,
            pickup_code=code,
            qr_payload=signer.qr_payload(redemption_id),
            requested_by=member_id,
            idempotency_key=key,
            request_hash=digest,
            expires_at=expires_at,
            created_at=at,
        ),
    )
    return Outcome(redemption, replayed=False)


async def counter_redemption(
    session: AsyncSession,
    *,
    signer: Signer,
    principal: Principal,
    body: schemas.CounterRedemptionCreate,
    idempotency_key: str | None,
) -> Outcome:
    """Redeem in one step at the counter: the member shows their code, staff hand it out.

    The same checks as a reservation, then the stock leaves the shelf and the points are
    held and captured at once, in one transaction. Only staff of that center may (404 for
    anyone else), and never for themselves. A retry with the same key answers the first
    result even after the member's code has expired.
    """
    key = check_idempotency_key(idempotency_key)
    digest = request_hash("counter", body.model_dump(mode="json"))
    earlier = await earlier_request(
        session, Redemption.requested_by, principal.user_id, key, digest, IdempotencyConflict
    )
    if earlier is not None:
        return _replay(earlier, digest)
    center = await center_in_scope(session, principal, body.center, STAFF_ROLES)
    if center is None:
        raise ServiceCenterNotFound()
    at = now()
    member_id = signer.read_member_code(body.member_code, at)
    if member_id == principal.user_id:
        raise OwnRedemption()
    member = await session.get(User, member_id)
    if member is None or not member.is_active:
        raise MemberCodeInvalid()
    await _lock_member(session, member_id)
    try:
        async with session.begin_nested():
            # A retry may have been waiting on the member's lock while the first committed.
            earlier = await earlier_request(
                session,
                Redemption.requested_by,
                principal.user_id,
                key,
                digest,
                IdempotencyConflict,
            )
            if earlier is not None:
                return _replay(earlier, digest)
            reward = await _redeemable(session, member_id, body.reward, center, body.quantity, at)
            redemption_id = new_id()
            points_total = reward.price * body.quantity
            await _take_free(session, reward.id, center.id, body.quantity)
            held = await ledger_service.hold(
                session,
                member_id=member_id,
                points=points_total,
                reason="redemption",
                source_ref=f"redemption:{redemption_id}",
                idempotency_key=f"redemption:{redemption_id}:hold",
                expires_at=at + timedelta(minutes=5),
            )
            captured = await ledger_service.capture(
                session,
                hold_id=held.hold_id,
                counter_account_code=counter_account(center.id),
                idempotency_key=f"redemption:{redemption_id}:fulfil",
            )
            redemption = await _insert(
                session,
                lambda code: Redemption(
                    id=redemption_id,
                    member_id=member_id,
                    reward_id=reward.id,
                    center_id=center.id,
                    quantity=body.quantity,
                    unit_price=reward.price,
                    points_total=points_total,
                    channel=RedemptionChannel.counter,
                    state=RedemptionState.fulfilled,
                    hold_id=held.hold_id,
                    settled_transaction_id=captured.transaction_id,
                    pickup_code=code,
                    qr_payload=signer.qr_payload(redemption_id),
                    requested_by=principal.user_id,
                    idempotency_key=key,
                    request_hash=digest,
                    expires_at=at,
                    fulfilled_at=at,
                    fulfilled_by=principal.user_id,
                    created_at=at,
                ),
            )
    except IntegrityError as error:
        if violated_constraint(error) != IDEMPOTENCY_CONSTRAINT:
            raise
        # The same key, sent meanwhile for another member (a different request): ours was
        # undone with its savepoint; the first one stands.
        winner = await earlier_request(
            session, Redemption.requested_by, principal.user_id, key, digest, IdempotencyConflict
        )
        assert winner is not None, "the unique key was taken, so its row exists"
        return _replay(winner, digest)
    return Outcome(redemption, replayed=False)


# --- reading redemptions -------------------------------------------------------------------


async def redemption_views(
    session: AsyncSession, redemptions: Sequence[Redemption]
) -> list[schemas.RedemptionOut]:
    """The read model of redemptions, with their rewards and centers (two queries at most)."""
    reward_ids = {r.reward_id for r in redemptions}
    center_ids = {r.center_id for r in redemptions}
    rewards: dict[uuid.UUID, Reward] = {}
    centers: dict[uuid.UUID, ServiceCenter] = {}
    if reward_ids:
        found = await session.execute(select(Reward).where(col(Reward.id).in_(reward_ids)))
        rewards = {r.id: r for r in found.scalars()}
    if center_ids:
        found_centers = await session.execute(
            select(ServiceCenter).where(col(ServiceCenter.id).in_(center_ids))
        )
        centers = {c.id: c for c in found_centers.scalars()}
    return [_view(r, rewards[r.reward_id], centers[r.center_id]) for r in redemptions]


def _view(redemption: Redemption, reward: Reward, center: ServiceCenter) -> schemas.RedemptionOut:
    pending = redemption.state == RedemptionState.pending
    return schemas.RedemptionOut(
        id=redemption.id,
        reward=schemas.RewardBrief(id=reward.id, name=reward.name, name_en=reward.name_en),
        center=schemas.CenterBrief(
            id=center.id,
            code=center.code,
            name=center.name,
            name_en=center.name_en,
            address=center.address,
        ),
        quantity=redemption.quantity,
        unit_price=redemption.unit_price,
        points_total=redemption.points_total,
        channel=RedemptionChannel(redemption.channel),
        state=RedemptionState(redemption.state),
        # Once settled, the code may be drawn again for someone else: no longer shown.
        pickup_code=redemption.pickup_code if pending else None,
        qr_payload=redemption.qr_payload if pending else None,
        expires_at=redemption.expires_at,
        created_at=redemption.created_at,
        fulfilled_at=redemption.fulfilled_at,
        cancelled_at=redemption.cancelled_at,
        expired_at=redemption.expired_at,
    )


async def redemption_view(session: AsyncSession, redemption: Redemption) -> schemas.RedemptionOut:
    return (await redemption_views(session, [redemption]))[0]


async def my_redemptions(
    session: AsyncSession,
    member_id: uuid.UUID,
    *,
    state: RedemptionState | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Redemption]:
    """The member's redemptions, newest first (ids are time-ordered)."""
    query = select(Redemption).where(col(Redemption.member_id) == member_id).limit(limit)
    if state is not None:
        query = query.where(col(Redemption.state) == state)
    query = keyset(query, col(Redemption.id), after)
    return list((await session.execute(query)).scalars())


async def my_redemption(
    session: AsyncSession, member_id: uuid.UUID, redemption_id: uuid.UUID, *, lock: bool = False
) -> Redemption:
    query = select(Redemption).where(
        col(Redemption.id) == redemption_id, col(Redemption.member_id) == member_id
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    redemption = (await session.execute(query)).scalar_one_or_none()
    if redemption is None:
        raise RedemptionNotFound()
    return redemption


# --- settling: cancel, expire, fulfil ------------------------------------------------------


def _not_pending(redemption: Redemption) -> RedemptionNotPending:
    state = RedemptionState(redemption.state)
    return RedemptionNotPending(state=state.value, state_zh=STATE_ZH[state])


async def _give_back(
    session: AsyncSession, redemption: Redemption, state: RedemptionState, at: datetime
) -> None:
    """Free the reserved stock and release the hold: the member has the points back."""
    await _settle_stock(session, redemption, handed_out=False)
    why = "cancel" if state is RedemptionState.cancelled else "expire"
    try:
        released = await ledger_service.release(
            session,
            hold_id=redemption.hold_id,
            idempotency_key=f"redemption:{redemption.id}:{why}",
            reason=f"redemption_{state.value}",
        )
        redemption.settled_transaction_id = released.transaction_id
    except HoldNotPending:
        # The ledger's own hold expiry (a safety net, a day after the pickup deadline) gave
        # the points back already; the stock is still ours to return.
        log.warning("hold of redemption %s was already settled by the ledger", redemption.id)
    redemption.state = state
    if state is RedemptionState.cancelled:
        redemption.cancelled_at = at
    else:
        redemption.expired_at = at
    redemption.updated_at = at
    await session.flush()


async def cancel_redemption(
    session: AsyncSession, member_id: uuid.UUID, redemption_id: uuid.UUID
) -> Redemption:
    """The member changes their mind before pickup. Cancelling again answers the same."""
    redemption = await my_redemption(session, member_id, redemption_id, lock=True)
    if redemption.state == RedemptionState.cancelled:
        return redemption
    if redemption.state != RedemptionState.pending:
        raise _not_pending(redemption)
    await _give_back(session, redemption, RedemptionState.cancelled, now())
    return redemption


async def expire_redemption(session: AsyncSession, redemption: Redemption, at: datetime) -> None:
    """A reservation nobody picked up in time: stock and points come back."""
    await _give_back(session, redemption, RedemptionState.expired, at)


async def fulfil_redemption(
    session: AsyncSession,
    *,
    signer: Signer,
    principal: Principal,
    code: str,
    center_id: uuid.UUID,
) -> Outcome:
    """Hand out a reserved reward at its center, found by pickup code or QR payload.

    Only staff whose regions cover the center find it; to anyone else (and for a code
    not pending there) it does not exist. The stock leaves the shelf and the hold is
    captured to the center's redemption account. Fulfilling it again, by the same staff
    member, answers it unchanged.
    """
    center = await center_in_scope(session, principal, center_id, STAFF_ROLES)
    if center is None:
        raise RedemptionNotFound()
    redemption = await _find_at_counter(session, signer, center.id, code)
    if redemption is None:
        raise RedemptionNotFound()
    if redemption.state == RedemptionState.fulfilled:
        if redemption.fulfilled_by == principal.user_id:
            return Outcome(redemption, replayed=True)
        raise _not_pending(redemption)
    if redemption.state != RedemptionState.pending:
        raise _not_pending(redemption)
    at = now()
    if redemption.expires_at <= at:
        # Due to expire: the worker gives stock and points back on its next run.
        raise RedemptionNotPending(state="expired", state_zh=STATE_ZH[RedemptionState.expired])
    if redemption.member_id == principal.user_id:
        raise OwnRedemption()
    await _settle_stock(session, redemption, handed_out=True)
    captured = await ledger_service.capture(
        session,
        hold_id=redemption.hold_id,
        counter_account_code=counter_account(center.id),
        idempotency_key=f"redemption:{redemption.id}:fulfil",
    )
    redemption.state = RedemptionState.fulfilled
    redemption.settled_transaction_id = captured.transaction_id
    redemption.fulfilled_at = at
    redemption.fulfilled_by = principal.user_id
    redemption.updated_at = at
    await session.flush()
    return Outcome(redemption, replayed=False)


async def _find_at_counter(
    session: AsyncSession, signer: Signer, center_id: uuid.UUID, code: str
) -> Redemption | None:
    """The redemption a code names at a center, locked: the pending one with that pickup
    code (else the latest settled one that had it), or the one a QR payload names."""
    if PICKUP_CODE.fullmatch(code):
        pending = (
            await session.execute(
                select(Redemption)
                .where(
                    col(Redemption.center_id) == center_id,
                    col(Redemption.pickup_code) == code,
                    col(Redemption.state) == RedemptionState.pending,
                    col(Redemption.channel) == RedemptionChannel.app,
                )
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if pending is not None:
            return pending
        # Not pending (any more): the last one that had this code, to answer a repeat.
        return (
            await session.execute(
                select(Redemption)
                .where(
                    col(Redemption.center_id) == center_id,
                    col(Redemption.pickup_code) == code,
                    col(Redemption.channel) == RedemptionChannel.app,
                )
                .order_by(col(Redemption.id).desc())
                .limit(1)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
    redemption_id = signer.read_qr_payload(code)
    if redemption_id is None:
        return None
    return (
        await session.execute(
            select(Redemption)
            .where(
                col(Redemption.id) == redemption_id,
                col(Redemption.center_id) == center_id,
                col(Redemption.channel) == RedemptionChannel.app,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
