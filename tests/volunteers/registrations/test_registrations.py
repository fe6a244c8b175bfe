"""The volunteer registry over HTTP: sign-up (phone first, idempotent), review by the home
community's staff with a volunteer number, teams, the volunteer's profile and records, the
organiser's certified export, and the monthly leaderboard; each also tried as an attacker."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.core.clock import clock, now
from backend.wechat.emulator import EmulatorServer
from points.ledger import service as ledger_service
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.volunteers import (
    ELSEWHERE,
    GANGDING,
    make_activity,
    make_enrolment,
    make_volunteer,
    set_earning_rule,
    user_id_of,
)
from volunteers.models import (
    Activity,
    ActivityType,
    Attendance,
    AttendanceState,
    Volunteer,
    VolunteerState,
)

SHIPAI = "gz.tianhe.shipai"
SHIPAIDONG = "gz.tianhe.shipai.shipaidong"
SIGN_UP = {
    "real_name": "  林晓峰 ",
    "skills": ["patrol", "first_aid", "patrol"],
    "availability": {"weekday_evening": True, "weekend": True, "note": "周三晚上值班"},
    "community": GANGDING,
}


# --- factories -------------------------------------------------------------------------------


async def with_phone(
    client: httpx.AsyncClient, login: Login, emulator: EmulatorServer, openid: str, phone: str
) -> dict[str, str]:
    """Log in and bind a phone the way the mini-program does (getPhoneNumber's code)."""
    headers = bearer(await login(openid))
    code = await emulator.phone_code(openid, phone)
    bound = await client.post("/v1/me/phone", json={"code": code}, headers=headers)
    assert bound.status_code == 200, bound.text
    return headers


async def serve(
    session: AsyncSession,
    volunteer: Volunteer,
    *,
    minutes: int,
    verified_at: datetime | None = None,
    community: str = GANGDING,
    title: str = "治安巡逻",
    type: ActivityType = ActivityType.public_security_patrol,
    state: AttendanceState = AttendanceState.verified,
) -> Attendance:
    """A finished activity the volunteer attended; when verified, the minutes are credited
    and the points awarded through the ledger, as verification does."""
    verified_at = verified_at or now()
    starts = verified_at - timedelta(minutes=minutes + 5)
    staff = await user_id_of(session, "demo-community-staff")
    activity = await make_activity(
        session,
        created_by=staff,
        community=community,
        type=type,
        title=title,
        starts_at=starts,
        hours=minutes / 60,
    )
    enrolment = await make_enrolment(session, activity, volunteer)
    attendance = Attendance(
        activity_id=activity.id,
        volunteer_id=volunteer.id,
        enrolment_id=enrolment.id,
        region_path=activity.region_path,
        state=state,
        checked_in_at=starts,
        check_in_lat=activity.lat,
        check_in_lng=activity.lng,
        check_in_accuracy_m=10,
        checked_out_at=starts + timedelta(minutes=minutes),
        check_out_lat=activity.lat,
        check_out_lng=activity.lng,
        check_out_accuracy_m=10,
    )
    session.add(attendance)
    await session.flush()
    if state is AttendanceState.verified:
        award = await ledger_service.award_for_activity(
            session,
            member_id=volunteer.user_id,
            activity_type=type.value,
            source_ref=f"attendance:{attendance.id}",
            idempotency_key=f"attendance:{attendance.id}",
        )
        attendance.minutes = minutes
        attendance.points = award.points
        attendance.points_tx_id = award.result.transaction_id
        attendance.verified_at = verified_at
        await session.execute(
            update(Volunteer)
            .where(col(Volunteer.id) == volunteer.id)
            .values(
                service_minutes=col(Volunteer.service_minutes) + minutes,
                activities_attended=col(Volunteer.activities_attended) + 1,
            )
        )
        await session.flush()
    return attendance


def records_csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


# --- sign-up ---------------------------------------------------------------------------------


async def test_sign_up_needs_a_bound_phone_and_a_retry_is_the_same_registration(
    client: httpx.AsyncClient, demo: None, login: Login, emulator: EmulatorServer
) -> None:
    assert_problem(await client.post("/v1/volunteers", json=SIGN_UP), 401, "auth.unauthenticated")
    no_phone = bearer(await login("vol-signup"))
    refused = await client.post("/v1/volunteers", json=SIGN_UP, headers=no_phone)
    body = assert_problem(refused, 403, "volunteer.phone_required")
    assert "手机号" in body["detail"]
    english = await client.post(
        "/v1/volunteers", json=SIGN_UP, headers={**no_phone, "Accept-Language": "en"}
    )
    assert "phone" in english.json()["detail"]
    assert_problem(
        await client.get("/v1/volunteers/me", headers=no_phone), 404, "volunteer.not_signed_up"
    )

    headers = await with_phone(client, login, emulator, "vol-signup", "13800135678")
    first = await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)
    assert first.status_code == 201, first.text
    registration = first.json()
    assert registration["state"] == "pending" and registration["number"] is None
    assert registration["real_name"] == "林晓峰"  # trimmed
    assert registration["skills"] == ["patrol", "first_aid"]  # each once
    assert registration["availability"] == {
        "weekday_daytime": False,
        "weekday_evening": True,
        "weekend": True,
        "note": "周三晚上值班",
    }
    assert registration["community"] == {
        "code": GANGDING,
        "name": "岗顶社区",
        "name_en": "Gangding Community",
    }

    again = await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == registration["id"]
    assert again.json()["updated_at"] is None  # nothing changed
    changed = await client.post(
        "/v1/volunteers",
        json={**SIGN_UP, "skills": ["legal"], "community": SHIPAIDONG},
        headers=headers,
    )
    assert changed.status_code == 200 and changed.json()["id"] == registration["id"]
    me = await client.get("/v1/volunteers/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["skills"] == ["legal"] and me.json()["community"]["code"] == SHIPAIDONG
    assert me.json()["state"] == "pending"


async def test_sign_up_refuses_what_is_not_a_community_and_malformed_answers(
    client: httpx.AsyncClient, demo: None, login: Login, emulator: EmulatorServer
) -> None:
    headers = await with_phone(client, login, emulator, "vol-bad", "13800001111")
    for code in (SHIPAI, "gz.tianhe.shipai.gangding.g01", "gz.nowhere"):
        refused = await client.post(
            "/v1/volunteers", json={**SIGN_UP, "community": code}, headers=headers
        )
        body = assert_problem(refused, 422, "volunteer.community_invalid")
        assert body["community"] == code
    for bad in (
        {**SIGN_UP, "skills": ["juggling"]},
        {**SIGN_UP, "skills": ["patrol"] * 11},
        {**SIGN_UP, "real_name": " 林 "[1:2]},
        {**SIGN_UP, "real_name": "x" * 33},
        {**SIGN_UP, "availability": {"weekend": True, "always": True}},
        {**SIGN_UP, "availability": {"note": "n" * 101}},
        {**SIGN_UP, "community": "GZ Tianhe"},
    ):
        assert_problem(
            await client.post("/v1/volunteers", json=bad, headers=headers), 422, "request.invalid"
        )
    # Nothing was written by any refusal.
    assert_problem(
        await client.get("/v1/volunteers/me", headers=headers), 404, "volunteer.not_signed_up"
    )


# --- review ----------------------------------------------------------------------------------


async def test_gangding_staff_approve_and_a_number_is_issued_in_china_time(
    client: httpx.AsyncClient, demo: None, login: Login, emulator: EmulatorServer
) -> None:
    # Phones bound first: WeChat's access token (cached for every test) is fetched on real
    # time. Then New Year's Eve, 17:00 UTC, which is already 1 January in Shanghai.
    await with_phone(client, login, emulator, "vol-approve", "13912345678")
    await with_phone(client, login, emulator, "vol-approve-2", "13912340000")
    clock.freeze(datetime(2026, 12, 31, 17, 0, tzinfo=UTC))
    headers = bearer(await login("vol-approve"))
    signed = await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)
    volunteer_id = signed.json()["id"]
    staff = bearer(await login("demo-community-staff"))

    pending = await client.get("/v1/staff/volunteers?state=pending", headers=staff)
    assert pending.status_code == 200
    [listed] = [v for v in pending.json()["items"] if v["id"] == volunteer_id]
    assert listed["phone"] == "139****5678" and "13912345678" not in pending.text
    assert listed["state"] == "pending" and listed["real_name"] == "林晓峰"
    detail = await client.get(f"/v1/staff/volunteers/{volunteer_id}", headers=staff)
    assert detail.status_code == 200 and "13912345678" not in detail.text

    approved = await client.post(f"/v1/staff/volunteers/{volunteer_id}/approve", headers=staff)
    assert approved.status_code == 200, approved.text
    number = approved.json()["number"]
    assert re.fullmatch(r"V2027-\d{7}", number), number
    assert approved.json()["state"] == "approved"
    again = await client.post(f"/v1/staff/volunteers/{volunteer_id}/approve", headers=staff)
    assert again.status_code == 200 and again.json()["number"] == number

    me = (await client.get("/v1/volunteers/me", headers=headers)).json()
    assert (me["state"], me["number"]) == ("approved", number)
    assert_problem(
        await client.post("/v1/volunteers", json=SIGN_UP, headers=headers),
        409,
        "volunteer.already_approved",
    )
    still_pending = await client.get("/v1/staff/volunteers?state=pending", headers=staff)
    assert volunteer_id not in {v["id"] for v in still_pending.json()["items"]}
    approved_list = await client.get(
        f"/v1/staff/volunteers?state=approved&community={GANGDING}", headers=staff
    )
    assert volunteer_id in {v["id"] for v in approved_list.json()["items"]}
    # An admin above the community may approve too; another registration, another number.
    other = bearer(await login("vol-approve-2"))
    second = (await client.post("/v1/volunteers", json=SIGN_UP, headers=other)).json()
    district = bearer(await login("demo-district-admin"))
    by_admin = await client.post(f"/v1/staff/volunteers/{second['id']}/approve", headers=district)
    assert by_admin.status_code == 200 and by_admin.json()["number"] not in (None, number)


