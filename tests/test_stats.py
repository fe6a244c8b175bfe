"""Case figures per region, checked against figures worked out by hand for a fixed set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import Role
from backend.cases import workflow
from backend.cases.models import Case, CaseKind, Channel
from backend.cases.workflow import Action, Actor
from backend.core.clock import clock, now
from tests.conftest import Login, assert_problem, bearer
from tests.test_workbench import GANGDING, SHIPAI, make_category, open_case

# A week of its own, long past, so no other test's cases fall into the period.
T = datetime(2019, 6, 3, 0, 0, tzinfo=UTC)
PERIOD = {"from": (T - timedelta(hours=1)).isoformat(), "to": (T + timedelta(days=3)).isoformat()}
G01 = f"{GANGDING}.g01"
G05 = f"{GANGDING}.g05"
SHIPAIDONG = f"{SHIPAI}.shipaidong"
STAFF = Actor(None, Role.community_staff.value)


async def step(
    session: AsyncSession, case: Case, action: Action, at: datetime, **changes: Any
) -> None:
    """Apply `action` at the time `at` (the clock stands there while it happens)."""
    clock.freeze(at)
    actor = (
        Actor(case.reporter_id, workflow.RESIDENT)
        if action in (Action.rate, Action.reopen)
        else STAFF
    )
    await workflow.apply(session, case, action, actor, changes=changes)
    await session.commit()


async def opened(
    session: AsyncSession, category: Any, grid: str, at: datetime, **extra: Any
) -> Case:
    clock.freeze(at)
    return await open_case(session, category, grid=grid, **extra)


@pytest.fixture
async def figures_world(demo: None, session: AsyncSession) -> None:
    """Seven cases in Shipai subdistrict, one before the period, one elsewhere, one mediation.

    Response deadline 4 h, resolution deadline 48 h after creation.
    """
    category = await make_category(session, response_hours=4, resolution_hours=48)
    h = timedelta(hours=1)

    # A: accepted and resolved on time, rated 5.
    a = await opened(session, category, G05, T)
    await step(session, a, Action.accept, T + 1 * h, accepted_at=T + 1 * h)
    await step(session, a, Action.start, T + 2 * h)
    await step(session, a, Action.resolve, T + 20 * h, resolved_at=T + 20 * h)
    await step(session, a, Action.rate, T + 21 * h, rating=5, closed_at=T + 21 * h)
    # B: by phone; accepted late, resolved late, rated 2.
    b = await opened(session, category, G05, T, channel=Channel.phone)
    await step(session, b, Action.accept, T + 6 * h, accepted_at=T + 6 * h)
    await step(session, b, Action.resolve, T + 60 * h, resolved_at=T + 60 * h)
    await step(session, b, Action.rate, T + 61 * h, rating=2, closed_at=T + 61 * h)
    # C: at the counter; on time, then reopened by the resident: a new round with fresh
    # deadlines, which nobody has answered.
    c = await opened(session, category, G05, T, channel=Channel.counter)
    await step(session, c, Action.accept, T + 2 * h, accepted_at=T + 2 * h)
    await step(session, c, Action.resolve, T + 30 * h, resolved_at=T + 30 * h)
    await step(
        session,
        c,
        Action.reopen,
        T + 40 * h,
        reopen_count=1,
        resolved_at=None,
        response_due_at=T + 44 * h,
        resolution_due_at=T + 88 * h,
    )
    # D: never accepted.
    await opened(session, category, G01, T)
    # E: rejected without being accepted.
    e = await opened(session, category, G01, T)
    await step(session, e, Action.reject, T + 1 * h, rejected_reason="duplicate")
    # F: accepted in time, never resolved.
    f = await opened(session, category, G01, T)
    await step(session, f, Action.accept, T + 3 * h, accepted_at=T + 3 * h)
    await step(session, f, Action.start, T + 4 * h)
    # G: in Shipai East, by phone, resolved on time and not rated.
    g = await opened(session, category, f"{SHIPAIDONG}.g02", T + 24 * h, channel=Channel.phone)
    await step(session, g, Action.accept, T + 25 * h, accepted_at=T + 25 * h)
    await step(session, g, Action.resolve, T + 34 * h, resolved_at=T + 34 * h)

    # Not counted: created before the period, located in another street, a mediation.
    await opened(session, category, G05, T - 2 * h)
    await opened(session, category, "gz.tianhe.liede.liede.g01", T)
    mediation = await make_category(session, CaseKind.mediation)
    await opened(session, mediation, G05, T)
    clock.reset()  # the figures are asked for now, years later


def rate(value: float | None, numerator: int, denominator: int) -> dict[str, Any]:
    return {"rate": value, "numerator": numerator, "denominator": denominator}


GANGDING_FIGURES = {
    "code": GANGDING,
    "cases": 6,
    # Accepted: A, B (late), F; waiting past the deadline: D, C (reopened). On time: A, F.
    "response_rate": rate(0.4, 2, 5),
    # Resolved: A, B (late); open without a resolution, past the deadline: C, D, F.
    "on_time_resolution_rate": rate(0.2, 1, 5),
    "satisfaction_rate": rate(0.5, 1, 2),
    # Resolved at least once: A, B, C; reopened: C.
    "reopen_rate": rate(0.3333, 1, 3),
    # C and D wait for a response, F for a result.
    "overdue_now": 3,
    "by_channel": {"miniapp": 4, "phone": 1, "counter": 1, "inspection": 0},
}
SHIPAIDONG_FIGURES = {
    "code": SHIPAIDONG,
    "cases": 1,
    "response_rate": rate(1.0, 1, 1),
    "on_time_resolution_rate": rate(1.0, 1, 1),
    "satisfaction_rate": rate(None, 0, 0),
    "reopen_rate": rate(0.0, 0, 1),
    "overdue_now": 0,
    "by_channel": {"miniapp": 0, "phone": 1, "counter": 0, "inspection": 0},
}


def pick(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: figures[key] for key in GANGDING_FIGURES}


async def stats(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> Any:
    response = await client.get("/v1/staff/stats", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_street_and_its_communities(
    client: httpx.AsyncClient, figures_world: None, login: Login
) -> None:
    admin = bearer(await login("demo-district-admin"))
    body = await stats(client, admin, region=SHIPAI, **PERIOD)
    assert pick(body["region"]) == {
        "code": SHIPAI,
        "cases": 7,
        "response_rate": rate(0.5, 3, 6),
        "on_time_resolution_rate": rate(0.3333, 2, 6),
        "satisfaction_rate": rate(0.5, 1, 2),
        "reopen_rate": rate(0.25, 1, 4),
        "overdue_now": 3,
        "by_channel": {"miniapp": 4, "phone": 2, "counter": 1, "inspection": 0},
    }
    assert body["region"]["name"] == "石牌街" and body["region"]["level"] == "street"
    assert [pick(child) for child in body["children"]] == [GANGDING_FIGURES, SHIPAIDONG_FIGURES]
    assert datetime.fromisoformat(body["period_from"]) == T - timedelta(hours=1)


async def test_default_region_is_the_callers_and_children_are_its_grids(
    client: httpx.AsyncClient, figures_world: None, login: Login
) -> None:
    staff = bearer(await login("demo-community-staff"))
    body = await stats(client, staff, **PERIOD)
    assert pick(body["region"]) == GANGDING_FIGURES
    children = {child["code"]: child for child in body["children"]}
    assert len(children) == 9  # every grid, with zeros where nothing happened
    assert children[G05]["cases"] == 3 and children[G01]["cases"] == 3
    assert children[G01]["overdue_now"] == 2 and children[G05]["overdue_now"] == 1
    assert children[G05]["satisfaction_rate"] == rate(0.5, 1, 2)
    assert children[f"{GANGDING}.g09"]["cases"] == 0
    assert children[f"{GANGDING}.g09"]["response_rate"] == rate(None, 0, 0)

    grid = await stats(client, staff, region=G05, **PERIOD)
    assert grid["region"]["cases"] == 3 and grid["children"] == []


async def test_the_default_period_is_the_last_thirty_days(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    category = await make_category(session)
    clock.freeze(now() - timedelta(days=31))
    await open_case(session, category)
    clock.reset()
    await open_case(session, category)
    staff = bearer(await login("demo-community-staff"))
    body = await stats(client, staff)
    assert body["region"]["cases"] == 1 and body["region"]["overdue_now"] == 0
    assert body["region"]["response_rate"] == rate(None, 0, 0)
    period = datetime.fromisoformat(body["period_to"]) - datetime.fromisoformat(body["period_from"])
    assert period == timedelta(days=30)


async def test_who_may_see_which_figures(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    staff = bearer(await login("demo-community-staff"))
    above = await client.get("/v1/staff/stats", params={"region": SHIPAI}, headers=staff)
    assert_problem(above, 404, "regions.not_found")
    beside = await client.get("/v1/staff/stats", params={"region": "gz.yuexiu"}, headers=staff)
    assert_problem(beside, 404, "regions.not_found")
    resident = bearer(await login("demo-resident"))
    assert_problem(await client.get("/v1/staff/stats", headers=resident), 403, "auth.forbidden")
    backwards = await client.get(
        "/v1/staff/stats", params={"from": PERIOD["to"], "to": PERIOD["from"]}, headers=staff
    )
    assert_problem(backwards, 422, "case.stats_period_invalid")
    naive = await client.get(
        "/v1/staff/stats", params={"from": "2019-06-01T00:00:00"}, headers=staff
    )
    assert_problem(naive, 422, "request.invalid")
