"""The region tree and the grid map: locate a point, read regions, and let admins change them.

`GridMap` holds every grid polygon in memory behind a shapely STRtree, so `locate()` needs no
database round trip. Each process keeps its own copy; a write announces itself with
`pg_notify` (delivered at commit), every process LISTENs and reloads, and the writing process
reloads right after its own commit so its next request already sees the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import Text, cast, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal, path_within, region_scope
from backend.core.clock import now
from backend.core.database import after_commit
from backend.core.errors import Forbidden
from backend.core.ids import new_id
from backend.core.text import is_region_code
from backend.regions import schemas
from backend.regions.boundaries import boundary_or_raise
from backend.regions.coords import CoordSystem, to_wgs84
from backend.regions.errors import (
    InvalidLevel,
    OutsideGrids,
    RegionDuplicate,
    RegionNotFound,
)
from backend.regions.models import CHILD_LEVEL, Region, RegionLevel

log = logging.getLogger("shanzhi.regions")


NOTIFY_CHANNEL = "shanzhi_grid_map"


LEVEL_ZH: dict[RegionLevel, str] = {
    RegionLevel.city: "市",
    RegionLevel.district: "区",
    RegionLevel.street: "街道",
    RegionLevel.community: "社区",
    RegionLevel.grid: "网格",
}


# Rows per executemany batch, so one huge import does not hold every parameter set at once.
WRITE_CHUNK = 2000


# --- The grid map ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegionRef:
    """What a lookup answers about a region: everything but its geometry."""

    code: str
    name: str
    name_en: str | None
    level: RegionLevel
    # The region's row id, when loaded from the database (cases store their grid's id).
    id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class LocatedGrid:
    grid: RegionRef
    ancestors: tuple[RegionRef, ...]  # from the city down to the community


@dataclass(frozen=True, slots=True)
class GridRecord:
    """A grid as the map loads it: its boundary is GeoJSON (text or parsed) in WGS-84."""

    grid: RegionRef
    boundary: str | dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Index:
    # Ordered by code, so among grids covering a point the lowest position is the smallest code.
    geometries: npt.NDArray[np.object_]
    tree: shapely.STRtree
    located: tuple[LocatedGrid, ...]


def _build_index(grids: Iterable[GridRecord], areas: Iterable[RegionRef]) -> _Index:
    by_code = {area.code: area for area in areas}
    ordered = sorted(grids, key=lambda record: record.grid.code)
    texts = [r.boundary if isinstance(r.boundary, str) else json.dumps(r.boundary) for r in ordered]
    parsed = shapely.from_geojson(texts, on_invalid="ignore") if texts else np.array([])
    geometries: list[shapely.Geometry] = []
    located: list[LocatedGrid] = []
    for record, geometry in zip(ordered, parsed, strict=True):
        if geometry is None or geometry.is_empty:
            log.warning("grid %s has an unreadable boundary; left out", record.grid.code)
            continue
        if not geometry.is_valid:
            # Writes are validated; an invalid row predates that, and is better found than lost.
            log.warning("grid %s has an invalid boundary; repaired in memory", record.grid.code)
            geometry = shapely.make_valid(geometry)
        labels = record.grid.code.split(".")
        ancestors = tuple(
            by_code[prefix]
            for prefix in (".".join(labels[:depth]) for depth in range(1, len(labels)))
            if prefix in by_code
        )
        geometries.append(geometry)
        located.append(LocatedGrid(grid=record.grid, ancestors=ancestors))
    array = np.array(geometries, dtype=object)
    shapely.prepare(array)
    if array.size:
        # GEOS builds each prepared polygon's point locator on first use; do it here, so
        # lookups only read shared state (and the first ones are not slow).
        shapely.covers(array, shapely.point_on_surface(array))
    return _Index(geometries=array, tree=shapely.STRtree(array), located=tuple(located))


_EMPTY_INDEX = _build_index((), ())


class GridMap:
    """Point -> grid over every grid polygon, in memory; one per process."""

    def __init__(self) -> None:
        self._index: _Index = _EMPTY_INDEX
        # Tags this process's notices: its own changes are applied after commit already.
        self.origin = uuid.uuid4().hex
        self.generation = 0
        self.loaded_at: datetime | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._dirty: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._session_factory: Callable[[], AsyncSession] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_records(cls, grids: Iterable[GridRecord], areas: Iterable[RegionRef]) -> GridMap:
        grid_map = cls()
        grid_map.load(grids, areas)
        return grid_map

    @property
    def grid_count(self) -> int:
        return len(self._index.located)

    def load(self, grids: Iterable[GridRecord], areas: Iterable[RegionRef]) -> None:
        """Replace the index with these grids; `areas` are the regions above them."""
        self._swap(_build_index(grids, areas))

    def _swap(self, index: _Index) -> None:
        # One assignment: a concurrent locate() sees the old index or the new, never a mix.
        self._index = index
        self.generation += 1
        self.loaded_at = now()

    def locate(self, lat: float, lng: float) -> LocatedGrid | None:
        """The grid covering the WGS-84 point; on a shared border, the smallest code."""
        index = self._index
        point = shapely.Point(lng, lat)
        candidates = index.tree.query(point)
        if candidates.size == 0:
            return None
        hits = candidates[shapely.covers(index.geometries[candidates], point)]
        if hits.size == 0:
            return None
        return index.located[int(hits.min())]

    async def reload(self, session: AsyncSession) -> None:
        """Load every grid with a boundary from the database and swap the index in."""
        async with self._lock():
            grids, areas = await _fetch_map_records(session)
            # Building 20,000 polygons takes a while: keep it off the event loop.
            index = await asyncio.to_thread(_build_index, grids, areas)
            self._swap(index)
        log.info("grid map loaded: %d grids", len(index.located))

    def _lock(self) -> asyncio.Lock:
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        return self._reload_lock

    def _dirty_event(self) -> asyncio.Event:
        if self._dirty is None:
            self._dirty = asyncio.Event()
        return self._dirty

    def _idle_event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle

    def _mark_dirty(self) -> None:
        self._idle_event().clear()
        self._dirty_event().set()

    async def refresh_after_commit(self, session: AsyncSession) -> None:
        """`after_commit` hook of a write in this process: reload before answering."""
        try:
            await self.reload(session)
        except Exception:
            log.exception("grid map reload after commit failed; retrying in the background")
            self._mark_dirty()

    # --- Listening for other processes' changes ---

    async def listen(
        self, engine: AsyncEngine, session_factory: Callable[[], AsyncSession]
    ) -> None:
        """LISTEN on one connection of `engine`; reload on every notice from elsewhere.

        Returns once the LISTEN is in place and the map reloaded after it, so no change
        committed before or after this call is missed.
        """
        if self._tasks:
            raise RuntimeError("this grid map is already listening")
        self._session_factory = session_factory
        listening = await self._connect(engine)
        try:
            # A change committed between an earlier reload and the LISTEN sent no notice here.
            async with session_factory() as session:
                await self.reload(session)
        except BaseException:
            await listening.close(self._on_notice)
            raise
        self._tasks = [
            asyncio.create_task(self._supervise(engine, listening), name="grid-map-listen"),
            asyncio.create_task(self._refresh_loop(), name="grid-map-refresh"),
        ]

    async def stop_listening(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Wait until every notice received so far has been applied."""
        await self._idle_event().wait()

    def _on_notice(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin = json.loads(payload).get("origin")
        except (ValueError, AttributeError):
            origin = None
        if origin != self.origin:
            self._mark_dirty()

    async def _connect(self, engine: AsyncEngine) -> _Listening:
        connection = await engine.connect()
        try:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            lost = asyncio.Event()
            driver.add_termination_listener(lambda _conn: lost.set())
            await driver.add_listener(NOTIFY_CHANNEL, self._on_notice)
        except BaseException:
            await connection.close()
            raise
        return _Listening(connection=connection, driver=driver, lost=lost)

    async def _supervise(self, engine: AsyncEngine, listening: _Listening) -> None:
        """Keep the LISTEN connection alive; after a reconnect, reload (notices were missed)."""
        delay = 1.0
        try:
            while True:
                if await listening.healthy():
                    delay = 1.0
                    continue
                log.warning("grid map lost its LISTEN connection; reconnecting")
                await listening.discard()
                while True:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    try:
                        listening = await self._connect(engine)
                        break
                    except Exception:
                        log.warning("grid map LISTEN reconnect failed", exc_info=True)
                self._mark_dirty()
        finally:
            await listening.close(self._on_notice)

    async def _refresh_loop(self) -> None:
        dirty = self._dirty_event()
        assert self._session_factory is not None
        while True:
            await dirty.wait()
            # Notices arriving during a reload set the flag again: one more reload, not one each.
            dirty.clear()
            try:
                async with self._session_factory() as session:
                    await self.reload(session)
            except Exception:
                log.exception("grid map reload failed; retrying")
                dirty.set()
                await asyncio.sleep(2.0)
            if not dirty.is_set():
                self._idle_event().set()


@dataclass
class _Listening:
    connection: AsyncConnection
    driver: Any  # asyncpg.Connection
    lost: asyncio.Event
    ping_every: float = 30.0

    async def healthy(self) -> bool:
        """Wait up to `ping_every`; False once the connection is gone or stops answering."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.ping_every):
                await self.lost.wait()
        if self.lost.is_set():
            return False
        try:
            async with asyncio.timeout(5.0):
                await self.driver.fetchval("SELECT 1")
        except Exception:
            return False
        return True

    async def discard(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.invalidate()
        with contextlib.suppress(Exception):
            await self.connection.close()

    async def close(self, callback: Any) -> None:
        with contextlib.suppress(Exception):
            if not self.lost.is_set():
                await self.driver.remove_listener(NOTIFY_CHANNEL, callback)
        with contextlib.suppress(Exception):
            await self.connection.close()


async def _fetch_map_records(session: AsyncSession) -> tuple[list[GridRecord], list[RegionRef]]:
    grid_rows = await session.execute(
        select(
            col(Region.id),
            col(Region.path),
            col(Region.name),
            col(Region.name_en),
            cast(col(Region.boundary), Text),
        ).where(col(Region.level) == RegionLevel.grid, col(Region.boundary).is_not(None))
    )
    grids = [
        GridRecord(
            grid=RegionRef(
                code=path, name=name, name_en=name_en, level=RegionLevel.grid, id=region_id
            ),
            boundary=boundary,
        )
        for region_id, path, name, name_en, boundary in grid_rows.all()
    ]
    area_rows = await session.execute(
        select(col(Region.path), col(Region.name), col(Region.name_en), col(Region.level)).where(
            col(Region.level) != RegionLevel.grid
        )
    )
    areas = [
        RegionRef(code=path, name=name, name_en=name_en, level=RegionLevel(level))
        for path, name, name_en, level in area_rows.all()
    ]
    return grids, areas


async def announce_change(session: AsyncSession, grid_map: GridMap | None) -> None:
    """Have every process reload its grid map once this transaction commits."""
    payload = json.dumps({"origin": grid_map.origin if grid_map else None})
    # NOTIFY is transactional: delivered at commit, dropped on rollback.
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": NOTIFY_CHANNEL, "payload": payload},
    )
    # PostgreSQL folds identical notices of one transaction; the hook is added once too.
    if grid_map is not None and grid_map.refresh_after_commit not in session.info.get(
        "after_commit", []
    ):
        after_commit(session, grid_map.refresh_after_commit)


# --- Reading -------------------------------------------------------------------------------


def locate(grid_map: GridMap, lat: float, lng: float, coord: CoordSystem) -> schemas.LocateResult:
    wgs_lat, wgs_lng = to_wgs84(lat, lng, coord)
    found = grid_map.locate(wgs_lat, wgs_lng)
    if found is None:
        raise OutsideGrids()
    return schemas.LocateResult(
        grid=_summary_of_ref(found.grid),
        ancestors=[_summary_of_ref(ref) for ref in found.ancestors],
        point=schemas.LocatedPoint(lat=wgs_lat, lng=wgs_lng),
    )


def _summary_of_ref(ref: RegionRef) -> schemas.RegionSummary:
    return schemas.RegionSummary(code=ref.code, name=ref.name, name_en=ref.name_en, level=ref.level)


def _summary(region: Region) -> schemas.RegionSummary:
    return schemas.RegionSummary(
        code=region.path, name=region.name, name_en=region.name_en, level=region.level
    )


async def _find(session: AsyncSession, code: str) -> Region | None:
    if not is_region_code(code):
        return None
    result = await session.execute(select(Region).where(col(Region.path) == code))
    return result.scalar_one_or_none()


async def get_region(
    session: AsyncSession, code: str, *, include_boundary: bool = False
) -> schemas.RegionDetail:
    region = await _find(session, code)
    if region is None:
        raise RegionNotFound(code=code)
    return await _detail(session, region, include_boundary=include_boundary)


async def _detail(
    session: AsyncSession, region: Region, *, include_boundary: bool
) -> schemas.RegionDetail:
    ancestors = await session.execute(
        select(Region)
        .where(
            col(Region.path).ancestor_of(region.path),  # type: ignore[attr-defined]
            col(Region.id) != region.id,
        )
        .order_by(func.nlevel(col(Region.path)))
    )
    children = await session.execute(
        select(Region).where(col(Region.parent_id) == region.id).order_by(col(Region.path))
    )
    return schemas.RegionDetail(
        code=region.path,
        name=region.name,
        name_en=region.name_en,
        level=region.level,
        ancestors=[_summary(r) for r in ancestors.scalars()],
        children=[_summary(r) for r in children.scalars()],
        has_boundary=region.boundary is not None,
        boundary=region.boundary if include_boundary else None,
    )


# --- A region by code, inside the caller's scope ---------------------------------------------


async def region_in_scope(
    session: AsyncSession, principal: Principal, code: str, roles: tuple[Role, ...]
) -> Region:
    """The region `code`, if the caller holds one of `roles` there or above; otherwise it does
    not exist for them (404, so a region elsewhere never leaks)."""
    region = (
        await session.execute(
            select(Region).where(
                col(Region.path) == code, region_scope(Region.path, principal, roles)
            )
        )
    ).scalar_one_or_none()
    if region is None:
        raise RegionNotFound(code=code)
    return region


# --- Admin: who may change what -------------------------------------------------------------


def _visible(principal: Principal, path: str) -> bool:
    """Is `path` in the caller's part of the tree: below one of their regions, or above it?"""
    return any(
        path_within(path, grant.region_path) or path_within(grant.region_path, path)
        for grant in principal.grants
    )


def _check_admin(principal: Principal, path: str, *, code: str) -> None:
    """Admin on `path` or above; outside the caller's tree the region `code` is a 404."""
    if not principal.is_staff:
        raise Forbidden()
    if not _visible(principal, path):
        raise RegionNotFound(code=code)
    principal.require((Role.admin,), path)


def parent_path(path: str) -> str | None:
    return path.rpartition(".")[0] or None


def _level_error(parent: Region) -> InvalidLevel:
    expected = CHILD_LEVEL[RegionLevel(parent.level)]
    return InvalidLevel(
        parent=parent.path,
        parent_level=parent.level,
        parent_level_zh=LEVEL_ZH[RegionLevel(parent.level)],
        rule_zh=f"其下级只能是{LEVEL_ZH[expected]}" if expected else "网格之下不能再建区域",
        rule_en=f"its children are of level {expected.value}"
        if expected
        else "grids have no children",
    )


async def create_region(
    session: AsyncSession,
    principal: Principal,
    data: schemas.RegionCreate,
    coord: CoordSystem,
    grid_map: GridMap | None,
) -> schemas.RegionDetail:
    _check_admin(principal, data.parent, code=data.parent)
    parent = await _find(session, data.parent)
    if parent is None:
        raise RegionNotFound(code=data.parent)
    expected = CHILD_LEVEL[RegionLevel(parent.level)]
    if expected is None or (data.level is not None and data.level != expected):
        raise _level_error(parent)
    boundary = boundary_or_raise(data.boundary, coord) if data.boundary is not None else None
    code = f"{parent.path}.{data.label}"
    # ON CONFLICT keeps a concurrent duplicate a 409 rather than a failed transaction.
    inserted = await session.execute(
        insert(Region)
        .values(
            id=new_id(),
            path=code,
            parent_id=parent.id,
            level=expected.value,
            name=data.name,
            name_en=data.name_en,
            boundary=boundary,
        )
        .on_conflict_do_nothing(index_elements=["path"])
        .returning(col(Region.id))
    )
    region_id = inserted.scalar_one_or_none()
    if region_id is None:
        raise RegionDuplicate(code=code)
    await announce_change(session, grid_map)
    region = await session.get(Region, region_id)
    assert region is not None
    return await _detail(session, region, include_boundary=True)


async def update_region(
    session: AsyncSession,
    principal: Principal,
    code: str,
    data: schemas.RegionUpdate,
    coord: CoordSystem,
    grid_map: GridMap | None,
) -> schemas.RegionDetail:
    # Regions are managed from above: an admin of the parent (a root by an admin of itself).
    _check_admin(principal, parent_path(code) or code, code=code)
    region = await _find(session, code)
    if region is None:
        raise RegionNotFound(code=code)
    changes: dict[str, Any] = {}
    given = data.model_fields_set
    if "name" in given and data.name is not None:
        changes["name"] = data.name
    if "name_en" in given:
        changes["name_en"] = data.name_en
    if "boundary" in given:
        changes["boundary"] = (
            boundary_or_raise(data.boundary, coord) if data.boundary is not None else None
        )
    if changes:
        changes["updated_at"] = now()
        await session.execute(
            update(Region)
            .where(col(Region.id) == region.id)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        await announce_change(session, grid_map)
        await session.refresh(region)
    return await _detail(session, region, include_boundary=True)
