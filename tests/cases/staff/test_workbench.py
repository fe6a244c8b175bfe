"""The staff workbench: the queue of an area, every staff action, registration by phone."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend.auth.models import Role, User
from backend.cases import workflow
from backend.cases.models import (
    Case,
    CaseAttachment,
    CaseEvent,
    CaseKind,
    CaseState,
)
from backend.cases.staff.schemas import StaffAction
from backend.cases.workflow import TRANSITIONS, Action, Actor
from backend.core.clock import clock, now
from backend.core.database import create_sessionmaker
from backend.core.security import PersonalData, issue_access_token
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.cases import (
    G05,
    GANGDING,
    SHIPAI,
    committed_case,
    committed_world,
    gangding_point,
    make_category,
    make_user,
    open_case,
    reload,
    set_state,
)
from tests.factories.storage import JPEG

FUQIAN_G01 = "gz.yuexiu.beijing.fuqian.g01"


# --- factories -------------------------------------------------------------------------


async def events(session: AsyncSession, case: Case) -> list[CaseEvent]:
    return await workflow.timeline(session, case.id)


async def act(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    case: Case | uuid.UUID,
    action: str,
    **body: Any,
) -> httpx.Response:
    case_id = case.id if isinstance(case, Case) else case
    if "version" not in body and isinstance(case, Case):
        body["version"] = case.version
    return await client.post(f"/v1/staff/cases/{case_id}/{action}", json=body, headers=headers)


async def staff_headers(login: Login, openid: str = "demo-community-staff") -> dict[str, str]:
    return bearer(await login(openid))


async def user_id_of(session: AsyncSession, openid: str) -> uuid.UUID:
    return (await session.execute(select(User.id).where(User.openid == openid))).scalar_one()  # type: ignore[arg-type]


async def resolution_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """An upload of a result photo, posted to S3 as the phone would."""
    ticket = await client.post(
        "/v1/uploads",
        json={"purpose": "resolution_photo", "content_type": "image/jpeg", "size": len(JPEG)},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()
    async with httpx.AsyncClient(timeout=30) as phone:
        posted = await phone.post(
            form["url"],
            data=form["fields"],
            files={"file": ("tmp_photo", JPEG, "application/octet-stream")},
        )
    assert posted.status_code == 204, posted.text
    upload_id: str = form["id"]
    return upload_id


# --- the whole loop --------------------------------------------------------------------


async def test_accept_assign_start_resolve_then_the_rating_closes_it(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    worker_id = await user_id_of(session, "demo-grid-worker")
    resident_tokens = await login("demo-resident")
    reporter = await session.get(User, uuid.UUID(resident_tokens["user"]["id"]))
    category = await make_category(session)
    case = await open_case(session, category, reporter=reporter)
    assert case.version == 1

    accepted = await act(client, staff, case, "accept", note="已受理，安排网格员查看")
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["state"] == "accepted" and body["version"] == 2
    assert body["accepted_at"] is not None
    assert [e["action"] for e in body["timeline"]] == ["submit", "accept"]

    assigned = await act(client, staff, case.id, "assign", version=2, assignee_id=str(worker_id))
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee_id"] == str(worker_id)
    assert assigned.json()["timeline"][-1]["data"]["assignee_nickname"] == "网格员小李"
    assert assigned.json()["state"] == "accepted" and assigned.json()["version"] == 3

    worker = await staff_headers(login, "demo-grid-worker")
    started = await act(client, worker, case.id, "start", version=3)
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "in_progress"

    photo = await resolution_photo(client, worker)
    resolved = await act(
        client, worker, case.id, "resolve", version=4, note="已更换井盖", upload_ids=[photo]
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["state"] == "resolved" and resolved.json()["resolved_at"]
    [shown] = resolved.json()["attachments"]
    assert shown["id"] == photo and shown["event_seq"] == 5

    # The resident rates the result, which closes the case.
    rated = await client.post(
        f"/v1/cases/{case.id}/rating", json={"rating": 5}, headers=bearer(resident_tokens)
    )
    assert rated.status_code == 200, rated.text
    case = await reload(session, case)
    assert case.state == CaseState.closed and case.rating == 5

    timeline = await events(session, case)
    assert [(e.action, e.to_state) for e in timeline] == [
        ("submit", "submitted"),
        ("accept", "accepted"),
        ("assign", "accepted"),
        ("start", "in_progress"),
        ("resolve", "resolved"),
        ("rate", "closed"),
    ]
    assert [e.actor_role for e in timeline[1:5]] == [
        "community_staff",
        "community_staff",
        "grid_worker",
        "grid_worker",
    ]
    assert timeline[1].note == "已受理，安排网格员查看"
    assert timeline[2].data["assignee_id"] == str(worker_id)
    # The photo belongs to the resolve event, and the upload is now used up.
    attachment = (
        await session.execute(select(CaseAttachment).where(CaseAttachment.case_id == case.id))  # type: ignore[arg-type]
    ).scalar_one()
    assert str(attachment.upload_id) == photo and attachment.event_id == timeline[4].id
    again = await act(client, staff, case.id, "comment", version=case.version, note="回访")
    assert again.status_code == 200  # comments are welcome in any state


async def test_resolving_needs_a_note_and_a_photo(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    case = await open_case(session, await make_category(session))
    await set_state(session, case, CaseState.in_progress)

    no_note = await act(client, staff, case, "resolve", upload_ids=[])
    assert "处理结果" in assert_problem(no_note, 422, "case.resolution_needs_note")["detail"]
    no_photo = await act(client, staff, case, "resolve", note="已处理")
    body = assert_problem(no_photo, 422, "case.resolution_needs_photo")
    assert body["title"]
    # Someone else's photo is no photo of theirs.
    resident = bearer(await login(f"wb-{secrets.token_hex(4)}"))
    foreign = await resolution_photo(client, resident)
    stolen = await act(client, staff, case, "resolve", note="已处理", upload_ids=[foreign])
    assert_problem(stolen, 404, "upload.not_found")
    # A photo on any other action is refused rather than silently dropped.
    mine = await resolution_photo(client, staff)
    comment = await act(client, staff, case, "comment", note="看过了", upload_ids=[mine])
    assert_problem(comment, 422, "case.attachments_not_expected")

    case = await reload(session, case)
    assert case.state == CaseState.in_progress and case.version == 1
    assert [e.action for e in await events(session, case)] == ["submit"]


async def test_every_illegal_transition_is_a_409_and_changes_nothing(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    worker_id = await user_id_of(session, "demo-grid-worker")
    category = await make_category(session)
    valid_body: dict[StaffAction, dict[str, Any]] = {
        StaffAction.accept: {},
        StaffAction.assign: {"assignee_id": str(worker_id)},
        StaffAction.start: {},
        StaffAction.resolve: {"note": "已处理", "upload_ids": [str(uuid.uuid4())]},
        StaffAction.reject: {"reason": "duplicate"},
        StaffAction.escalate: {},
        StaffAction.comment: {"note": "备注"},
    }
    checked = 0
    for action in StaffAction:
        allowed_from = TRANSITIONS[Action(action.value)]
        for state in CaseState:
            if state in allowed_from:
                continue
            case = await open_case(session, category)
            await set_state(session, case, state)
            response = await act(client, staff, case, action.value, **valid_body[action])
            body = assert_problem(response, 409, "case.illegal_transition")
            assert workflow.STATE_ZH[state] in body["detail"], (action, state)
            case = await reload(session, case)
            assert (case.state, case.version) == (state, 1), (action, state)
            checked += 1
    # Every pair the table leaves out was tried (comment is allowed everywhere).
    expected = sum(
        len(CaseState) - len(TRANSITIONS[Action(action.value)]) for action in StaffAction
    )
    assert checked == expected > 20


async def test_a_stale_version_is_a_409_and_changes_nothing(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    case = await open_case(session, await make_category(session))
    first = await act(client, staff, case.id, "comment", version=1, note="先看看")
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await act(client, staff, case.id, "accept", version=1)
    assert "刷新" in assert_problem(stale, 409, "case.version_conflict")["detail"]
    english = await client.post(
        f"/v1/staff/cases/{case.id}/accept",
        json={"version": 1},
        headers={**staff, "Accept-Language": "en"},
    )
    assert "reload" in assert_problem(english, 409, "case.version_conflict")["detail"]
    case = await reload(session, case)
    assert case.state == CaseState.submitted and case.version == 2


async def test_grid_workers_cannot_assign_or_reject(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    worker = await staff_headers(login, "demo-grid-worker")
    staff_id = await user_id_of(session, "demo-community-staff")
    case = await open_case(session, await make_category(session))
    assign = await act(client, worker, case, "assign", assignee_id=str(staff_id))
    assert "指派" in assert_problem(assign, 403, "case.action_forbidden")["detail"]
    reject = await act(client, worker, case, "reject", reason="duplicate")
    assert_problem(reject, 403, "case.action_forbidden")
    # What grid workers do on the ground, they may.
    accept = await act(client, worker, case, "accept")
    assert accept.status_code == 200, accept.text
    assert [e.action for e in await events(session, case)] == ["submit", "accept"]


async def test_assign_reject_and_escalate_rules(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    category = await make_category(session)
    case = await open_case(session, category)

    assert_problem(await act(client, staff, case, "assign"), 422, "case.assignee_required")
    resident = await make_user(session)
    await session.commit()
    not_staff = await act(client, staff, case, "assign", assignee_id=str(resident.id))
    assert_problem(not_staff, 422, "case.assignee_not_staff_here")
    # The mediator works in the same street, but not on reports.
    mediator_id = await user_id_of(session, "demo-mediator")
    mediator = await act(client, staff, case, "assign", assignee_id=str(mediator_id))
    assert_problem(mediator, 422, "case.assignee_not_staff_here")
    # The district admin covers Gangding from above.
    admin_id = await user_id_of(session, "demo-district-admin")
    to_admin = await act(client, staff, case, "assign", assignee_id=str(admin_id))
    assert to_admin.status_code == 200, to_admin.text
    case = await reload(session, case)

    assert_problem(await act(client, staff, case, "reject"), 422, "case.reject_reason_required")
    other = await act(client, staff, case, "reject", reason="other")
    assert_problem(other, 422, "case.reject_needs_note")
    assert_problem(await act(client, staff, case, "comment"), 422, "case.comment_needs_note")

    escalated = await act(client, staff, case, "escalate", note="需要街道协调")
    assert escalated.status_code == 200, escalated.text
    assert escalated.json()["queue"]["code"] == SHIPAI
    assert escalated.json()["escalation_level"] == 1
    last = (await events(session, case))[-1]
    assert last.action == "escalate" and last.data == {
        "reason": "manual",
        "from": GANGDING,
        "to": SHIPAI,
    }
    # Still in Gangding, so its staff keep seeing and working it.
    case = await reload(session, case)
    rejected = await act(client, staff, case, "reject", reason="other", note="属于私人纠纷")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["rejected_reason"] == "other"
    assert rejected.json()["state"] == "rejected"

    city = await open_case(session, category)
    await session.execute(
        update(Case).where(Case.id == city.id).values(queue_path="gz")  # type: ignore[arg-type]
    )
    await session.commit()
    top = await act(client, staff, city, "escalate")
    assert_problem(top, 409, "case.cannot_escalate")


# --- who sees what ---------------------------------------------------------------------


async def test_staff_of_another_street_see_nothing_here(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    staff_elsewhere: StaffElsewhere,
) -> None:
    yuexiu = await staff_elsewhere()
    category = await make_category(session)
    gangding_case = await open_case(session, category)
    fuqian_case = await open_case(session, category, grid=FUQIAN_G01)

    listed = await client.get("/v1/staff/cases", headers=yuexiu)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [str(fuqian_case.id)]
    for action, extra in (("accept", {}), ("comment", {"note": "x"}), ("escalate", {})):
        response = await act(client, yuexiu, gangding_case, action, **extra)
        assert_problem(response, 404, "case.not_found")
    # A made-up id answers exactly the same.
    assert_problem(
        await act(client, yuexiu, uuid.uuid4(), "accept", version=1), 404, "case.not_found"
    )
    # Nor can they ask for another area's queue by name.
    region = await client.get("/v1/staff/cases", params={"region": GANGDING}, headers=yuexiu)
    assert_problem(region, 404, "regions.not_found")

    gangding_staff = await staff_headers(login)
    mine = await client.get("/v1/staff/cases", headers=gangding_staff)
    assert [item["id"] for item in mine.json()["items"]] == [str(gangding_case.id)]
    # Never the reporter, in any form.
    assert "reporter" not in mine.text and str(gangding_case.reporter_id) not in mine.text


async def test_residents_and_mediators_have_no_workbench(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    case = await open_case(session, await make_category(session))
    for openid in ("demo-resident", "demo-mediator"):
        headers = await staff_headers(login, openid)
        assert_problem(await client.get("/v1/staff/cases", headers=headers), 403, "auth.forbidden")
        assert_problem(await act(client, headers, case, "accept"), 404, "case.not_found")
    assert_problem(await client.get("/v1/staff/cases"), 401, "auth.unauthenticated")


# --- the queue: filters and pages ------------------------------------------------------


async def test_queue_filters(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    staff_id = await user_id_of(session, "demo-community-staff")
    # The cases are opened three hours ago (tokens are issued by the wall clock, so the
    # clock goes back rather than forward).
    clock.advance(timedelta(hours=-3))
    reports = await make_category(session, response_hours=2, resolution_hours=48)
    complaints = await make_category(session, CaseKind.complaint, response_hours=8)
    quick = await open_case(session, reports, description="路灯不亮" * 30)  # due in 2 h
    slow = await open_case(session, complaints, grid=f"{GANGDING}.g01")  # due in 8 h
    taken = await open_case(session, reports, grid=f"{GANGDING}.g09")
    taken_response = await act(client, staff, taken, "accept")
    await act(client, staff, taken.id, "assign", version=2, assignee_id=str(staff_id))
    escalated = await open_case(session, reports)
    await act(client, staff, escalated, "escalate")

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/v1/staff/cases", params=params, headers=staff)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    everything = await ids()
    assert set(everything) == {str(c.id) for c in (quick, slow, taken, escalated)}
    assert await ids(state="accepted") == [str(taken.id)]
    assert set(await ids(state=["submitted", "accepted"])) == set(everything)
    assert await ids(kind="complaint") == [str(slow.id)]
    assert await ids(category=str(complaints.id)) == [str(slow.id)]
    assert await ids(assignee="me") == [str(taken.id)]
    assert await ids(assignee=str(staff_id)) == [str(taken.id)]
    assert await ids(region=f"{GANGDING}.g09") == [str(taken.id)]
    # Queued exactly at Gangding: the escalated case now waits at the street.
    assert set(await ids(queue="mine")) == {str(quick.id), str(slow.id), str(taken.id)}
    assert await ids(overdue="true") == []

    clock.reset()  # three hours later: past the 2-hour response deadlines
    assert set(await ids(overdue="true")) == {str(quick.id), str(escalated.id)}
    assert set(await ids(overdue="false")) == {str(slow.id), str(taken.id)}

    listed = (await client.get("/v1/staff/cases", headers=staff)).json()["items"]
    item = next(i for i in listed if i["id"] == str(quick.id))
    assert item["overdue"] is True and item["summary"] == ("路灯不亮" * 15)
    assert item["category"]["code"] == reports.code and item["grid_code"] == G05
    assert item["queue_code"] == GANGDING and item["assignee"] is None
    taken_item = next(i for i in listed if i["id"] == str(taken.id))
    assert taken_item["assignee"]["nickname"] == "社区工作人员王姐"
    assert taken_item["deadline"] == taken_response.json()["resolution_due_at"]

    bad = await client.get("/v1/staff/cases", params={"assignee": "someone"}, headers=staff)
    assert_problem(bad, 422, "request.invalid")


async def test_pages_follow_the_deadlines_without_repeats(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    staff = await staff_headers(login)
    cases: list[Case] = []
    # Deadlines out of creation order, several cases sharing one, and some with none.
    for hours in (6, 2, 4, 2, 2, 8, 4, 1):
        category = await make_category(session, response_hours=hours)
        cases.append(await open_case(session, category))
    for done in cases[:2]:
        await set_state(session, done, CaseState.closed)

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/staff/cases", params=params, headers=staff)
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert sorted(i["id"] for i in seen) == sorted(str(c.id) for c in cases)
    open_items = [i for i in seen if i["deadline"] is not None]
    assert [i["deadline"] for i in open_items] == sorted(i["deadline"] for i in open_items)
    # Equal deadlines come in id order, and closed cases (no deadline) come last.
    keys = [(i["deadline"], i["id"]) for i in open_items]
    assert keys == sorted(keys)
    assert [i["deadline"] for i in seen[-2:]] == [None, None]
    assert [i["id"] for i in seen[-2:]] == sorted(str(c.id) for c in cases[:2])

    for cursor in ("not-a-cursor", "eyJkIjogMX0", "bm9wZQ"):
        bad = await client.get("/v1/staff/cases", params={"cursor": cursor}, headers=staff)
        assert_problem(bad, 400, "request.cursor_invalid")


# --- two staff at once -----------------------------------------------------------------


async def test_two_staff_accepting_at_once_one_wins(app: FastAPI, engine: AsyncEngine) -> None:
    world = await committed_world(engine)
    case = await committed_case(engine, world)
    token, _ = issue_access_token(world.staff.id, app.state.settings, now())
    headers = {"Authorization": f"Bearer {token}"}
    # Two real requests, each with its own connection and transaction.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        first, second = await asyncio.gather(
            act(http, headers, case.id, "accept", version=1, note="A"),
            act(http, headers, case.id, "accept", version=1, note="B"),
        )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert_problem(loser, 409, "case.version_conflict")
    async with create_sessionmaker(engine)() as session:
        stored = await session.get(Case, case.id)
        assert stored is not None and stored.state == CaseState.accepted and stored.version == 2
        accepts = (
            await session.execute(
                select(func.count()).where(
                    CaseEvent.case_id == case.id,  # type: ignore[arg-type]
                    CaseEvent.action == "accept",  # type: ignore[arg-type]
                )
            )
        ).scalar_one()
        assert accepts == 1


async def test_two_workflow_applies_at_once_one_wins(engine: AsyncEngine) -> None:
    world = await committed_world(engine)
    case = await committed_case(engine, world)
    factory = create_sessionmaker(engine)
    actor = Actor(world.staff.id, Role.community_staff.value)

    async def accept() -> str:
        async with factory() as session:
            loaded = await session.get(Case, case.id)
            assert loaded is not None
            try:
                await workflow.apply(session, loaded, Action.accept, actor, expected_version=1)
                await session.commit()
                return "won"
            except (workflow.CaseChangedMeanwhile, workflow.CaseTransitionNotAllowed):
                # Lost the race while applying, or came after the winner had committed (it
                # then reads the case accepted already): either way, the other one won.
                await session.rollback()
                return "lost"

    assert sorted(await asyncio.gather(accept(), accept())) == ["lost", "won"]
    async with factory() as session:
        timeline = await workflow.timeline(session, case.id)
        assert [e.action for e in timeline] == ["submit", "accept"]


# --- registration by phone or at the counter -------------------------------------------


async def test_registering_a_phone_call_links_the_resident(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    emulator: Any,
    app: FastAPI,
) -> None:
    phone = f"139{secrets.randbelow(10**8):08d}"
    resident_tokens = await login("demo-resident")
    code = await emulator.phone_code("demo-resident", phone)
    bound = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(resident_tokens))
    assert bound.status_code == 200, bound.text
    category = await make_category(session)
    await session.commit()
    staff = await staff_headers(login)
    lat, lng = gangding_point(5)
    body = {
        "kind": "report",
        "category": category.code,
        "description": "居民来电：岗顶路口的井盖松动",
        "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
        "address": "天河路与石牌西路交界",
        "channel": "phone",
        "resident_phone": phone,
    }
    key = {"Idempotency-Key": secrets.token_hex(8)}
    created = await client.post("/v1/staff/cases", json=body, headers={**staff, **key})
    assert created.status_code == 201, created.text
    case_out = created.json()
    assert case_out["channel"] == "phone" and case_out["grid"]["code"] == G05
    assert case_out["queue"]["code"] == GANGDING and case_out["state"] == "submitted"
    assert case_out["contact_phone"] == f"{phone[:3]}****{phone[-4:]}"
    assert case_out["number"].startswith("RPT-")

    stored = await session.get(Case, uuid.UUID(case_out["id"]))
    assert stored is not None
    staff_id = await user_id_of(session, "demo-community-staff")
    assert stored.reporter_id == uuid.UUID(resident_tokens["user"]["id"])
    assert stored.submitted_by == staff_id
    assert stored.contact_phone_ciphertext is not None
    assert phone.encode() not in bytes(stored.contact_phone_ciphertext)
    personal_data: PersonalData = app.state.personal_data
    assert personal_data.decrypt(bytes(stored.contact_phone_ciphertext)) == phone
    timeline = await events(session, stored)
    assert (timeline[0].actor_id, timeline[0].actor_role) == (staff_id, "community_staff")
    assert timeline[0].data == {"channel": "phone"}

    # A retry from a flaky line returns the same case; the same key for another call does not.
    replay = await client.post("/v1/staff/cases", json=body, headers={**staff, **key})
    assert replay.status_code == 200 and replay.json()["id"] == case_out["id"]
    assert replay.headers["idempotent-replay"] == "true"
    changed = {**body, "description": "居民来电：另一处井盖松动"}
    conflict = await client.post("/v1/staff/cases", json=changed, headers={**staff, **key})
    assert_problem(conflict, 409, "case.idempotency_conflict")
    count = (
        await session.execute(select(func.count()).where(Case.submitted_by == staff_id))  # type: ignore[arg-type]
    ).scalar_one()
    assert count == 1
    # The resident finds the case among their own.
    mine = await client.get("/v1/me/cases", headers=bearer(resident_tokens))
    assert [item["id"] for item in mine.json()["items"]] == [case_out["id"]]


def _shape(view: dict[str, Any]) -> dict[str, Any]:
    """A case as staff see it, without what differs between two cases in any case: the id,
    number and contact phone, and the moments things happened."""

    def timeless(fields: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in fields.items() if not key.endswith("_at")}

    shape = timeless(view)
    for key in ("id", "number", "contact_phone"):
        del shape[key]
    shape["timeline"] = [timeless(event) for event in view["timeline"]]
    return shape


async def test_staff_cannot_tell_whether_a_phone_belongs_to_an_account(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    emulator: Any,
) -> None:
    bound_phone = f"139{secrets.randbelow(10**8):08d}"
    unknown_phone = f"137{secrets.randbelow(10**8):08d}"
    resident = await login("demo-resident")
    code = await emulator.phone_code("demo-resident", bound_phone)
    bound = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(resident))
    assert bound.status_code == 200, bound.text
    category = await make_category(session)
    await session.commit()
    staff = await staff_headers(login)
    lat, lng = gangding_point(5)

    async def register(phone: str) -> dict[str, Any]:
        body = {
            "kind": "report",
            "category": category.code,
            "description": "居民来电：岗顶路口的井盖松动",
            "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
            "channel": "phone",
            "resident_phone": phone,
        }
        key = {"Idempotency-Key": secrets.token_hex(8)}
        created = await client.post("/v1/staff/cases", json=body, headers={**staff, **key})
        assert created.status_code == 201, created.text
        answer: dict[str, Any] = created.json()
        return answer

    def masked(phone: str) -> str:
        return f"{phone[:3]}****{phone[-4:]}"

    known = await register(bound_phone)
    unknown = await register(unknown_phone)
    stored = await session.get(Case, uuid.UUID(known["id"]))
    assert stored is not None and stored.reporter_id == uuid.UUID(resident["user"]["id"])

    # The answers: the number typed, masked, and nothing else about who holds it.
    assert (known["contact_phone"], unknown["contact_phone"]) == (
        masked(bound_phone),
        masked(unknown_phone),
    )
    assert known["reporter"] is None and unknown["reporter"] is None
    assert _shape(known) == _shape(unknown)
    assert resident["user"]["id"] not in str(known) and "居民小陈" not in str(known)

    # Nor anything staff read later: the case, an action on it, the queue; a colleague either.
    grid_worker = await staff_headers(login, "demo-grid-worker")
    for headers in (staff, grid_worker):
        views = [
            (await client.get(f"/v1/cases/{case['id']}", headers=headers)).json()
            for case in (known, unknown)
        ]
        assert [view["reporter"] for view in views] == [None, None]
        assert _shape(views[0]) == _shape(views[1])
        assert resident["user"]["id"] not in str(views[0]) and "居民小陈" not in str(views[0])
    accepted = [
        await client.post(
            f"/v1/staff/cases/{case['id']}/accept", json={"version": 1}, headers=staff
        )
        for case in (known, unknown)
    ]
    assert [answer.status_code for answer in accepted] == [200, 200]
    assert _shape(accepted[0].json()) == _shape(accepted[1].json())
    assert accepted[0].json()["reporter"] is None
    queue = await client.get("/v1/staff/cases", headers=staff)
    items = {item["id"]: item for item in queue.json()["items"]}
    assert set(items[known["id"]]) == set(items[unknown["id"]])
    assert resident["user"]["id"] not in queue.text and "居民小陈" not in queue.text

    # The resident follows their case, and sees themself on it.
    mine = await client.get("/v1/me/cases", headers=bearer(resident))
    assert [item["id"] for item in mine.json()["items"]] == [known["id"]]
    own = (await client.get(f"/v1/cases/{known['id']}", headers=bearer(resident))).json()
    assert own["reporter"]["id"] == resident["user"]["id"]
    assert own["contact_phone"] == masked(bound_phone)


async def test_a_number_two_accounts_hold_links_the_case_to_neither(
    client: httpx.AsyncClient,
    demo: None,
    login: Login,
    session: AsyncSession,
    emulator: Any,
) -> None:
    # A recycled number: an old account still holds what a new one has bound since.
    phone = f"135{secrets.randbelow(10**8):08d}"
    holders = []
    for openid in ("demo-resident-2", "demo-resident-3"):
        tokens = await login(openid)
        code = await emulator.phone_code(openid, phone)
        bound = await client.post("/v1/me/phone", json={"code": code}, headers=bearer(tokens))
        assert bound.status_code == 200, bound.text
        holders.append(tokens)
    category = await make_category(session)
    await session.commit()
    lat, lng = gangding_point(2)
    created = await client.post(
        "/v1/staff/cases",
        json={
            "kind": "report",
            "category": category.code,
            "description": "居民来电：路灯不亮",
            "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
            "channel": "phone",
            "resident_phone": phone,
        },
        headers={**await staff_headers(login), "Idempotency-Key": secrets.token_hex(8)},
    )
    assert created.status_code == 201, created.text
    assert created.json()["reporter"] is None
    stored = await session.get(Case, uuid.UUID(created.json()["id"]))
    assert stored is not None and stored.reporter_id is None
    for tokens in holders:
        mine = await client.get("/v1/me/cases", headers=bearer(tokens))
        assert mine.json()["items"] == []


async def test_registration_rules(
    client: httpx.AsyncClient, demo: None, login: Login, session: AsyncSession
) -> None:
    reports = await make_category(session)
    complaints = await make_category(session, CaseKind.complaint)
    await session.commit()
    staff = await staff_headers(login)
    lat, lng = gangding_point(1)

    async def register(headers: dict[str, str] | None = None, **changes: Any) -> httpx.Response:
        body = {
            "kind": "complaint",
            "category": str(complaints.id),
            "description": "居民到窗口反映：物业长期不清理垃圾",
            "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
            "channel": "counter",
            "target": {"type": "property_company", "name": "某某物业"},
            **changes,
        }
        return await client.post(
            "/v1/staff/cases",
            json=body,
            headers={**(headers or staff), "Idempotency-Key": secrets.token_hex(8)},
        )

    walk_in = await register()
    assert walk_in.status_code == 201, walk_in.text
    assert walk_in.json()["number"].startswith("CMP-")
    assert walk_in.json()["target"] == {"type": "property_company", "name": "某某物业"}
    assert walk_in.json()["channel"] == "counter"
    stored = await session.get(Case, uuid.UUID(walk_in.json()["id"]))
    assert stored is not None and stored.reporter_id is None and stored.contact_phone_masked is None

    unknown_phone = await register(resident_phone="13700000000")
    assert unknown_phone.status_code == 201
    stored = await session.get(Case, uuid.UUID(unknown_phone.json()["id"]))
    assert stored is not None and stored.reporter_id is None
    assert stored.contact_phone_masked == "137****0000"

    # A report category cannot file a complaint, and a bad number is refused outright.
    assert_problem(await register(category=str(reports.id)), 422, "case.category_invalid")
    assert_problem(await register(resident_phone="12345"), 422, "request.invalid")
    assert_problem(await register(channel="miniapp"), 422, "request.invalid")
    assert_problem(await register(kind="mediation"), 422, "request.invalid")
    report_with_target = await register(kind="report", category=str(reports.id))
    assert_problem(report_with_target, 422, "request.invalid")  # only complaints have one
    outside = await register(
        location={"lat": 23.1200 + 0.001, "lng": 113.2620 + 0.001, "coord": "wgs84"}
    )
    assert_problem(outside, 403, "case.location_outside_your_area")
    nowhere = await register(location={"lat": 39.9, "lng": 116.4, "coord": "wgs84"})
    assert_problem(nowhere, 422, "case.outside_grids")
    resident = await staff_headers(login, "demo-resident")
    assert_problem(await register(headers=resident), 403, "auth.forbidden")
    body = {
        "kind": "report",
        "category": reports.code,
        "description": "居民来电：路灯不亮",
        "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
        "channel": "phone",
    }
    no_key = await client.post("/v1/staff/cases", json=body, headers=staff)
    assert_problem(no_key, 400, "request.idempotency_key_required")
    bad_key = await client.post(
        "/v1/staff/cases", json=body, headers={**staff, "Idempotency-Key": "a b"}
    )
    assert_problem(bad_key, 400, "request.idempotency_key_invalid")
