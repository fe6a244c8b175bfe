"""Regions and grids: locate a point, read the tree, admin changes, and the grid map refresh."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import prcoords
import pytest
import shapely
from fastapi import FastAPI
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.database import create_engine, create_sessionmaker
from backend.core.ids import new_id
from backend.regions import service as regions_service
from backend.regions.models import Region, RegionLevel
from backend.regions.service import GridMap, GridRecord, RegionRef
from tests.conftest import Login, assert_problem, bearer

GANGDING = "gz.tianhe.shipai.gangding"
# Demo geometry (backend/demo/city.py): Gangding's 3x3 grids start at 23.1300 N, 113.3250 E and
# measure 0.0027 deg of latitude by 0.0029 deg of longitude; g01 is the south-west one.
SOUTH, WEST, DLAT, DLNG = 23.1300, 113.3250, 0.0027, 0.0029


def square(south: float, west: float, north: float, east: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(code: str | None, geometry: Any, name: str = "测试网格", **extra: Any) -> Any:
    properties: dict[str, Any] = {"name": name, **extra}
    if code is not None:
        properties["code"] = code
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


async def locate(
    client: httpx.AsyncClient, lat: float, lng: float, coord: str = "wgs84", **headers: str
) -> httpx.Response:
    return await client.get(
        "/v1/regions/locate", params={"lat": lat, "lng": lng, "coord": coord}, headers=headers
    )


async def located_code(client: httpx.AsyncClient, lat: float, lng: float, coord: str) -> str:
    response = await locate(client, lat, lng, coord)
    if response.status_code == 404:
        return "<outside>"
    assert response.status_code == 200, response.text
    code: str = response.json()["grid"]["code"]
    return code


async def count_regions(session: AsyncSession, *codes: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(Region).where(col(Region.path).in_(codes))
    )
    return int(result.scalar_one())


async def as_user(login: Login, openid: str) -> dict[str, str]:
    return bearer(await login(openid))


# --- locate --------------------------------------------------------------------------


async def test_locate_inside_a_grid(client: httpx.AsyncClient, demo: None) -> None:
    lat, lng = SOUTH + 1.5 * DLAT, WEST + 1.5 * DLNG  # the middle of g05
    response = await locate(client, lat, lng)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grid"] == {
        "code": f"{GANGDING}.g05",
        "name": "岗顶第5网格",
        "name_en": "Gangding Grid 5",
        "level": "grid",
    }
    assert [a["code"] for a in body["ancestors"]] == [
        "gz",
        "gz.tianhe",
        "gz.tianhe.shipai",
        GANGDING,
    ]
    assert [a["level"] for a in body["ancestors"]] == ["city", "district", "street", "community"]
    assert body["ancestors"][0]["name"] == "广州市"
    assert body["point"] == {"lat": lat, "lng": lng, "coord": "wgs84"}


async def test_locate_outside_every_grid_is_a_404_problem(
    client: httpx.AsyncClient, demo: None
) -> None:
    body = assert_problem(await locate(client, 23.0, 113.0), 404, "regions.outside_grids")
    assert "网格" in body["detail"]
    english = await locate(client, 23.0, 113.0, **{"Accept-Language": "en"})
    assert "not inside any grid" in assert_problem(english, 404, "regions.outside_grids")["detail"]


async def test_a_point_on_a_shared_border_always_answers_the_smallest_code(
    client: httpx.AsyncClient, demo: None
) -> None:
    # On the edge between g01 and g02, on the corner of g01/g02/g04/g05, and on the edge
    # between two communities (Gangding g03 | Shipai East g01).
    shipaidong = "gz.tianhe.shipai.shipaidong"
    cases = [
        ((SOUTH + 0.5 * DLAT, round(WEST + DLNG, 7)), ["g01", "g02"]),
        ((round(SOUTH + DLAT, 7), round(WEST + DLNG, 7)), ["g01", "g02", "g04", "g05"]),
    ]
    codes = [([f"{GANGDING}.{grid}" for grid in grids], point) for point, grids in cases]
    codes.append(
        (
            [f"{GANGDING}.g03", f"{shipaidong}.g01"],
            (SOUTH + 0.5 * DLAT, round(WEST + 3 * DLNG, 7)),
        )
    )
    for covering, (lat, lng) in codes:
        for code in covering:
            polygon = shapely.geometry.shape(await boundary_of(client, code))
            assert polygon.covers(shapely.Point(lng, lat)), code
        answers = {await located_code(client, lat, lng, "wgs84") for _ in range(5)}
        assert answers == {min(covering)}


async def boundary_of(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await client.get(f"/v1/regions/{code}", params={"include": "boundary"})
    assert response.status_code == 200, response.text
    boundary: dict[str, Any] = response.json()["boundary"]
    return boundary


async def test_the_shared_border_is_covered_by_both_grids(
    client: httpx.AsyncClient, demo: None
) -> None:
    lat, lng = SOUTH + 0.5 * DLAT, round(WEST + DLNG, 7)
    g01 = shapely.geometry.shape(await boundary_of(client, f"{GANGDING}.g01"))
    g02 = shapely.geometry.shape(await boundary_of(client, f"{GANGDING}.g02"))
    assert g01.covers(shapely.Point(lng, lat)) and g02.covers(shapely.Point(lng, lat))
    # The demo tiling has no gaps or overlaps: the grids share edges, no area.
    assert g01.intersection(g02).area == 0 and g01.touches(g02)


async def test_gcj02_input_is_converted_before_lookup(
    client: httpx.AsyncClient, demo: None
) -> None:
    # ~20 m inside the west edge of g05. The GCJ-02 shift here is ~560 m east and ~290 m
    # south, more than a grid: read as WGS-84, the same numbers land elsewhere.
    wgs_lat, wgs_lng = SOUTH + 1.5 * DLAT, WEST + DLNG + 0.0002
    gcj = prcoords.wgs_gcj((wgs_lat, wgs_lng))
    assert await located_code(client, gcj.lat, gcj.lon, "gcj02") == f"{GANGDING}.g05"
    assert await located_code(client, gcj.lat, gcj.lon, "wgs84") != f"{GANGDING}.g05"
    assert await located_code(client, wgs_lat, wgs_lng, "wgs84") == f"{GANGDING}.g05"
    point = (await locate(client, gcj.lat, gcj.lon, "gcj02")).json()["point"]
    assert point["coord"] == "wgs84"
    assert abs(point["lat"] - wgs_lat) < 1e-6 and abs(point["lng"] - wgs_lng) < 1e-6


@pytest.mark.parametrize(
    "params",
    [
        {"lat": 91, "lng": 113.3, "coord": "wgs84"},
        {"lat": 23.1, "lng": 181, "coord": "wgs84"},
        {"lat": "abc", "lng": 113.3, "coord": "wgs84"},
        {"lat": "nan", "lng": 113.3, "coord": "wgs84"},
        {"lat": 23.1, "lng": "inf", "coord": "wgs84"},
        {"lat": 23.1, "lng": 113.3, "coord": "bd09"},
        {"lat": 23.1, "lng": 113.3},
        {"lng": 113.3, "coord": "wgs84"},
    ],
)
async def test_locate_rejects_invalid_coordinates(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/v1/regions/locate", params=params)
    assert_problem(response, 422, "request.invalid")


def test_grid_map_from_records_needs_no_database() -> None:
    city = RegionRef("x", "X市", None, RegionLevel.city)
    grids = [
        GridRecord(RegionRef(f"x.g{n}", f"网格{n}", None, RegionLevel.grid), square(0, n, 1, n + 1))
        for n in (2, 1, 0)
    ]
    grid_map = GridMap.from_records(grids, [city])
    assert grid_map.grid_count == 3
    found = grid_map.locate(0.5, 1.5)
    assert found is not None and found.grid.code == "x.g1" and found.ancestors == (city,)
    shared = grid_map.locate(0.5, 2.0)  # the edge of x.g1 and x.g2
    assert shared is not None and shared.grid.code == "x.g1"
    assert grid_map.locate(0.5, 3.5) is None


# --- reading the tree ------------------------------------------------------------------


async def test_get_region_with_ancestors_and_children(
    client: httpx.AsyncClient, demo: None
) -> None:
    response = await client.get("/v1/regions/gz.tianhe.shipai")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["name"], body["level"]) == ("gz.tianhe.shipai", "石牌街", "street")
    assert [a["code"] for a in body["ancestors"]] == ["gz", "gz.tianhe"]
    assert [c["code"] for c in body["children"]] == [GANGDING, "gz.tianhe.shipai.shipaidong"]
    assert body["has_boundary"] is True and body["boundary"] is None

    community = (await client.get(f"/v1/regions/{GANGDING}", params={"include": "boundary"})).json()
    assert [c["code"] for c in community["children"]] == [f"{GANGDING}.g0{n}" for n in range(1, 10)]
    assert community["boundary"]["type"] == "Polygon"
    # The community's boundary is the union of its grids.
    grids = [
        shapely.geometry.shape(await boundary_of(client, c["code"])) for c in community["children"]
    ]
    outline = shapely.geometry.shape(community["boundary"])
    assert shapely.union_all(grids).symmetric_difference(outline).area < 1e-12

    city = (await client.get("/v1/regions/gz")).json()
    assert city["ancestors"] == [] and len(city["children"]) == 3


async def test_get_region_unknown_or_malformed(client: httpx.AsyncClient, demo: None) -> None:
    assert_problem(await client.get("/v1/regions/gz.nowhere"), 404, "regions.not_found")
    assert_problem(await client.get("/v1/regions/GZ;drop"), 422, "request.invalid")
    assert_problem(
        await client.get("/v1/regions/gz", params={"include": "everything"}), 422, "request.invalid"
    )


# --- admin: create and update -------------------------------------------------------------


async def test_admin_creates_and_updates_regions(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    admin = await as_user(login, "demo-district-admin")
    created = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.tianhe", "label": "tangxia", "name": "棠下街", "name_en": "Tangxia"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["code"] == "gz.tianhe.tangxia"
    assert created.json()["level"] == "street"
    assert created.json()["ancestors"][-1]["code"] == "gz.tianhe"

    again = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.tianhe", "label": "tangxia", "name": "棠下街"},
        headers=admin,
    )
    assert_problem(again, 409, "regions.duplicate")
    wrong_level = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.tianhe", "label": "x1", "name": "某社区", "level": "community"},
        headers=admin,
    )
    assert_problem(wrong_level, 422, "regions.invalid_level")
    under_grid = await client.post(
        "/v1/admin/regions",
        json={"parent": f"{GANGDING}.g01", "label": "x1", "name": "子网格"},
        headers=admin,
    )
    assert_problem(under_grid, 422, "regions.invalid_level")
    bad_label = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.tianhe", "label": "Tang-Xia", "name": "棠下街"},
        headers=admin,
    )
    assert_problem(bad_label, 422, "request.invalid")
    bad_boundary = await client.post(
        "/v1/admin/regions",
        json={
            "parent": "gz.tianhe.tangxia",
            "label": "c1",
            "name": "一社区",
            "boundary": {"type": "Point", "coordinates": [113.3, 23.1]},
        },
        headers=admin,
    )
    assert_problem(bad_boundary, 422, "regions.invalid_boundary")

    # Renaming a grid and moving its boundary show up in the very next locate.
    lat, lng = SOUTH + 0.5 * DLAT, WEST + 0.5 * DLNG
    renamed = await client.patch(
        f"/v1/admin/regions/{GANGDING}.g01",
        json={"name": "岗顶一格", "boundary": square(23.2, 113.2, 23.201, 113.201)},
        headers=admin,
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "岗顶一格"
    assert await located_code(client, lat, lng, "wgs84") == "<outside>"
    moved = (await locate(client, 23.2005, 113.2005)).json()
    assert moved["grid"] == {
        "code": f"{GANGDING}.g01",
        "name": "岗顶一格",
        "name_en": "Gangding Grid 1",
        "level": "grid",
    }
    cleared = await client.patch(
        f"/v1/admin/regions/{GANGDING}.g01", json={"name_en": None}, headers=admin
    )
    assert cleared.status_code == 200 and cleared.json()["name_en"] is None
    no_name = await client.patch(
        f"/v1/admin/regions/{GANGDING}.g01", json={"name": None}, headers=admin
    )
    assert_problem(no_name, 422, "request.invalid")


@pytest.mark.parametrize("field", ["name", "name_en"])
async def test_a_region_name_with_a_nul_is_refused_before_the_database(
    client: httpx.AsyncClient, demo: None, login: Login, field: str
) -> None:
    admin = await as_user(login, "demo-district-admin")
    created = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.tianhe", "label": "tangxia", "name": "棠下街", field: "棠下\x00街"},
        headers=admin,
    )
    assert_problem(created, 422, "request.invalid")
    renamed = await client.patch(
        f"/v1/admin/regions/{GANGDING}.g01", json={field: "岗顶\x00一格"}, headers=admin
    )
    assert_problem(renamed, 422, "request.invalid")
    imported = await client.post(
        "/v1/admin/regions/grids/import",
        json=collection(
            feature(f"{GANGDING}.g20", square(23.3, 113.3, 23.301, 113.301), **{field: "a\x00b"})
        ),
        headers=admin,
    )
    problem = assert_problem(imported, 422, "regions.import_invalid")
    assert [issue["reason"] for issue in problem["invalid_features"]] == [f"{field}_invalid"]


async def test_admin_endpoints_need_a_login(client: httpx.AsyncClient, demo: None) -> None:
    response = await client.patch(f"/v1/admin/regions/{GANGDING}", json={"name": "x"})
    assert_problem(response, 401, "auth.unauthenticated")


async def test_staff_of_one_street_get_nothing_from_another(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    mediator = await as_user(login, "demo-mediator")  # mediator on gz.tianhe.shipai
    elsewhere = "gz.tianhe.liede.tancun"
    assert_problem(
        await client.patch(f"/v1/admin/regions/{elsewhere}", json={"name": "x"}, headers=mediator),
        404,
        "regions.not_found",
    )
    assert_problem(
        await client.post(
            "/v1/admin/regions",
            json={"parent": "gz.tianhe.liede", "label": "x", "name": "x"},
            headers=mediator,
        ),
        404,
        "regions.not_found",
    )
    # In their own street they are seen, but not allowed: only admins change regions.
    assert_problem(
        await client.patch(f"/v1/admin/regions/{GANGDING}", json={"name": "x"}, headers=mediator),
        403,
        "auth.forbidden",
    )
    imported = await client.post(
        "/v1/admin/regions/grids/import",
        json=collection(feature(f"{elsewhere}.g50", square(23.3, 113.3, 23.301, 113.301))),
        headers=mediator,
    )
    assert_problem(imported, 403, "auth.forbidden")
    assert await count_regions(session, f"{elsewhere}.g50") == 0
    unchanged = await client.get(f"/v1/regions/{elsewhere}")
    assert unchanged.json()["name"] == "潭村社区"


async def test_residents_and_non_admin_staff_cannot_administer(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    body = collection(feature(f"{GANGDING}.g50", square(23.3, 113.3, 23.301, 113.301)))
    for openid in ("demo-resident", "demo-grid-worker", "demo-community-staff"):
        headers = await as_user(login, openid)
        response = await client.post("/v1/admin/regions/grids/import", json=body, headers=headers)
        assert_problem(response, 403, "auth.forbidden")
        created = await client.post(
            "/v1/admin/regions",
            json={"parent": GANGDING, "label": "g50", "name": "x"},
            headers=headers,
        )
        assert created.status_code in (403, 404), created.text


# --- admin: grid import -------------------------------------------------------------------


async def test_grid_import_creates_and_updates_and_locate_sees_it_at_once(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-city-admin")
    north = round(SOUTH + 3 * DLAT, 7)  # a new row of grids north of Gangding
    g10 = square(north, WEST, north + DLAT, round(WEST + DLNG, 7))
    g11 = square(north, round(WEST + DLNG, 7), north + DLAT, round(WEST + 2 * DLNG, 7))
    g09 = await boundary_of(client, f"{GANGDING}.g09")
    body = collection(
        feature(f"{GANGDING}.g10", g10, name="岗顶第10网格", name_en="Gangding Grid 10"),
        feature(f"{GANGDING}.g11", g11, name="岗顶第11网格"),
        feature(f"{GANGDING}.g09", g09, name="岗顶第9网格（新）"),
    )
    first = await client.post("/v1/admin/regions/grids/import", json=body, headers=admin)
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 2, "updated": 1, "unchanged": 0}

    found = (await locate(client, north + 0.5 * DLAT, WEST + 0.5 * DLNG)).json()
    assert found["grid"]["code"] == f"{GANGDING}.g10"
    assert [a["code"] for a in found["ancestors"]][-1] == GANGDING
    renamed = (await locate(client, SOUTH + 2.5 * DLAT, WEST + 2.5 * DLNG)).json()
    assert renamed["grid"]["name"] == "岗顶第9网格（新）"
    assert renamed["grid"]["name_en"] == "Gangding Grid 9"  # no name_en in the file: kept

    again = await client.post("/v1/admin/regions/grids/import", json=body, headers=admin)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 3}
    rows = await session.execute(
        select(Region.parent_id, Region.level).where(col(Region.path) == f"{GANGDING}.g10")
    )
    parent_id, level = rows.one()
    community = await session.execute(select(Region.id).where(col(Region.path) == GANGDING))
    assert parent_id == community.scalar_one() and level == "grid"


async def test_grid_import_in_gcj02_stores_wgs84(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    admin = await as_user(login, "demo-district-admin")
    north = round(SOUTH + 3 * DLAT, 7)
    wgs = [(north, WEST), (north, WEST + DLNG), (north + DLAT, WEST + DLNG), (north + DLAT, WEST)]
    gcj = [prcoords.wgs_gcj(p) for p in wgs]
    ring = [[p.lon, p.lat] for p in [*gcj, gcj[0]]]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    response = await client.post(
        "/v1/admin/regions/grids/import",
        params={"coord": "gcj02"},
        json=collection(feature(f"{GANGDING}.g10", geometry)),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    stored = (await boundary_of(client, f"{GANGDING}.g10"))["coordinates"][0]
    for (lat, lng), (stored_lng, stored_lat) in zip(wgs, stored, strict=False):
        assert abs(stored_lat - lat) < 1e-6 and abs(stored_lng - lng) < 1e-6
    assert await located_code(client, north + 0.5 * DLAT, WEST + 0.5 * DLNG, "wgs84") == (
        f"{GANGDING}.g10"
    )


async def test_a_bad_grid_import_names_every_bad_feature_and_writes_nothing(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    admin = await as_user(login, "demo-city-admin")
    ok = square(23.3, 113.3, 23.301, 113.301)
    body = collection(
        # 0: a bow tie crosses itself
        feature(
            f"{GANGDING}.g20",
            {
                "type": "Polygon",
                "coordinates": [
                    [[113.3, 23.3], [113.31, 23.31], [113.31, 23.3], [113.3, 23.31], [113.3, 23.3]]
                ],
            },
        ),
        # 1: too few points
        feature(
            f"{GANGDING}.g21",
            {"type": "Polygon", "coordinates": [[[113.3, 23.3], [113.31, 23.31], [113.3, 23.3]]]},
        ),
        # 2: [lat, lng] instead of [lng, lat]: latitude 113 is out of range
        feature(
            f"{GANGDING}.g22",
            {
                "type": "Polygon",
                "coordinates": [[[23.3, 113.3], [23.3, 113.31], [23.31, 113.31], [23.3, 113.3]]],
            },
        ),
        # 3: not a polygon
        feature(f"{GANGDING}.g23", {"type": "Point", "coordinates": [113.3, 23.3]}),
        # 4: the community does not exist
        feature("gz.tianhe.shipai.nosuch.g01", ok),
        # 5: the parent is a street, not a community
        feature("gz.tianhe.shipai.g24", ok),
        # 6 and 7: the same code twice
        feature(f"{GANGDING}.g25", ok),
        feature(f"{GANGDING}.g25", ok),
        # 8: a good feature, which must not be written either
        feature(f"{GANGDING}.g26", ok),
        # 9: no code at all
        feature(None, ok),
        # 10: no geometry
        feature(f"{GANGDING}.g27", None),
    )
    response = await client.post("/v1/admin/regions/grids/import", json=body, headers=admin)
    problem = assert_problem(response, 422, "regions.import_invalid")
    reasons = {(issue["index"], issue["reason"]) for issue in problem["invalid_features"]}
    assert reasons == {
        (0, "geometry_self_intersection"),
        (1, "ring_too_few_points"),
        (2, "coordinates_out_of_range"),
        (3, "geometry_not_polygon"),
        (4, "parent_missing"),
        (5, "parent_not_community"),
        (6, "duplicate_code"),
        (7, "duplicate_code"),
        (9, "code_missing"),
        (10, "geometry_missing"),
    }
    assert problem["invalid_count"] == 10 and problem["truncated"] is False
    by_index = {issue["index"]: issue for issue in problem["invalid_features"]}
    assert by_index[4]["code"] == "gz.tianhe.shipai.nosuch.g01"
    assert set(by_index[0]["message"]) == {"zh-CN", "en"}
    assert "自相交" in by_index[0]["message"]["zh-CN"]
    written = [f"{GANGDING}.g{n}" for n in range(20, 28)]
    assert await count_regions(session, *written, "gz.tianhe.shipai.g24") == 0


async def test_an_admin_cannot_import_into_another_district(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    tianhe_admin = await as_user(login, "demo-district-admin")
    foreign = "gz.yuexiu.beijing.fuqian.g10"
    body = collection(
        feature(foreign, square(23.3, 113.3, 23.301, 113.301)),
        feature(f"{GANGDING}.g10", square(23.4, 113.4, 23.401, 113.401)),
    )
    response = await client.post("/v1/admin/regions/grids/import", json=body, headers=tianhe_admin)
    problem = assert_problem(response, 422, "regions.import_invalid")
    assert [(i["index"], i["reason"]) for i in problem["invalid_features"]] == [
        (0, "parent_forbidden")
    ]
    # The same words whether the community exists or not: nothing leaks.
    ghost = await client.post(
        "/v1/admin/regions/grids/import",
        json=collection(
            feature("gz.yuexiu.beijing.ghost.g01", square(23.3, 113.3, 23.301, 113.301))
        ),
        headers=tianhe_admin,
    )
    assert (
        assert_problem(ghost, 422, "regions.import_invalid")["invalid_features"][0]["reason"]
        == "parent_forbidden"
    )
    assert await count_regions(session, foreign, f"{GANGDING}.g10") == 0
    outside = await client.post(
        "/v1/admin/regions",
        json={"parent": "gz.yuexiu", "label": "x", "name": "x"},
        headers=tianhe_admin,
    )
    assert_problem(outside, 404, "regions.not_found")
    assert_problem(
        await client.patch(
            "/v1/admin/regions/gz.yuexiu.beijing", json={"name": "x"}, headers=tianhe_admin
        ),
        404,
        "regions.not_found",
    )
    # Their own district is managed from the city: visible, not theirs to rename.
    assert_problem(
        await client.patch("/v1/admin/regions/gz.tianhe", json={"name": "x"}, headers=tianhe_admin),
        403,
        "auth.forbidden",
    )


async def test_too_many_features_are_refused_clearly(
    client: httpx.AsyncClient, demo: None, login: Login
) -> None:
    admin = await as_user(login, "demo-city-admin")
    body = collection(*({"type": "Feature", "properties": {}, "geometry": None},) * 50_001)
    response = await client.post("/v1/admin/regions/grids/import", json=body, headers=admin)
    problem = assert_problem(response, 413, "regions.import_too_large")
    assert "50000" in problem["detail"]


# --- the grid map in other processes ---------------------------------------------------------


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    step = 0.02
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {seconds} s")


async def test_another_process_reloads_on_notify(database_url: str, app: FastAPI) -> None:
    """A second GridMap on its own engine stands for another API process.

    This needs a real commit (NOTIFY is delivered at commit), so it writes a small region tree
    of its own under a random root, far from the demo city, and deletes it afterwards.
    """
    engine = create_engine(database_url, pool_size=2)
    factory = create_sessionmaker(engine)
    other = GridMap()
    async with factory() as session:
        await other.reload(session)
    await other.listen(engine, factory)
    root = f"zz{secrets.token_hex(4)}"
    codes = [root, f"{root}.d", f"{root}.d.s", f"{root}.d.s.c", f"{root}.d.s.c.g01"]
    levels = list(RegionLevel)
    lat, lng = 10.0005, 100.0005
    try:
        assert other.locate(lat, lng) is None
        async with factory() as session:
            parent_id = None
            for code, level in zip(codes, levels, strict=True):
                region = Region(
                    id=new_id(),
                    path=code,
                    parent_id=parent_id,
                    level=level,
                    name=f"{level.value} {code}",
                    boundary=square(10.0, 100.0, 10.001, 100.001) if level == "grid" else None,
                )
                session.add(region)
                await session.flush()
                parent_id = region.id
            await regions_service.announce_change(session, None)
            await session.commit()

        await wait_for(lambda: other.locate(lat, lng) is not None)
        found = other.locate(lat, lng)
        assert found is not None and found.grid.code == codes[-1]
        assert [a.code for a in found.ancestors] == codes[:-1]
        # The app's own map heard it too.
        await wait_for(lambda: app.state.grid_map.locate(lat, lng) is not None)
    finally:
        async with factory() as session:
            for code in reversed(codes):
                await session.execute(delete(Region).where(col(Region.path) == code))
            await regions_service.announce_change(session, None)
            await session.commit()
        try:
            await wait_for(lambda: other.locate(lat, lng) is None)
            await wait_for(lambda: app.state.grid_map.locate(lat, lng) is None)
            await app.state.grid_map.settle()
        finally:
            await other.stop_listening()
            await engine.dispose()


# --- demo data ----------------------------------------------------------------------------


async def test_demo_data_is_idempotent_and_its_grids_tile_each_community(
    demo: None, session: AsyncSession
) -> None:
    from backend.demo.city import DEMO_ACCOUNTS
    from backend.demo.loading import load_demo_data

    assert await load_demo_data(session) is False
    rows = await session.execute(
        select(Region.path, Region.level, Region.boundary).where(
            col(Region.path).descendant_of("gz")  # type: ignore[attr-defined]
        )
    )
    regions = {path: (level, boundary) for path, level, boundary in rows.all()}
    levels = [level for level, _ in regions.values()]
    assert [levels.count(level.value) for level in RegionLevel] == [1, 3, 6, 12, 108]
    for path, (level, boundary) in regions.items():
        if level != "community":
            continue
        outline = shapely.geometry.shape(boundary)
        grids = [
            shapely.geometry.shape(b)
            for p, (lv, b) in regions.items()
            if lv == "grid" and p.rpartition(".")[0] == path
        ]
        assert len(grids) == 9
        # No gaps (the union is the outline) and no overlaps (the areas add up).
        assert shapely.union_all(grids).symmetric_difference(outline).area < 1e-12, path
        assert abs(sum(g.area for g in grids) - outline.area) < 1e-12, path
    every_grid = [shapely.geometry.shape(b) for lv, b in regions.values() if lv == "grid"]
    assert abs(shapely.union_all(every_grid).area - sum(g.area for g in every_grid)) < 1e-12
    assert {a.openid for a in DEMO_ACCOUNTS} >= {
        "demo-resident",
        "demo-resident-2",
        "demo-resident-3",
        "demo-grid-worker",
        "demo-community-staff",
        "demo-mediator",
        "demo-district-admin",
        "demo-city-admin",
    }
