"""Inspections: the checklists, filing a house (failed items become reports), the lists."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.cases.models import Case, CaseKind, Category
from backend.core.clock import now
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.storage import JPEG
from tests.factories.volunteers import (
    GANGDING,
    centre_of,
    make_activity,
    make_enrolment,
    make_volunteer,
    user_id_of,
)
from volunteers.models import (
    Activity,
    ActivityState,
    ActivityType,
    Attendance,
    AttendanceState,
    Inspection,
    InspectionFinding,
    Volunteer,
    VolunteerState,
)

pytestmark = pytest.mark.usefixtures("demo")

ADDRESS = "岗顶西街 12 号 302 房"
RENTAL_ITEMS = [
    "fire_extinguisher",
    "escape_route",
    "electrical_wiring",
    "gas_safety",
    "smoke_alarm",
    "tenant_registration",
    "no_overcrowding",
]
FIRE_ITEMS = [
    "fire_extinguisher",
    "escape_route",
    "fire_doors",
    "electrical_wiring",
    "ebike_charging",
    "gas_safety",
]


# --- factories -------------------------------------------------------------------------


async def check_in(
    session: AsyncSession,
    activity: Activity,
    volunteer: Volunteer,
    *,
    state: AttendanceState = AttendanceState.checked_in,
) -> Attendance:
    """An enrolment and an attendance in `state` (check-in itself is tested elsewhere)."""
    enrolment = await make_enrolment(session, activity, volunteer)
    out = state is not AttendanceState.checked_in
    attendance = Attendance(
        activity_id=activity.id,
        volunteer_id=volunteer.id,
        enrolment_id=enrolment.id,
        region_path=activity.region_path,
        state=state,
        checked_in_at=now(),
        check_in_lat=activity.lat,
        check_in_lng=activity.lng,
        check_in_accuracy_m=12.0,
        checked_out_at=now() if out else None,
        check_out_lat=activity.lat if out else None,
        check_out_lng=activity.lng if out else None,
        check_out_accuracy_m=12.0 if out else None,
    )
    session.add(attendance)
    await session.flush()
    return attendance


@dataclass
class Site:
    """An inspection activity in Gangding and a volunteer who may be checked in there."""

    activity: Activity
    volunteer: Volunteer
    headers: dict[str, str]
    house: dict[str, Any]  # a point in Gangding's grid g05, WGS-84

    @property
    def url(self) -> str:
        return f"/v1/activities/{self.activity.id}/inspections"


async def make_site(
    session: AsyncSession,
    login: Login,
    *,
    type: ActivityType = ActivityType.rental_inspection,
    openid: str | None = None,
    attendance: AttendanceState | None = AttendanceState.checked_in,
    state: ActivityState = ActivityState.published,
) -> Site:
    # A volunteer of its own: the demo residents stay free for other parts of a test.
    openid = openid or fresh_openid()
    staff = await user_id_of(session, "demo-community-staff")
    activity = await make_activity(
        session, created_by=staff, type=type, title="出租屋检查", state=state
    )
    volunteer = await make_volunteer(session, openid)
    if attendance is not None:
        await check_in(session, activity, volunteer, state=attendance)
    lat, lng = await centre_of(session, f"{GANGDING}.g05")
    await session.commit()
    return Site(
        activity, volunteer, bearer(await login(openid)), {"lat": lat, "lng": lng, "coord": "wgs84"}
    )


def fresh_openid() -> str:
    return f"insp-{secrets.token_hex(6)}"


def body(site: Site, *results: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"address": ADDRESS, "location": site.house, "results": list(results), **changes}


def failed(item: str, **extra: Any) -> dict[str, Any]:
    return {"item": item, "ok": False, **extra}


def passed(item: str) -> dict[str, Any]:
    return {"item": item, "ok": True}


async def file(
    client: httpx.AsyncClient, site: Site, payload: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {**site.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post(site.url, json=payload, headers=headers)


async def count(session: AsyncSession, site: Site) -> tuple[int, int, int]:
    """(inspections, findings, cases) the site's volunteer has filed, as committed now."""
    inspections = await session.scalar(
        select(func.count())
        .select_from(Inspection)
        .where(col(Inspection.volunteer_id) == site.volunteer.id)
    )
    findings = await session.scalar(
        select(func.count())
        .select_from(InspectionFinding)
        .join(Inspection, col(Inspection.id) == col(InspectionFinding.inspection_id))
        .where(col(Inspection.volunteer_id) == site.volunteer.id)
    )
    cases = await session.scalar(
        select(func.count())
        .select_from(Case)
        .where(col(Case.submitted_by) == site.volunteer.user_id)
    )
    return int(inspections or 0), int(findings or 0), int(cases or 0)


