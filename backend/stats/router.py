"""The staff figures over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.errors import problem_responses
from backend.regions.schemas import RegionQuery
from backend.stats import errors, service
from backend.stats.schemas import CaseStats

router = APIRouter(prefix="/staff", tags=["staff"])


@router.get(
    "/stats",
    operation_id="get_case_stats",
    response_model=CaseStats,
    responses=problem_responses(*errors.GET_CASE_STATS_ERRORS),
)
async def get_case_stats(
    principal: CurrentPrincipal,
    session: SessionDep,
    region: RegionQuery = None,
    period_from: Annotated[
        AwareDatetime | None,
        Query(alias="from", description="Start (included); default: 30 days before `to`."),
    ] = None,
    period_to: Annotated[
        AwareDatetime | None, Query(alias="to", description="End (excluded); default: now.")
    ] = None,
) -> CaseStats:
    """Case figures of a region and of each region directly below it, for a period.

    Counts the reports and complaints located in the region and created in [from, to), and,
    in `mediation`, the mediations located there (in aggregate only: no case, no party); the
    definitions of each rate are in the response schema. Default region: your highest one.
    """
    return await service.case_stats(
        session, principal, region_code=region, start=period_from, end=period_to
    )
