"""Case figures for the staff stats: counts and rates per region and each region below it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Numeric,
    Text,
    and_,
    case,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.principal import Principal
from backend.cases.models import (
    Case,
    Channel,
)
from backend.cases.staff.service import (
    RESOLUTION_STATES,
    RESPONSE_STATES,
    STAFF_KINDS,
    STAFF_ROLES,
    ensure_staff,
)
from backend.core.clock import now, storable
from backend.regions import service as regions_service
from backend.regions.models import Region, RegionLevel
from backend.stats import errors
from backend.stats.mediation import mediation_figures
from backend.stats.schemas import CaseStats, ChannelCounts, MediationFigures, Rate, RegionFigures

# --- Figures -----------------------------------------------------------------------------


# Without `from`, the period is this long.
DEFAULT_PERIOD = timedelta(days=30)


def _period(
    start: datetime | None, end: datetime | None, at: datetime
) -> tuple[datetime, datetime]:
    """[start, end): by default the 30 days up to now; refused unless both ends are times
    PostgreSQL takes and the start comes first."""
    end = end or at
    if not (storable(start) and storable(end)):
        raise errors.StatsPeriodInvalid()
    if start is None:
        try:
            start = end - DEFAULT_PERIOD
        except OverflowError:
            # An end in the first days of the calendar: there is no period before it.
            raise errors.StatsPeriodInvalid() from None
    if start >= end:
        raise errors.StatsPeriodInvalid()
    return start, end


def _rate(numerator: int, denominator: int, rate: Decimal | None) -> Rate:
    return Rate(
        rate=float(rate) if rate is not None else None,
        numerator=numerator,
        denominator=denominator,
    )


async def case_stats(
    session: AsyncSession,
    principal: Principal,
    *,
    region_code: str | None,
    start: datetime | None,
    end: datetime | None,
) -> CaseStats:
    """Figures of a region and of each region directly below it: one aggregate query for
    reports and complaints, one for mediation (statistics in aggregate only).

    The cases are filtered by place (GiST index on `location_path`) and creation time, then
    grouped by the label below the region (`subpath`) with ROLLUP for the region's own row.
    """
    paths = ensure_staff(principal)
    at = now()
    start, end = _period(start, end, at)
    if region_code is None:
        region_code = min(paths, key=lambda path: (path.count("."), path))
    region = await regions_service.region_in_scope(session, principal, region_code, STAFF_ROLES)
    depth = region.path.count(".") + 1

    child = case(
        (
            func.nlevel(Case.location_path) > depth,
            cast(func.subpath(Case.location_path, 0, depth + 1), Text),
        ),
        else_=None,
    ).label("child")
    state = Case.state
    open_states = (*RESPONSE_STATES, *RESOLUTION_STATES)

    waiting = state.in_(RESPONSE_STATES)  # type: ignore[attr-defined]
    # The current round was accepted: a reopened case waits for a new acceptance.
    responded = and_(Case.accepted_at.is_not(None), ~waiting)  # type: ignore[union-attr]
    waiting_overdue = and_(waiting, col(Case.response_due_at) < at)
    resolved = Case.resolved_at.is_not(None)  # type: ignore[union-attr]
    unresolved_overdue = and_(
        Case.resolved_at.is_(None),  # type: ignore[union-attr]
        state.in_(open_states),  # type: ignore[attr-defined]
        col(Case.resolution_due_at) < at,
    )
    # Reopening clears the resolution; the count remembers there was one.
    resolved_once = or_(resolved, col(Case.reopen_count) > 0)
    rated = Case.rating.is_not(None)  # type: ignore[union-attr]
    overdue_now = or_(
        waiting_overdue,
        and_(state.in_(RESOLUTION_STATES), col(Case.resolution_due_at) < at),  # type: ignore[attr-defined]
    )
    ratios = {
        "response": (
            and_(responded, col(Case.accepted_at) <= col(Case.response_due_at)),
            or_(responded, waiting_overdue),
        ),
        "resolution": (
            and_(resolved, col(Case.resolved_at) <= col(Case.resolution_due_at)),
            or_(resolved, unresolved_overdue),
        ),
        "satisfaction": (and_(rated, col(Case.rating) >= 4), rated),
        "reopen": (Case.reopen_count > 0, resolved_once),
    }
    columns: list[Any] = [
        child,
        func.grouping(child).label("is_total"),
        func.count().label("cases"),
        func.count().filter(overdue_now).label("overdue_now"),
    ]
    for name, (numerator, denominator) in ratios.items():
        top = func.count().filter(numerator)  # type: ignore[call-overload]
        bottom = func.count().filter(denominator)
        columns += [
            top.label(f"{name}_n"),
            bottom.label(f"{name}_d"),
            func.round(cast(top, Numeric) / func.nullif(bottom, 0), 4).label(f"{name}_rate"),
        ]
    columns += [
        func.count().filter(col(Case.channel) == channel).label(f"channel_{channel.value}")
        for channel in Channel
    ]
    query = (
        select(*columns)
        .where(
            Case.kind.in_(STAFF_KINDS),  # type: ignore[attr-defined]
            Case.location_path.descendant_of(region.path),  # type: ignore[attr-defined]
            col(Case.created_at) >= start,
            col(Case.created_at) < end,
        )
        .group_by(func.rollup(child))
    )
    rows = (await session.execute(query)).mappings().all()
    by_code: dict[str, Any] = {}
    total: Any = None
    for row in rows:
        if row["is_total"]:
            total = row
        elif row["child"] is not None:
            by_code[row["child"]] = row

    mediation = await mediation_figures(session, region.path, start=start, end=end)

    children = (
        (
            await session.execute(
                select(Region).where(Region.parent_id == region.id).order_by(Region.path)  # type: ignore[arg-type]
            )
        )
        .scalars()
        .all()
    )
    return CaseStats(
        period_from=start,
        period_to=end,
        computed_at=at,
        region=_figures(region, total, mediation.region),
        children=[_figures(c, by_code.get(c.path), mediation.child(c.path)) for c in children],
    )


def _figures(region: Region, row: Any, mediation: MediationFigures) -> RegionFigures:
    def count(name: str) -> int:
        return int(row[name]) if row is not None else 0

    def rate(name: str) -> Rate:
        if row is None:
            return Rate(rate=None, numerator=0, denominator=0)
        return _rate(int(row[f"{name}_n"]), int(row[f"{name}_d"]), row[f"{name}_rate"])

    return RegionFigures(
        code=region.path,
        name=region.name,
        name_en=region.name_en,
        level=RegionLevel(region.level),
        cases=count("cases"),
        response_rate=rate("response"),
        on_time_resolution_rate=rate("resolution"),
        satisfaction_rate=rate("satisfaction"),
        reopen_rate=rate("reopen"),
        overdue_now=count("overdue_now"),
        by_channel=ChannelCounts(**{c.value: count(f"channel_{c.value}") for c in Channel}),
        mediation=mediation,
    )
