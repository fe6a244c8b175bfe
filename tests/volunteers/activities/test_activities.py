"""Activities and enrolment: staff publish, volunteers find them near them and enrol, the
waitlist moves up in order, cancelled activities tell their volunteers, and finished ones
record no-shows."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from backend import worker
from backend.auth.models import Role, RoleGrant, User
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.database import create_sessionmaker
from backend.core.security import issue_access_token
from backend.regions.coords import to_gcj02, to_wgs84
from backend.regions.geo import distance_m
from backend.regions.models import Region, RegionLevel
from points.models import PointsEarningRule
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.volunteers import (
    GANGDING,
    centre_of,
    make_activity,
    make_enrolment,
    make_team,
    make_volunteer,
    set_earning_rule,
    user_id_of,
)
from volunteers.activities.tasks import finish_due_activities
from volunteers.attendance import codes
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Attendance,
    AttendanceState,
    Enrolment,
    EnrolmentState,
    Volunteer,
    VolunteerState,
)

STAFF = "demo-community-staff"
SHIPAI_EAST = "gz.tianhe.shipai.shipaidong"  # another community in the staff's street


def north_of(lat: float, lng: float, metres: float) -> tuple[float, float]:
    return lat + metres / 111_195.0, lng


def square_around(lat: float, lng: float, half_m: float) -> list[list[float]]:
    """A closed ring of [lng, lat] around a point."""
    d = half_m / 111_195.0
    return [
        [lng - d, lat - d],
        [lng + d, lat - d],
        [lng + d, lat + d],
        [lng - d, lat + d],
        [lng - d, lat - d],
    ]


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def staff_headers(login: Login, openid: str = STAFF) -> dict[str, str]:
    return bearer(await login(openid))


def key() -> dict[str, str]:
    return {"Idempotency-Key": secrets.token_hex(8)}


async def activity_body(session: AsyncSession, **changes: Any) -> dict[str, Any]:
    lat, lng = await centre_of(session, GANGDING)
    starts = now() + timedelta(days=1)
    body: dict[str, Any] = {
        "type": "public_security_patrol",
        "title": "岗顶夜间治安巡逻",
        "description": "沿天河路巡查",
        "community": GANGDING,
        "place_name": "岗顶社区党群服务中心",
        "address": "天河路 600 号",
        "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
        "fence": {"radius_m": 300},
        "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(hours=2)),
        "capacity": 5,
    }
    body.update(changes)
    return body


async def volunteer(
    session: AsyncSession,
    login: Login,
    openid: str,
    *,
    state: VolunteerState = VolunteerState.approved,
    community: str = GANGDING,
) -> tuple[Volunteer, dict[str, str]]:
    made = await make_volunteer(session, openid, state=state, community=community)
    await session.commit()
    return made, bearer(await login(openid))


async def make_attendance(
    session: AsyncSession,
    activity: Activity,
    enrolment: Enrolment,
    *,
    state: AttendanceState = AttendanceState.checked_in,
) -> Attendance:
    attendance = Attendance(
        activity_id=activity.id,
        volunteer_id=enrolment.volunteer_id,
        enrolment_id=enrolment.id,
        region_path=activity.region_path,
        state=state,
        flags=[],
        checked_in_at=activity.starts_at + timedelta(minutes=5),
        check_in_lat=activity.lat,
        check_in_lng=activity.lng,
        check_in_accuracy_m=10,
        checked_out_at=None
        if state is AttendanceState.checked_in
        else activity.ends_at - timedelta(minutes=5),
    )
    session.add(attendance)
    await session.flush()
    return attendance


async def reload(session: AsyncSession, row: Any) -> Any:
    await session.refresh(row)
    return row


# --- staff create, publish, change ---------------------------------------------------------


async def test_staff_create_a_draft_once_per_key_and_publish_it(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    body = await activity_body(session)
    gcj = to_gcj02(body["location"]["lat"], body["location"]["lng"])
    body["location"] = {"lat": gcj[0], "lng": gcj[1], "coord": "gcj02"}
    headers = {**staff, **key()}

    created = await client.post("/v1/staff/activities", json=body, headers=headers)
    assert created.status_code == 201, created.text
    draft = created.json()
    assert draft["state"] == "draft" and draft["organiser"]["code"] == GANGDING
    assert (draft["capacity"], draft["places_left"], draft["enrolled"]) == (5, 5, 0)
    # Stored in WGS-84, whatever the phone sent.
    assert draft["location"]["coord"] == "wgs84"
    wgs = to_wgs84(gcj[0], gcj[1], "gcj02")
    assert abs(draft["location"]["lat"] - wgs[0]) < 1e-9
    assert distance_m(draft["location"]["lat"], draft["location"]["lng"], *gcj) > 100
    assert draft["fence"] == {"radius_m": 300, "polygon": None, "coord": "wgs84"}
    assert "code_secret" not in draft

    again = await client.post("/v1/staff/activities", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json()["id"] == draft["id"]
    other = await client.post("/v1/staff/activities", json={**body, "capacity": 6}, headers=headers)
    assert_problem(other, 409, "activity.idempotency_conflict")
    no_key = await client.post("/v1/staff/activities", json=body, headers=staff)
    assert_problem(no_key, 400, "request.idempotency_key_required")

    # A draft is nowhere for volunteers.
    _, member = await volunteer(session, login, "act-draft-viewer")
    assert_problem(
        await client.get(f"/v1/activities/{draft['id']}", headers=member),
        404,
        "activity.not_found",
    )
    listed = await client.get("/v1/activities", headers=member)
    assert draft["id"] not in {i["id"] for i in listed.json()["items"]}

    published = await client.post(f"/v1/staff/activities/{draft['id']}/publish", headers=staff)
    assert published.status_code == 200, published.text
    assert published.json()["state"] == "published" and published.json()["published_at"]
    twice = await client.post(f"/v1/staff/activities/{draft['id']}/publish", headers=staff)
    assert (
        twice.status_code == 200
        and twice.json()["published_at"] == (published.json()["published_at"])
    )
    seen = await client.get(f"/v1/activities/{draft['id']}", headers=member)
    assert seen.status_code == 200 and seen.json()["state"] == "published"


async def test_who_may_create_and_manage_activities(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    body = await activity_body(session)
    grid_worker = await staff_headers(login, "demo-grid-worker")
    refused = await client.post("/v1/staff/activities", json=body, headers={**grid_worker, **key()})
    assert_problem(refused, 403, "activity.managers_only")
    _, resident = await volunteer(session, login, "act-plain-volunteer")
    refused = await client.post("/v1/staff/activities", json=body, headers={**resident, **key()})
    assert_problem(refused, 403, "activity.managers_only")
    elsewhere = await staff_elsewhere()
    refused = await client.post("/v1/staff/activities", json=body, headers={**elsewhere, **key()})
    assert_problem(refused, 403, "activity.organiser_outside_scope")
    no_token = await client.post("/v1/staff/activities", json=body, headers=key())
    assert_problem(no_token, 401, "auth.unauthenticated")

    # An admin above the community may organise there.
    district = await staff_headers(login, "demo-district-admin")
    made = await client.post(
        "/v1/staff/activities",
        json={**body, "community": SHIPAI_EAST, "location": body["location"]},
        headers={**district, **key()},
    )
    assert made.status_code == 201, made.text

    staff = await staff_headers(login)
    created = await client.post("/v1/staff/activities", json=body, headers={**staff, **key()})
    activity_id = created.json()["id"]
    for method, path, payload in (
        ("GET", "", None),
        ("PATCH", "", {"title": "改个名"}),
        ("POST", "/publish", None),
        ("POST", "/cancel", {"reason": "试试"}),
        ("POST", "/finish", None),
        ("GET", "/enrolments", None),
    ):
        url = f"/v1/staff/activities/{activity_id}{path}"
        answer = await client.request(method, url, json=payload, headers=elsewhere)
        assert_problem(answer, 404, "activity.not_found")
        if method != "GET":
            answer = await client.request(method, url, json=payload, headers=grid_worker)
            assert_problem(answer, 403, "activity.managers_only")
    # A grid worker hosts: reads the activity and its roster.
    assert (await client.get(f"/v1/staff/activities/{activity_id}", headers=grid_worker)).is_success
    assert_problem(
        await client.get(f"/v1/staff/activities/{activity_id}", headers=resident),
        403,
        "auth.forbidden",
    )
    mine = await client.get("/v1/staff/activities", headers=elsewhere)
    assert mine.status_code == 200 and mine.json()["items"] == []
    assert_problem(
        await client.get("/v1/staff/activities", headers=resident), 403, "auth.forbidden"
    )


async def test_what_staff_send_is_checked(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    lat, lng = await centre_of(session, GANGDING)

    async def create(**changes: Any) -> httpx.Response:
        body = await activity_body(session, **changes)
        return await client.post("/v1/staff/activities", json=body, headers={**staff, **key()})

    polygon = {"type": "Polygon", "coordinates": [square_around(lat, lng, 150)]}
    made = await create(fence={"polygon": polygon})
    assert made.status_code == 201, made.text
    assert made.json()["fence"]["radius_m"] is None
    assert made.json()["fence"]["polygon"]["coordinates"] == polygon["coordinates"]

    # A polygon in GCJ-02 (as drawn on the phone's map) is stored in WGS-84.
    ring = square_around(*to_gcj02(lat, lng), 150)
    gcj_polygon = {"type": "Polygon", "coordinates": [ring]}
    made = await create(fence={"polygon": gcj_polygon, "coord": "gcj02"})
    assert made.status_code == 201, made.text
    stored = made.json()["fence"]["polygon"]["coordinates"][0]
    expected = to_wgs84(ring[0][1], ring[0][0], "gcj02")
    assert abs(stored[0][1] - expected[0]) < 1e-9 and abs(stored[0][0] - expected[1]) < 1e-9
    assert stored[0] == stored[-1]

    bad_fences = {
        "not closed": {"polygon": {**polygon, "coordinates": [square_around(lat, lng, 150)[:4]]}},
        "too few points": {
            "polygon": {
                **polygon,
                "coordinates": [[[lng, lat], [lng + 0.001, lat], [lng, lat]]],
            }
        },
        "self-crossing": {
            "polygon": {
                **polygon,
                "coordinates": [
                    [
                        [lng - 0.001, lat - 0.001],
                        [lng + 0.001, lat + 0.001],
                        [lng + 0.001, lat - 0.001],
                        [lng - 0.001, lat + 0.001],
                        [lng - 0.001, lat - 0.001],
                    ]
                ],
            }
        },
        "far from the place": {
            "polygon": {**polygon, "coordinates": [square_around(lat + 0.02, lng, 150)]}
        },
        "lat and lng swapped": {
            "polygon": {
                **polygon,
                "coordinates": [[[y, x] for x, y in square_around(lat, lng, 150)]],
            }
        },
    }
    for why, fence in bad_fences.items():
        refused = await create(fence=fence)
        body = assert_problem(refused, 422, "activity.fence_invalid")
        assert body["detail"], why
    for fence in ({"radius_m": 10}, {"radius_m": 300, "polygon": polygon}, {}):
        assert_problem(await create(fence=fence), 422, "request.invalid")

    starts = now() + timedelta(days=1)
    for window in (
        (starts, starts - timedelta(minutes=1)),
        (starts, starts),
        (starts, starts + timedelta(hours=24, minutes=1)),
        (now() + timedelta(days=400), now() + timedelta(days=400, hours=1)),
    ):
        refused = await create(starts_at=iso(window[0]), ends_at=iso(window[1]))
        assert_problem(refused, 422, "activity.window_invalid")
    for capacity in (0, 1001):
        assert_problem(await create(capacity=capacity), 422, "request.invalid")
    assert_problem(
        await create(community="gz.tianhe.shipai"), 422, "activity.organiser_not_community"
    )
    assert_problem(await create(community="gz.nowhere.at.all"), 404, "regions.not_found")
    # The community next door is not the staff member's.
    assert_problem(await create(community=SHIPAI_EAST), 403, "activity.organiser_outside_scope")
    assert_problem(await create(title=""), 422, "request.invalid")
    # A team of another community is not one this community can use.
    other_team = await make_team(
        session,
        name="石牌东巡逻队",
        created_by=await user_id_of(session, STAFF),
        community=SHIPAI_EAST,
    )
    await session.commit()
    assert_problem(await create(team=str(other_team.id)), 404, "team.not_found")

    # A draft whose start has passed cannot be published.
    past = await create(
        starts_at=iso(now() - timedelta(hours=1)), ends_at=iso(now() + timedelta(hours=1))
    )
    assert past.status_code == 201, past.text
    refused = await client.post(f"/v1/staff/activities/{past.json()['id']}/publish", headers=staff)
    assert_problem(refused, 409, "activity.start_passed")
    # ... until its start moves.
    moved = await client.patch(
        f"/v1/staff/activities/{past.json()['id']}",
        json={
            "starts_at": iso(now() + timedelta(hours=3)),
            "ends_at": iso(now() + timedelta(hours=4)),
        },
        headers=staff,
    )
    assert moved.status_code == 200, moved.text
    published = await client.post(
        f"/v1/staff/activities/{past.json()['id']}/publish", headers=staff
    )
    assert published.status_code == 200, published.text


async def test_a_published_activity_takes_only_changes_volunteers_can_live_with(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    created_by = await user_id_of(session, STAFF)
    draft = await make_activity(
        session, created_by=created_by, state=ActivityState.draft, capacity=2
    )
    await session.commit()
    url = f"/v1/staff/activities/{draft.id}"
    changed = await client.patch(
        url,
        json={"title": "岗顶周末巡逻", "fence": {"radius_m": 500}, "capacity": 2, "team": None},
        headers=staff,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "岗顶周末巡逻"
    assert changed.json()["fence"]["radius_m"] == 500
    assert_problem(
        await client.patch(url, json={"title": None}, headers=staff), 422, "request.invalid"
    )
    assert (await client.post(f"{url}/publish", headers=staff)).status_code == 200

    people = [await make_volunteer(session, f"act-patch-{i}") for i in range(4)]
    for person, state in zip(
        people,
        (
            EnrolmentState.enrolled,
            EnrolmentState.enrolled,
            EnrolmentState.waitlisted,
            EnrolmentState.waitlisted,
        ),
        strict=True,
    ):
        await make_enrolment(session, draft, person, state=state)
    await session.commit()

    locked = await client.patch(url, json={"title": "新名字", "capacity": 3}, headers=staff)
    body = assert_problem(locked, 409, "activity.fields_locked")
    assert body["fields"] == ["title"]
    assert_problem(
        await client.patch(url, json={"capacity": 1}, headers=staff),
        409,
        "activity.capacity_below_enrolled",
    )
    earlier = draft.ends_at - timedelta(minutes=30)
    assert_problem(
        await client.patch(url, json={"ends_at": iso(earlier)}, headers=staff),
        409,
        "activity.end_not_later",
    )
    # One more place goes to the first in the queue at once.
    grown = await client.patch(
        url,
        json={
            "capacity": 3,
            "description": "请穿红马甲",
            "ends_at": iso(draft.ends_at + timedelta(hours=1)),
        },
        headers=staff,
    )
    assert grown.status_code == 200, grown.text
    view = grown.json()
    assert (view["capacity"], view["enrolled"], view["waitlisted"], view["places_left"]) == (
        3,
        3,
        1,
        0,
    )
    assert view["description"] == "请穿红马甲"
    assert view["enrolments"] == {"enrolled": 3, "waitlisted": 1, "cancelled": 0, "no_show": 0}
    roster = (await client.get(f"{url}/enrolments", headers=staff)).json()["items"]
    by_volunteer = {item["volunteer"]["id"]: item for item in roster}
    assert by_volunteer[str(people[2].id)]["state"] == "enrolled"
    assert by_volunteer[str(people[2].id)]["promoted_at"] is not None
    assert by_volunteer[str(people[3].id)]["waitlist_position"] == 1
    assert by_volunteer[str(people[0].id)]["volunteer"]["real_name"] == "陈志愿"

    cancelled = await client.post(f"{url}/cancel", json={"reason": "暴雨"}, headers=staff)
    assert cancelled.status_code == 200
    assert_problem(
        await client.patch(url, json={"description": "x"}, headers=staff),
        409,
        "activity.not_editable",
    )


async def test_the_activity_state_machine(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    created_by = await user_id_of(session, STAFF)
    future = await make_activity(session, created_by=created_by)
    draft = await make_activity(session, created_by=created_by, state=ActivityState.draft)
    await session.commit()

    early = await client.post(f"/v1/staff/activities/{future.id}/finish", headers=staff)
    assert_problem(early, 409, "activity.not_started")
    body = assert_problem(
        await client.post(f"/v1/staff/activities/{draft.id}/finish", headers=staff),
        409,
        "activity.illegal_transition",
    )
    assert (body["from"], body["to"]) == ("draft", "finished")

    cancel = await client.post(
        f"/v1/staff/activities/{future.id}/cancel", json={"reason": "台风预警"}, headers=staff
    )
    assert cancel.status_code == 200 and cancel.json()["cancel_reason"] == "台风预警"
    again = await client.post(
        f"/v1/staff/activities/{future.id}/cancel", json={"reason": "别的理由"}, headers=staff
    )
    assert again.status_code == 200 and again.json()["cancel_reason"] == "台风预警"
    body = assert_problem(
        await client.post(f"/v1/staff/activities/{future.id}/publish", headers=staff),
        409,
        "activity.illegal_transition",
    )
    assert (body["from"], body["to"]) == ("cancelled", "published")
    assert "已取消" in body["detail"] and "已发布" in body["detail"]
    draft_cancelled = await client.post(
        f"/v1/staff/activities/{draft.id}/cancel", json={"reason": "不办了"}, headers=staff
    )
    assert draft_cancelled.json()["state"] == "cancelled"
    assert_problem(
        await client.post(
            f"/v1/staff/activities/{draft.id}/cancel", json={"reason": ""}, headers=staff
        ),
        422,
        "request.invalid",
    )

    listed = await client.get(
        "/v1/staff/activities", params={"state": "cancelled", "limit": 1}, headers=staff
    )
    first = listed.json()
    assert [i["id"] for i in first["items"]] == [str(draft.id)]  # newest first
    second = await client.get(
        "/v1/staff/activities",
        params={"state": "cancelled", "limit": 1, "cursor": first["next_cursor"]},
        headers=staff,
    )
    assert [i["id"] for i in second.json()["items"]] == [str(future.id)]
    window = await client.get(
        "/v1/staff/activities",
        params={"from": iso(now() + timedelta(days=30)), "to": iso(now() + timedelta(days=31))},
        headers=staff,
    )
    assert window.status_code == 200 and window.json()["items"] == []
    assert_problem(
        await client.get(
            "/v1/staff/activities",
            params={"from": iso(now()), "to": iso(now() - timedelta(days=1))},
            headers=staff,
        ),
        422,
        "activity.period_invalid",
    )


# --- finding activities --------------------------------------------------------------------


async def test_volunteers_find_activities_near_them_nearest_first(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    lat, lng = await centre_of(session, GANGDING)
    near = await make_activity(
        session, created_by=created_by, place=north_of(lat, lng, 200), capacity=4, title="近"
    )
    middle = await make_activity(
        session,
        created_by=created_by,
        place=north_of(lat, lng, 1500),
        type=ActivityType.rental_inspection,
        title="中",
    )
    far = await make_activity(session, created_by=created_by, place=north_of(lat, lng, 3000))
    beyond = await make_activity(session, created_by=created_by, place=north_of(lat, lng, 8000))
    hidden_draft = await make_activity(
        session, created_by=created_by, place=(lat, lng), state=ActivityState.draft
    )
    over = await make_activity(
        session,
        created_by=created_by,
        place=(lat, lng),
        starts_at=now() - timedelta(hours=3),
        hours=2,
    )
    member, member_headers = await volunteer(session, login, "act-team-member")
    outsider, outsider_headers = await volunteer(session, login, "act-outsider")
    team = await make_team(session, name="岗顶夜巡队", created_by=created_by, members=(member,))
    team_only = await make_activity(
        session, created_by=created_by, place=north_of(lat, lng, 100), team=team
    )
    await set_earning_rule(session, "public_security_patrol", 10)
    await session.execute(
        update(PointsEarningRule)
        .where(col(PointsEarningRule.activity_type) == "rental_inspection")
        .values(active=False)
    )
    taken = await make_volunteer(session, "act-taken")
    await make_enrolment(session, near, taken)
    await make_enrolment(session, near, outsider)
    await session.commit()
    mine = {str(a.id) for a in (near, middle, far, beyond, hidden_draft, over, team_only)}

    here = to_gcj02(lat, lng)
    params = {"lat": here[0], "lng": here[1], "coord": "gcj02"}
    answer = await client.get("/v1/activities", params=params, headers=outsider_headers)
    assert answer.status_code == 200, answer.text
    items = [i for i in answer.json()["items"] if i["id"] in mine]
    assert [i["id"] for i in items] == [str(near.id), str(middle.id), str(far.id)]
    distances = [i["distance_m"] for i in items]
    assert distances == sorted(distances)
    assert abs(distances[0] - 200) < 5 and abs(distances[2] - 3000) < 10
    first = items[0]
    assert (first["capacity"], first["places_left"], first["waitlisted"]) == (4, 2, 0)
    assert first["reward_points"] == 10 and items[1]["reward_points"] is None
    assert first["my_enrolment"]["state"] == "enrolled"
    assert items[1]["my_enrolment"] is None
    assert first["organiser"] == {
        "code": GANGDING,
        "name": "岗顶社区",
        "name_en": "Gangding Community",
    }

    wider = await client.get(
        "/v1/activities", params={**params, "radius_km": 10}, headers=outsider_headers
    )
    assert str(beyond.id) in {i["id"] for i in wider.json()["items"]}

    # The team's activity is listed for its members only, nearest of all for them.
    as_member = await client.get("/v1/activities", params=params, headers=member_headers)
    member_items = [i for i in as_member.json()["items"] if i["id"] in mine]
    assert member_items[0]["id"] == str(team_only.id)
    assert member_items[0]["team"] == {"id": str(team.id), "name": "岗顶夜巡队"}

    # Page by page, in the same order.
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        page = await client.get(
            "/v1/activities",
            params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})},
            headers=outsider_headers,
        )
        assert page.status_code == 200, page.text
        seen += [i["id"] for i in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert [i for i in seen if i in mine] == [str(near.id), str(middle.id), str(far.id)]
    assert len(seen) == len(set(seen))
    assert_problem(
        await client.get(
            "/v1/activities", params={**params, "cursor": "bm9wZQ"}, headers=outsider_headers
        ),
        400,
        "request.cursor_invalid",
    )

    # Without a place: the home community, soonest first; or a community named.
    home = await client.get("/v1/activities", headers=outsider_headers)
    home_ids = [i["id"] for i in home.json()["items"] if i["id"] in mine]
    assert set(home_ids) == {str(near.id), str(middle.id), str(far.id), str(beyond.id)}
    assert all(i["distance_m"] is None for i in home.json()["items"])
    starts = [i["starts_at"] for i in home.json()["items"]]
    assert starts == sorted(starts)
    named = await client.get(
        "/v1/activities", params={"community": SHIPAI_EAST}, headers=outsider_headers
    )
    assert not {i["id"] for i in named.json()["items"]} & mine

    # Anyone logged in may look, but must say where.
    resident = bearer(await login("act-just-a-resident"))
    assert_problem(
        await client.get("/v1/activities", headers=resident), 422, "activity.place_required"
    )
    looked = await client.get("/v1/activities", params=params, headers=resident)
    looked_ids = {i["id"] for i in looked.json()["items"]}
    assert str(near.id) in looked_ids and str(team_only.id) not in looked_ids

    detail = await client.get(f"/v1/activities/{near.id}", headers=outsider_headers)
    assert detail.status_code == 200
    assert detail.json()["fence"] == {"radius_m": 300, "polygon": None, "coord": "wgs84"}
    assert detail.json()["enrolled"] == 2


# --- enrolment -----------------------------------------------------------------------------


async def test_enrol_take_a_place_then_the_waitlist_moves_up_in_order(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    activity = await make_activity(
        session, created_by=created_by, capacity=2, starts_at=now() + timedelta(days=1)
    )
    await session.commit()
    people = [await volunteer(session, login, f"act-queue-{i}") for i in range(4)]
    url = f"/v1/activities/{activity.id}/enrolments"

    answers = []
    for _, headers in people:
        answer = await client.post(url, headers=headers)
        assert answer.status_code == 201, answer.text
        answers.append(answer.json())
    assert [a["state"] for a in answers] == ["enrolled", "enrolled", "waitlisted", "waitlisted"]
    assert [a["waitlist_position"] for a in answers] == [None, None, 1, 2]
    assert answers[0]["activity"]["id"] == str(activity.id)

    again = await client.post(url, headers=people[2][1])
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json()["id"] == answers[2]["id"] and again.json()["waitlist_position"] == 1

    # The first holder gives up: the first in line gets the place, the next moves up.
    cancelled = await client.post(f"/v1/enrolments/{answers[0]['id']}/cancel", headers=people[0][1])
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["cancelled_by"] == "volunteer"
    repeat = await client.post(f"/v1/enrolments/{answers[0]['id']}/cancel", headers=people[0][1])
    assert (
        repeat.status_code == 200
        and repeat.json()["cancelled_at"] == (cancelled.json()["cancelled_at"])
    )
    mine = await client.get("/v1/me/enrolments", headers=people[2][1])
    [promoted] = mine.json()["items"]
    assert promoted["state"] == "enrolled" and promoted["promoted_at"] is not None
    mine = await client.get("/v1/me/enrolments", headers=people[3][1])
    assert mine.json()["items"][0]["waitlist_position"] == 1
    view = (await client.get(f"/v1/activities/{activity.id}", headers=people[3][1])).json()
    assert (view["enrolled"], view["waitlisted"], view["places_left"]) == (2, 1, 0)
    assert view["my_enrolment"] == {
        "id": answers[3]["id"],
        "state": "waitlisted",
        "waitlist_position": 1,
    }

    # Back again: at the end of the queue.
    back = await client.post(url, headers=people[0][1])
    assert back.status_code == 201 and back.json()["id"] == answers[0]["id"]
    assert back.json()["state"] == "waitlisted" and back.json()["waitlist_position"] == 2
    assert back.json()["cancelled_by"] is None

    # Someone else's enrolment does not exist for me.
    assert_problem(
        await client.post(f"/v1/enrolments/{answers[1]['id']}/cancel", headers=people[3][1]),
        404,
        "enrolment.not_found",
    )
    # Leaving the queue frees no place and promotes nobody.
    left = await client.post(f"/v1/enrolments/{answers[3]['id']}/cancel", headers=people[3][1])
    assert left.status_code == 200
    stored = await reload(session, activity)
    assert (stored.enrolled, stored.waitlisted) == (2, 1)
    count = await session.execute(
        select(func.count()).where(
            col(Enrolment.activity_id) == activity.id,
            col(Enrolment.state) == EnrolmentState.enrolled.value,
        )
    )
    assert count.scalar_one() == 2


async def test_who_may_enrol_and_until_when(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    soon = await make_activity(session, created_by=created_by, starts_at=now() + timedelta(hours=1))
    started = await make_activity(
        session, created_by=created_by, starts_at=now() - timedelta(minutes=10)
    )
    draft = await make_activity(session, created_by=created_by, state=ActivityState.draft)
    _, headers = await volunteer(session, login, "act-eligible")
    team = await make_team(session, name="岗顶消防队", created_by=created_by)
    for_team = await make_activity(session, created_by=created_by, team=team)
    await session.commit()

    enrolled = await client.post(f"/v1/activities/{soon.id}/enrolments", headers=headers)
    assert enrolled.status_code == 201
    # Two hours before the start is the deadline (the default setting); it has passed.
    late = await client.post(f"/v1/enrolments/{enrolled.json()['id']}/cancel", headers=headers)
    body = assert_problem(late, 409, "enrolment.too_late_to_cancel")
    assert datetime.fromisoformat(body["deadline"]) == soon.starts_at - timedelta(hours=2)
    assert "2" in body["detail"]

    assert_problem(
        await client.post(f"/v1/activities/{started.id}/enrolments", headers=headers),
        409,
        "enrolment.closed",
    )
    assert_problem(
        await client.post(f"/v1/activities/{draft.id}/enrolments", headers=headers),
        404,
        "activity.not_found",
    )
    assert_problem(
        await client.post(f"/v1/activities/{uuid.uuid4()}/enrolments", headers=headers),
        404,
        "activity.not_found",
    )
    body = assert_problem(
        await client.post(f"/v1/activities/{for_team.id}/enrolments", headers=headers),
        403,
        "enrolment.team_only",
    )
    assert "岗顶消防队" in body["detail"]

    _, pending = await volunteer(session, login, "act-pending", state=VolunteerState.pending)
    assert_problem(
        await client.post(f"/v1/activities/{soon.id}/enrolments", headers=pending),
        403,
        "volunteer.not_approved",
    )
    nobody = bearer(await login("act-not-signed-up"))
    assert_problem(
        await client.post(f"/v1/activities/{soon.id}/enrolments", headers=nobody),
        404,
        "volunteer.not_signed_up",
    )
    assert_problem(
        await client.get("/v1/me/enrolments", headers=nobody), 404, "volunteer.not_signed_up"
    )
    assert_problem(
        await client.post(f"/v1/activities/{soon.id}/enrolments"), 401, "auth.unauthenticated"
    )
    staff = await staff_headers(login)
    cancelled = await client.post(
        f"/v1/staff/activities/{soon.id}/cancel", json={"reason": "场地临时占用"}, headers=staff
    )
    assert cancelled.status_code == 200
    assert_problem(
        await client.post(f"/v1/activities/{soon.id}/enrolments", headers=pending),
        403,
        "volunteer.not_approved",
    )
    # The activity called it off: enrolling again is refused.
    closed = await client.post(f"/v1/activities/{soon.id}/enrolments", headers=headers)
    assert_problem(closed, 409, "enrolment.closed")


async def test_a_cancelled_activity_tells_its_volunteers_why(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    activity = await make_activity(session, created_by=created_by, capacity=1)
    holder, holder_headers = await volunteer(session, login, "act-holder")
    waiting, waiting_headers = await volunteer(session, login, "act-waiting")
    await make_enrolment(session, activity, holder)
    await make_enrolment(session, activity, waiting, state=EnrolmentState.waitlisted)
    await session.commit()

    staff = await staff_headers(login)
    cancelled = await client.post(
        f"/v1/staff/activities/{activity.id}/cancel",
        json={"reason": "台风“山竹”预警，活动取消"},
        headers=staff,
    )
    assert cancelled.status_code == 200, cancelled.text
    view = cancelled.json()
    assert (view["state"], view["enrolled"], view["waitlisted"]) == ("cancelled", 0, 0)
    assert view["enrolments"]["cancelled"] == 2

    for headers in (holder_headers, waiting_headers):
        [item] = (await client.get("/v1/me/enrolments", headers=headers)).json()["items"]
        assert item["state"] == "cancelled"
        assert item["cancelled_by"] == "activity_cancelled"
        assert item["cancel_reason"] == "台风“山竹”预警，活动取消"
        assert item["activity"]["state"] == "cancelled"
    detail = await client.get(f"/v1/activities/{activity.id}", headers=holder_headers)
    assert detail.json()["cancel_reason"] == "台风“山竹”预警，活动取消"
    only_cancelled = await client.get(
        "/v1/me/enrolments", params={"state": "enrolled"}, headers=holder_headers
    )
    assert only_cancelled.json()["items"] == []


# --- many at once (real commits, separate connections) -------------------------------------


@dataclass
class World:
    """Committed rows (on connections of their own) in a region tree of their own."""

    paths: tuple[str, ...]
    staff: User
    users: list[User]
    volunteers: list[Volunteer]
    community_id: uuid.UUID


async def committed_world(factory: async_sessionmaker[AsyncSession], volunteers: int) -> World:
    tag = f"act{secrets.token_hex(4)}"
    paths = (tag, f"{tag}.d", f"{tag}.d.s", f"{tag}.d.s.c")
    async with factory() as db:
        parent = None
        for path, level in zip(paths, RegionLevel, strict=False):
            region = Region(path=path, level=level, name=path, parent_id=parent)
            db.add(region)
            await db.flush()
            parent = region.id
        assert parent is not None
        staff = User(openid=f"{tag}-staff", nickname="组织者")
        users = [User(openid=f"{tag}-{i}", nickname=f"志愿者{i}") for i in range(volunteers)]
        db.add_all([staff, *users])
        await db.flush()
        db.add(
            RoleGrant(
                user_id=staff.id, role=Role.community_staff, region_id=parent, region_path=paths[-1]
            )
        )
        people = [
            Volunteer(
                user_id=u.id,
                number=f"{tag}-{i}",
                real_name="并发志愿者",
                community_id=parent,
                community_path=paths[-1],
                state=VolunteerState.approved,
            )
            for i, u in enumerate(users)
        ]
        db.add_all(people)
        await db.commit()
    return World(paths, staff, users, people, parent)


async def committed_activity(
    factory: async_sessionmaker[AsyncSession],
    world: World,
    *,
    starts_at: datetime,
    capacity: int,
) -> Activity:
    async with factory() as db:
        activity = Activity(
            type=ActivityType.community_service,
            title="并发测试",
            region_id=world.community_id,
            region_path=world.paths[-1],
            place_name="测试",
            lat=0.0,
            lng=0.0,
            fence_radius_m=100,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=1),
            capacity=capacity,
            state=ActivityState.published,
            code_secret=codes.new_secret(),
            created_by=world.staff.id,
        )
        db.add(activity)
        await db.commit()
    return activity


async def remove_world(factory: async_sessionmaker[AsyncSession], world: World) -> None:
    async with factory() as db:
        ids = [u.id for u in (world.staff, *world.users)]
        activity_ids = select(col(Activity.id)).where(col(Activity.region_path).in_(world.paths))
        await db.execute(delete(Enrolment).where(col(Enrolment.activity_id).in_(activity_ids)))
        await db.execute(delete(Activity).where(col(Activity.region_path).in_(world.paths)))
        await db.execute(delete(Volunteer).where(col(Volunteer.user_id).in_(ids)))
        await db.execute(delete(RoleGrant).where(col(RoleGrant.user_id).in_(ids)))
        await db.execute(delete(User).where(col(User.id).in_(ids)))
        for path in reversed(world.paths):
            await db.execute(delete(Region).where(col(Region.path) == path))
        await db.commit()


async def test_fifty_volunteers_at_once_never_overfill_an_activity(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """50 enrolment requests at once, each its own request and transaction, for 10 places:
    exactly 10 places are taken, 40 wait in distinct positions, the counters match the
    rows; and 5 retries of one "create" at once make one draft."""
    factory = create_sessionmaker(engine)
    world = await committed_world(factory, 50)
    try:
        activity = await committed_activity(
            factory, world, starts_at=now() + timedelta(days=1), capacity=10
        )

        def headers(user: User) -> dict[str, str]:
            token, _ = issue_access_token(user.id, app.state.settings, now())
            return {"Authorization": f"Bearer {token}"}

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            answers = await asyncio.gather(
                *(
                    http.post(f"/v1/activities/{activity.id}/enrolments", headers=headers(u))
                    for u in world.users
                )
            )
            body = {
                "type": "community_service",
                "title": "同一个表单",
                "community": world.paths[-1],
                "place_name": "测试",
                "location": {"lat": 0.0, "lng": 0.0, "coord": "wgs84"},
                "fence": {"radius_m": 100},
                "starts_at": iso(now() + timedelta(days=2)),
                "ends_at": iso(now() + timedelta(days=2, hours=1)),
                "capacity": 3,
            }
            same_key = {**headers(world.staff), "Idempotency-Key": f"{world.paths[0]}-form"}
            creates = await asyncio.gather(
                *(http.post("/v1/staff/activities", json=body, headers=same_key) for _ in range(5))
            )

        assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
        states = [a.json()["state"] for a in answers]
        assert states.count("enrolled") == 10 and states.count("waitlisted") == 40
        positions = sorted(
            a.json()["waitlist_position"] for a in answers if a.json()["waitlist_position"]
        )
        assert positions == list(range(1, 41))
        assert sorted(c.status_code for c in creates) == [200, 200, 200, 200, 201], [
            c.text for c in creates
        ]
        assert len({c.json()["id"] for c in creates}) == 1
        async with factory() as db:
            stored = await db.get(Activity, activity.id)
            assert stored is not None and (stored.enrolled, stored.waitlisted) == (10, 40)
            rows = await db.execute(
                select(col(Enrolment.state), func.count())
                .where(col(Enrolment.activity_id) == activity.id)
                .group_by(col(Enrolment.state))
            )
            assert dict(rows.all()) == {"enrolled": 10, "waitlisted": 40}
            drafts = await db.execute(
                select(func.count()).where(col(Activity.created_by) == world.staff.id)
            )
            assert drafts.scalar_one() == 2  # the one made here, and the one the retries made
    finally:
        await remove_world(factory, world)


async def test_shanzhi_worker_runs_the_finishing_job(
    engine: AsyncEngine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The job is one of `shanzhi worker`'s: a run finishes an activity past its grace."""
    factory = create_sessionmaker(engine)
    world = await committed_world(factory, 1)
    try:
        ended = await committed_activity(
            factory, world, starts_at=now() - timedelta(hours=2), capacity=2
        )
        async with factory() as db:
            db.add(
                Enrolment(
                    activity_id=ended.id,
                    volunteer_id=world.volunteers[0].id,
                    state=EnrolmentState.enrolled,
                    queued_at=now() - timedelta(days=1),
                )
            )
            await db.execute(
                update(Activity).where(col(Activity.id) == ended.id).values(enrolled=1)
            )
            await db.commit()
        caplog.set_level(logging.INFO, logger="shanzhi.worker")
        assert (await worker.run_jobs(factory, worker.all_jobs(settings))).healthy
        assert re.search(r"activities_finished [1-9]", caplog.text), caplog.text
        assert re.search(
            r"volunteers: [1-9]\d* activities finished, [1-9]\d* no-shows", caplog.text
        )
        async with factory() as db:
            stored = await db.get(Activity, ended.id)
            assert stored is not None and stored.state == ActivityState.finished
            states = await db.execute(
                select(col(Enrolment.state)).where(col(Enrolment.activity_id) == ended.id)
            )
            assert states.scalars().all() == ["no_show"]
    finally:
        await remove_world(factory, world)