async def uploaded_photo(
    client: httpx.AsyncClient, phone: httpx.AsyncClient, headers: dict[str, str]
) -> str:
    ticket = await client.post(
        "/v1/uploads",
        json={"purpose": "case_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    posted = await phone.post(
        form["url"], data=form["fields"], files={"file": ("tmp.jpg", JPEG, "image/jpeg")}
    )
    assert posted.status_code in (200, 201, 204), posted.text
    upload_id: str = form["id"]
    return upload_id


# --- the checklists --------------------------------------------------------------------


async def test_each_inspection_type_has_its_checklist_and_a_patrol_has_none(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    staff = await user_id_of(session, "demo-community-staff")
    rental = await make_activity(session, created_by=staff, type=ActivityType.rental_inspection)
    fire = await make_activity(session, created_by=staff, type=ActivityType.fire_safety_check)
    patrol = await make_activity(session, created_by=staff)
    draft = await make_activity(
        session, created_by=staff, type=ActivityType.fire_safety_check, state=ActivityState.draft
    )
    await session.commit()
    resident = bearer(await login("demo-resident"))

    async def checklist(activity_id: Any, headers: dict[str, str] = resident) -> httpx.Response:
        return await client.get(f"/v1/activities/{activity_id}/checklist", headers=headers)

    got = await checklist(rental.id)
    assert got.status_code == 200, got.text
    items = got.json()["items"]
    assert got.json()["type"] == "rental_inspection"
    assert [i["code"] for i in items] == RENTAL_ITEMS
    categories = {i["code"]: i["category"] for i in items}
    assert categories["tenant_registration"] == categories["no_overcrowding"] == "public_security"
    assert {categories[c] for c in RENTAL_ITEMS[:5]} == {"fire_hazard"}
    assert all(i["label"] and i["label_en"] for i in items)

    got = await checklist(fire.id)
    assert got.status_code == 200, got.text
    assert [i["code"] for i in got.json()["items"]] == FIRE_ITEMS
    assert {i["category"] for i in got.json()["items"]} == {"fire_hazard"}

    assert_problem(await checklist(patrol.id), 409, "inspection.not_an_inspection")
    assert_problem(await checklist(uuid.uuid4()), 404, "activity.not_found")
    # A draft is not there for volunteers; its hosts see it.
    assert_problem(await checklist(draft.id), 404, "activity.not_found")
    grid_worker = bearer(await login("demo-grid-worker"))
    assert (await checklist(draft.id, grid_worker)).status_code == 200
    assert_problem(
        await client.get(f"/v1/activities/{rental.id}/checklist"), 401, "auth.unauthenticated"
    )


# --- filing ----------------------------------------------------------------------------


async def test_failed_items_become_reports_of_the_volunteer_at_the_house(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, phone: httpx.AsyncClient
) -> None:
    site = await make_site(session, login)
    photo = await uploaded_photo(client, phone, site.headers)
    payload = body(
        site,
        failed("fire_extinguisher", note="灭火器已过期两年"),
        passed("escape_route"),
        failed("electrical_wiring", note="楼道飞线给电动车充电", upload_ids=[photo]),
        passed("smoke_alarm"),
        # Failed, but the volunteer chose to tell the landlord rather than report it.
        failed("tenant_registration", report=False),
        failed("no_overcrowding"),
    )
    filed = await file(client, site, payload)
    assert filed.status_code == 201, filed.text
    inspection = filed.json()
    assert inspection["address"] == ADDRESS
    assert inspection["location"]["lat"] == pytest.approx(site.house["lat"])
    results = {r["item"]: r for r in inspection["results"]}
    assert list(results) == [r["item"] for r in payload["results"]]
    assert results["fire_extinguisher"]["label"] == "灭火器配备且在有效期内"
    for item in ("escape_route", "smoke_alarm", "tenant_registration"):
        assert results[item]["finding"] is None
    assert results["tenant_registration"]["report"] is False
    reported = {item: results[item]["finding"] for item in results if results[item]["finding"]}
    assert set(reported) == {"fire_extinguisher", "electrical_wiring", "no_overcrowding"}
    assert all(
        f["number"].startswith("RPT-") and f["state"] == "submitted" for f in reported.values()
    )
    assert len({f["case_id"] for f in reported.values()}) == 3
    assert await count(session, site) == (1, 3, 3)

    # The volunteer follows each like any report of theirs: they are its reporter.
    case = await client.get(
        f"/v1/cases/{reported['fire_extinguisher']['case_id']}", headers=site.headers
    )
    assert case.status_code == 200, case.text
    seen = case.json()
    assert seen["number"] == reported["fire_extinguisher"]["number"]
    assert seen["channel"] == "inspection" and seen["kind"] == "report"
    assert seen["category"]["code"] == "fire_hazard"
    assert seen["reporter"]["id"] == str(site.volunteer.user_id)
    assert seen["description"].startswith("出租屋检查发现：灭火器缺失或过期。灭火器已过期两年")
    assert seen["description"].endswith(f"地址：{ADDRESS}")
    assert seen["address"] == ADDRESS and seen["grid"]["code"] == f"{GANGDING}.g05"
    assert seen["location"]["lat"] == pytest.approx(site.house["lat"])
    wiring = await client.get(
        f"/v1/cases/{reported['electrical_wiring']['case_id']}", headers=site.headers
    )
    assert [a["id"] for a in wiring.json()["attachments"]] == [photo]
    crowding = await client.get(
        f"/v1/cases/{reported['no_overcrowding']['case_id']}", headers=site.headers
    )
    assert crowding.json()["category"]["code"] == "public_security"
    mine = await client.get("/v1/me/cases", headers=site.headers)
    assert {c["id"] for c in mine.json()["items"]} == {f["case_id"] for f in reported.values()}

    # Gangding's grid worker finds them in the queue, marked as coming from an inspection.
    grid_worker = bearer(await login("demo-grid-worker"))
    queue = await client.get(
        "/v1/staff/cases", params={"region": f"{GANGDING}.g05", "limit": 100}, headers=grid_worker
    )
    assert queue.status_code == 200, queue.text
    listed = {item["id"]: item for item in queue.json()["items"]}
    for finding in reported.values():
        assert listed[finding["case_id"]]["channel"] == "inspection"
        assert listed[finding["case_id"]]["grid_code"] == f"{GANGDING}.g05"


async def test_a_house_that_passes_files_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login, type=ActivityType.fire_safety_check)
    filed = await file(client, site, body(site, *(passed(item) for item in FIRE_ITEMS)))
    assert filed.status_code == 201, filed.text
    assert all(r["finding"] is None and r["report"] is False for r in filed.json()["results"])
    assert await count(session, site) == (1, 0, 0)


async def test_a_retry_is_the_same_inspection_and_files_no_second_report(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login)
    payload = body(site, failed("gas_safety", note="软管老化"), failed("smoke_alarm"))
    first = await file(client, site, payload, key="house-302")
    assert first.status_code == 201, first.text
    assert await count(session, site) == (1, 2, 2)

    again = await file(client, site, payload, key="house-302")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    assert await count(session, site) == (1, 2, 2)

    # Even after check-out a retry gets its answer rather than a refusal.
    await session.execute(
        update(Attendance)
        .where(col(Attendance.volunteer_id) == site.volunteer.id)
        .values(state=AttendanceState.review.value, checked_out_at=now())
    )
    await session.commit()
    late = await file(client, site, payload, key="house-302")
    assert late.status_code == 200 and late.json()["id"] == first.json()["id"]

    changed = body(site, failed("gas_safety", note="软管老化"), passed("smoke_alarm"))
    conflict = await file(client, site, changed, key="house-302")
    assert_problem(conflict, 409, "inspection.idempotency_conflict")
    assert await count(session, site) == (1, 2, 2)

    no_key = await client.post(site.url, json=payload, headers=site.headers)
    assert_problem(no_key, 400, "request.idempotency_key_required")


async def test_only_while_checked_in(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    payload_items = (failed("fire_extinguisher"),)
    never = await make_site(session, login, attendance=None)
    refused = await file(client, never, body(never, *payload_items))
    body_ = assert_problem(refused, 409, "inspection.not_checked_in")
    assert "签到" in body_["detail"]

    for state in (AttendanceState.review, AttendanceState.verified, AttendanceState.rejected):
        site = await make_site(session, login, attendance=state)
        refused = await file(client, site, body(site, *payload_items))
        assert_problem(refused, 409, "inspection.checked_out")
        assert await count(session, site) == (0, 0, 0)
    assert await count(session, never) == (0, 0, 0)


async def test_who_may_file(client: httpx.AsyncClient, login: Login, session: AsyncSession) -> None:
    patrol = await make_site(session, login, type=ActivityType.public_security_patrol)
    refused = await file(client, patrol, body(patrol, failed("fire_extinguisher")))
    assert_problem(refused, 409, "inspection.not_an_inspection")

    cancelled = await make_site(session, login, state=ActivityState.cancelled)
    refused = await file(client, cancelled, body(cancelled, failed("fire_extinguisher")))
    assert_problem(refused, 409, "inspection.activity_not_open")

    site = await make_site(session, login)
    await session.execute(
        update(Volunteer)
        .where(col(Volunteer.id) == site.volunteer.id)
        .values(state=VolunteerState.suspended.value)
    )
    await session.commit()
    refused = await file(client, site, body(site, failed("fire_extinguisher")))
    assert_problem(refused, 403, "volunteer.not_approved")

    stranger = bearer(await login(fresh_openid()))  # never signed up as a volunteer
    refused = await client.post(
        site.url,
        json=body(site, failed("fire_extinguisher")),
        headers={**stranger, "Idempotency-Key": "k1"},
    )
    assert_problem(refused, 404, "volunteer.not_signed_up")
    missing = await client.post(
        f"/v1/activities/{uuid.uuid4()}/inspections",
        json=body(site, failed("fire_extinguisher")),
        headers={**site.headers, "Idempotency-Key": "k2"},
    )
    assert_problem(missing, 404, "activity.not_found")
    unauthenticated = await client.post(
        site.url, json=body(site, failed("fire_extinguisher")), headers={"Idempotency-Key": "k3"}
    )
    assert_problem(unauthenticated, 401, "auth.unauthenticated")


async def test_a_house_outside_the_service_area_writes_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login)
    beijing = {"lat": 39.9087, "lng": 116.3975, "coord": "gcj02"}
    refused = await file(
        client,
        site,
        body(site, failed("fire_extinguisher"), passed("gas_safety"), location=beijing),
    )
    assert_problem(refused, 422, "inspection.outside_service_area")
    assert await count(session, site) == (0, 0, 0)


async def test_answers_must_match_the_checklist(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login, type=ActivityType.fire_safety_check)
    # On the rental checklist, but not on a fire-safety check's.
    unknown = await file(client, site, body(site, passed("escape_route"), failed("smoke_alarm")))
    problem = assert_problem(unknown, 422, "inspection.item_unknown")
    assert problem["items"] == ["smoke_alarm"]

    for payload in (
        body(site),  # no item at all
        body(site, passed("gas_safety"), failed("gas_safety")),  # one item twice
        body(site, {"item": "gas_safety", "ok": True, "report": True}),  # nothing to report
        body(site, {"item": "gas_safety", "ok": True, "upload_ids": [str(uuid.uuid4())]}),
        body(site, passed("gas_safety"), address="   "),
        body(site, {"item": "Gas Safety", "ok": False}),
    ):
        assert_problem(await file(client, site, payload), 422, "request.invalid")
    assert await count(session, site) == (0, 0, 0)


async def test_a_category_no_longer_in_use_refuses_the_inspection_and_writes_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login)
    await session.execute(
        update(Category)
        .where(col(Category.kind) == CaseKind.report, col(Category.code) == "public_security")
        .values(active=False)
    )
    await session.commit()
    refused = await file(
        client, site, body(site, failed("fire_extinguisher"), failed("no_overcrowding"))
    )
    problem = assert_problem(refused, 409, "inspection.category_unavailable")
    assert problem["item"] == "no_overcrowding" and problem["category"] == "public_security"
    assert "无群租" in problem["detail"]
    assert await count(session, site) == (0, 0, 0)

    # Items of categories in use, or a failure not reported, still go through.
    filed = await file(
        client,
        site,
        body(site, failed("fire_extinguisher"), failed("no_overcrowding", report=False)),
    )
    assert filed.status_code == 201, filed.text
    assert await count(session, site) == (1, 1, 1)