async def test_a_rejection_has_a_reason_and_the_volunteer_may_apply_again(
    client: httpx.AsyncClient, demo: None, login: Login, emulator: EmulatorServer
) -> None:
    headers = await with_phone(client, login, emulator, "vol-reject", "13700007777")
    volunteer_id = (await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)).json()["id"]
    staff = bearer(await login("demo-community-staff"))
    reject = f"/v1/staff/volunteers/{volunteer_id}/reject"
    assert_problem(await client.post(reject, json={}, headers=staff), 422, "request.invalid")
    assert_problem(
        await client.post(reject, json={"reason": "   "}, headers=staff), 422, "request.invalid"
    )
    rejected = await client.post(reject, json={"reason": "请填写身份证上的姓名"}, headers=staff)
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    me = (await client.get("/v1/volunteers/me", headers=headers)).json()
    assert (me["state"], me["review_reason"]) == ("rejected", "请填写身份证上的姓名")

    reapplied = await client.post(
        "/v1/volunteers", json={**SIGN_UP, "real_name": "林晓峰"}, headers=headers
    )
    assert reapplied.status_code == 200 and reapplied.json()["id"] == volunteer_id
    assert (reapplied.json()["state"], reapplied.json()["review_reason"]) == ("pending", None)
    assert_problem(
        await client.post(
            f"/v1/staff/volunteers/{volunteer_id}/suspend", json={"reason": "x"}, headers=staff
        ),
        409,
        "volunteer.not_suspendable",
    )
    await client.post(f"/v1/staff/volunteers/{volunteer_id}/approve", headers=staff)
    closed = assert_problem(
        await client.post(reject, json={"reason": "晚了"}, headers=staff),
        409,
        "volunteer.review_closed",
    )
    assert closed["state"] == "approved"

    suspended = await client.post(
        f"/v1/staff/volunteers/{volunteer_id}/suspend",
        json={"reason": "多次无故缺席"},
        headers=staff,
    )
    assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
    number = suspended.json()["number"]
    assert_problem(
        await client.post("/v1/volunteers", json=SIGN_UP, headers=headers),
        409,
        "volunteer.suspended",
    )
    reinstated = await client.post(f"/v1/staff/volunteers/{volunteer_id}/approve", headers=staff)
    assert (reinstated.json()["state"], reinstated.json()["number"]) == ("approved", number)


