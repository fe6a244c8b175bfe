"""Service centers, the rewards catalog, stock, and redemption: the rules, without HTTP.

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

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role, User
from backend.auth.principal import Principal, region_scope
from backend.core.clock import now
from backend.core.idempotency import check_idempotency_key, request_hash
from backend.core.ids import new_id
from backend.core.spreadsheet import csv_text
from backend.regions.coords import to_wgs84
from backend.regions.errors import RegionNotFound
from backend.regions.models import Region, RegionLevel
from backend.storage import service as storage_service
from backend.storage.models import Upload, UploadPurpose
from backend.storage.service import ObjectStore
from points import redemption_schemas as schemas
from points import service as ledger
from points.errors import (
    CatalogAdminOnly,
    CatalogQueryInvalid,
    ExportPeriodInvalid,
    HoldNotPending,
    IdempotencyConflict,
    MemberCodeExpired,
    MemberCodeInvalid,
    OutOfStock,
    OwnRedemption,
    RedemptionLimitReached,
    RedemptionNotFound,
    RedemptionNotPending,
    RewardNotAvailable,
    RewardNotFound,
    RewardNotOfferedHere,
    RewardWindowInvalid,
    ServiceCenterClosed,
    ServiceCenterCodeTaken,
    ServiceCenterNotFound,
    ServiceCenterRegionInvalid,
    StockBelowReserved,
)
from points.models import (
    LimitPeriod,
    Redemption,
    RedemptionChannel,
    RedemptionState,
    Restock,
    Reward,
    RewardStock,
    ServiceCenter,
)

log = logging.getLogger("shanzhi.points")

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
# Who may hand out rewards at a center (an admin may do what any staff role may).
STAFF_ROLES = (Role.community_staff,)
ADMIN_ROLES = (Role.admin,)
# States that count against a member's limit: what was reserved or handed out.
COUNTED_STATES = (RedemptionState.pending, RedemptionState.fulfilled)
PICKUP_CODE = re.compile(r"[0-9]{6}")
PICKUP_CODE_ATTEMPTS = 8
MEMBER_CODE_STEP = 60  # seconds; a code is accepted in its minute and the next one
MEMBER_CODE_PREFIX = "SZM1"
QR_PREFIX = "SZR1"
_MAC_BYTES = 12
MAX_NEAREST_CENTERS = 10
MAX_EXPORT_PERIOD = timedelta(days=366)
HOLD_GRACE = timedelta(days=1)
EARTH_RADIUS_M = 6_371_008.8
PERIOD_ZH = {"day": "天", "week": "周", "month": "月", "year": "年"}
STATE_ZH = {
    RedemptionState.pending: "待领取",
    RedemptionState.fulfilled: "已领取",
    RedemptionState.cancelled: "已取消",
    RedemptionState.expired: "已过期",
}
IDEMPOTENCY_CONSTRAINT = "uq_points_redemption_requested_by"
PICKUP_CODE_CONSTRAINT = "uq_points_redemption_pending_code"
RESTOCK_IDEMPOTENCY_CONSTRAINT = "uq_points_restock_actor_id"
CENTER_CODE_CONSTRAINT = "uq_points_service_center_code"


def counter_account(center_id: uuid.UUID) -> str:
    """The ledger account a center's redeemed points go to."""
    return f"redemption:{center_id}"


def _constraint(error: IntegrityError) -> str | None:
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None) or getattr(error.orig, "constraint_name", None)
    return name if isinstance(name, str) else None


# --- signed codes --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text_: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))
    except (ValueError, binascii.Error):
        return None


@dataclass(frozen=True)
class MemberCode:
    code: str
    expires_at: datetime
    refresh_after: datetime