async def test_a_photo_that_cannot_be_attached_writes_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login)
    # The first report is opened before the second's photo is found missing: all goes back.
    refused = await file(
        client,
        site,
        body(
            site,
            failed("fire_extinguisher"),
            failed("smoke_alarm", upload_ids=[str(uuid.uuid4())]),
        ),
    )
    assert_problem(refused, 404, "upload.not_found")
    assert await count(session, site) == (0, 0, 0)


# --- the lists -------------------------------------------------------------------------


async def test_my_inspections_are_mine_alone(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    site = await make_site(session, login)
    first = await file(client, site, body(site, failed("fire_extinguisher")))
    second = await file(client, site, body(site, passed("gas_safety"), address="岗顶西街 14 号"))
    assert first.status_code == second.status_code == 201

    mine = await client.get(site.url, headers=site.headers)
    assert mine.status_code == 200, mine.text
    items = mine.json()["items"]
    assert [i["id"] for i in items] == [second.json()["id"], first.json()["id"]]
    assert items[1]["results"][0]["finding"] == first.json()["results"][0]["finding"]
    page = await client.get(site.url, params={"limit": 1}, headers=site.headers)
    assert [i["id"] for i in page.json()["items"]] == [second.json()["id"]]
    rest = await client.get(
        site.url, params={"limit": 1, "cursor": page.json()["next_cursor"]}, headers=site.headers
    )
    assert [i["id"] for i in rest.json()["items"]] == [first.json()["id"]]
    assert rest.json()["next_cursor"] is None

    # Another volunteer at the same activity sees only their own (none).
    other_openid = fresh_openid()
    other = await make_volunteer(session, other_openid, real_name="李志愿")
    await check_in(session, site.activity, other)
    await session.commit()
    others = await client.get(site.url, headers=bearer(await login(other_openid)))
    assert others.status_code == 200 and others.json()["items"] == []
    # Someone who never signed up has no inspections to list.
    stranger = await client.get(site.url, headers=bearer(await login(fresh_openid())))
    assert_problem(stranger, 404, "volunteer.not_signed_up")


async def test_hosts_see_every_inspection_of_their_activity_and_no_one_else_does(
    client: httpx.AsyncClient,
    login: Login,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    site = await make_site(session, login)
    filed = await file(client, site, body(site, failed("escape_route"), passed("gas_safety")))
    assert filed.status_code == 201, filed.text
    staff_url = f"/v1/staff/activities/{site.activity.id}/inspections"

    for openid in ("demo-community-staff", "demo-grid-worker"):
        listed = await client.get(staff_url, headers=bearer(await login(openid)))
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["id"] == filed.json()["id"]
        assert item["volunteer"] == {
            "id": str(site.volunteer.id),
            "number": site.volunteer.number,
            "real_name": site.volunteer.real_name,
        }
        assert (
            item["results"][0]["finding"]["number"]
            == (filed.json()["results"][0]["finding"]["number"])
        )

    yuexiu = await staff_elsewhere()
    assert_problem(await client.get(staff_url, headers=yuexiu), 404, "activity.not_found")
    # The volunteer (no staff role here) and a made-up activity: not found either.
    assert_problem(await client.get(staff_url, headers=site.headers), 404, "activity.not_found")
    made_up = f"/v1/staff/activities/{uuid.uuid4()}/inspections"
    staff = bearer(await login("demo-community-staff"))
    assert_problem(await client.get(made_up, headers=staff), 404, "activity.not_found")
    assert_problem(await client.get(staff_url), 401, "auth.unauthenticated")
