"""Mediation figures for the staff stats: counts and rates per region, in aggregate only.

Nothing here names a case, a party or a mediator: one aggregate query answers the region
and each region directly below it, and only numbers leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Numeric, Text, and_, case, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.cases.models import Case
from backend.mediation.models import (
    OPEN_MEDIATION_STATES,
    Consent,
    Mediation,
    MediationParty,
    MediationState,
    PartyRole,
)
from backend.stats.schemas import MediationFigures, MediationStateCounts, Rate

SECONDS_PER_DAY = 86400


# The state groups of `MediationStateCounts`, by field name.
STATE_GROUPS: dict[str, tuple[MediationState, ...]] = {
    "open": OPEN_MEDIATION_STATES,
    "concluded": (MediationState.concluded,),
    "no_agreement": (MediationState.no_agreement,),
    "withdrawn": (MediationState.withdrawn,),
    "not_mediated": (MediationState.not_mediated,),
}


def _empty() -> MediationFigures:
    return MediationFigures(
        cases=0,
        consent_rate=Rate(rate=None, numerator=0, denominator=0),
        success_rate=Rate(rate=None, numerator=0, denominator=0),
        average_days_to_conclude=None,
        by_state=MediationStateCounts(**dict.fromkeys(STATE_GROUPS, 0)),
        escalated=0,
    )


@dataclass(frozen=True)
class MediationBreakdown:
    """The figures of a region and of the regions directly below it that have mediations."""

    region: MediationFigures = field(default_factory=_empty)
    children: dict[str, MediationFigures] = field(default_factory=dict)

    def child(self, code: str) -> MediationFigures:
        """A child's figures; zeros (and null rates) when it had no mediation."""
        return self.children.get(code) or _empty()


def _respondent(*conditions: Any) -> Any:
    """SQL: the mediation has a respondent meeting `conditions`."""
    return exists().where(
        col(MediationParty.case_id) == col(Mediation.case_id),
        col(MediationParty.role) == PartyRole.respondent.value,
        *conditions,
    )


async def mediation_figures(
    session: AsyncSession, region_path: str, *, start: datetime, end: datetime
) -> MediationBreakdown:
    """Figures of the mediations located in the region and created in [start, end).

    Filtered by place (GiST index on `mediation.region_path`) and by the case's creation
    time, then grouped by the label below the region (`subpath`) with ROLLUP for the
    region's own row, in one query.
    """
    depth = region_path.count(".") + 1
    place = col(Mediation.region_path)
    accepted_by_all = and_(
        _respondent(),
        ~_respondent(col(MediationParty.consent) != Consent.accepted.value),
    )
    # A refusal ends the case as not mediated; the state covers a refusal whose party
    # rows were left pending.
    refused = or_(
        _respondent(
            col(MediationParty.consent).in_([Consent.declined.value, Consent.expired.value])
        ),
        col(Mediation.state) == MediationState.not_mediated.value,
    )
    # One row per mediation, so each consent check runs once per mediation.
    each = (
        select(
            case(
                (func.nlevel(place) > depth, cast(func.subpath(place, 0, depth + 1), Text)),
                else_=None,
            ).label("child"),
            col(Mediation.state).label("state"),
            col(Mediation.escalated_at).is_not(None).label("escalated"),
            accepted_by_all.label("consented"),
            refused.label("refused"),
            func.extract("epoch", col(Mediation.ended_at) - col(Case.created_at)).label("seconds"),
        )
        .join(Case, col(Case.id) == col(Mediation.case_id))
        .where(
            place.descendant_of(region_path),  # type: ignore[attr-defined]
            col(Case.created_at) >= start,
            col(Case.created_at) < end,
        )
        .subquery("each_mediation")
    )

    def in_group(states: tuple[MediationState, ...]) -> Any:
        return each.c.state.in_([state.value for state in states])

    concluded = in_group((MediationState.concluded,))
    ratios = {
        "consent": (each.c.consented, or_(each.c.consented, each.c.refused)),
        "success": (concluded, in_group((MediationState.concluded, MediationState.no_agreement))),
    }
    columns: list[Any] = [
        each.c.child,
        func.grouping(each.c.child).label("is_total"),
        func.count().label("cases"),
        func.count().filter(each.c.escalated).label("escalated"),
    ]
    for name, (numerator, denominator) in ratios.items():
        top = func.count().filter(numerator)
        bottom = func.count().filter(denominator)
        columns += [
            top.label(f"{name}_n"),
            bottom.label(f"{name}_d"),
            func.round(cast(top, Numeric) / func.nullif(bottom, 0), 4).label(f"{name}_rate"),
        ]
    days = cast(func.avg(each.c.seconds).filter(concluded), Numeric) / SECONDS_PER_DAY
    columns.append(func.round(days, 1).label("average_days"))
    columns += [
        func.count().filter(in_group(states)).label(f"state_{name}")
        for name, states in STATE_GROUPS.items()
    ]
    query = select(*columns).group_by(func.rollup(each.c.child))
    rows = (await session.execute(query)).mappings().all()
    region = _empty()
    children: dict[str, MediationFigures] = {}
    for row in rows:
        if row["is_total"]:
            region = _from_row(row)
        elif row["child"] is not None:
            children[row["child"]] = _from_row(row)
    return MediationBreakdown(region=region, children=children)


def _from_row(row: Any) -> MediationFigures:
    def rate(name: str) -> Rate:
        value = row[f"{name}_rate"]
        return Rate(
            rate=float(value) if value is not None else None,
            numerator=int(row[f"{name}_n"]),
            denominator=int(row[f"{name}_d"]),
        )

    average = row["average_days"]
    return MediationFigures(
        cases=int(row["cases"]),
        consent_rate=rate("consent"),
        success_rate=rate("success"),
        average_days_to_conclude=float(average) if average is not None else None,
        by_state=MediationStateCounts(**{name: int(row[f"state_{name}"]) for name in STATE_GROUPS}),
        escalated=int(row["escalated"]),
    )
