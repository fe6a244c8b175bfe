"""Case figures per region, checked against figures worked out by hand for a fixed set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import Role
from backend.cases import workflow
from backend.cases.models import Case, CaseKind, Channel
from backend.cases.workflow import Action, Actor
from backend.core.clock import clock, now
from backend.core.security import mask_phone
from backend.mediation.models import Consent, Mediation, MediationState, Mediator
from tests.conftest import ELSEWHERE, Login, StaffElsewhere, assert_problem, bearer
from tests.factories.cases import GANGDING, SHIPAI, make_category, open_case
from tests.factories.mediation import make_mediation, make_mediator

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


@pytest.mark.parametrize(
    "period",
    [
        # No default start before the first month of the calendar.
        {"to": "0001-01-01T00:00:00Z"},
        # Offsets that push year 1 or 9999 out of the range the driver converts to UTC.
        {"from": "0001-01-01T00:00:00+01:00"},
        {"from": "2019-06-01T00:00:00Z", "to": "9999-12-31T23:59:59-23:59"},
    ],
    ids=["to-in-year-1", "from-before-year-1-in-utc", "to-after-9999-in-utc"],
)
async def test_a_period_at_the_edge_of_the_calendar_is_refused(
    client: httpx.AsyncClient, demo: None, login: Login, period: dict[str, str]
) -> None:
    staff = bearer(await login("demo-community-staff"))
    response = await client.get("/v1/staff/stats", params=period, headers=staff)
    assert_problem(response, 422, "case.stats_period_invalid")


# --- Mediation figures -------------------------------------------------------------------

# Another week long past, apart from the one above.
TM = datetime(2019, 9, 2, 0, 0, tzinfo=UTC)
MEDIATION_PERIOD = {
    "from": (TM - timedelta(hours=1)).isoformat(),
    "to": (TM + timedelta(days=3)).isoformat(),
}
SHIPAIDONG_G02 = f"{SHIPAIDONG}.g02"
LIEDE_G01 = "gz.tianhe.liede.liede.g01"
FUQIAN_G01 = "gz.yuexiu.beijing.fuqian.g01"
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Secret:
    """What the figures must never show of one mediation."""

    case_id: str
    number: str
    names: tuple[str, ...]
    phones: tuple[str, ...]
    texts: tuple[str, ...]


async def mediated(
    session: AsyncSession,
    app: FastAPI,
    secrets: list[Secret],
    grid: str,
    created: datetime,
    state: MediationState,
    consents: tuple[Consent, ...],
    *,
    ended_after: timedelta | None = None,
    escalated: bool = False,
    mediator: Mediator | None = None,
) -> Mediation:
    """A mediation created at `created` in `grid`, with one respondent per consent, in
    `state`; ended `ended_after` its creation when given."""
    n = len(secrets) + 1
    respondents = tuple(
        (f"被申请人{n}{'甲乙丙'[i]}", f"1391{i:03d}{n:04d}", None, consent)
        for i, consent in enumerate(consents)
    )
    description = f"第{n}号纠纷：楼上邻居装修噪音扰民"
    claim = f"第{n}号请求：晚上十点后停止施工"
    clock.freeze(created)
    mediation = await make_mediation(
        session,
        app.state.personal_data,
        f"med-fig-app-{n}",
        grid=grid,
        respondents=respondents,
        mediator=mediator,
        description=description,
        claim=claim,
    )
    mediation.state = state
    if ended_after is not None:
        mediation.ended_at = created + ended_after
    if escalated:
        mediation.escalated_at = created + 31 * DAY
    await session.flush()
    clock.reset()
    case = await session.get(Case, mediation.case_id)
    assert case is not None
    phones = tuple(phone for _, phone, _, _ in respondents)
    secrets.append(
        Secret(
            case_id=str(case.id),
            number=case.number,
            names=tuple(name for name, _, _, _ in respondents),
            phones=phones + tuple(mask_phone(phone) for phone in phones),
            texts=(description, claim),
        )
    )
    return mediation


@pytest.fixture
async def mediation_world(demo: None, session: AsyncSession, app: FastAPI) -> list[Secret]:
    """Ten mediations in Shipai subdistrict in every outcome, and three not counted there."""
    secrets: list[Secret] = []
    mediator = await make_mediator(session, "med-fig-mediator", region="gz.tianhe", max_active=50)
    ok = (Consent.accepted,)
    world: list[tuple[Any, ...]] = [
        # Gangding, grid 05: two concluded (3.5 and 1 1/12 days), one without agreement,
        # one withdrawn after consent, one declined.
        (G05, TM, MediationState.concluded, ok, 3 * DAY + 12 * HOUR, False, mediator),
        (G05, TM + 6 * HOUR, MediationState.concluded, ok, DAY + 2 * HOUR, False, mediator),
        (G05, TM, MediationState.no_agreement, ok, 10 * DAY, False, mediator),
        (G05, TM, MediationState.withdrawn, ok, 2 * DAY, False, mediator),
        (G05, TM, MediationState.not_mediated, (Consent.declined,), DAY, False, None),
        # Gangding, grid 01: consent expired; one respondent of two still to answer; one in
        # session past its time limit, escalated.
        (G01, TM + HOUR, MediationState.not_mediated, (Consent.expired,), 3 * DAY, False, None),
        (
            G01,
            TM + HOUR,
            MediationState.awaiting_consent,
            (Consent.accepted, Consent.pending),
            None,
            False,
            None,
        ),
        (G01, TM + 2 * HOUR, MediationState.in_session, ok, None, True, mediator),
        # Shipai East, a day later: concluded in 5 days; withdrawn before the answer came.
        (SHIPAIDONG_G02, TM + DAY, MediationState.concluded, ok, 5 * DAY, False, mediator),
        (
            SHIPAIDONG_G02,
            TM + DAY,
            MediationState.withdrawn,
            (Consent.pending,),
            2 * HOUR,
            False,
            None,
        ),
        # Not counted in Shipai: before the period, another street, another district.
        (G05, TM - 2 * HOUR, MediationState.concluded, ok, DAY, False, mediator),
        (LIEDE_G01, TM, MediationState.concluded, ok, 2 * DAY, False, mediator),
        (FUQIAN_G01, TM, MediationState.not_mediated, (Consent.declined,), DAY, False, None),
    ]
    for grid, created, state, consents, ended_after, escalated, by in world:
        await mediated(
            session,
            app,
            secrets,
            grid,
            created,
            state,
            consents,
            ended_after=ended_after,
            escalated=escalated,
            mediator=by,
        )
    await session.commit()
    return secrets


def mediation_figures(
    cases: int,
    consent: dict[str, Any],
    success: dict[str, Any],
    days: float | None,
    *,
    open: int = 0,
    concluded: int = 0,
    no_agreement: int = 0,
    withdrawn: int = 0,
    not_mediated: int = 0,
    escalated: int = 0,
) -> dict[str, Any]:
    return {
        "cases": cases,
        "consent_rate": consent,
        "success_rate": success,
        "average_days_to_conclude": days,
        "by_state": {
            "open": open,
            "concluded": concluded,
            "no_agreement": no_agreement,
            "withdrawn": withdrawn,
            "not_mediated": not_mediated,
        },
        "escalated": escalated,
    }


NO_MEDIATION = mediation_figures(0, rate(None, 0, 0), rate(None, 0, 0), None)
# Consent decided: all but the one still waiting (and, in Shipai East, the one withdrawn
# before the answer); success counts concluded against concluded + no agreement.
GANGDING_MEDIATION = mediation_figures(
    8,
    rate(0.7143, 5, 7),
    rate(0.6667, 2, 3),
    2.3,  # (3.5 + 1.0833) / 2
    open=2,
    concluded=2,
    no_agreement=1,
    withdrawn=1,
    not_mediated=2,
    escalated=1,
)
SHIPAIDONG_MEDIATION = mediation_figures(
    2, rate(1.0, 1, 1), rate(1.0, 1, 1), 5.0, concluded=1, withdrawn=1
)


def assert_nothing_of_a_mediation(response: httpx.Response, secrets: list[Secret]) -> None:
    for secret in secrets:
        for value in (secret.case_id, secret.number, *secret.names, *secret.phones, *secret.texts):
            assert value not in response.text, value


async def test_mediation_figures_of_a_street_and_its_communities(
    client: httpx.AsyncClient, mediation_world: list[Secret], login: Login
) -> None:
    admin = bearer(await login("demo-district-admin"))
    response = await client.get(
        "/v1/staff/stats", params={"region": SHIPAI, **MEDIATION_PERIOD}, headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["region"]["mediation"] == mediation_figures(
        10,
        rate(0.75, 6, 8),
        rate(0.75, 3, 4),
        3.2,  # (3.5 + 1.0833 + 5) / 3
        open=2,
        concluded=3,
        no_agreement=1,
        withdrawn=2,
        not_mediated=2,
        escalated=1,
    )
    assert [(c["code"], c["mediation"]) for c in body["children"]] == [
        (GANGDING, GANGDING_MEDIATION),
        (SHIPAIDONG, SHIPAIDONG_MEDIATION),
    ]
    # Mediations are counted apart, never among the reports and complaints.
    assert body["region"]["cases"] == 0
    assert_nothing_of_a_mediation(response, mediation_world)

    district = await client.get(
        "/v1/staff/stats", params={"region": "gz.tianhe", **MEDIATION_PERIOD}, headers=admin
    )
    assert district.status_code == 200, district.text
    figures = district.json()
    assert figures["region"]["mediation"]["cases"] == 11
    assert figures["region"]["mediation"]["success_rate"] == rate(0.8, 4, 5)
    liede = {c["code"]: c["mediation"] for c in figures["children"]}["gz.tianhe.liede"]
    assert liede == mediation_figures(1, rate(1.0, 1, 1), rate(1.0, 1, 1), 2.0, concluded=1)
    assert_nothing_of_a_mediation(district, mediation_world)


async def test_mediation_figures_of_a_community_and_its_grids(
    client: httpx.AsyncClient, mediation_world: list[Secret], login: Login
) -> None:
    staff = bearer(await login("demo-community-staff"))
    response = await client.get("/v1/staff/stats", params=MEDIATION_PERIOD, headers=staff)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["region"]["code"] == GANGDING
    assert body["region"]["mediation"] == GANGDING_MEDIATION
    grids = {child["code"]: child["mediation"] for child in body["children"]}
    assert grids[G05] == mediation_figures(
        5,
        rate(0.8, 4, 5),
        rate(0.6667, 2, 3),
        2.3,
        concluded=2,
        no_agreement=1,
        withdrawn=1,
        not_mediated=1,
    )
    # Nothing concluded or without agreement yet: no success rate, no average.
    assert grids[G01] == mediation_figures(
        3, rate(0.5, 1, 2), rate(None, 0, 0), None, open=2, not_mediated=1, escalated=1
    )
    assert grids[f"{GANGDING}.g09"] == NO_MEDIATION
    assert_nothing_of_a_mediation(response, mediation_world)


async def test_mediation_figures_follow_the_period(
    client: httpx.AsyncClient, mediation_world: list[Secret], login: Login
) -> None:
    admin = bearer(await login("demo-district-admin"))

    async def shipai(start: datetime, end: datetime) -> Any:
        params = {"region": SHIPAI, "from": start.isoformat(), "to": end.isoformat()}
        return await stats(client, admin, **params)

    # Only the two created a day in.
    later = await shipai(TM + 12 * HOUR, TM + 3 * DAY)
    assert later["region"]["mediation"] == SHIPAIDONG_MEDIATION
    assert [c["mediation"] for c in later["children"]] == [NO_MEDIATION, SHIPAIDONG_MEDIATION]
    # The end is excluded: those two were created exactly then.
    first_day = await shipai(TM - HOUR, TM + DAY)
    assert first_day["region"]["mediation"] == GANGDING_MEDIATION
    assert first_day["children"][1]["mediation"] == NO_MEDIATION
    # Before the period: the one created two hours earlier, concluded in a day.
    before = await shipai(TM - 3 * HOUR, TM - HOUR)
    assert before["region"]["mediation"] == mediation_figures(
        1, rate(1.0, 1, 1), rate(1.0, 1, 1), 1.0, concluded=1
    )


async def test_a_region_without_mediation_has_zeros_and_no_rates(
    client: httpx.AsyncClient, mediation_world: list[Secret], login: Login
) -> None:
    city = bearer(await login("demo-city-admin"))
    body = await stats(client, city, region="gz.baiyun", **MEDIATION_PERIOD)
    assert body["region"]["mediation"] == NO_MEDIATION
    assert [c["mediation"] for c in body["children"]] == [NO_MEDIATION, NO_MEDIATION]
    liede = await stats(client, city, region="gz.tianhe.liede", **MEDIATION_PERIOD)
    tancun = {c["code"]: c["mediation"] for c in liede["children"]}["gz.tianhe.liede.tancun"]
    assert tancun == NO_MEDIATION


async def test_mediation_figures_keep_the_staff_rules(
    client: httpx.AsyncClient,
    mediation_world: list[Secret],
    login: Login,
    staff_elsewhere: StaffElsewhere,
) -> None:
    elsewhere = await staff_elsewhere()
    own = await client.get("/v1/staff/stats", params=MEDIATION_PERIOD, headers=elsewhere)
    assert own.status_code == 200, own.text
    assert own.json()["region"]["code"] == ELSEWHERE
    assert own.json()["region"]["mediation"] == mediation_figures(
        1, rate(0.0, 0, 1), rate(None, 0, 0), None, not_mediated=1
    )
    assert_nothing_of_a_mediation(own, mediation_world)
    for region in (SHIPAI, GANGDING, G05):
        other = await client.get(
            "/v1/staff/stats", params={"region": region, **MEDIATION_PERIOD}, headers=elsewhere
        )
        assert_problem(other, 404, "regions.not_found")
        assert_nothing_of_a_mediation(other, mediation_world)
    # Neither the mediator of these cases nor a party holds a staff role.
    for openid in ("med-fig-mediator", "med-fig-app-1"):
        refused = await client.get(
            "/v1/staff/stats", params=MEDIATION_PERIOD, headers=bearer(await login(openid))
        )
        assert_problem(refused, 403, "auth.forbidden")
    anonymous = await client.get("/v1/staff/stats", params=MEDIATION_PERIOD)
    assert anonymous.status_code == 401