async def test_a_grid_worker_reads_volunteers_but_cannot_decide(
    client: httpx.AsyncClient, demo: None, login: Login, emulator: EmulatorServer
) -> None:
    headers = await with_phone(client, login, emulator, "vol-grid", "13600006666")
    volunteer_id = (await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)).json()["id"]
    grid = bearer(await login("demo-grid-worker"))
    listed = await client.get("/v1/staff/volunteers?state=pending", headers=grid)
    assert volunteer_id in {v["id"] for v in listed.json()["items"]}
    assert (
        await client.get(f"/v1/staff/volunteers/{volunteer_id}", headers=grid)
    ).status_code == 200
    assert_problem(
        await client.post(f"/v1/staff/volunteers/{volunteer_id}/approve", headers=grid),
        403,
        "volunteer.review_not_allowed",
    )
    assert_problem(
        await client.post(
            f"/v1/staff/volunteers/{volunteer_id}/reject", json={"reason": "x"}, headers=grid
        ),
        403,
        "volunteer.review_not_allowed",
    )
    assert_problem(
        await client.post(
            "/v1/staff/teams", json={"community": GANGDING, "name": "网格队"}, headers=grid
        ),
        403,
        "team.manage_not_allowed",
    )
    me = (await client.get("/v1/volunteers/me", headers=headers)).json()
    assert me["state"] == "pending"


