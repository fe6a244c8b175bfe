"""The member's points statement over HTTP, and the earning rules for city administrators."""

from __future__ import annotations

from fastapi import APIRouter

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.errors import problem_responses
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from points.ledger import earning_rules, errors, schemas
from points.ledger import queries as ledger_queries

router = APIRouter()


@router.get(
    "/points/balance",
    operation_id="get_points_balance",
    summary="My points: available, held and expiring soon",
    tags=["points"],
    response_model=schemas.BalanceOut,
    responses=problem_responses(*errors.GET_POINTS_BALANCE_ERRORS),
)
async def get_points_balance(
    session: SessionDep, principal: CurrentPrincipal
) -> schemas.BalanceOut:
    """The caller's points: available to spend, held by redemptions waiting for pickup, and
    how many of the available ones expire within 30 days (and when the next ones do)."""
    balance = await ledger_queries.balance(session, principal.user_id)
    return schemas.BalanceOut(
        available=balance.available,
        held=balance.held,
        expiring_soon=balance.expiring_soon,
        expiring_at=balance.expiring_at,
    )


@router.get(
    "/points/entries",
    operation_id="list_points_entries",
    summary="My points statement, newest first",
    tags=["points"],
    response_model=Page[schemas.EntryOut],
    responses=problem_responses(*errors.LIST_POINTS_ENTRIES_ERRORS),
)
async def list_points_entries(
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.EntryOut]:
    """Every movement of the caller's points, newest first: what, why, what it is about,
    and the balance right after it. Points held for a redemption show as going out, and
    come back as a release if the redemption is cancelled or expires."""
    items = await ledger_queries.entries(
        session, principal.user_id, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(items, limit)
    return Page(
        items=[
            schemas.EntryOut(
                id=entry.id,
                transaction_id=entry.transaction_id,
                kind=entry.kind,
                reason=entry.reason,
                source_ref=entry.source_ref,
                activity_type=entry.activity_type,
                amount=entry.amount,
                balance=entry.balance,
                created_at=entry.created_at,
            )
            for entry in page
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/admin/points/earning-rules",
    operation_id="list_earning_rules",
    summary="List the earning rules",
    tags=["admin"],
    response_model=list[schemas.EarningRuleOut],
    responses=problem_responses(*errors.LIST_EARNING_RULES_ERRORS),
)
async def list_earning_rules(
    session: SessionDep, principal: CurrentPrincipal
) -> list[schemas.EarningRuleOut]:
    """Points per activity type and the daily cap per member, inactive rules included.
    Needs the admin role on a city."""
    earning_rules.require_rules_admin(principal)
    rules = await earning_rules.list_earning_rules(session)
    return [schemas.EarningRuleOut.model_validate(rule) for rule in rules]


@router.put(
    "/admin/points/earning-rules",
    operation_id="replace_earning_rules",
    summary="Set the earning rules",
    tags=["admin"],
    response_model=list[schemas.EarningRuleOut],
    responses=problem_responses(*errors.REPLACE_EARNING_RULES_ERRORS),
)
async def replace_earning_rules(
    body: schemas.EarningRulesIn, session: SessionDep, principal: CurrentPrincipal
) -> list[schemas.EarningRuleOut]:
    """Make the earning rules exactly the ones sent: new activity types are added, listed
    ones changed, and rules left out are deactivated (kept for the record). Points already
    awarded are not touched. Needs the admin role on a city."""
    rules = await earning_rules.replace_earning_rules(session, principal, body.rules)
    return [schemas.EarningRuleOut.model_validate(rule) for rule in rules]
