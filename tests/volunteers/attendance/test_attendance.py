"""Check-in and check-out, tracks, staff review and pay-out, through HTTP.

The server's clock is frozen inside the activity's window and the code is computed the way
the leader's screen shows it; every outcome is read back the way a user would see it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import clock, now
from backend.regions.coords import to_gcj02
from points.models import PointsTransaction
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.volunteers import (
    GANGDING,
    centre_of,
    current_code,
    make_activity,
    make_enrolment,
    make_team,
    make_volunteer,
    set_earning_rule,
    user_id_of,
)
from volunteers.attendance import codes
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    EnrolmentState,
    Volunteer,
    VolunteerState,
)

pytestmark = pytest.mark.usefixtures("demo")

PATROL = ActivityType.public_security_patrol.value
STAFF = "demo-community-staff"
VOLUNTEER = "vol-chen"


# --- helpers --------------------------------------------------------------------------------


def freeze() -> datetime:
    """Freeze the server's clock at the present second (tokens stay valid)."""
    at = datetime.now(UTC).replace(microsecond=0)
    clock.freeze(at)
    return at


async def as_user(login: Login, openid: str) -> dict[str, str]:
    """Log in at the server's current time (so a moved clock never expires the token)."""
    return bearer(await login(openid))


def where(lat: float, lng: float, *, accuracy: float = 10, coord: str = "wgs84") -> dict[str, Any]:
    return {"lat": lat, "lng": lng, "coord": coord, "accuracy_m": accuracy}


def qr(activity: Activity, at: datetime | None = None) -> str:
    return current_code(activity, at).qr


def wrong_code(activity: Activity) -> str:
    """Six digits this activity has not shown lately."""
    for candidate in range(1_000_000):
        digits = f"{candidate:06d}"
        if codes.judge(activity.code_secret, digits, now()) is codes.CodeVerdict.wrong:
            return digits
    raise AssertionError("unreachable")


async def patrol(
    session: AsyncSession, t0: datetime, *, before: int = 30, hours: float = 2, **kwargs: Any
) -> Activity:
    """A published patrol in Gangding that started `before` minutes before `t0`."""
    staff_id = await user_id_of(session, STAFF)
    return await make_activity(
        session,
        created_by=staff_id,
        starts_at=t0 - timedelta(minutes=before),
        hours=hours,
        **kwargs,
    )


async def enrolled_volunteer(
    session: AsyncSession, activity: Activity, openid: str = VOLUNTEER, **kwargs: Any
) -> Volunteer:
    volunteer = await make_volunteer(session, openid, **kwargs)
    await make_enrolment(session, activity, volunteer)
    return volunteer


async def scan(
    client: httpx.AsyncClient,
    activity: Activity,
    headers: dict[str, str],
    location: dict[str, Any],
    *,
    code: str | None = None,
    out: bool = False,
) -> httpx.Response:
    path = "check-out" if out else "check-in"
    return await client.post(
        f"/v1/activities/{activity.id}/{path}",
        json={"code": code if code is not None else qr(activity), "location": location},
        headers=headers,
    )


async def counters(session: AsyncSession, volunteer: Volunteer) -> tuple[int, int]:
    found = await session.execute(
        select(col(Volunteer.service_minutes), col(Volunteer.activities_attended)).where(
            col(Volunteer.id) == volunteer.id
        )
    )
    minutes, attended = found.one()
    return minutes, attended


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get("/v1/points/balance", headers=headers)
    assert response.status_code == 200, response.text
    available: int = response.json()["available"]
    return available


async def ledger_transactions(session: AsyncSession, attendance_id: str) -> int:
    found = await session.execute(
        select(func.count()).where(
            col(PointsTransaction.idempotency_key) == f"attendance:{attendance_id}"
        )
    )
    return int(found.scalar_one())


def flag_codes(body: dict[str, Any]) -> list[str]:
    return [flag["code"] for flag in body["flags"]]


# --- the clean path -------------------------------------------------------------------------


