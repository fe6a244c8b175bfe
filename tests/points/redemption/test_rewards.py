"""The rewards catalog: service centers, rewards, stock per center, and what a member sees."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
import prcoords
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import clock, now
from points.models import Restock, RewardStock, ServiceCenter
from tests.conftest import Login, assert_problem, bearer

GANGDING = "gz.tianhe.shipai.gangding"
SHIPAIDONG = "gz.tianhe.shipai.shipaidong"
FUQIAN = "gz.yuexiu.beijing.fuqian"
# The demo centers sit in the middle of their community's 3x3 block of grids (WGS-84).
GANGDING_CENTER = (23.13405, 113.32935)
SHIPAIDONG_CENTER = (23.13405, 113.33805)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01" + b"\x22" * 1500

pytestmark = pytest.mark.usefixtures("demo")


async def as_user(login: Login, openid: str) -> dict[str, str]:
    return bearer(await login(openid))


async def center_id(session: AsyncSession, code: str) -> str:
    found = await session.execute(
        select(col(ServiceCenter.id)).where(col(ServiceCenter.code) == code)
    )
    return str(found.scalar_one())


def center_body(**extra: Any) -> dict[str, Any]:
    return {
        "code": f"c-{secrets.token_hex(4)}",
        "name": "测试服务站",
        "name_en": "Test service center",
        "region": GANGDING,
        "location": {"lat": 23.1341, "lng": 113.3300, "coord": "wgs84"},
        "address": "测试路 1 号",
        "opening_hours": "9:00-18:00",
        **extra,
    }


def reward_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "测试香皂",
        "name_en": "Test soap",
        "description": "一块香皂",
        "price": 40,
        "region": "gz.tianhe",
        "limit": {"count": 3, "period": "month"},
        **extra,
    }


async def restock(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    reward: str,
    center: str,
    add: int,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/rewards/{reward}/stock",
        json={"center": center, "add": add},
        headers=headers | {"Idempotency-Key": key or secrets.token_hex(8)},
    )


# --- what a member sees -------------------------------------------------------------------


async def test_the_demo_catalog_at_a_center(client: httpx.AsyncClient, login: Login) -> None:
    alice = await as_user(login, "demo-resident")
    response = await client.get("/v1/rewards", params={"center": "gangding-center"}, headers=alice)
    assert response.status_code == 200, response.text
    [entry] = response.json()["centers"]
    assert entry["center"]["code"] == "gangding-center"
    assert entry["center"]["region"] == GANGDING
    assert entry["distance_m"] is None
    items = {item["name_en"]: item for item in entry["rewards"]}
    assert set(items) == {
        "Northeast rice, 5 kg",
        "Peanut oil, 1.8 L",
        "Cotton towel",
        "Laundry detergent, 2 kg",
    }
    rice = items["Northeast rice, 5 kg"]
    assert rice["price"] == 300 and rice["left"] == 40
    assert rice["limit"] == {"count": 2, "period": "month"} and rice["allowance"] == 2
    assert items["Cotton towel"]["limit"] is None and items["Cotton towel"]["allowance"] is None
    # Cheapest first.
    prices = [item["price"] for item in entry["rewards"]]
    assert prices == sorted(prices)
    # By id as well as by code.
    by_id = await client.get("/v1/rewards", params={"center": entry["center"]["id"]}, headers=alice)
    assert by_id.json() == response.json()


async def test_a_center_with_a_nul_is_refused_before_the_database(
    client: httpx.AsyncClient, login: Login
) -> None:
    alice = await as_user(login, "demo-resident")
    response = await client.get("/v1/rewards?center=abc%00def", headers=alice)
    assert_problem(response, 422, "request.invalid")


async def test_nearest_centers_first_from_a_gcj02_location(
    client: httpx.AsyncClient, login: Login
) -> None:
    alice = await as_user(login, "demo-resident")
    # Standing at Shipai East's center, as the phone reports it (GCJ-02).
    gcj = prcoords.wgs_gcj(prcoords.Coords(*SHIPAIDONG_CENTER))
    response = await client.get(
        "/v1/rewards",
        params={"lat": gcj.lat, "lng": gcj.lon, "coord": "gcj02", "centers": 2},
        headers=alice,
    )
    assert response.status_code == 200, response.text
    centers = response.json()["centers"]
    assert [c["center"]["code"] for c in centers] == ["shipaidong-center", "gangding-center"]
    assert centers[0]["distance_m"] < 5
    # The two centers are 0.0087 degrees of longitude apart: about 890 m at this latitude.
    assert 850 < centers[1]["distance_m"] < 930
    assert all(len(c["rewards"]) == 4 for c in centers)


async def test_the_catalog_needs_a_center_or_a_place(
    client: httpx.AsyncClient, login: Login
) -> None:
    alice = await as_user(login, "demo-resident")
    for params in ({}, {"lat": 23.1}, {"lng": 113.3}):
        response = await client.get("/v1/rewards", params=params, headers=alice)
        assert_problem(response, 422, "points.catalog_query_invalid")
    for center in ("no-such-center", str(uuid.uuid4())):
        response = await client.get("/v1/rewards", params={"center": center}, headers=alice)
        assert_problem(response, 404, "points.center_not_found")
    response = await client.get("/v1/rewards", params={"center": "gangding-center"})
    assert_problem(response, 401, "auth.unauthenticated")
    bad = await client.get("/v1/rewards", params={"lat": 91, "lng": 0}, headers=alice)
    assert_problem(bad, 422, "request.invalid")


async def test_only_rewards_in_their_window_are_listed(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-district-admin")
    alice = await as_user(login, "demo-resident")
    gangding = await center_id(session, "gangding-center")
    later = (now() + timedelta(days=2)).isoformat()
    rewards = {}
    for name, extra in (
        ("open", {}),
        ("future", {"active_from": later}),
        ("past", {"active_until": (now() - timedelta(seconds=1)).isoformat()}),
        ("off", {"active": False}),
    ):
        made = await client.post(
            "/v1/admin/rewards", json=reward_body(name_en=name, **extra), headers=admin
        )
        assert made.status_code == 201, made.text
        rewards[name] = made.json()["id"]
        assert (await restock(client, admin, rewards[name], gangding, 5)).status_code == 200

    async def listed() -> set[str]:
        response = await client.get("/v1/rewards", params={"center": gangding}, headers=alice)
        return {r["name_en"] for r in response.json()["centers"][0]["rewards"]}

    assert {"open", "future", "past", "off"} & await listed() == {"open"}
    clock.advance(timedelta(days=3))
    alice = await as_user(login, "demo-resident")
    assert {"open", "future", "past", "off"} & await listed() == {"open", "future"}


# --- service centers ------------------------------------------------------------------------


async def test_an_admin_opens_and_changes_a_service_center_in_their_area(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-district-admin")
    gcj = prcoords.wgs_gcj(prcoords.Coords(23.1341, 113.3300))
    body = center_body(location={"lat": gcj.lat, "lng": gcj.lon, "coord": "gcj02"})
    made = await client.post("/v1/admin/service-centers", json=body, headers=admin)
    assert made.status_code == 201, made.text
    center = made.json()
    assert center["region"] == GANGDING and center["active"] is True
    assert center["location"]["coord"] == "wgs84"
    assert abs(center["location"]["lat"] - 23.1341) < 1e-5
    assert abs(center["location"]["lng"] - 113.3300) < 1e-5

    again = await client.post("/v1/admin/service-centers", json=body, headers=admin)
    assert_problem(again, 409, "points.center_code_taken")

    changed = await client.patch(
        f"/v1/admin/service-centers/{center['id']}",
        json={"opening_hours": "每天 8:00-20:00", "active": False},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["opening_hours"] == "每天 8:00-20:00"
    assert changed.json()["active"] is False
    assert changed.json()["name"] == body["name"]

    # An inactive center is not offered to members.
    alice = await as_user(login, "demo-resident")
    hidden = await client.get("/v1/rewards", params={"center": center["id"]}, headers=alice)
    assert_problem(hidden, 404, "points.center_not_found")

    listed = await client.get("/v1/admin/service-centers", headers=admin, params={"limit": 100})
    assert listed.status_code == 200
    codes = {c["code"] for c in listed.json()["items"]}
    assert {center["code"], "gangding-center", "shipaidong-center"} <= codes
    assert "fuqian-center" not in codes  # Yuexiu is not this admin's district


async def test_service_centers_are_managed_only_by_admins_of_their_area(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    district = await as_user(login, "demo-district-admin")  # admin on gz.tianhe
    staff = await as_user(login, "demo-community-staff")
    alice = await as_user(login, "demo-resident")
    for headers in (staff, alice):
        refused = await client.post(
            "/v1/admin/service-centers", json=center_body(), headers=headers
        )
        assert_problem(refused, 403, "points.catalog_admin_only")
    elsewhere = await client.post(
        "/v1/admin/service-centers", json=center_body(region=FUQIAN), headers=district
    )
    assert_problem(elsewhere, 403, "points.catalog_admin_only")
    street = await client.post(
        "/v1/admin/service-centers",
        json=center_body(region="gz.tianhe.shipai"),
        headers=district,
    )
    assert_problem(street, 422, "points.center_region_invalid")
    unknown = await client.post(
        "/v1/admin/service-centers", json=center_body(region="gz.nowhere"), headers=district
    )
    assert_problem(unknown, 404, "regions.not_found")
    # A center outside the admin's district does not exist for them.
    fuqian = await center_id(session, "fuqian-center")
    hidden = await client.patch(
        f"/v1/admin/service-centers/{fuqian}", json={"active": False}, headers=district
    )
    assert_problem(hidden, 404, "points.center_not_found")
    city = await as_user(login, "demo-city-admin")
    allowed = await client.patch(
        f"/v1/admin/service-centers/{fuqian}", json={"name": "府前服务站"}, headers=city
    )
    assert allowed.status_code == 200 and allowed.json()["name"] == "府前服务站"
    nulled = await client.patch(
        f"/v1/admin/service-centers/{fuqian}", json={"name": None}, headers=city
    )
    assert_problem(nulled, 422, "request.invalid")


# --- rewards and stock ----------------------------------------------------------------------


async def test_an_admin_adds_a_reward_and_stocks_it(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-district-admin")
    alice = await as_user(login, "demo-resident")
    gangding = await center_id(session, "gangding-center")
    made = await client.post("/v1/admin/rewards", json=reward_body(), headers=admin)
    assert made.status_code == 201, made.text
    reward = made.json()
    assert reward["price"] == 40 and reward["region"] == "gz.tianhe"
    assert reward["limit"] == {"count": 3, "period": "month"} and reward["photo_url"] is None

    # Not listed until stocked at the center.
    async def soap() -> dict[str, Any] | None:
        response = await client.get("/v1/rewards", params={"center": gangding}, headers=alice)
        items = response.json()["centers"][0]["rewards"]
        return next((i for i in items if i["id"] == reward["id"]), None)

    assert await soap() is None
    key = secrets.token_hex(8)
    first = await restock(client, admin, reward["id"], gangding, 12, key)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "reward": reward["id"],
        "center": gangding,
        "on_hand": 12,
        "reserved": 0,
        "left": 12,
    }
    assert "Idempotent-Replay" not in first.headers
    # A retry adds nothing; the same key for another change is refused.
    retry = await restock(client, admin, reward["id"], gangding, 12, key)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replay"] == "true"
    assert retry.json()["on_hand"] == 12
    conflict = await restock(client, admin, reward["id"], gangding, 13, key)
    assert_problem(conflict, 409, "points.idempotency_conflict")
    more = await restock(client, admin, reward["id"], gangding, 8)
    assert more.json()["on_hand"] == 20
    listed = await soap()
    assert listed is not None and listed["left"] == 20 and listed["allowance"] == 3
    # Written off, but never below zero (nothing is reserved here).
    too_many = await restock(client, admin, reward["id"], gangding, -21)
    assert_problem(too_many, 409, "points.stock_below_reserved")
    nothing = await restock(client, admin, reward["id"], gangding, 0)
    assert_problem(nothing, 422, "request.invalid")
    written_off = await restock(client, admin, reward["id"], gangding, -5)
    assert written_off.json()["on_hand"] == 15
    history = await session.execute(
        select(col(Restock.quantity)).where(col(Restock.reward_id) == uuid.UUID(reward["id"]))
    )
    assert sorted(history.scalars()) == [-5, 8, 12]

    missing_key = await client.post(
        f"/v1/admin/rewards/{reward['id']}/stock",
        json={"center": gangding, "add": 1},
        headers=admin,
    )
    assert_problem(missing_key, 400, "request.idempotency_key_required")

    changed = await client.patch(
        f"/v1/admin/rewards/{reward['id']}",
        json={"price": 45, "limit": None},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["price"] == 45 and changed.json()["limit"] is None
    listed = await soap()
    assert listed is not None and listed["price"] == 45 and listed["allowance"] is None

    listed_admin = await client.get("/v1/admin/rewards", headers=admin, params={"limit": 100})
    assert reward["id"] in {r["id"] for r in listed_admin.json()["items"]}


async def test_rewards_and_stock_stay_within_the_admins_area(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    district = await as_user(login, "demo-district-admin")  # Tianhe
    city = await as_user(login, "demo-city-admin")
    staff = await as_user(login, "demo-community-staff")
    fuqian = await center_id(session, "fuqian-center")
    gangding = await center_id(session, "gangding-center")

    refused = await client.post(
        "/v1/admin/rewards", json=reward_body(region="gz.yuexiu"), headers=district
    )
    assert_problem(refused, 403, "points.catalog_admin_only")
    refused = await client.post("/v1/admin/rewards", json=reward_body(), headers=staff)
    assert_problem(refused, 403, "points.catalog_admin_only")

    tianhe_reward = (
        await client.post("/v1/admin/rewards", json=reward_body(), headers=district)
    ).json()
    # A Tianhe reward cannot be stocked in Yuexiu, even by the city admin.
    outside = await restock(client, city, tianhe_reward["id"], fuqian, 3)
    assert_problem(outside, 422, "points.reward_not_offered_here")
    # A center outside the district admin's area does not exist for them.
    city_reward = (
        await client.post("/v1/admin/rewards", json=reward_body(region="gz"), headers=city)
    ).json()
    hidden = await restock(client, district, city_reward["id"], fuqian, 3)
    assert_problem(hidden, 404, "points.reward_not_found")
    # The city's reward is not the district admin's to manage at all.
    hidden = await client.patch(
        f"/v1/admin/rewards/{city_reward['id']}", json={"price": 1}, headers=district
    )
    assert_problem(hidden, 404, "points.reward_not_found")
    ok = await restock(client, city, city_reward["id"], gangding, 3)
    assert ok.status_code == 200
    hidden = await restock(client, district, tianhe_reward["id"], fuqian, 3)
    assert_problem(hidden, 404, "points.center_not_found")

    window = await client.post(
        "/v1/admin/rewards",
        json=reward_body(
            active_from=now().isoformat(), active_until=(now() - timedelta(days=1)).isoformat()
        ),
        headers=district,
    )
    assert_problem(window, 422, "points.reward_window_invalid")
    beyond = await client.post(
        "/v1/admin/rewards",
        json=reward_body(active_until="9999-12-31T23:59:59-12:00"),
        headers=district,
    )
    assert_problem(beyond, 422, "points.reward_window_invalid")
    free = await client.post("/v1/admin/rewards", json=reward_body(price=0), headers=district)
    assert_problem(free, 422, "request.invalid")


async def test_the_database_refuses_overselling(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    """Whatever the code does: reserved never exceeds on_hand, and neither goes below zero."""
    stock = (await session.execute(select(RewardStock).limit(1))).scalar_one()
    for statement in (
        "UPDATE points_reward_stock SET reserved = on_hand + 1",
        "UPDATE points_reward_stock SET on_hand = -1, reserved = 0",
        "UPDATE points_reward_stock SET reserved = -1",
    ):
        with pytest.raises(DBAPIError, match="check constraint"):
            async with session.begin_nested():
                await session.execute(
                    text(statement + " WHERE reward_id = :r AND center_id = :c"),
                    {"r": stock.reward_id, "c": stock.center_id},
                )
    await session.execute(
        text(
            "INSERT INTO points_restock (id, reward_id, center_id, quantity, on_hand_after, "
            "actor_id, idempotency_key, request_hash) "
            "SELECT :id, :r, :c, 1, 1, id, 'k', 'h' FROM user_account LIMIT 1"
        ),
        {"id": uuid.uuid4(), "r": stock.reward_id, "c": stock.center_id},
    )
    for statement in ("UPDATE points_restock SET quantity = 2", "DELETE FROM points_restock"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(statement))


# --- a photo --------------------------------------------------------------------------------


async def test_a_reward_with_a_photo(
    client: httpx.AsyncClient, login: Login, phone: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-district-admin")
    ticket = await client.post(
        "/v1/uploads",
        json={"purpose": "reward_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=admin,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    posted = await phone.post(
        form["url"], data=form["fields"], files={"file": ("rice.jpg", JPEG, "image/jpeg")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    made = await client.post(
        "/v1/admin/rewards", json=reward_body(photo_upload_id=form["id"]), headers=admin
    )
    assert made.status_code == 201, made.text
    fetched = await phone.get(made.json()["photo_url"])
    assert fetched.status_code == 200 and fetched.content == JPEG
    # A photo belongs to one reward.
    again = await client.post(
        "/v1/admin/rewards", json=reward_body(photo_upload_id=form["id"]), headers=admin
    )
    assert_problem(again, 409, "upload.already_attached")
    alice = await as_user(login, "demo-resident")
    gangding = await center_id(session, "gangding-center")
    await restock(client, admin, made.json()["id"], gangding, 1)
    listed = await client.get("/v1/rewards", params={"center": gangding}, headers=alice)
    [item] = [i for i in listed.json()["centers"][0]["rewards"] if i["id"] == made.json()["id"]]
    assert item["photo_url"]