class Signer:
    """Signs member codes and pickup QR payloads with keys derived from the data key.

    Nothing new to configure: each purpose gets its own key, derived with HMAC from
    `SHANZHI_DATA_KEY`, so a code of one kind can never pass as the other.
    """

    def __init__(self, data_key: str) -> None:
        root = data_key.encode()
        self._member_key = hmac.new(root, b"shanzhi/points/member-code/v1", hashlib.sha256).digest()
        self._qr_key = hmac.new(root, b"shanzhi/points/pickup-qr/v1", hashlib.sha256).digest()

    @staticmethod
    def _mac(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def member_code(self, member_id: uuid.UUID, at: datetime) -> MemberCode:
        """The member's code for the minute `at` falls in: member id, minute, and their MAC."""
        step = int(at.timestamp()) // MEMBER_CODE_STEP
        body = member_id.bytes + step.to_bytes(5, "big")
        start = datetime.fromtimestamp(step * MEMBER_CODE_STEP, at.tzinfo)
        return MemberCode(
            code=MEMBER_CODE_PREFIX + _b64(body + self._mac(self._member_key, body)),
            expires_at=start + timedelta(seconds=2 * MEMBER_CODE_STEP),
            refresh_after=start + timedelta(seconds=MEMBER_CODE_STEP),
        )

    def read_member_code(self, code: str, at: datetime) -> uuid.UUID:
        """The member a code names, if it is genuine and from this minute or the last."""
        raw = (
            _unb64(code[len(MEMBER_CODE_PREFIX) :]) if code.startswith(MEMBER_CODE_PREFIX) else None
        )
        if raw is None or len(raw) != 16 + 5 + _MAC_BYTES:
            raise MemberCodeInvalid()
        body, mac = raw[:21], raw[21:]
        if not hmac.compare_digest(mac, self._mac(self._member_key, body)):
            raise MemberCodeInvalid()
        age = int(at.timestamp()) // MEMBER_CODE_STEP - int.from_bytes(body[16:], "big")
        if age < 0:
            raise MemberCodeInvalid()  # from the future: not one this server issued
        if age > 1:
            raise MemberCodeExpired()
        return uuid.UUID(bytes=body[:16])

    def qr_payload(self, redemption_id: uuid.UUID) -> str:
        body = redemption_id.bytes
        return QR_PREFIX + _b64(body + self._mac(self._qr_key, body))

    def read_qr_payload(self, payload: str) -> uuid.UUID | None:
        raw = _unb64(payload[len(QR_PREFIX) :]) if payload.startswith(QR_PREFIX) else None
        if raw is None or len(raw) != 16 + _MAC_BYTES:
            return None
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(self._qr_key, body)):
            return None
        return uuid.UUID(bytes=body)


@lru_cache(maxsize=4)
def signer_for(data_key: str) -> Signer:
    return Signer(data_key)


# --- scope helpers -------------------------------------------------------------------------


def _require_some_admin(principal: Principal) -> None:
    """Only admins manage the catalog; anyone else is told so rather than shown 404s."""
    if not principal.paths_for(ADMIN_ROLES):
        raise CatalogAdminOnly()


async def _region(session: AsyncSession, code: str) -> Region:
    region = (
        await session.execute(select(Region).where(col(Region.path) == code))
    ).scalar_one_or_none()
    if region is None:
        raise RegionNotFound(code=code)
    return region


async def _center_in_scope(
    session: AsyncSession,
    principal: Principal,
    center_id: uuid.UUID,
    roles: tuple[Role, ...],
    *,
    lock: bool = False,
) -> ServiceCenter | None:
    query = select(ServiceCenter).where(
        col(ServiceCenter.id) == center_id,
        region_scope(ServiceCenter.region_path, principal, roles),
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


# --- service centers -----------------------------------------------------------------------


def center_out(center: ServiceCenter) -> schemas.ServiceCenterOut:
    return schemas.ServiceCenterOut(
        id=center.id,
        code=center.code,
        name=center.name,
        name_en=center.name_en,
        region=center.region_path,
        location=schemas.PointOut(lat=center.lat, lng=center.lng),
        address=center.address,
        opening_hours=center.opening_hours,
        active=center.active,
    )


async def create_center(
    session: AsyncSession, principal: Principal, data: schemas.ServiceCenterCreate
) -> ServiceCenter:
    """A new service center in a community the caller is admin of."""
    _require_some_admin(principal)
    region = await _region(session, data.region)
    if not principal.can(ADMIN_ROLES, region.path):
        raise CatalogAdminOnly()
    if RegionLevel(region.level) is not RegionLevel.community:
        raise ServiceCenterRegionInvalid()
    lat, lng = to_wgs84(data.location.lat, data.location.lng, data.location.coord)
    center = ServiceCenter(
        code=data.code,
        name=data.name,
        name_en=data.name_en,
        region_id=region.id,
        region_path=region.path,
        lat=lat,
        lng=lng,
        address=data.address,
        opening_hours=data.opening_hours,
        active=data.active,
    )
    try:
        async with session.begin_nested():
            session.add(center)
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) == CENTER_CODE_CONSTRAINT:
            raise ServiceCenterCodeTaken(code=data.code) from error
        raise
    return center