# --- finishing: no-shows -------------------------------------------------------------------


async def test_the_worker_finishes_ended_activities_and_records_no_shows(
    demo: None, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    ended = await make_activity(
        session, created_by=created_by, starts_at=now() - timedelta(hours=3), hours=2, capacity=3
    )
    # Ended ten minutes ago: volunteers may still check out (15 minutes' grace).
    in_grace = await make_activity(
        session,
        created_by=created_by,
        starts_at=now() - timedelta(hours=2, minutes=10),
        hours=2,
    )
    absent, on_site, done, waiting = [
        await make_volunteer(session, f"act-finish-{i}") for i in range(4)
    ]
    absent_enrolment = await make_enrolment(session, ended, absent)
    on_site_enrolment = await make_enrolment(session, ended, on_site)
    done_enrolment = await make_enrolment(session, ended, done)
    waiting_enrolment = await make_enrolment(
        session, ended, waiting, state=EnrolmentState.waitlisted
    )
    grace_enrolment = await make_enrolment(session, in_grace, absent)
    never_out = await make_attendance(session, ended, on_site_enrolment)
    verified = await make_attendance(session, ended, done_enrolment, state=AttendanceState.verified)
    await session.commit()

    counts = await finish_due_activities(session, now(), grace_minutes=15)
    assert (counts.activities, counts.no_shows, counts.to_review, counts.waitlist_released) == (
        1,
        1,
        1,
        1,
    )
    ended = await reload(session, ended)
    assert ended.state == ActivityState.finished and ended.finished_at is not None
    assert (ended.enrolled, ended.waitlisted) == (2, 0)
    assert (await reload(session, absent_enrolment)).state == EnrolmentState.no_show
    assert (await reload(session, on_site_enrolment)).state == EnrolmentState.enrolled
    assert (await reload(session, done_enrolment)).state == EnrolmentState.enrolled
    released = await reload(session, waiting_enrolment)
    assert (released.state, released.cancelled_by) == (
        EnrolmentState.cancelled,
        "activity_finished",
    )
    never_out = await reload(session, never_out)
    assert never_out.state == AttendanceState.review
    assert never_out.flags == [{"code": "no_check_out", "at": "check_out"}]
    assert (await reload(session, verified)).state == AttendanceState.verified
    assert (await reload(session, in_grace)).state == ActivityState.published
    assert (await reload(session, grace_enrolment)).state == EnrolmentState.enrolled

    # Nothing more to do on a second run.
    again = await finish_due_activities(session, now(), grace_minutes=15)
    assert (again.activities, again.no_shows, again.to_review) == (0, 0, 0)
    assert (await reload(session, never_out)).flags == [{"code": "no_check_out", "at": "check_out"}]

    # Once the grace is over, the other one too.
    later = await finish_due_activities(session, now() + timedelta(minutes=6), grace_minutes=15)
    assert (later.activities, later.no_shows) == (1, 1)
    assert (await reload(session, grace_enrolment)).state == EnrolmentState.no_show


async def test_staff_finish_records_no_shows_the_same_way(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    created_by = await user_id_of(session, STAFF)
    running = await make_activity(
        session, created_by=created_by, starts_at=now() - timedelta(minutes=30), hours=2
    )
    absent, absent_headers = await volunteer(session, login, "act-sf-absent")
    present, waiting = [await make_volunteer(session, f"act-sf-{i}") for i in range(2)]
    await make_enrolment(session, running, absent)
    present_enrolment = await make_enrolment(session, running, present)
    await make_enrolment(session, running, waiting, state=EnrolmentState.waitlisted)
    await make_attendance(session, running, present_enrolment)
    await session.commit()

    staff = await staff_headers(login)
    finished = await client.post(f"/v1/staff/activities/{running.id}/finish", headers=staff)
    assert finished.status_code == 200, finished.text
    view = finished.json()
    assert view["state"] == "finished" and view["finished_at"]
    assert view["enrolments"] == {"enrolled": 1, "waitlisted": 0, "cancelled": 1, "no_show": 1}
    assert view["attendance"] == {"checked_in": 0, "review": 1, "verified": 0, "rejected": 0}
    again = await client.post(f"/v1/staff/activities/{running.id}/finish", headers=staff)
    assert again.status_code == 200 and again.json()["finished_at"] == view["finished_at"]
    roster = await client.get(
        f"/v1/staff/activities/{running.id}/enrolments",
        params={"state": "enrolled"},
        headers=bearer(await login("demo-grid-worker")),
    )
    [item] = roster.json()["items"]
    assert item["volunteer"]["id"] == str(present.id)
    assert item["attendance_state"] == "review"
    no_show = await client.get(
        f"/v1/staff/activities/{running.id}/enrolments",
        params={"state": "no_show"},
        headers=staff,
    )
    [item] = no_show.json()["items"]
    assert item["volunteer"]["id"] == str(absent.id) and item["attendance_state"] is None
    # A no-show stays one: the volunteer can no longer cancel it.
    [mine] = (await client.get("/v1/me/enrolments", headers=absent_headers)).json()["items"]
    assert mine["state"] == "no_show"
    assert_problem(
        await client.post(f"/v1/enrolments/{mine['id']}/cancel", headers=absent_headers),
        409,
        "enrolment.not_cancellable",
    )