async def test_check_in_and_out_verifies_and_pays_once(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    activity = await patrol(session, t0)
    volunteer = await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)

    assert_problem(
        await client.get(f"/v1/activities/{activity.id}/attendance", headers=me),
        404,
        "attendance.not_found",
    )
    # The volunteer scans what the community's screen shows.
    screen = await client.get(
        f"/v1/staff/activities/{activity.id}/code", headers=await as_user(login, STAFF)
    )
    assert screen.status_code == 200, screen.text
    checked_in = await scan(client, activity, me, where(lat, lng), code=screen.json()["qr"])
    assert checked_in.status_code == 201, checked_in.text
    body = checked_in.json()
    assert body["state"] == "checked_in"
    assert body["flags"] == [] and body["will_be_reviewed"] is False
    assert datetime.fromisoformat(body["checked_in_at"]) == t0
    assert body["activity"]["id"] == str(activity.id)
    assert body["activity"]["organiser"]["code"] == GANGDING

    # Twice is one check-in, even once the code has rotated past its grace.
    clock.advance(timedelta(minutes=2))
    again = await scan(client, activity, me, where(lat, lng), code=qr(activity, t0))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"]

    clock.advance(timedelta(minutes=8))
    me = await as_user(login, VOLUNTEER)
    out = await scan(client, activity, me, where(lat, lng), out=True)
    assert out.status_code == 200, out.text
    done = out.json()
    assert done["state"] == "verified"
    assert done["minutes"] == 10 and done["points"] == 10
    assert done["will_be_reviewed"] is False
    assert await counters(session, volunteer) == (10, 1)
    assert await balance(client, me) == 10
    assert await ledger_transactions(session, body["id"]) == 1

    # A retry (with the code that has since changed) answers the same and pays nothing more.
    clock.advance(timedelta(minutes=3))
    retry = await scan(client, activity, me, where(lat, lng), code=qr(activity, t0), out=True)
    assert retry.status_code == 200, retry.text
    assert retry.json()["state"] == "verified" and retry.json()["points"] == 10
    assert await counters(session, volunteer) == (10, 1)
    assert await balance(client, me) == 10
    assert await ledger_transactions(session, body["id"]) == 1

    mine = await client.get(f"/v1/activities/{activity.id}/attendance", headers=me)
    assert mine.status_code == 200
    assert mine.json()["state"] == "verified" and mine.json()["minutes"] == 10


