"""Service centers, rewards and stock (the admins' catalog), and the member's catalog."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal, region_scope
from backend.core.clock import LOCAL_TIME, now, storable
from backend.core.database import insert_unique, violated_constraint
from backend.core.idempotency import check_idempotency_key, earlier_request, request_hash
from backend.core.pagination import keyset
from backend.regions.coords import to_wgs84
from backend.regions.errors import RegionNotFound
from backend.regions.geo import distance_m_text
from backend.regions.models import Region, RegionLevel
from backend.regions.schemas import LocationIn, PointOut
from backend.storage import service as storage_service
from backend.storage.models import Upload, UploadPurpose
from backend.storage.service import ObjectStore
from points.ledger.errors import IdempotencyConflict
from points.models import (
    LimitPeriod,
    Redemption,
    RedemptionState,
    Restock,
    Reward,
    RewardStock,
    ServiceCenter,
)
from points.redemption import schemas
from points.redemption.errors import (
    CatalogAdminOnly,
    CatalogQueryInvalid,
    RewardNotFound,
    RewardNotOfferedHere,
    RewardWindowInvalid,
    ServiceCenterCodeTaken,
    ServiceCenterNotFound,
    ServiceCenterRegionInvalid,
    StockBelowReserved,
)

# Who may hand out rewards at a center (an admin may do what any staff role may).
STAFF_ROLES = (Role.community_staff,)


ADMIN_ROLES = (Role.admin,)


# States that count against a member's limit: what was reserved or handed out.
COUNTED_STATES = (RedemptionState.pending, RedemptionState.fulfilled)


MAX_NEAREST_CENTERS = 10


PERIOD_ZH = {"day": "天", "week": "周", "month": "月", "year": "年"}


RESTOCK_IDEMPOTENCY_CONSTRAINT = "uq_points_restock_actor_id"


CENTER_CODE_CONSTRAINT = "uq_points_service_center_code"


def counter_account(center_id: uuid.UUID) -> str:
    """The ledger account a center's redeemed points go to."""
    return f"redemption:{center_id}"


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


async def center_in_scope(
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
        location=PointOut(lat=center.lat, lng=center.lng),
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
    taken = ServiceCenterCodeTaken(code=data.code)
    await insert_unique(session, center, errors={CENTER_CODE_CONSTRAINT: lambda: taken})
    return center


async def admin_centers(
    session: AsyncSession, principal: Principal, *, after: uuid.UUID | None, limit: int
) -> list[ServiceCenter]:
    """The centers in the caller's admin regions, by id (for cursor pages)."""
    _require_some_admin(principal)
    query = (
        select(ServiceCenter)
        .where(region_scope(ServiceCenter.region_path, principal, ADMIN_ROLES))
        .limit(limit)
    )
    query = keyset(query, col(ServiceCenter.id), after, newest_first=False)
    return list((await session.execute(query)).scalars())


async def update_center(
    session: AsyncSession,
    principal: Principal,
    center_id: uuid.UUID,
    data: schemas.ServiceCenterUpdate,
) -> ServiceCenter:
    _require_some_admin(principal)
    center = await center_in_scope(session, principal, center_id, ADMIN_ROLES, lock=True)
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
        select(Reward).where(region_scope(Reward.region_path, principal, ADMIN_ROLES)).limit(limit)
    )
    query = keyset(query, col(Reward.id), after, newest_first=False)
    return list((await session.execute(query)).scalars())


def _check_window(active_from: datetime | None, active_until: datetime | None) -> None:
    if not (storable(active_from) and storable(active_until)):
        raise RewardWindowInvalid()
    if active_from is not None and active_until is not None and active_from >= active_until:
        raise RewardWindowInvalid()


async def _prepare_photo(
    session: AsyncSession, store: ObjectStore, principal: Principal, upload_id: uuid.UUID | None
) -> storage_service.PreparedClaim:
    """Copy and check a new photo in S3 before anything is locked or written."""
    return await storage_service.prepare_claim(
        session,
        store,
        principal.user_id,
        [upload_id] if upload_id is not None else [],
        (UploadPurpose.reward_photo,),
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
    photo = await _prepare_photo(session, store, principal, data.photo_upload_id)
    await storage_service.claim_uploads(session, photo)
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
    prepared = await _prepare_photo(session, store, principal, data.photo_upload_id)
    reward = await _reward_in_scope(session, principal, reward_id, lock=True)
    # Fields left out stay; the schema refuses an explicit null where one makes no sense.
    changes = data.model_dump(exclude_unset=True, exclude={"limit"})
    _check_window(
        changes.get("active_from", reward.active_from),
        changes.get("active_until", reward.active_until),
    )
    photo = changes.get("photo_upload_id", reward.photo_upload_id)
    if photo is not None and photo != reward.photo_upload_id:
        await storage_service.claim_uploads(session, prepared)
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
    earlier = await earlier_request(
        session, Restock.actor_id, principal.user_id, key, digest, IdempotencyConflict
    )
    if earlier is not None:
        return await _restock_replay(session, earlier, digest), True
    reward = await _reward_in_scope(session, principal, reward_id)
    center = await center_in_scope(session, principal, data.center, ADMIN_ROLES)
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
        if violated_constraint(error) != RESTOCK_IDEMPOTENCY_CONSTRAINT:
            raise
        # A concurrent request with this key won; its change stands, ours was undone.
        winner = await earlier_request(
            session, Restock.actor_id, principal.user_id, key, digest, IdempotencyConflict
        )
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
            update(table)  # type: ignore[assignment]
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


async def _restock_replay(session: AsyncSession, earlier: Restock, digest: str) -> schemas.StockOut:
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


def is_available(reward: Reward, at: datetime) -> bool:
    return (
        reward.active
        and (reward.active_from is None or reward.active_from <= at)
        and (reward.active_until is None or at < reward.active_until)
    )


async def counted_use(
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
    f"""
    SELECT id, {distance_m_text("lat", "lng", ":lat", ":lng")} AS distance
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
    location: LocationIn | None,
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
            {"lat": lat, "lng": lng, "limit": centers},
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
    available = [(stock, reward) for stock, reward in stock_rows if is_available(reward, at)]
    rewards = list({reward.id: reward for _, reward in available}.values())
    used = await counted_use(session, member_id, rewards, at)
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