async def admin_centers(
    session: AsyncSession, principal: Principal, *, after: uuid.UUID | None, limit: int
) -> list[ServiceCenter]:
    """The centers in the caller's admin regions, by id (for cursor pages)."""
    _require_some_admin(principal)
    query = (
        select(ServiceCenter)
        .where(region_scope(ServiceCenter.region_path, principal, ADMIN_ROLES))
        .order_by(col(ServiceCenter.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(ServiceCenter.id) > after)
    return list((await session.execute(query)).scalars())


async def update_center(
    session: AsyncSession,
    principal: Principal,
    center_id: uuid.UUID,
    data: schemas.ServiceCenterUpdate,
) -> ServiceCenter:
    _require_some_admin(principal)
    center = await _center_in_scope(session, principal, center_id, ADMIN_ROLES, lock=True)
    if center is None:
        raise ServiceCenterNotFound()
    changes = data.model_dump(exclude_unset=True, exclude={"location"})
    if data.location is not None and "location" in data.model_fields_set:
        center.lat, center.lng = to_wgs84(data.location.lat, data.location.lng, data.location.coord)
    for name, value in changes.items():
        setattr(center, name, value)
    center.updated_at = now()
    await session.flush()
    return center


# --- rewards -------------------------------------------------------------------------------


def reward_out(store: ObjectStore, reward: Reward, photo: Upload | None) -> schemas.RewardOut:
    return schemas.RewardOut(
        id=reward.id,
        name=reward.name,
        name_en=reward.name_en,
        description=reward.description,
        price=reward.price,
        photo_url=storage_service.view_url(store, photo) if photo is not None else None,
        region=reward.region_path,
        limit=_limit_out(reward),
        active_from=reward.active_from,
        active_until=reward.active_until,
        active=reward.active,
    )


def _limit_out(reward: Reward) -> schemas.LimitOut | None:
    if reward.limit_count is None or reward.limit_period is None:
        return None
    return schemas.LimitOut(count=reward.limit_count, period=LimitPeriod(reward.limit_period))


async def reward_photo(session: AsyncSession, reward: Reward) -> Upload | None:
    if reward.photo_upload_id is None:
        return None
    return await session.get(Upload, reward.photo_upload_id)


async def reward_photos(
    session: AsyncSession, rewards: Sequence[Reward]
) -> dict[uuid.UUID, Upload]:
    """The photos of these rewards, by reward id, in one query."""
    wanted = {r.photo_upload_id: r.id for r in rewards if r.photo_upload_id is not None}
    if not wanted:
        return {}
    found = await session.execute(select(Upload).where(col(Upload.id).in_(list(wanted))))
    return {wanted[upload.id]: upload for upload in found.scalars()}


async def admin_rewards(
    session: AsyncSession, principal: Principal, *, after: uuid.UUID | None, limit: int
) -> list[Reward]:
    """The rewards of the caller's admin regions, by id (for cursor pages)."""
    _require_some_admin(principal)
    query = (
        select(Reward)
        .where(region_scope(Reward.region_path, principal, ADMIN_ROLES))
        .order_by(col(Reward.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(Reward.id) > after)
    return list((await session.execute(query)).scalars())


def _storable(moment: datetime | None) -> bool:
    """Can PostgreSQL take this time? (An offset can push year 1 or 9999 out of range.)"""
    if moment is None:
        return True
    try:
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return False
    return True


def _check_window(active_from: datetime | None, active_until: datetime | None) -> None:
    if not (_storable(active_from) and _storable(active_until)):
        raise RewardWindowInvalid()
    if active_from is not None and active_until is not None and active_from >= active_until:
        raise RewardWindowInvalid()


async def _claim_photo(
    session: AsyncSession, store: ObjectStore, principal: Principal, upload_id: uuid.UUID
) -> None:
    await storage_service.claim_uploads(
        session, store, principal.user_id, [upload_id], (UploadPurpose.reward_photo,)
    )


async def create_reward(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    data: schemas.RewardCreate,
) -> Reward:
    """A new reward offered in a region the caller is admin of."""
    _require_some_admin(principal)
    region = await _region(session, data.region)
    if not principal.can(ADMIN_ROLES, region.path):
        raise CatalogAdminOnly()
    _check_window(data.active_from, data.active_until)
    if data.photo_upload_id is not None:
        await _claim_photo(session, store, principal, data.photo_upload_id)
    reward = Reward(
        name=data.name,
        name_en=data.name_en,
        description=data.description,
        price=data.price,
        photo_upload_id=data.photo_upload_id,
        region_id=region.id,
        region_path=region.path,
        limit_count=data.limit.count if data.limit else None,
        limit_period=data.limit.period if data.limit else None,
        active_from=data.active_from,
        active_until=data.active_until,
        active=data.active,
    )
    session.add(reward)
    await session.flush()
    return reward


async def _reward_in_scope(
    session: AsyncSession, principal: Principal, reward_id: uuid.UUID, *, lock: bool = False
) -> Reward:
    query = select(Reward).where(
        col(Reward.id) == reward_id, region_scope(Reward.region_path, principal, ADMIN_ROLES)
    )
    if lock:
        query = query.with_for_update()
    reward = (await session.execute(query)).scalar_one_or_none()
    if reward is None:
        raise RewardNotFound()
    return reward


async def update_reward(
    session: AsyncSession,
    store: ObjectStore,
    principal: Principal,
    reward_id: uuid.UUID,
    data: schemas.RewardUpdate,
) -> Reward:
    """Change a reward. A new price applies to redemptions made from now on."""
    _require_some_admin(principal)
    reward = await _reward_in_scope(session, principal, reward_id, lock=True)
    # Fields left out stay; the schema refuses an explicit null where one makes no sense.
    changes = data.model_dump(exclude_unset=True, exclude={"limit"})
    _check_window(
        changes.get("active_from", reward.active_from),
        changes.get("active_until", reward.active_until),
    )
    photo = changes.get("photo_upload_id", reward.photo_upload_id)
    if photo is not None and photo != reward.photo_upload_id:
        await _claim_photo(session, store, principal, photo)
    if "limit" in data.model_fields_set:
        reward.limit_count = data.limit.count if data.limit else None
        reward.limit_period = data.limit.period if data.limit else None
    for name, value in changes.items():
        setattr(reward, name, value)
    reward.updated_at = now()
    await session.flush()
    return reward


async def restock(
    session: AsyncSession,
    principal: Principal,
    reward_id: uuid.UUID,
    data: schemas.RestockIn,
    idempotency_key: str | None,
) -> tuple[schemas.StockOut, bool]:
    """Add items of a reward at a center (or write some off); (stock, replayed).

    The caller must be admin over the center, and the center must lie in the reward's
    region. A retry with the same key and body changes nothing and answers the stock.
    """
    key = check_idempotency_key(idempotency_key)
    digest = request_hash("restock", {"reward": str(reward_id), **data.model_dump(mode="json")})
    _require_some_admin(principal)
    earlier = await _restock_by_key(session, principal.user_id, key)
    if earlier is not None:
        return await _restock_replay(session, earlier, digest), True
    reward = await _reward_in_scope(session, principal, reward_id)
    center = await _center_in_scope(session, principal, data.center, ADMIN_ROLES)
    if center is None:
        raise ServiceCenterNotFound()
    if not (
        center.region_path == reward.region_path
        or center.region_path.startswith(reward.region_path + ".")
    ):
        raise RewardNotOfferedHere()
    try:
        async with session.begin_nested():
            on_hand, reserved = await _change_stock(session, reward.id, center.id, data.add)
            session.add(
                Restock(
                    reward_id=reward.id,
                    center_id=center.id,
                    quantity=data.add,
                    on_hand_after=on_hand,
                    actor_id=principal.user_id,
                    idempotency_key=key,
                    request_hash=digest,
                )
            )
            await session.flush()
    except IntegrityError as error:
        if _constraint(error) != RESTOCK_IDEMPOTENCY_CONSTRAINT:
            raise
        # A concurrent request with this key won; its change stands, ours was undone.
        winner = await _restock_by_key(session, principal.user_id, key)
        assert winner is not None, "the unique key was taken, so its row exists"
        return await _restock_replay(session, winner, digest), True
    return _stock_out(reward.id, center.id, on_hand, reserved), False


async def _change_stock(
    session: AsyncSession, reward_id: uuid.UUID, center_id: uuid.UUID, add: int
) -> tuple[int, int]:
    table = RewardStock.__table__  # type: ignore[attr-defined]
    if add > 0:
        statement = (
            insert(table)
            .values(
                reward_id=reward_id, center_id=center_id, on_hand=add, reserved=0, updated_at=now()
            )
            .on_conflict_do_update(
                index_elements=["reward_id", "center_id"],
                set_={"on_hand": table.c.on_hand + add, "updated_at": now()},
            )
            .returning(table.c.on_hand, table.c.reserved)
        )
    else:
        # Never below what members are waiting to pick up.
        statement = (
            update(table)
            .where(
                table.c.reward_id == reward_id,
                table.c.center_id == center_id,
                table.c.on_hand + add >= table.c.reserved,
            )
            .values(on_hand=table.c.on_hand + add, updated_at=now())
            .returning(table.c.on_hand, table.c.reserved)
        )
    row = (await session.execute(statement)).first()
    if row is None:
        raise StockBelowReserved()
    return int(row[0]), int(row[1])


async def _restock_by_key(session: AsyncSession, actor_id: uuid.UUID, key: str) -> Restock | None:
    return (
        await session.execute(
            select(Restock).where(
                col(Restock.actor_id) == actor_id, col(Restock.idempotency_key) == key
            )
        )
    ).scalar_one_or_none()


async def _restock_replay(session: AsyncSession, earlier: Restock, digest: str) -> schemas.StockOut:
    if earlier.request_hash != digest:
        raise IdempotencyConflict()
    stock = await session.get(
        RewardStock, (earlier.reward_id, earlier.center_id), populate_existing=True
    )
    assert stock is not None, "a restock always leaves a stock row"
    return _stock_out(earlier.reward_id, earlier.center_id, stock.on_hand, stock.reserved)


def _stock_out(
    reward_id: uuid.UUID, center_id: uuid.UUID, on_hand: int, reserved: int
) -> schemas.StockOut:
    return schemas.StockOut(
        reward=reward_id,
        center=center_id,
        on_hand=on_hand,
        reserved=reserved,
        left=on_hand - reserved,
    )


# --- the member's catalog ------------------------------------------------------------------


def period_start(at: datetime, period: LimitPeriod | str) -> datetime:
    """Start of the calendar day, week (Monday), month or year of `at`, China time."""
    day = at.astimezone(LOCAL_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
    match LimitPeriod(period):
        case LimitPeriod.day:
            return day
        case LimitPeriod.week:
            return day - timedelta(days=day.weekday())
        case LimitPeriod.month:
            return day.replace(day=1)
        case LimitPeriod.year:
            return day.replace(month=1, day=1)


def _is_available(reward: Reward, at: datetime) -> bool:
    return (
        reward.active
        and (reward.active_from is None or reward.active_from <= at)
        and (reward.active_until is None or at < reward.active_until)
    )


async def _used(
    session: AsyncSession, member_id: uuid.UUID, rewards: Sequence[Reward], at: datetime
) -> dict[uuid.UUID, int]:
    """Items of each limited reward the member redeemed in its current period."""
    limited = [r for r in rewards if r.limit_period is not None]
    if not limited:
        return {}
    starts = {r.id: period_start(at, r.limit_period) for r in limited}  # type: ignore[arg-type]
    rows = await session.execute(
        select(
            col(Redemption.reward_id), col(Redemption.created_at), col(Redemption.quantity)
        ).where(
            col(Redemption.member_id) == member_id,
            col(Redemption.reward_id).in_(list(starts)),
            col(Redemption.state).in_(COUNTED_STATES),
            col(Redemption.created_at) >= min(starts.values()),
        )
    )
    used = dict.fromkeys(starts, 0)
    for reward_id, created_at, quantity in rows.all():
        if created_at >= starts[reward_id]:
            used[reward_id] += quantity
    return used


# Haversine distance on a sphere; least(): rounding can push the term a hair above 1.
_NEAREST = text(
    """
    SELECT id, 2 * :earth_radius * asin(sqrt(least(1.0,
               power(sin(radians(lat - :lat) / 2), 2)
               + cos(radians(:lat)) * cos(radians(lat)) * power(sin(radians(lng - :lng) / 2), 2)
           ))) AS distance
    FROM points_service_center
    WHERE active
    ORDER BY distance, id
    LIMIT :limit
    """
)


async def catalog(
    session: AsyncSession,
    store: ObjectStore,
    member_id: uuid.UUID,
    *,
    center: str | None,
    location: schemas.PointIn | None,
    centers: int,
) -> schemas.Catalog:
    """The rewards at one center, or at the centers nearest a point (nearest first)."""
    at = now()
    distances: dict[uuid.UUID, float | None] = {}
    if center is not None:
        found = await _active_center_by_ref(session, center)
        if found is None:
            raise ServiceCenterNotFound()
        distances[found.id] = None
    elif location is not None:
        lat, lng = to_wgs84(location.lat, location.lng, location.coord)
        rows = await session.execute(
            _NEAREST,
            {"earth_radius": EARTH_RADIUS_M, "lat": lat, "lng": lng, "limit": centers},
        )
        distances = {row.id: round(float(row.distance), 1) for row in rows}
    else:
        raise CatalogQueryInvalid()
    if not distances:
        return schemas.Catalog(centers=[])
    center_rows = await session.execute(
        select(ServiceCenter).where(col(ServiceCenter.id).in_(list(distances)))
    )
    by_id = {c.id: c for c in center_rows.scalars()}
    stock_rows = (
        await session.execute(
            select(RewardStock, Reward)
            .join(Reward, col(Reward.id) == col(RewardStock.reward_id))
            .where(col(RewardStock.center_id).in_(list(distances)), col(Reward.active).is_(True))
            .order_by(col(Reward.price), col(Reward.name), col(Reward.id))
        )
    ).all()
    available = [(stock, reward) for stock, reward in stock_rows if _is_available(reward, at)]
    rewards = list({reward.id: reward for _, reward in available}.values())
    used = await _used(session, member_id, rewards, at)
    photos = await reward_photos(session, rewards)
    items: dict[uuid.UUID, list[schemas.CatalogItem]] = {center_id: [] for center_id in by_id}
    for stock, reward in available:
        photo = photos.get(reward.id)
        allowance = None
        if reward.limit_count is not None:
            allowance = max(reward.limit_count - used.get(reward.id, 0), 0)
        items[stock.center_id].append(
            schemas.CatalogItem(
                id=reward.id,
                name=reward.name,
                name_en=reward.name_en,
                description=reward.description,
                price=reward.price,
                photo_url=storage_service.view_url(store, photo) if photo else None,
                left=stock.on_hand - stock.reserved,
                limit=_limit_out(reward),
                allowance=allowance,
                active_until=reward.active_until,
            )
        )
    return schemas.Catalog(
        centers=[
            schemas.CenterCatalog(
                center=center_out(by_id[center_id]),
                distance_m=distance,
                rewards=items[center_id],
            )
            for center_id, distance in distances.items()
            if center_id in by_id
        ]
    )


async def _active_center_by_ref(session: AsyncSession, ref: str) -> ServiceCenter | None:
    try:
        condition = col(ServiceCenter.id) == uuid.UUID(ref)
    except ValueError:
        condition = col(ServiceCenter.code) == ref
    return (
        await session.execute(
            select(ServiceCenter).where(condition, col(ServiceCenter.active).is_(True))
        )
    ).scalar_one_or_none()


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


async def _by_key(session: AsyncSession, requested_by: uuid.UUID, key: str) -> Redemption | None:
    return (
        await session.execute(
            select(Redemption).where(
                col(Redemption.requested_by) == requested_by,
                col(Redemption.idempotency_key) == key,
            )
        )
    ).scalar_one_or_none()


def _replay(earlier: Redemption, digest: str) -> Outcome:
    if earlier.request_hash != digest:
        raise IdempotencyConflict()
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
    if not _is_available(reward, at):
        raise RewardNotAvailable()
    if reward.limit_count is not None and reward.limit_period is not None:
        used = (await _used(session, member_id, [reward], at)).get(reward.id, 0)
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


def _new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


async def _insert(session: AsyncSession, make: Any) -> Redemption:
    """Insert the redemption, drawing another pickup code if the center has it pending."""
    for attempt in range(PICKUP_CODE_ATTEMPTS):
        redemption: Redemption = make(_new_pickup_code())
        try:
            async with session.begin_nested():
                session.add(redemption)
                await session.flush()
            return redemption
        except IntegrityError as error:
            if _constraint(error) != PICKUP_CODE_CONSTRAINT or attempt == PICKUP_CODE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


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
    earlier = await _by_key(session, member_id, key)
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
    held = await ledger.hold(
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
    earlier = await _by_key(session, principal.user_id, key)
    if earlier is not None:
        return _replay(earlier, digest)
    center = await _center_in_scope(session, principal, body.center, STAFF_ROLES)
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
            earlier = await _by_key(session, principal.user_id, key)
            if earlier is not None:
                return _replay(earlier, digest)
            reward = await _redeemable(session, member_id, body.reward, center, body.quantity, at)
            redemption_id = new_id()
            points_total = reward.price * body.quantity
            await _take_free(session, reward.id, center.id, body.quantity)
            held = await ledger.hold(
                session,
                member_id=member_id,
                points=points_total,
                reason="redemption",
                source_ref=f"redemption:{redemption_id}",
                idempotency_key=f"redemption:{redemption_id}:hold",
                expires_at=at + timedelta(minutes=5),
            )
            captured = await ledger.capture(
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
        if _constraint(error) != IDEMPOTENCY_CONSTRAINT:
            raise
        # The same key, sent meanwhile for another member (a different request): ours was
        # undone with its savepoint; the first one stands.
        winner = await _by_key(session, principal.user_id, key)
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
    query = (
        select(Redemption)
        .where(col(Redemption.member_id) == member_id)
        .order_by(col(Redemption.id).desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(col(Redemption.state) == state)
    if after is not None:
        query = query.where(col(Redemption.id) < after)
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
        released = await ledger.release(
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
    center = await _center_in_scope(session, principal, center_id, STAFF_ROLES)
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
    captured = await ledger.capture(
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


# --- the staff's export --------------------------------------------------------------------

CSV_COLUMNS = (
    "redemption_id",
    "created_at",
    "channel",
    "state",
    "member_id",
    "member_nickname",
    "reward_id",
    "reward_name",
    "quantity",
    "unit_price",
    "points_total",
    "fulfilled_at",
    "fulfilled_by",
    "cancelled_at",
    "expired_at",
)


def check_period(start: datetime, end: datetime) -> None:
    if not (_storable(start) and _storable(end)):
        raise ExportPeriodInvalid()
    if start >= end or end - start > MAX_EXPORT_PERIOD:
        raise ExportPeriodInvalid()


async def export_csv(
    session: AsyncSession,
    principal: Principal,
    center_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> tuple[ServiceCenter, str]:
    """A center's redemptions made in [start, end), oldest first, as CSV (UTF-8 with BOM,
    so spreadsheet programs read the Chinese names right)."""
    center = await _center_in_scope(session, principal, center_id, STAFF_ROLES)
    if center is None:
        raise ServiceCenterNotFound()
    check_period(start, end)
    rows = await session.execute(
        select(Redemption, col(Reward.name), col(User.nickname))
        .join(Reward, col(Reward.id) == col(Redemption.reward_id))
        .join(User, col(User.id) == col(Redemption.member_id))
        .where(
            col(Redemption.center_id) == center.id,
            col(Redemption.created_at) >= start,
            col(Redemption.created_at) < end,
        )
        .order_by(col(Redemption.created_at), col(Redemption.id))
    )
    table = (
        (
            redemption.id,
            redemption.created_at,
            redemption.channel,
            redemption.state,
            redemption.member_id,
            nickname,
            redemption.reward_id,
            reward_name,
            redemption.quantity,
            redemption.unit_price,
            redemption.points_total,
            redemption.fulfilled_at,
            redemption.fulfilled_by,
            redemption.cancelled_at,
            redemption.expired_at,
        )
        for redemption, reward_name, nickname in rows.all()
    )
    return center, csv_text([CSV_COLUMNS, *table])