async def test_typed_digits_check_in(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    # The code of the step before is still accepted (one step of grace).
    previous = current_code(activity, t0 - timedelta(seconds=30)).code
    response = await scan(client, activity, me, where(lat, lng), code=previous)
    assert response.status_code == 201, response.text
    assert response.json()["flags"] == []


async def test_daily_cap_is_what_the_volunteer_gets(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10, daily_cap=15)
    first = await patrol(session, t0, title="上午巡逻")
    second = await patrol(session, t0, title="下午巡逻")
    volunteer = await enrolled_volunteer(session, first)
    await make_enrolment(session, second, volunteer)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    for activity in (first, second):
        assert (await scan(client, activity, me, where(lat, lng))).status_code == 201
    clock.advance(timedelta(minutes=5))
    paid = []
    for activity in (first, second):
        out = await scan(client, activity, me, where(lat, lng), out=True)
        assert out.json()["state"] == "verified", out.text
        paid.append(out.json()["points"])
    assert paid == [10, 5]
    assert await balance(client, me) == 15
    assert await counters(session, volunteer) == (10, 2)


# --- codes ----------------------------------------------------------------------------------


async def test_wrong_unreadable_and_expired_codes_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    here = where(lat, lng)

    assert_problem(
        await scan(client, activity, me, here, code=wrong_code(activity)),
        409,
        "attendance.code_wrong",
    )
    assert_problem(
        await scan(client, activity, me, here, code="hello"), 422, "attendance.code_unreadable"
    )
    stale = current_code(activity, t0 - timedelta(minutes=3))
    assert_problem(
        await scan(client, activity, me, here, code=stale.qr), 409, "attendance.code_expired"
    )
    typed = assert_problem(
        await scan(client, activity, {**me, "Accept-Language": "en"}, here, code=stale.code),
        409,
        "attendance.code_expired",
    )
    assert typed["detail"] == "The code has changed; scan again"
    # Nothing was written by the refusals.
    assert_problem(
        await client.get(f"/v1/activities/{activity.id}/attendance", headers=me),
        404,
        "attendance.not_found",
    )


async def test_qr_of_another_activity_goes_to_review(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    mine = await patrol(session, t0)
    # Another activity, even in another district: its QR names it.
    other = await patrol(session, t0, community="gz.yuexiu.beijing.fuqian", title="别处巡逻")
    await enrolled_volunteer(session, mine)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)

    response = await scan(client, mine, me, where(lat, lng), code=qr(other))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "checked_in"
    assert flag_codes(body) == ["code_of_other_activity"]
    assert body["flags"][0]["detail"]["other_activity_id"] == str(other.id)
    assert "别处巡逻" in body["flags"][0]["message"]
    assert body["will_be_reviewed"] is True

    clock.advance(timedelta(minutes=20))
    me = await as_user(login, VOLUNTEER)
    out = await scan(client, mine, me, where(lat, lng), out=True)
    assert out.json()["state"] == "review", out.text
    assert out.json()["points"] is None
    assert await balance(client, me) == 0


async def test_qr_of_another_activity_whose_code_is_old_is_wrong(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    mine = await patrol(session, t0)
    other = await patrol(session, t0, title="另一场巡逻")
    await enrolled_volunteer(session, mine)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    old = qr(other, t0 - timedelta(minutes=5))
    assert_problem(
        await scan(client, mine, me, where(lat, lng), code=old), 409, "attendance.code_wrong"
    )


async def test_digits_of_another_open_activity_of_the_community_go_to_review(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    mine = await patrol(session, t0)
    other = await patrol(session, t0, title="消防检查", type=ActivityType.fire_safety_check)
    await enrolled_volunteer(session, mine)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    response = await scan(client, mine, me, where(lat, lng), code=current_code(other).code)
    assert response.status_code == 201, response.text
    assert flag_codes(response.json()) == ["code_of_other_activity"]
    assert response.json()["will_be_reviewed"] is True


# --- location -------------------------------------------------------------------------------


async def test_outside_the_fence_is_accepted_into_review(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0, radius_m=300)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    # About 1.1 km north of the place.
    response = await scan(client, activity, {**me, "Accept-Language": "en"}, where(lat + 0.01, lng))
    assert response.status_code == 201, response.text
    body = response.json()
    assert flag_codes(body) == ["outside_geofence"]
    assert 700 < body["flags"][0]["detail"]["distance_m"] < 900
    assert "outside" in body["flags"][0]["message"]
    assert response.headers["content-language"] == "en"
    assert body["will_be_reviewed"] is True


async def test_poor_accuracy_is_accepted_into_review(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    response = await scan(client, activity, me, where(lat, lng, accuracy=450))
    assert response.status_code == 201, response.text
    body = response.json()
    assert flag_codes(body) == ["poor_accuracy"]
    assert body["flags"][0]["detail"]["accuracy_m"] == 450
    assert "450" in body["flags"][0]["message"]


async def test_polygon_fence_inside_and_outside(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    lat, lng = await centre_of(session, GANGDING)
    d = 0.002  # about 200 m
    square = {
        "type": "Polygon",
        "coordinates": [
            [
                [lng - d, lat - d],
                [lng + d, lat - d],
                [lng + d, lat + d],
                [lng - d, lat + d],
                [lng - d, lat - d],
            ]
        ],
    }
    activity = await patrol(session, t0, polygon=square)
    await enrolled_volunteer(session, activity)
    await enrolled_volunteer(session, activity, "vol-li")
    inside = await scan(
        client, activity, await as_user(login, VOLUNTEER), where(lat + d / 2, lng - d / 2)
    )
    assert inside.status_code == 201 and inside.json()["flags"] == [], inside.text
    outside = await scan(client, activity, await as_user(login, "vol-li"), where(lat + 3 * d, lng))
    assert outside.status_code == 201, outside.text
    assert flag_codes(outside.json()) == ["outside_geofence"]
    # Two fence widths (about 440 m) beyond the edge.
    assert 350 < outside.json()["flags"][0]["detail"]["distance_m"] < 550


async def test_gcj02_location_is_judged_in_wgs84(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    lat, lng = await centre_of(session, GANGDING)
    activity = await patrol(session, t0, radius_m=100)
    await enrolled_volunteer(session, activity)
    await enrolled_volunteer(session, activity, "vol-li")
    gcj_lat, gcj_lng = to_gcj02(lat, lng)
    # What wx.getLocation reports at the place: inside once converted.
    phone = await scan(
        client,
        activity,
        await as_user(login, VOLUNTEER),
        where(gcj_lat, gcj_lng, coord="gcj02"),
    )
    assert phone.status_code == 201 and phone.json()["flags"] == [], phone.text
    # The same numbers taken as WGS-84 lie hundreds of metres away.
    mislabelled = await scan(
        client, activity, await as_user(login, "vol-li"), where(gcj_lat, gcj_lng)
    )
    assert flag_codes(mislabelled.json()) == ["outside_geofence"]


# --- the time window ------------------------------------------------------------------------


async def test_too_early_and_too_late(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    # Starts in an hour: check-in opens 15 minutes before.
    early = await patrol(session, t0, before=-60)
    await enrolled_volunteer(session, early)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    refused = assert_problem(
        await scan(client, early, me, where(lat, lng)), 409, "attendance.too_early"
    )
    assert datetime.fromisoformat(refused["opens_at"]) == t0 + timedelta(minutes=45)

    # Ended ten minutes ago: check-in is closed (check-out would still be open).
    late = await patrol(session, t0, before=70, hours=1)
    volunteer = await make_volunteer(session, "vol-li")
    await make_enrolment(session, late, volunteer)
    other = await as_user(login, "vol-li")
    refused = assert_problem(
        await scan(client, late, other, where(lat, lng)), 409, "attendance.too_late"
    )
    assert datetime.fromisoformat(refused["closed_at"]) == t0 - timedelta(minutes=10)


async def test_check_out_after_the_grace_is_too_late(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0, before=50, hours=1)  # ends in 10 minutes
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    assert (
        await scan(client, activity, await as_user(login, VOLUNTEER), where(lat, lng))
    ).status_code == 201
    clock.advance(timedelta(minutes=26))  # 16 minutes after the end, grace is 15
    me = await as_user(login, VOLUNTEER)
    assert_problem(
        await scan(client, activity, me, where(lat, lng), out=True), 409, "attendance.too_late"
    )
    mine = await client.get(f"/v1/activities/{activity.id}/attendance", headers=me)
    assert mine.json()["state"] == "checked_in"


async def test_check_out_within_the_grace_counts_the_window_only(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0, before=50, hours=1)  # ends in 10 minutes
    volunteer = await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    assert (
        await scan(client, activity, await as_user(login, VOLUNTEER), where(lat, lng))
    ).status_code == 201
    clock.advance(timedelta(minutes=14))  # four minutes after the end
    out = await scan(client, activity, await as_user(login, VOLUNTEER), where(lat, lng), out=True)
    assert out.json()["state"] == "verified", out.text
    assert out.json()["minutes"] == 10
    assert await counters(session, volunteer) == (10, 1)


async def test_check_out_without_check_in(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    assert_problem(
        await scan(client, activity, await as_user(login, VOLUNTEER), where(lat, lng), out=True),
        409,
        "attendance.not_checked_in",
    )


# --- who may check in -----------------------------------------------------------------------


async def test_only_an_enrolled_approved_volunteer_checks_in(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0, capacity=1)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    here = where(lat, lng)

    waiting = await make_volunteer(session, "vol-li")
    await make_enrolment(session, activity, waiting, state=EnrolmentState.waitlisted)
    body = assert_problem(
        await scan(client, activity, await as_user(login, "vol-li"), here),
        409,
        "attendance.on_waitlist",
    )
    assert "候补" in body["detail"]

    await make_volunteer(session, "vol-wang")
    assert_problem(
        await scan(client, activity, await as_user(login, "vol-wang"), here),
        403,
        "attendance.not_enrolled",
    )

    pending = await make_volunteer(session, "vol-pending", state=VolunteerState.pending)
    await make_enrolment(session, activity, pending, state=EnrolmentState.cancelled)
    assert_problem(
        await scan(client, activity, await as_user(login, "vol-pending"), here),
        403,
        "volunteer.not_approved",
    )
    assert_problem(
        await scan(client, activity, await as_user(login, "vol-nobody"), here),
        404,
        "volunteer.not_signed_up",
    )
    assert_problem(
        await client.post(
            f"/v1/activities/{activity.id}/check-in", json={"code": qr(activity), "location": here}
        ),
        401,
        "auth.unauthenticated",
    )


async def test_drafts_do_not_exist_and_cancelled_activities_refuse(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    draft = await patrol(session, t0, state=ActivityState.draft)
    cancelled = await patrol(session, t0, state=ActivityState.cancelled)
    volunteer = await enrolled_volunteer(session, draft)
    await make_enrolment(session, cancelled, volunteer)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    assert_problem(await scan(client, draft, me, where(lat, lng)), 404, "activity.not_found")
    assert_problem(
        await scan(client, cancelled, me, where(lat, lng)), 409, "attendance.activity_cancelled"
    )
    assert_problem(
        await client.post(
            f"/v1/activities/{uuid.uuid4()}/check-in",
            json={"code": qr(draft), "location": where(lat, lng)},
            headers=me,
        ),
        404,
        "activity.not_found",
    )


# --- speed ----------------------------------------------------------------------------------


async def test_impossible_speed_in_a_track(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    activity = await patrol(session, t0, radius_m=300)
    volunteer = await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    assert (await scan(client, activity, me, where(lat, lng))).status_code == 201

    clock.advance(timedelta(minutes=3))
    track_url = f"/v1/activities/{activity.id}/track"

    def point(minutes: float, dlat: float, **extra: Any) -> dict[str, Any]:
        at = t0 + timedelta(minutes=minutes)
        return {"at": at.isoformat(), "lat": lat + dlat, "lng": lng, "coord": "wgs84", **extra}

    walk = {"points": [point(1, 0.0005, accuracy_m=8), point(2, 0.001, accuracy_m=8)]}
    first = await client.post(track_url, json=walk, headers=me)
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 2, "added": 2, "flags": [], "will_be_reviewed": False}

    # About 5.5 km in thirty seconds.
    jump = {"points": [point(2.5, 0.05, accuracy_m=8)]}
    flagged = await client.post(track_url, json=jump, headers=me)
    assert flagged.status_code == 200, flagged.text
    body = flagged.json()
    assert body["stored"] == 3 and body["added"] == 1
    assert flag_codes(body) == ["impossible_speed"]
    assert body["flags"][0]["at"] == "track"
    assert body["flags"][0]["detail"]["speed_mps"] > 100
    assert body["will_be_reviewed"] is True

    # Sending a batch again adds nothing and flags nothing twice.
    again = await client.post(
        track_url, json={"points": [*walk["points"], *jump["points"]]}, headers=me
    )
    assert again.json()["stored"] == 3 and again.json()["added"] == 0
    assert flag_codes(again.json()) == ["impossible_speed"]

    future = {"points": [point(5, 0.001)]}
    refused = assert_problem(
        await client.post(track_url, json=future, headers=me),
        422,
        "attendance.track_point_in_future",
    )
    assert refused["index"] == 0
    before = {"points": [point(-20, 0.001)]}
    assert_problem(
        await client.post(track_url, json=before, headers=me),
        422,
        "attendance.track_point_too_early",
    )
    assert_problem(
        await client.post(track_url, json={"points": []}, headers=me), 422, "request.invalid"
    )

    out = await scan(client, activity, me, where(lat, lng), out=True)
    assert out.json()["state"] == "review", out.text
    assert await counters(session, volunteer) == (0, 0)
    assert await balance(client, me) == 0
    assert_problem(
        await client.post(track_url, json=walk, headers=me), 409, "attendance.already_checked_out"
    )


async def test_impossible_speed_between_check_in_and_check_out(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    # A fence wide enough that only the speed is doubtful.
    activity = await patrol(session, t0, radius_m=10_000)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    assert (await scan(client, activity, me, where(lat, lng))).status_code == 201
    clock.advance(timedelta(minutes=1))
    out = await scan(client, activity, me, where(lat + 0.03, lng), out=True)  # 3.3 km
    body = out.json()
    assert body["state"] == "review", out.text
    assert flag_codes(body) == ["impossible_speed"]
    assert body["flags"][0]["at"] == "check_out"


async def test_a_walk_between_check_in_and_check_out_is_clean(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    activity = await patrol(session, t0, radius_m=2_000)
    await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, VOLUNTEER)
    assert (await scan(client, activity, me, where(lat, lng))).status_code == 201
    clock.advance(timedelta(minutes=12))
    out = await scan(client, activity, me, where(lat + 0.008, lng), out=True)  # 900 m
    assert out.json()["state"] == "verified", out.text


# --- the code on site -----------------------------------------------------------------------


async def test_who_may_read_the_code(
    client: httpx.AsyncClient,
    session: AsyncSession,
    login: Login,
    staff_elsewhere: StaffElsewhere,
) -> None:
    t0 = freeze()
    staff_id = await user_id_of(session, STAFF)
    leader = await make_volunteer(session, "vol-leader")
    member = await make_volunteer(session, "vol-member")
    team = await make_team(
        session, name="岗顶平安队", created_by=staff_id, leader=leader, members=(member,)
    )
    activity = await patrol(session, t0, team=team)
    url = f"/v1/staff/activities/{activity.id}/code"

    shown = await client.get(url, headers=await as_user(login, "vol-leader"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    expected = current_code(activity)
    assert body["code"] == expected.code and body["qr"] == expected.qr
    assert body["step_seconds"] == 30
    assert datetime.fromisoformat(body["refresh_at"]) == expected.refresh_at
    assert body["activity"]["id"] == str(activity.id)
    assert shown.headers["cache-control"] == "no-store"

    for host in (STAFF, "demo-grid-worker"):
        response = await client.get(url, headers=await as_user(login, host))
        assert response.status_code == 200, (host, response.text)
        assert response.json()["code"] == expected.code

    for outsider in ("vol-member", VOLUNTEER):
        assert_problem(
            await client.get(url, headers=await as_user(login, outsider)),
            404,
            "activity.not_found",
        )
    assert_problem(
        await client.get(url, headers=await staff_elsewhere()), 404, "activity.not_found"
    )
    assert_problem(await client.get(url), 401, "auth.unauthenticated")


async def test_the_code_shows_only_while_the_activity_is_open(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    draft = await patrol(session, t0, state=ActivityState.draft)
    staff = await as_user(login, STAFF)
    assert_problem(
        await client.get(f"/v1/staff/activities/{draft.id}/code", headers=staff),
        409,
        "attendance.activity_not_published",
    )
    ended = await patrol(session, t0, before=80, hours=1)  # ended 20 minutes ago
    refused = assert_problem(
        await client.get(f"/v1/staff/activities/{ended.id}/code", headers=staff),
        409,
        "attendance.code_closed",
    )
    assert datetime.fromisoformat(refused["closed_at"]) == t0 - timedelta(minutes=5)
    # Before the start the screen can already show it (volunteers check in early).
    later = await patrol(session, t0, before=-120)
    assert (
        await client.get(f"/v1/staff/activities/{later.id}/code", headers=staff)
    ).status_code == 200


# --- staff review ---------------------------------------------------------------------------


async def in_review(
    client: httpx.AsyncClient,
    session: AsyncSession,
    login: Login,
    t0: datetime,
    openid: str = VOLUNTEER,
) -> tuple[Activity, Volunteer, str]:
    """An attendance checked in outside the fence and out again: in review."""
    activity = await patrol(session, t0)
    volunteer = await enrolled_volunteer(session, activity, openid)
    lat, lng = await centre_of(session, GANGDING)
    me = await as_user(login, openid)
    checked_in = await scan(client, activity, me, where(lat + 0.01, lng))
    assert checked_in.status_code == 201, checked_in.text
    clock.advance(timedelta(minutes=20))
    me = await as_user(login, openid)
    out = await scan(client, activity, me, where(lat, lng), out=True)
    assert out.json()["state"] == "review", out.text
    assert flag_codes(out.json()) == ["outside_geofence"]
    return activity, volunteer, checked_in.json()["id"]


async def test_review_approve_pays_once(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    activity, volunteer, attendance_id = await in_review(client, session, login, t0)
    clock.advance(timedelta(minutes=1))
    staff = await as_user(login, STAFF)

    queue = await client.get("/v1/staff/attendance", headers=staff)
    assert queue.status_code == 200, queue.text
    items = queue.json()["items"]
    assert [item["id"] for item in items] == [attendance_id]
    item = items[0]
    assert item["volunteer"]["number"] == volunteer.number
    assert item["volunteer"]["real_name"] == volunteer.real_name
    assert item["activity"]["id"] == str(activity.id)
    assert flag_codes(item) == ["outside_geofence"]
    assert item["check_in"]["outside_fence_m"] > 700
    assert item["check_out"]["outside_fence_m"] == 0
    assert item["check_in"]["accuracy_m"] == 10

    detail = await client.get(f"/v1/staff/attendance/{attendance_id}", headers=staff)
    assert detail.status_code == 200 and detail.json()["track"] == []

    approved = await client.post(
        f"/v1/staff/attendance/{attendance_id}/approve",
        json={"note": "负责人确认在岗"},
        headers=staff,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "verified"
    assert approved.json()["points"] == 10
    assert approved.json()["review_note"] == "负责人确认在岗"
    again = await client.post(
        f"/v1/staff/attendance/{attendance_id}/approve", json={"minutes": 60}, headers=staff
    )
    assert again.status_code == 200 and again.json()["state"] == "verified"
    assert again.json()["minutes"] == 20  # unchanged by the second approval

    me = await as_user(login, VOLUNTEER)
    assert await balance(client, me) == 10
    assert await ledger_transactions(session, attendance_id) == 1
    assert await counters(session, volunteer) == (20, 1)
    assert_problem(
        await client.post(
            f"/v1/staff/attendance/{attendance_id}/reject", json={"note": "晚了"}, headers=staff
        ),
        409,
        "attendance.illegal_transition",
    )
    queue = await client.get("/v1/staff/attendance", headers=staff)
    assert queue.json()["items"] == []
    verified = await client.get("/v1/staff/attendance?state=verified", headers=staff)
    assert [item["id"] for item in verified.json()["items"]] == [attendance_id]
    mine = await client.get(f"/v1/activities/{activity.id}/attendance", headers=me)
    assert mine.json()["state"] == "verified" and mine.json()["points"] == 10


async def test_review_reject_pays_nothing(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    activity, volunteer, attendance_id = await in_review(client, session, login, t0)
    staff = await as_user(login, STAFF)
    url = f"/v1/staff/attendance/{attendance_id}"
    assert_problem(
        await client.post(f"{url}/reject", json={}, headers=staff), 422, "request.invalid"
    )
    rejected = await client.post(
        f"{url}/reject", json={"note": "签到位置距活动地点 1 公里"}, headers=staff
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    again = await client.post(f"{url}/reject", json={"note": "再次驳回"}, headers=staff)
    assert again.status_code == 200
    assert again.json()["review_note"] == "签到位置距活动地点 1 公里"
    assert_problem(
        await client.post(f"{url}/approve", json={}, headers=staff),
        409,
        "attendance.illegal_transition",
    )
    me = await as_user(login, VOLUNTEER)
    assert await balance(client, me) == 0
    assert await ledger_transactions(session, attendance_id) == 0
    assert await counters(session, volunteer) == (0, 0)
    mine = await client.get(f"/v1/activities/{activity.id}/attendance", headers=me)
    assert mine.json()["state"] == "rejected"
    assert mine.json()["review_note"] == "签到位置距活动地点 1 公里"


async def test_approving_someone_who_never_checked_out(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    activity = await patrol(session, t0, before=30, hours=1.5)  # ends in an hour
    volunteer = await enrolled_volunteer(session, activity)
    lat, lng = await centre_of(session, GANGDING)
    checked_in = await scan(client, activity, await as_user(login, VOLUNTEER), where(lat, lng))
    attendance_id = checked_in.json()["id"]
    staff = await as_user(login, STAFF)
    url = f"/v1/staff/attendance/{attendance_id}/approve"
    refused = assert_problem(
        await client.post(url, json={"minutes": 91}, headers=staff),
        422,
        "attendance.minutes_outside_window",
    )
    assert refused["max_minutes"] == 90
    listed = await client.get("/v1/staff/attendance?state=checked_in", headers=staff)
    assert [item["id"] for item in listed.json()["items"]] == [attendance_id]
    approved = await client.post(url, json={}, headers=staff)
    assert approved.status_code == 200, approved.text
    # From check-in to the activity's end.
    assert approved.json()["minutes"] == 60 and approved.json()["points"] == 10
    assert await counters(session, volunteer) == (60, 1)
    assert await balance(client, await as_user(login, VOLUNTEER)) == 10


async def test_staff_elsewhere_and_volunteers_cannot_review(
    client: httpx.AsyncClient,
    session: AsyncSession,
    login: Login,
    staff_elsewhere: StaffElsewhere,
) -> None:
    t0 = freeze()
    await set_earning_rule(session, PATROL, 10)
    _, volunteer, attendance_id = await in_review(client, session, login, t0)
    url = f"/v1/staff/attendance/{attendance_id}"
    elsewhere = await staff_elsewhere()
    listed = await client.get("/v1/staff/attendance", headers=elsewhere)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert_problem(await client.get(url, headers=elsewhere), 404, "attendance.not_found")
    assert_problem(
        await client.post(f"{url}/approve", json={}, headers=elsewhere),
        404,
        "attendance.not_found",
    )
    for openid in (VOLUNTEER, "demo-grid-worker"):
        headers = await as_user(login, openid)
        assert_problem(
            await client.post(f"{url}/approve", json={}, headers=headers),
            404,
            "attendance.not_found",
        )
        assert (await client.get("/v1/staff/attendance", headers=headers)).json()["items"] == []
    assert_problem(await client.get("/v1/staff/attendance"), 401, "auth.unauthenticated")
    assert await counters(session, volunteer) == (0, 0)
    assert await balance(client, await as_user(login, VOLUNTEER)) == 0


async def test_staff_cannot_approve_their_own_attendance(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    _, _, attendance_id = await in_review(client, session, login, t0, openid=STAFF)
    staff = await as_user(login, STAFF)
    assert_problem(
        await client.post(f"/v1/staff/attendance/{attendance_id}/approve", json={}, headers=staff),
        403,
        "attendance.own_attendance",
    )


async def test_review_list_pages_with_a_cursor(
    client: httpx.AsyncClient, session: AsyncSession, login: Login
) -> None:
    t0 = freeze()
    ids = []
    for openid in (VOLUNTEER, "vol-li", "vol-wang"):
        ids.append((await in_review(client, session, login, t0, openid=openid))[2])
    staff = await as_user(login, STAFF)
    first = await client.get("/v1/staff/attendance?limit=2", headers=staff)
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    assert cursor
    second = await client.get(f"/v1/staff/attendance?limit=2&cursor={cursor}", headers=staff)
    seen = [item["id"] for item in first.json()["items"] + second.json()["items"]]
    assert seen == list(reversed(ids))
    assert second.json()["next_cursor"] is None
