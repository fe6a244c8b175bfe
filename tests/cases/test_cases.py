"""Reports and complaints from the resident's side: categories, submission, idempotency,
placement, duplicates, +1, who sees what, rating and reopening."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import prcoords
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import User
from backend.cases import workflow
from backend.cases.models import Case, Category
from backend.cases.workflow import Action, Actor
from backend.core.clock import clock, now
from backend.core.database import create_sessionmaker
from backend.core.ids import new_id
from backend.demo.categories import DEMO_CATEGORIES
from backend.regions.models import Region, RegionLevel
from backend.wechat.emulator import EmulatorServer
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.storage import JPEG, uploaded_photo

GANGDING = "gz.tianhe.shipai.gangding"
# Demo geometry: Gangding's 3x3 grids start at 23.1300 N, 113.3250 E (WGS-84), each
# 0.0027 deg of latitude by 0.0029 deg of longitude; g01 is the south-west one.
SOUTH, WEST, DLAT, DLNG = 23.1300, 113.3250, 0.0027, 0.0029
G05 = (SOUTH + 1.5 * DLAT, WEST + 1.5 * DLNG)  # the middle of g05
METRES_PER_DEGREE_LAT = 111_195.0  # on the sphere the haversine uses
NUMBER = re.compile(r"(RPT|CMP)-(\d{8})-(\d{6})")

# --- helpers -----------------------------------------------------------------------------


def report(
    *,
    category: str = "road_facilities",
    description: str = "岗顶路口井盖破损，行人容易踩空",
    at: tuple[float, float] = G05,
    coord: str = "wgs84",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "category": category,
        "description": description,
        "location": {"lat": at[0], "lng": at[1], "coord": coord},
        **extra,
    }


def north(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / METRES_PER_DEGREE_LAT, point[1]


async def submit(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    key: str | None = None,
    path: str = "/v1/reports",
) -> httpx.Response:
    sent = dict(headers)
    sent["Idempotency-Key"] = key or uuid.uuid4().hex
    return await client.post(path, json=body, headers=sent)


async def submitted(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    response = await submit(client, headers, body, **kwargs)
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


async def as_user(login: Login, openid: str) -> dict[str, str]:
    return bearer(await login(openid))


async def cases_of(session: AsyncSession, user_id: str | uuid.UUID) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Case)
        .where(col(Case.submitted_by) == uuid.UUID(str(user_id)))
    )
    return int(result.scalar_one())


async def get_case(
    client: httpx.AsyncClient, headers: dict[str, str], case_id: str
) -> httpx.Response:
    return await client.get(f"/v1/cases/{case_id}", headers=headers)


async def drive(session: AsyncSession, case_id: str, *actions: Action, staff_id: str) -> None:
    """Move a case on as staff would (the staff endpoints are tested on their own)."""
    case = await session.get(Case, uuid.UUID(case_id), populate_existing=True)
    assert case is not None
    actor = Actor(uuid.UUID(staff_id), "community_staff")
    for action in actions:
        changes: dict[str, Any] = {}
        if action is Action.accept:
            changes["accepted_at"] = now()
        if action is Action.resolve:
            changes["resolved_at"] = now()
        await workflow.apply(session, case, action, actor, changes=changes)
    await session.commit()


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


# --- categories --------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_categories_are_public_and_in_order(client: httpx.AsyncClient) -> None:
    # Race tests commit categories of their own (codes of their own): read the demo ones.
    demo = {category.code for category in DEMO_CATEGORIES}

    async def listed(**params: str) -> list[dict[str, Any]]:
        answer = await client.get("/v1/categories", params=params)
        assert answer.status_code == 200, answer.text
        return [c for c in answer.json() if c["code"] in demo]

    reports = await listed(kind="report")
    names = [c["name"] for c in reports]
    assert names == [
        "治安隐患",
        "消防隐患",
        "环境卫生",
        "道路设施",
        "违章搭建",
        "噪音扰民",
        "占道经营",
        "市政设施",
    ]
    road = next(c for c in reports if c["code"] == "road_facilities")
    assert road["kind"] == "report" and road["name_en"].startswith("Road facilities")
    assert 2 <= road["response_hours"] <= 24 <= road["resolution_hours"] <= 168
    assert road["handling_unit"] and road["handling_unit_en"]

    complaints = await listed(kind="complaint")
    assert [c["name"] for c in complaints] == ["物业服务", "市场监管", "劳动保障", "城市管理"]
    disputes = await listed(kind="mediation")
    assert [c["code"] for c in disputes][:2] == ["neighbours", "family"]
    everything = await listed()
    assert len(everything) == len(reports) + len(complaints) + len(disputes) == 19


@pytest.mark.usefixtures("demo")
async def test_only_a_city_admin_edits_the_catalogue(
    client: httpx.AsyncClient, login: Login
) -> None:
    new = {
        "kind": "report",
        "code": "stray_dogs",
        "name": "流浪犬只",
        "name_en": "Stray dogs",
        "response_hours": 6,
        "resolution_hours": 72,
        "handling_unit": "街道综合执法队",
        "handling_unit_en": "Subdistrict law-enforcement team",
        "position": 75,
    }
    for openid in ("demo-district-admin", "demo-community-staff", "demo-resident"):
        refused = await client.post(
            "/v1/admin/categories", json=new, headers=await as_user(login, openid)
        )
        assert_problem(refused, 403, "case.category_admin_only")

    city = await as_user(login, "demo-city-admin")
    created = await client.post("/v1/admin/categories", json=new, headers=city)
    assert created.status_code == 201, created.text
    category = created.json()
    listed = (await client.get("/v1/categories", params={"kind": "report"})).json()
    assert [c["code"] for c in listed][-2:] == ["stray_dogs", "municipal_facilities"]

    again = await client.post("/v1/admin/categories", json=new, headers=city)
    assert_problem(again, 409, "case.category_duplicate")
    backwards = await client.post(
        "/v1/admin/categories",
        json=new | {"code": "stray_cats", "response_hours": 48, "resolution_hours": 24},
        headers=city,
    )
    assert_problem(backwards, 422, "case.category_sla_invalid")

    district = await as_user(login, "demo-district-admin")
    patch_url = f"/v1/admin/categories/{category['id']}"
    refused = await client.patch(patch_url, json={"active": False}, headers=district)
    assert_problem(refused, 403, "case.category_admin_only")
    too_short = await client.patch(patch_url, json={"resolution_hours": 3}, headers=city)
    assert_problem(too_short, 422, "case.category_sla_invalid")
    null = await client.patch(patch_url, json={"name": None}, headers=city)
    assert_problem(null, 422, "request.invalid")

    off = await client.patch(patch_url, json={"active": False, "response_hours": 4}, headers=city)
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False and off.json()["response_hours"] == 4
    assert off.json()["name"] == "流浪犬只"
    listed = (await client.get("/v1/categories", params={"kind": "report"})).json()
    assert "stray_dogs" not in [c["code"] for c in listed]
    every = (await client.get("/v1/admin/categories", headers=city)).json()
    assert "stray_dogs" in [c["code"] for c in every]

    missing = await client.patch(f"/v1/admin/categories/{uuid.uuid4()}", json={}, headers=city)
    assert_problem(missing, 404, "case.category_not_found")


# --- submitting --------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_a_report_gets_a_number_deadlines_a_place_and_a_timeline(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    headers = bearer(tokens)
    before = now()
    response = await submit(
        client, headers, report(address="天河路岗顶地铁站B出口"), key="first-report"
    )
    assert response.status_code == 201, response.text
    assert "Idempotent-Replay" not in response.headers
    case = response.json()

    match = NUMBER.fullmatch(case["number"])
    assert match and match.group(1) == "RPT"
    assert match.group(2) == before.astimezone(workflow.LOCAL_TIME).strftime("%Y%m%d")
    assert case["kind"] == "report" and case["state"] == "submitted" and case["version"] == 1
    assert case["category"]["code"] == "road_facilities"
    assert case["grid"]["code"] == f"{GANGDING}.g05" and case["grid"]["name"] == "岗顶第5网格"
    assert case["queue"] == {"code": GANGDING, "name": "岗顶社区", "name_en": "Gangding Community"}
    assert case["location"] == {"lat": G05[0], "lng": G05[1], "coord": "wgs84"}
    assert case["address"] == "天河路岗顶地铁站B出口"
    assert case["reporter"]["id"] == tokens["user"]["id"]
    assert case["supporters"] == 0 and case["attachments"] == []
    assert case["possible_duplicates"] == []

    road = await session.scalar(select(Category).where(col(Category.code) == "road_facilities"))
    assert road is not None
    created = parse(case["created_at"])
    assert parse(case["response_due_at"]) - created == timedelta(hours=road.response_hours)
    assert parse(case["resolution_due_at"]) - created == timedelta(hours=road.resolution_hours)

    [event] = case["timeline"]
    assert event["seq"] == 1 and event["action"] == "submit"
    assert event["from_state"] is None and event["to_state"] == "submitted"
    assert event["actor_role"] == "resident" and event["actor"] is None
    assert event["data"] == {"channel": "miniapp"}

    read = await get_case(client, headers, case["id"])
    assert read.status_code == 200, read.text
    assert {k: v for k, v in case.items() if k != "possible_duplicates"} == read.json()

    second = await submitted(client, headers, report(), key="second-report")
    first_serial, second_serial = int(match.group(3)), int(second["number"][-6:])
    assert second_serial > first_serial


@pytest.mark.usefixtures("demo")
async def test_a_complaint_names_its_target(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    headers = bearer(tokens)
    body = report(category="property_management", description="小区电梯停运一周，物业不维修")
    untargeted = await submit(client, headers, body, path="/v1/complaints")
    assert_problem(untargeted, 422, "request.invalid")
    assert await cases_of(session, tokens["user"]["id"]) == 0

    target = {"type": "property_company", "name": "岗顶物业服务有限公司"}
    case = await submitted(client, headers, body | {"target": target}, path="/v1/complaints")
    assert NUMBER.fullmatch(case["number"]) and case["number"].startswith("CMP-")
    assert case["kind"] == "complaint"
    assert case["target"] == target
    assert case["category"]["code"] == "property_management"


@pytest.mark.usefixtures("demo")
async def test_a_retry_answers_the_same_case(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    headers = bearer(tokens)
    body = report(upload_ids=[], anonymous=False)
    first = await submitted(client, headers, body, key="tap-42")

    retry = await submit(client, headers, body, key="tap-42")
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replay"] == "true"
    assert retry.json()["id"] == first["id"] and retry.json()["number"] == first["number"]
    # The same request in another spelling (defaults left out, keys reordered) is the same.
    spelled = {"location": body["location"], "description": body["description"]}
    spelled["category"] = body["category"]
    again = await submit(client, headers, spelled, key="tap-42")
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert await cases_of(session, tokens["user"]["id"]) == 1

    changed = await submit(
        client, headers, body | {"description": "井盖不见了，很危险"}, key="tap-42"
    )
    body_conflict = assert_problem(changed, 409, "case.idempotency_conflict")
    assert "Idempotency" not in body_conflict["detail"]
    as_complaint = await submit(
        client,
        headers,
        body | {"target": {"type": "business", "name": "某某商店"}},
        key="tap-42",
        path="/v1/complaints",
    )
    assert_problem(as_complaint, 409, "case.idempotency_conflict")
    assert await cases_of(session, tokens["user"]["id"]) == 1

    # Keys belong to their sender: another resident's same key is their own case.
    other = await submitted(client, await as_user(login, "demo-resident-2"), body, key="tap-42")
    assert other["id"] != first["id"]


@pytest.mark.usefixtures("demo")
async def test_the_idempotency_key_is_required_and_checked(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    headers = bearer(tokens)
    missing = await client.post("/v1/reports", json=report(), headers=headers)
    assert_problem(missing, 400, "request.idempotency_key_required")
    for bad in ("has space", "x" * 129, "   "):
        response = await submit(client, headers, report(), key=bad)
        code = (
            "request.idempotency_key_required"
            if not bad.strip()
            else "request.idempotency_key_invalid"
        )
        assert_problem(response, 400, code)
    assert await cases_of(session, tokens["user"]["id"]) == 0
    assert (await submit(client, {}, report())).status_code == 401


@pytest.mark.usefixtures("demo")
async def test_a_point_outside_every_grid_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    response = await submit(client, bearer(tokens), report(at=(23.0, 113.0)))
    body = assert_problem(response, 422, "case.outside_grids")
    assert "服务范围" in body["detail"]
    english = await client.post(
        "/v1/reports",
        json=report(at=(23.0, 113.0)),
        headers=bearer(tokens) | {"Idempotency-Key": "k", "Accept-Language": "en"},
    )
    assert "service area" in assert_problem(english, 422, "case.outside_grids")["detail"]
    assert await cases_of(session, tokens["user"]["id"]) == 0


@pytest.mark.usefixtures("demo")
async def test_the_category_must_be_active_and_of_the_right_kind(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    headers = bearer(tokens)
    road = await session.scalar(select(Category).where(col(Category.code) == "road_facilities"))
    assert road is not None

    by_id = await submitted(client, headers, report(category=str(road.id)))
    assert by_id["category"]["code"] == "road_facilities"

    wrong_kind = await submit(client, headers, report(category="property_management"))
    assert_problem(wrong_kind, 422, "case.category_invalid")
    unknown = await submit(client, headers, report(category="ufo_sighting"))
    assert_problem(unknown, 422, "case.category_invalid")
    complaint_with_report_category = await submit(
        client,
        headers,
        report(target={"type": "department", "name": "某某局"}),
        path="/v1/complaints",
    )
    assert_problem(complaint_with_report_category, 422, "case.category_invalid")

    city = await as_user(login, "demo-city-admin")
    off = await client.patch(
        f"/v1/admin/categories/{road.id}", json={"active": False}, headers=city
    )
    assert off.status_code == 200
    inactive = await submit(client, headers, report())
    assert_problem(inactive, 422, "case.category_invalid")
    assert await cases_of(session, tokens["user"]["id"]) == 1


@pytest.mark.usefixtures("demo")
async def test_invalid_bodies_are_422_not_500(client: httpx.AsyncClient, login: Login) -> None:
    bodies = (
        report(description="短"),
        report(description="x" * 1001),
        report(description="     \n   "),
        report(at=(91.0, 113.0)),
        report(coord="bd09"),
        report(upload_ids=[str(uuid.uuid4()) for _ in range(10)]),
        report(upload_ids=["not-a-uuid"]),
        report(address="x" * 201),
        report(description="井盖\x00破损了，很危险"),
        report(category="road\x00facilities"),
        {"category": "road_facilities", "description": "井盖破损了"},
    )
    for n, body in enumerate(bodies):
        # Refused attempts count against the rate limit too: a few per resident.
        headers = await as_user(
            login, ("demo-resident", "demo-resident-2", "demo-resident-3")[n % 3]
        )
        assert_problem(await submit(client, headers, body), 422, "request.invalid")


@pytest.mark.usefixtures("demo")
async def test_gcj02_locations_are_stored_in_wgs84(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    gcj = prcoords.wgs_gcj(prcoords.Coords(*G05))
    case = await submitted(
        client, await as_user(login, "demo-resident"), report(at=(gcj.lat, gcj.lon), coord="gcj02")
    )
    assert case["grid"]["code"] == f"{GANGDING}.g05"
    stored = await session.get(Case, uuid.UUID(case["id"]))
    assert stored is not None
    assert abs(stored.lat - G05[0]) < 1e-6 and abs(stored.lng - G05[1]) < 1e-6
    # The GCJ-02 offset here is hundreds of metres: the stored point is not the input.
    assert abs(stored.lat - gcj.lat) > 0.001 and abs(stored.lng - gcj.lon) > 0.003
    assert case["location"]["coord"] == "wgs84"


@pytest.mark.usefixtures("demo")
async def test_submissions_are_rate_limited(
    client: httpx.AsyncClient, login: Login, app: FastAPI
) -> None:
    headers = await as_user(login, "demo-resident")
    limits: dict[str, str] = app.state.settings.rate_limits
    limits["case_submit"] = "2/minute"
    try:
        for _ in range(2):
            await submitted(client, headers, report())
        refused = await submit(client, headers, report())
        body = assert_problem(refused, 429, "request.rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
        # Per user: another resident is not held up.
        await submitted(client, await as_user(login, "demo-resident-2"), report())
    finally:
        del limits["case_submit"]


# --- possible duplicates -------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_nearby_open_cases_of_the_category_are_offered_as_duplicates(
    client: httpx.AsyncClient, login: Login
) -> None:
    alice = await as_user(login, "demo-resident")
    bob = await as_user(login, "demo-resident-2")
    # Reported earlier: just over 3 days ago (too old to offer), and just under.
    clock.advance(-timedelta(days=3, minutes=1))
    await submitted(client, alice, report(at=north(G05, 5)))
    clock.reset()
    clock.advance(-timedelta(days=2, hours=23))
    recent = await submitted(client, alice, report(at=north(G05, 350)))
    clock.reset()
    assert (await submitted(client, bob, report(at=north(G05, 360))))["possible_duplicates"][0][
        "id"
    ] == recent["id"]

    first = await submitted(
        client, alice, report(description="路口井盖松动，晚上看不清楚，容易摔倒")
    )
    second = await submitted(client, bob, report(at=north(G05, 50)))
    [duplicate] = second["possible_duplicates"]
    assert duplicate["id"] == first["id"] and duplicate["number"] == first["number"]
    assert 48 <= duplicate["distance_m"] <= 52
    assert duplicate["state"] == "submitted" and duplicate["supporters"] == 0
    assert duplicate["summary"] == "路口井盖松动，晚上看不清楚，容易摔倒"
    assert set(duplicate) == {
        "id", "number", "state", "distance_m", "created_at", "supporters", "summary"
    }  # fmt: skip

    # Nearest first: 10 m from the first, 40 m from the second.
    third = await submitted(client, bob, report(at=north(G05, 10)))
    assert [d["id"] for d in third["possible_duplicates"]] == [first["id"], second["id"]]
    assert [d["distance_m"] for d in third["possible_duplicates"]] == [10, 40]

    far = await submitted(client, bob, report(at=north(G05, -150)))
    assert far["possible_duplicates"] == []
    other_category = await submitted(client, bob, report(category="sanitation"))
    assert other_category["possible_duplicates"] == []

    long = "井盖" * 30
    await submitted(client, alice, report(description=long, at=north(G05, -300)))
    later = await submitted(client, alice, report(at=north(G05, -290)))
    assert later["possible_duplicates"][0]["summary"] == long[:40]


@pytest.mark.usefixtures("demo")
async def test_closed_cases_are_not_offered_as_duplicates(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    alice = await as_user(login, "demo-resident")
    staff = await login("demo-community-staff")
    first = await submitted(client, alice, report())
    await drive(session, first["id"], Action.reject, staff_id=staff["user"]["id"])
    second = await submitted(client, await as_user(login, "demo-resident-2"), report())
    assert second["possible_duplicates"] == []


# --- +1 ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_support_counts_each_resident_once(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    alice = await as_user(login, "demo-resident")
    case = await submitted(client, alice, report())
    url = f"/v1/cases/{case['id']}/support"

    bob = await as_user(login, "demo-resident-2")
    assert (await client.post(url, headers=bob)).json() == {"supporters": 1}
    assert (await client.post(url, headers=bob)).json() == {"supporters": 1}
    carol = await as_user(login, "demo-resident-3")
    counted = await client.post(url, headers=carol)
    assert counted.status_code == 200 and counted.json() == {"supporters": 2}

    own = await client.post(url, headers=alice)
    assert_problem(own, 403, "case.own_case")

    # Staff are not disturbed: no new version, no timeline event.
    read = (await get_case(client, alice, case["id"])).json()
    assert read["supporters"] == 2 and read["version"] == 1 and len(read["timeline"]) == 1
    duplicate = await submitted(client, bob, report(at=north(G05, 20)))
    assert duplicate["possible_duplicates"][0]["supporters"] == 2

    staff = await login("demo-community-staff")
    await drive(session, case["id"], Action.accept, Action.resolve, staff_id=staff["user"]["id"])
    late = await client.post(url, headers=await as_user(login, "demo-grid-worker"))
    body = assert_problem(late, 409, "case.not_open")
    assert "已办结" in body["detail"]
    assert_problem(
        await client.post(f"/v1/cases/{uuid.uuid4()}/support", headers=bob), 404, "case.not_found"
    )


# --- who sees what -------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_a_case_is_seen_by_its_reporter_and_the_staff_of_its_area_only(
    client: httpx.AsyncClient, login: Login, staff_elsewhere: StaffElsewhere
) -> None:
    alice_tokens = await login("demo-resident")
    alice = bearer(alice_tokens)
    case = await submitted(client, alice, report())

    bob = await as_user(login, "demo-resident-2")
    assert_problem(await get_case(client, bob, case["id"]), 404, "case.not_found")
    assert_problem(await get_case(client, bob, str(uuid.uuid4())), 404, "case.not_found")
    mine = (await client.get("/v1/me/cases", headers=bob)).json()
    assert mine == {"items": [], "next_cursor": None}
    assert [c["id"] for c in (await client.get("/v1/me/cases", headers=alice)).json()["items"]] == [
        case["id"]
    ]

    for openid in ("demo-community-staff", "demo-grid-worker", "demo-district-admin"):
        seen = await get_case(client, await as_user(login, openid), case["id"])
        assert seen.status_code == 200, (openid, seen.text)
        assert seen.json()["reporter"]["id"] == alice_tokens["user"]["id"]
        assert seen.json()["reporter"]["nickname"] == "居民小陈"
    # A mediator handles mediation, not reports, even in the same street.
    mediator = await as_user(login, "demo-mediator")
    assert_problem(await get_case(client, mediator, case["id"]), 404, "case.not_found")

    # Staff of another street (a Yuexiu community) do not see it.
    elsewhere = await staff_elsewhere()
    assert_problem(await get_case(client, elsewhere, case["id"]), 404, "case.not_found")
    assert_problem(
        await client.post(f"/v1/cases/{case['id']}/rating", json={"rating": 5}, headers=elsewhere),
        404,
        "case.not_found",
    )


@pytest.mark.usefixtures("demo")
async def test_staff_never_learn_who_reported_an_anonymous_case(
    client: httpx.AsyncClient, login: Login
) -> None:
    alice_tokens = await login("demo-resident")
    alice = bearer(alice_tokens)
    case = await submitted(client, alice, report(anonymous=True))
    assert case["anonymous"] is True
    assert case["reporter"]["id"] == alice_tokens["user"]["id"]  # the reporter sees themself

    for openid in ("demo-community-staff", "demo-city-admin"):
        seen = await get_case(client, await as_user(login, openid), case["id"])
        assert seen.status_code == 200, seen.text
        view = seen.json()
        assert view["reporter"] is None and view["contact_phone"] is None
        assert view["timeline"][0]["actor"] is None
        assert alice_tokens["user"]["id"] not in seen.text
        assert "居民小陈" not in seen.text


@pytest.mark.usefixtures("demo")
async def test_my_cases_newest_first_page_by_page(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    alice = await as_user(login, "demo-resident")
    staff = await login("demo-community-staff")
    made = [
        await submitted(client, alice, report(description=f"第{n}个问题：路灯不亮了"))
        for n in range(3)
    ]
    complaint = await submitted(
        client,
        alice,
        report(category="consumer_rights", target={"type": "business", "name": "某超市"}),
        path="/v1/complaints",
    )
    newest_first = [complaint["id"], *(c["id"] for c in reversed(made))]

    first = (await client.get("/v1/me/cases", params={"limit": 3}, headers=alice)).json()
    assert [c["id"] for c in first["items"]] == newest_first[:3]
    assert first["items"][0]["kind"] == "complaint"
    assert first["items"][1]["summary"] == "第2个问题：路灯不亮了"
    assert first["items"][1]["category"]["code"] == "road_facilities"
    rest = (
        await client.get(
            "/v1/me/cases", params={"limit": 3, "cursor": first["next_cursor"]}, headers=alice
        )
    ).json()
    assert [c["id"] for c in rest["items"]] == newest_first[3:] and rest["next_cursor"] is None

    await drive(session, made[1]["id"], Action.accept, staff_id=staff["user"]["id"])
    accepted = (
        await client.get("/v1/me/cases", params={"state": "accepted"}, headers=alice)
    ).json()
    assert [c["id"] for c in accepted["items"]] == [made[1]["id"]]
    bad = await client.get("/v1/me/cases", params={"cursor": "%%%"}, headers=alice)
    assert_problem(bad, 400, "request.cursor_invalid")


# --- rating and reopening ------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_rating_closes_a_resolved_case(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    alice = await as_user(login, "demo-resident")
    staff_tokens = await login("demo-community-staff")
    case = await submitted(client, alice, report())
    url = f"/v1/cases/{case['id']}/rating"

    early = await client.post(url, json={"rating": 5}, headers=alice)
    body = assert_problem(early, 409, "case.illegal_transition")
    assert "已提交" in body["detail"]

    await drive(
        session, case["id"], Action.accept, Action.resolve, staff_id=staff_tokens["user"]["id"]
    )
    staff = bearer(staff_tokens)
    assert_problem(
        await client.post(url, json={"rating": 5}, headers=staff), 403, "case.not_reporter"
    )
    bob = await as_user(login, "demo-resident-2")
    assert_problem(await client.post(url, json={"rating": 5}, headers=bob), 404, "case.not_found")
    assert_problem(
        await client.post(url, json={"rating": 6}, headers=alice), 422, "request.invalid"
    )

    rated = await client.post(url, json={"rating": 4, "comment": "处理及时，谢谢"}, headers=alice)
    assert rated.status_code == 200, rated.text
    closed = rated.json()
    assert closed["state"] == "closed" and closed["rating"] == 4
    assert closed["rating_comment"] == "处理及时，谢谢" and closed["closed_at"]
    last = closed["timeline"][-1]
    assert last["action"] == "rate" and last["from_state"] == "resolved"
    assert last["to_state"] == "closed" and last["data"] == {"rating": 4}
    assert last["actor_role"] == "resident" and last["actor"] is None
    # The staff steps name the staff member.
    accept = closed["timeline"][1]
    assert accept["action"] == "accept" and accept["actor"]["id"] == staff_tokens["user"]["id"]

    retry = await client.post(url, json={"rating": 4, "comment": "处理及时，谢谢"}, headers=alice)
    assert retry.status_code == 200 and retry.json() == closed
    changed = await client.post(url, json={"rating": 1}, headers=alice)
    assert_problem(changed, 409, "case.already_rated")


@pytest.mark.usefixtures("demo")
async def test_reopen_within_the_window_only(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    alice = await as_user(login, "demo-resident")
    staff = (await login("demo-community-staff"))["user"]["id"]
    reason = {"reason": "井盖换了，但还是松动，踩上去会响"}
    # Resolved 6 days ago (tokens stay valid: the clock only goes back).
    clock.advance(-timedelta(days=6))
    case = await submitted(client, alice, report())
    url = f"/v1/cases/{case['id']}/reopen"
    early = await client.post(url, json=reason, headers=alice)
    assert_problem(early, 409, "case.illegal_transition")
    await drive(session, case["id"], Action.accept, Action.resolve, staff_id=staff)
    clock.reset()

    short = await client.post(url, json={"reason": "不行"}, headers=alice)
    assert_problem(short, 422, "request.invalid")
    bob = await as_user(login, "demo-resident-2")
    assert_problem(await client.post(url, json=reason, headers=bob), 404, "case.not_found")
    staff_headers = await as_user(login, "demo-community-staff")
    refused = await client.post(url, json=reason, headers=staff_headers)
    assert_problem(refused, 403, "case.not_reporter")

    reopened = await client.post(url, json=reason, headers=alice)
    assert reopened.status_code == 200, reopened.text
    view = reopened.json()
    assert view["state"] == "reopened" and view["reopen_count"] == 1
    assert view["resolved_at"] is None and view["closed_at"] is None and view["rating"] is None
    road = await session.scalar(select(Category).where(col(Category.code) == "road_facilities"))
    assert road is not None
    renewed = parse(view["response_due_at"]) - now()
    assert timedelta(hours=road.response_hours) - timedelta(minutes=1) < renewed
    assert renewed <= timedelta(hours=road.response_hours)
    last = view["timeline"][-1]
    assert last["action"] == "reopen" and last["note"] == reason["reason"]
    assert last["from_state"] == "resolved" and last["to_state"] == "reopened"
    assert last["actor_role"] == "resident" and last["actor"] is None

    # Resolved again and rated: a closed case can still be reopened within the window.
    await drive(session, case["id"], Action.accept, Action.resolve, staff_id=staff)
    rated = await client.post(f"/v1/cases/{case['id']}/rating", json={"rating": 2}, headers=alice)
    assert rated.json()["state"] == "closed"
    again = await client.post(url, json=reason, headers=alice)
    assert again.status_code == 200, again.text
    assert again.json()["reopen_count"] == 2 and again.json()["rating"] is None

    # Resolved 8 days ago: too late.
    clock.advance(-timedelta(days=8))
    old = await submitted(client, alice, report(at=north(G05, 200)))
    await drive(session, old["id"], Action.accept, Action.resolve, staff_id=staff)
    clock.reset()
    late = await client.post(f"/v1/cases/{old['id']}/reopen", json=reason, headers=alice)
    body = assert_problem(late, 409, "case.reopen_window_passed")
    assert "7" in body["detail"]
    assert (await get_case(client, alice, old["id"])).json()["state"] == "resolved"


# --- photos --------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_a_report_with_photos(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient, session: AsyncSession
) -> None:
    tokens = await login("demo-resident")
    alice = bearer(tokens)
    photos = [await uploaded_photo(client, phone, alice) for _ in range(2)]
    case = await submitted(client, alice, report(upload_ids=photos))
    assert [a["id"] for a in case["attachments"]] == photos
    assert all(
        a["content_type"] == "image/jpeg" and a["event_seq"] == 1 for a in case["attachments"]
    )
    fetched = await phone.get(case["attachments"][0]["url"])
    assert fetched.status_code == 200 and fetched.content == JPEG

    staff = await as_user(login, "demo-community-staff")
    seen = (await get_case(client, staff, case["id"])).json()
    assert [a["id"] for a in seen["attachments"]] == photos

    # A photo is used once; a failed submission leaves no case behind.
    reused = await submit(client, alice, report(upload_ids=photos[:1]))
    assert_problem(reused, 409, "upload.already_attached")
    bogus = await submit(client, alice, report(upload_ids=[str(uuid.uuid4())]))
    assert_problem(bogus, 404, "upload.not_found")
    assert await cases_of(session, tokens["user"]["id"]) == 1

    # Someone else's upload cannot be attached either.
    bob = await as_user(login, "demo-resident-2")
    foreign = await submit(
        client, bob, report(upload_ids=[await uploaded_photo(client, phone, alice)])
    )
    assert_problem(foreign, 404, "upload.not_found")


@pytest.mark.usefixtures("demo")
async def test_a_verified_photo_stays_what_was_verified(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient
) -> None:
    alice = bearer(await login("demo-resident"))
    ticket = await client.post(
        "/v1/uploads",
        json={"purpose": "case_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=alice,
    )
    form = ticket.json()

    async def post(content: bytes) -> httpx.Response:
        return await phone.post(
            form["url"], data=form["fields"], files={"file": ("x.jpg", content, "image/jpeg")}
        )

    assert (await post(JPEG)).status_code == 204
    case = await submitted(client, alice, report(upload_ids=[form["id"]]))

    # The policy is still valid and S3 takes a new file under it after the claim ...
    html = b"<html><script>alert(1)</script></html>".ljust(len(JPEG), b" ")
    assert (await post(html)).status_code == 204
    # ... but what the resident and staff are shown is the file that was checked.
    staff = await as_user(login, "demo-community-staff")
    for viewer in (alice, staff):
        [attachment] = (await get_case(client, viewer, case["id"])).json()["attachments"]
        fetched = await phone.get(attachment["url"])
        assert fetched.status_code == 200
        assert fetched.content == JPEG
        assert fetched.headers["content-type"] == "image/jpeg"


@pytest.mark.usefixtures("demo")
async def test_photos_of_an_anonymous_case_do_not_name_the_reporter(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient
) -> None:
    tokens = await login("demo-resident")
    alice = bearer(tokens)
    photo = await uploaded_photo(client, phone, alice)
    case = await submitted(client, alice, report(upload_ids=[photo], anonymous=True))
    seen = await get_case(client, await as_user(login, "demo-community-staff"), case["id"])
    assert seen.status_code == 200
    assert tokens["user"]["id"] not in seen.text


# --- a retry racing the original (real commits, separate connections) ---------------------


async def test_a_concurrent_retry_makes_one_case_and_no_error(
    app: FastAPI, engine: AsyncEngine, emulator: EmulatorServer
) -> None:
    """The phone resends while the first request is still running: both get the one case."""
    factory = create_sessionmaker(engine)
    tag = secrets.token_hex(4)
    # A place of its own far from the demo city, so nothing else ever lands here.
    city_code = f"race{tag}"
    south, west = -45.0 - int(tag[:2], 16) / 1000, 170.0
    async with factory() as db:
        city = Region(
            path=city_code, level=RegionLevel.city, name="测试市", parent_id=None, boundary=None
        )
        district = Region(
            path=f"{city_code}.d", level=RegionLevel.district, name="区", parent_id=city.id
        )
        street = Region(
            path=f"{city_code}.d.s", level=RegionLevel.street, name="街", parent_id=district.id
        )
        community = Region(
            path=f"{city_code}.d.s.c", level=RegionLevel.community, name="社区", parent_id=street.id
        )
        ring = [
            [west, south],
            [west + 0.001, south],
            [west + 0.001, south + 0.001],
            [west, south + 0.001],
            [west, south],
        ]
        grid = Region(
            path=f"{city_code}.d.s.c.g1",
            level=RegionLevel.grid,
            name="网格",
            parent_id=community.id,
            boundary={"type": "Polygon", "coordinates": [ring]},
        )
        db.add_all([city, district, street, community, grid])
        category = Category(
            id=new_id(),
            kind="report",
            code=f"race_{tag}",
            name="测试类别",
            name_en="Test category",
            response_hours=2,
            resolution_hours=24,
            handling_unit="测试单位",
            handling_unit_en="Test unit",
        )
        db.add(category)
        await db.commit()
    async with factory() as db:
        await app.state.grid_map.reload(db)

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            code = await emulator.login_code(f"cases-race-{tag}")
            tokens = (await http.post("/v1/auth/wechat/login", json={"code": code})).json()
            headers = bearer(tokens) | {"Idempotency-Key": f"race-{tag}"}
            body = report(category=category.code, at=(south + 0.0005, west + 0.0005))
            answers = await asyncio.gather(
                *(http.post("/v1/reports", json=body, headers=headers) for _ in range(4))
            )
        assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [
            r.text for r in answers
        ]
        assert len({r.json()["id"] for r in answers}) == 1
        assert sum(r.headers.get("Idempotent-Replay") == "true" for r in answers) == 3
        async with factory() as db:
            user_id = tokens["user"]["id"]
            assert await cases_of(db, user_id) == 1
            user = await db.get(User, uuid.UUID(user_id))
            assert user is not None
    finally:
        async with factory() as db:
            await app.state.grid_map.reload(db)