async def test_staff_elsewhere_and_volunteers_reach_nothing_here(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    emulator: EmulatorServer,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    headers = await with_phone(client, login, emulator, "vol-attacked", "13500005555")
    volunteer_id = (await client.post("/v1/volunteers", json=SIGN_UP, headers=headers)).json()["id"]
    elsewhere = await staff_elsewhere()
    volunteer = await make_volunteer(session, "vol-attacker")
    attacker = bearer(await login("vol-attacker"))
    await session.commit()

    listed = await client.get("/v1/staff/volunteers?state=pending", headers=elsewhere)
    assert listed.status_code == 200 and listed.json()["items"] == []
    teams = await client.get("/v1/staff/teams", headers=elsewhere)
    assert teams.status_code == 200 and teams.json()["items"] == []
    for caller in (elsewhere, attacker):
        assert_problem(
            await client.get(f"/v1/staff/volunteers/{volunteer_id}", headers=caller),
            404,
            "volunteer.not_found",
        )
        for action, body in (
            ("approve", None),
            ("reject", {"reason": "x"}),
            ("suspend", {"reason": "x"}),
        ):
            assert_problem(
                await client.post(
                    f"/v1/staff/volunteers/{volunteer_id}/{action}", json=body, headers=caller
                ),
                404,
                "volunteer.not_found",
            )
    for path in ("/v1/staff/volunteers", "/v1/staff/teams"):
        assert_problem(await client.get(path, headers=attacker), 403, "auth.forbidden")
    assert_problem(
        await client.get(
            f"/v1/staff/volunteers/{volunteer.id}/service-record.csv", headers=attacker
        ),
        403,
        "auth.forbidden",
    )
    assert_problem(
        await client.post(
            "/v1/staff/teams", json={"community": GANGDING, "name": "冒名队"}, headers=attacker
        ),
        403,
        "team.manage_not_allowed",
    )
    # Still pending, untouched by any of it.
    staff = bearer(await login("demo-community-staff"))
    detail = await client.get(f"/v1/staff/volunteers/{volunteer_id}", headers=staff)
    assert detail.json()["state"] == "pending" and detail.json()["reviewed_at"] is None


# --- teams -----------------------------------------------------------------------------------


async def test_teams_have_members_and_a_leader_from_among_them(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    leader = await make_volunteer(session, "vol-team-a", real_name="张伟")
    member = await make_volunteer(session, "vol-team-b", real_name="李娜")
    far = await make_volunteer(session, "vol-team-far", community=ELSEWHERE)
    pending = await make_volunteer(session, "vol-team-p", state=VolunteerState.pending)
    await session.commit()
    staff = bearer(await login("demo-community-staff"))
    body = {
        "community": GANGDING,
        "name": "岗顶夜巡二队",
        "description": "每周六晚巡逻",
        "leader_id": str(leader.id),
    }
    created = await client.post("/v1/staff/teams", json=body, headers=staff)
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["leader"]["volunteer_id"] == str(leader.id) and team["members_count"] == 1
    assert [(m["real_name"], m["leader"]) for m in team["members"]] == [("张伟", True)]
    retry = await client.post("/v1/staff/teams", json=body, headers=staff)
    assert retry.status_code == 200 and retry.json()["id"] == team["id"]
    taken = await client.post(
        "/v1/staff/teams", json={**body, "description": "另一支队伍"}, headers=staff
    )
    assert_problem(taken, 409, "team.name_taken")
    # The same name in another community is another team.
    city = bearer(await login("demo-city-admin"))
    other = await client.post(
        "/v1/staff/teams", json={"community": SHIPAIDONG, "name": body["name"]}, headers=city
    )
    assert other.status_code == 201 and other.json()["id"] != team["id"]
    assert_problem(
        await client.post(
            "/v1/staff/teams", json={"community": ELSEWHERE, "name": "越界队"}, headers=staff
        ),
        403,
        "team.manage_not_allowed",
    )
    assert_problem(
        await client.post(
            "/v1/staff/teams", json={"community": SHIPAI, "name": "街道队"}, headers=staff
        ),
        422,
        "team.community_invalid",
    )

    members = f"/v1/staff/teams/{team['id']}/members"
    added = await client.post(members, json={"volunteer_id": str(member.id)}, headers=staff)
    assert added.status_code == 200 and added.json()["members_count"] == 2
    twice = await client.post(members, json={"volunteer_id": str(member.id)}, headers=staff)
    assert twice.json()["members_count"] == 2
    assert_problem(
        await client.post(members, json={"volunteer_id": str(far.id)}, headers=staff),
        404,
        "volunteer.not_found",
    )
    assert_problem(
        await client.post(members, json={"volunteer_id": str(pending.id)}, headers=staff),
        409,
        "team.volunteer_not_approved",
    )

    lead = f"/v1/staff/teams/{team['id']}/leader"
    assert_problem(
        await client.put(lead, json={"volunteer_id": str(pending.id)}, headers=staff),
        409,
        "team.leader_not_member",
    )
    changed = await client.put(lead, json={"volunteer_id": str(member.id)}, headers=staff)
    assert changed.status_code == 200
    assert [(m["real_name"], m["leader"]) for m in changed.json()["members"]] == [
        ("李娜", True),
        ("张伟", False),
    ]
    mine = bearer(await login("vol-team-b"))
    profile = (await client.get("/v1/volunteers/me", headers=mine)).json()
    assert profile["teams"] == [{"id": team["id"], "name": "岗顶夜巡二队", "leader": True}]

    removed = await client.delete(f"{members}/{member.id}", headers=staff)
    assert removed.status_code == 200
    assert removed.json()["leader"] is None and removed.json()["members_count"] == 1
    again = await client.delete(f"{members}/{member.id}", headers=staff)
    assert again.status_code == 200 and again.json()["members_count"] == 1
    assert (await client.get("/v1/volunteers/me", headers=mine)).json()["teams"] == []

    listed = await client.get(f"/v1/staff/teams?community={GANGDING}", headers=staff)
    [row] = [t for t in listed.json()["items"] if t["id"] == team["id"]]
    assert row["members_count"] == 1 and row["leader"] is None
    grid = bearer(await login("demo-grid-worker"))
    assert (await client.get(f"/v1/staff/teams/{team['id']}", headers=grid)).status_code == 200
    assert_problem(
        await client.post(members, json={"volunteer_id": str(member.id)}, headers=grid),
        403,
        "team.manage_not_allowed",
    )
    elsewhere = await staff_elsewhere()
    assert_problem(
        await client.get(f"/v1/staff/teams/{team['id']}", headers=elsewhere), 404, "team.not_found"
    )
    assert_problem(
        await client.delete(f"{members}/{leader.id}", headers=elsewhere), 404, "team.not_found"
    )
    kept = await client.get(f"/v1/staff/teams/{team['id']}", headers=staff)
    assert [m["real_name"] for m in kept.json()["members"]] == ["张伟"]


# --- profile and records ---------------------------------------------------------------------


async def test_the_profile_shows_hours_activities_and_points(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    await set_earning_rule(session, ActivityType.public_security_patrol.value, 10)
    await set_earning_rule(session, ActivityType.rental_inspection.value, 15)
    volunteer = await make_volunteer(session, "vol-hours")
    await serve(session, volunteer, minutes=95)
    await serve(session, volunteer, minutes=30, type=ActivityType.rental_inspection)
    await serve(session, volunteer, minutes=60, state=AttendanceState.review)  # not yet
    await session.commit()
    me = await client.get("/v1/volunteers/me", headers=bearer(await login("vol-hours")))
    assert me.status_code == 200
    profile = me.json()
    assert (profile["service_minutes"], profile["service_hours"]) == (125, 2.1)
    assert profile["activities_attended"] == 2
    assert profile["points_available"] == 25
    assert profile["number"] == volunteer.number and profile["state"] == "approved"


async def test_my_records_are_verified_attendance_newest_first_page_by_page(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    await set_earning_rule(session, ActivityType.public_security_patrol.value, 10)
    volunteer = await make_volunteer(session, "vol-records")
    first = await serve(session, volunteer, minutes=60, title="第一次巡逻")
    await serve(session, volunteer, minutes=45, state=AttendanceState.rejected)
    second = await serve(session, volunteer, minutes=90, title="第二次巡逻")
    third = await serve(session, volunteer, minutes=30, title="府前巡逻", community=ELSEWHERE)
    await session.commit()
    headers = bearer(await login("vol-records"))
    page = await client.get("/v1/volunteers/me/records?limit=2", headers=headers)
    assert page.status_code == 200
    items = page.json()["items"]
    assert [r["id"] for r in items] == [str(third.id), str(second.id)]
    assert items[0]["activity"]["organiser"]["code"] == ELSEWHERE
    assert (items[1]["minutes"], items[1]["points"]) == (90, 10)
    assert items[1]["activity"]["title"] == "第二次巡逻"
    cursor = page.json()["next_cursor"]
    assert cursor
    rest = await client.get(f"/v1/volunteers/me/records?limit=2&cursor={cursor}", headers=headers)
    assert [r["id"] for r in rest.json()["items"]] == [str(first.id)]
    assert rest.json()["next_cursor"] is None
    assert_problem(
        await client.get("/v1/volunteers/me/records?cursor=%%%", headers=headers),
        400,
        "request.cursor_invalid",
    )
    stranger = bearer(await login("vol-no-records"))
    assert_problem(
        await client.get("/v1/volunteers/me/records", headers=stranger),
        404,
        "volunteer.not_signed_up",
    )


async def test_the_export_is_the_record_the_organiser_certifies(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    clock.freeze(datetime(2026, 11, 21, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    volunteer = await make_volunteer(session, "vol-export", real_name="陈明")
    await serve(session, volunteer, minutes=120, title="岗顶社区夜间治安巡逻")
    await serve(session, volunteer, minutes=30, title='=HYPERLINK("http://x")')
    await serve(session, volunteer, minutes=60, title="府前社区巡逻", community=ELSEWHERE)
    await serve(session, volunteer, minutes=45, title="待审核巡逻", state=AttendanceState.review)
    only_yuexiu = await make_volunteer(session, "vol-export-2")
    await serve(session, only_yuexiu, minutes=60, title="府前社区巡逻", community=ELSEWHERE)
    await session.commit()

    staff = bearer(await login("demo-community-staff"))
    response = await client.get(
        f"/v1/staff/volunteers/{volunteer.id}/service-record.csv", headers=staff
    )
    rows = records_csv(response)
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="service-record-{volunteer.number}.csv"'
    assert ["志愿者编号", volunteer.number] in rows and ["姓名", "陈明"] in rows
    text = response.content.decode("utf-8-sig")
    assert "府前社区巡逻" not in text and "待审核巡逻" not in text
    activities = [row for row in rows if len(row) == 7 and row[2] == "岗顶社区"]
    assert [(row[0], row[1], row[3], row[6]) for row in activities] == [
        ("岗顶社区夜间治安巡逻", "治安巡逻", "2026-11-21", "120"),
        ('\'=HYPERLINK("http://x")', "治安巡逻", "2026-11-21", "30"),
    ]
    [total] = [row for row in rows if row and row[0] == "合计"]
    assert total[-1] == "150" and "2.5 小时" in total
    [closing] = [row for row in rows if row and row[0] == "证明单位"]
    assert closing[1] == "岗顶社区" and closing[3] == "2026-11-21 22:00"

    # Yuexiu certifies only what Yuexiu organised, though the volunteer lives in Gangding.
    elsewhere = await staff_elsewhere()
    theirs = await client.get(
        f"/v1/staff/volunteers/{volunteer.id}/service-record.csv", headers=elsewhere
    )
    their_text = theirs.content.decode("utf-8-sig")
    assert "府前社区巡逻" in their_text and "岗顶社区夜间治安巡逻" not in their_text
    # Gangding has nothing to certify for a volunteer who only served Yuexiu.
    assert_problem(
        await client.get(
            f"/v1/staff/volunteers/{only_yuexiu.id}/service-record.csv", headers=staff
        ),
        404,
        "volunteer.no_service_record",
    )
    grid = bearer(await login("demo-grid-worker"))
    assert_problem(
        await client.get(f"/v1/staff/volunteers/{volunteer.id}/service-record.csv", headers=grid),
        403,
        "auth.forbidden",
    )


# --- the leaderboard -------------------------------------------------------------------------


async def test_the_leaderboard_ranks_a_communitys_month_with_masked_names(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    clock.freeze(datetime(2026, 11, 20, 4, 0, tzinfo=UTC))
    november = datetime(2026, 11, 15, 4, 0, tzinfo=UTC)
    top = await make_volunteer(session, "vol-lb-top", real_name="王大力")
    me = await make_volunteer(session, "vol-lb-me", real_name="陈明")
    zhao = await make_volunteer(session, "vol-lb-zhao", real_name="赵敏")
    october = await make_volunteer(session, "vol-lb-oct", real_name="孙悟")
    yuexiu = await make_volunteer(session, "vol-lb-yx", real_name="周全")
    await serve(session, top, minutes=200, verified_at=november)
    await serve(session, me, minutes=120, verified_at=november)
    await serve(session, me, minutes=60, verified_at=november)
    await serve(session, zhao, minutes=180, verified_at=november)
    # 00:30 on 1 November in Shanghai is still 31 October in UTC: it counts for November.
    await serve(session, zhao, minutes=5, verified_at=datetime(2026, 10, 31, 16, 30, tzinfo=UTC))
    # 23:30 on 31 October in Shanghai: October.
    await serve(
        session, october, minutes=300, verified_at=datetime(2026, 10, 31, 15, 30, tzinfo=UTC)
    )
    await serve(session, yuexiu, minutes=500, verified_at=november, community=ELSEWHERE)
    await session.commit()

    headers = bearer(await login("vol-lb-me"))
    board = await client.get(
        f"/v1/volunteers/leaderboard?community={GANGDING}&month=2026-11", headers=headers
    )
    assert board.status_code == 200, board.text
    body = board.json()
    assert [(e["name"], e["minutes"]) for e in body["entries"]] == [
        ("王*", 200),
        ("赵*", 185),
        ("陈*", 180),
    ]
    assert [e["rank"] for e in body["entries"]] == [1, 2, 3]
    assert body["entries"][0]["number"] == top.number and body["entries"][0]["hours"] == 3.3
    assert "王大力" not in board.text
    assert body["me"] == {"rank": 3, "minutes": 180, "hours": 3.0, "activities": 2}
    assert body["community"]["code"] == GANGDING and body["month"] == "2026-11"

    defaults = await client.get("/v1/volunteers/leaderboard", headers=headers)
    assert defaults.status_code == 200 and defaults.json() == body
    earlier = (await client.get("/v1/volunteers/leaderboard?month=2026-10", headers=headers)).json()
    assert [(e["name"], e["minutes"]) for e in earlier["entries"]] == [("孙*", 300)]
    assert earlier["me"] is None

    for month in ("2026-13", "2026-1", "26-11", "2026-00"):
        assert_problem(
            await client.get(f"/v1/volunteers/leaderboard?month={month}", headers=headers),
            422,
            "request.invalid",
        )
    for community in ("gz.tianhe.nowhere", SHIPAI):
        assert_problem(
            await client.get(f"/v1/volunteers/leaderboard?community={community}", headers=headers),
            404,
            "volunteer.community_not_found",
        )
    resident = bearer(await login("vol-lb-nobody"))
    assert_problem(
        await client.get("/v1/volunteers/leaderboard", headers=resident),
        422,
        "volunteer.leaderboard_community_required",
    )
    anyone = await client.get(f"/v1/volunteers/leaderboard?community={GANGDING}", headers=resident)
    assert anyone.status_code == 200 and anyone.json()["me"] is None


async def test_equal_minutes_share_a_rank(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    clock.freeze(datetime(2026, 11, 20, 4, 0, tzinfo=UTC))
    first = await make_volunteer(session, "vol-tie-1", real_name="甲一")
    second = await make_volunteer(session, "vol-tie-2", real_name="乙二")
    third = await make_volunteer(session, "vol-tie-3", real_name="丙三")
    for volunteer, minutes in ((first, 90), (second, 90), (third, 30)):
        await serve(session, volunteer, minutes=minutes)
    await session.commit()
    board = await client.get(
        f"/v1/volunteers/leaderboard?community={GANGDING}",
        headers=bearer(await login("vol-tie-3")),
    )
    assert [e["rank"] for e in board.json()["entries"]] == [1, 1, 3]
    assert board.json()["me"]["rank"] == 3


async def test_the_demo_volunteer_leads_the_gangding_patrol_team(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    from backend.demo.loading import load_demo_data

    await load_demo_data(session)  # loading again adds nothing
    await session.commit()
    me = await client.get("/v1/volunteers/me", headers=bearer(await login("demo-resident")))
    assert me.status_code == 200
    profile = me.json()
    assert profile["state"] == "approved" and re.fullmatch(r"V\d{4}-\d{7}", profile["number"])
    assert [(t["name"], t["leader"]) for t in profile["teams"]] == [("岗顶平安巡逻队", True)]
    staff = bearer(await login("demo-community-staff"))
    teams = (await client.get("/v1/staff/teams", headers=staff)).json()["items"]
    assert [t["name"] for t in teams].count("岗顶平安巡逻队") == 1
    found = await session.execute(select(Activity).where(col(Activity.region_path) == GANGDING))
    published = found.scalars().all()
    assert {a.type for a in published} == {"public_security_patrol", "rental_inspection"}
    assert all(a.state == "published" and a.fence_radius_m == 300 for a in published)
    assert all(a.starts_at > now() - timedelta(hours=1) for a in published)
