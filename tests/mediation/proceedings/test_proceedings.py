"""Mediation proceedings through HTTP: sessions and their private minutes, the agreement
every party confirms, the end without agreement with a referral, and who may do what.

Every payload a party reads is checked for both sides' phones (digits and masked form).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.auth.models import User
from backend.cases import workflow
from backend.cases.models import Case, CaseEvent, CaseKind, Category
from backend.core.clock import clock, now
from backend.core.database import create_sessionmaker
from backend.core.security import issue_access_token, mask_phone
from backend.mediation.models import (
    Consent,
    DisputeType,
    Mediation,
    MediationParty,
    MediationSession,
    MediationState,
    Mediator,
    PartyRole,
)
from backend.regions.models import Region, RegionLevel
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.mediation import ELSEWHERE_STREET, make_mediation, make_mediator
from tests.factories.volunteers import user_id_of

APPLICANT_PHONE = "13800135678"
RESPONDENT_PHONE = "13912345678"
PHONES = (
    APPLICANT_PHONE,
    mask_phone(APPLICANT_PHONE),
    RESPONDENT_PHONE,
    mask_phone(RESPONDENT_PHONE),
)
MINUTES = "调解笔录：乙方承认夜间施工属实，同意整改。MINUTES-7f3a"
AGREEMENT = "乙方自即日起每日22:00后不再施工，并于两周内修复甲方天花板。AGREEMENT-91c2"


# --- factories and helpers -----------------------------------------------------------------


@dataclass
class World:
    mediation_id: uuid.UUID
    base: str
    applicant: dict[str, str]
    respondent: dict[str, str]
    mediator: dict[str, str]
    admin: dict[str, str]
    applicant_party: uuid.UUID
    respondent_party: uuid.UUID


async def assigned_mediation(
    session: AsyncSession,
    app: FastAPI,
    login: Login,
    *,
    tag: str = "a",
    state: MediationState = MediationState.assigned,
) -> World:
    """An assigned mediation: an applicant with a bound phone, a respondent who accepted,
    and a fresh mediator of Shipai; everyone logged in."""
    personal = app.state.personal_data
    mediator = await make_mediator(session, f"med3-mediator-{tag}", name="王调解")
    mediation = await make_mediation(
        session,
        personal,
        f"med3-app-{tag}",
        respondents=(("李四", RESPONDENT_PHONE, f"med3-resp-{tag}", Consent.accepted),),
        mediator=mediator,
        state=state,
    )
    parties = {
        PartyRole(p.role): p
        for p in (
            await session.execute(
                select(MediationParty).where(col(MediationParty.case_id) == mediation.case_id)
            )
        ).scalars()
    }
    # The applicant's own phone, as the request would have stored it.
    applicant = parties[PartyRole.applicant]
    applicant.name = "张三"
    applicant.phone_ciphertext = personal.encrypt(APPLICANT_PHONE)
    applicant.phone_hash = personal.lookup_hash(APPLICANT_PHONE)
    applicant.phone_masked = mask_phone(APPLICANT_PHONE)
    await session.commit()
    return World(
        mediation_id=mediation.case_id,
        base=f"/v1/mediations/{mediation.case_id}",
        applicant=bearer(await login(f"med3-app-{tag}")),
        respondent=bearer(await login(f"med3-resp-{tag}")),
        mediator=bearer(await login(f"med3-mediator-{tag}")),
        admin=bearer(await login("demo-district-admin")),
        applicant_party=applicant.id,
        respondent_party=parties[PartyRole.respondent].id,
    )


def private(response: httpx.Response) -> httpx.Response:
    """A payload a party reads: neither side's phone, in digits or masked, is in it."""
    for phone in PHONES:
        assert phone not in response.text, f"{phone} leaked: {response.text}"
    return response


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def soon(minutes: int = 5) -> str:
    return (now() + timedelta(minutes=minutes)).isoformat()


def in_person(starts_at: str, place: str = "石牌街人民调解委员会 二楼调解室") -> dict[str, Any]:
    return {"starts_at": starts_at, "mode": "in_person", "place": place}


async def reload(session: AsyncSession, world: World) -> tuple[Mediation, Case]:
    row = (
        await session.execute(
            select(Mediation, Case)
            .join(Case, col(Case.id) == col(Mediation.case_id))
            .where(col(Mediation.case_id) == world.mediation_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return row[0], row[1]


async def events(session: AsyncSession, world: World) -> list[CaseEvent]:
    rows = await session.execute(
        select(CaseEvent)
        .where(col(CaseEvent.case_id) == world.mediation_id)
        .order_by(col(CaseEvent.seq))
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


def steps(timeline: list[CaseEvent]) -> list[tuple[str, str | None]]:
    return [(e.action, e.data.get("step")) for e in timeline]


def assert_timeline_discreet(timeline: list[CaseEvent]) -> None:
    """Never the minutes, never the agreement text, never a phone on the timeline."""
    for event in timeline:
        written = f"{event.note or ''} {event.data}"
        for secret in ("MINUTES-7f3a", "AGREEMENT-91c2", *PHONES):
            assert secret not in written, (event.action, written)


# --- sessions ------------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_only_the_mediator_schedules_and_the_first_session_starts_the_case(
    client: httpx.AsyncClient,
    session: AsyncSession,
    app: FastAPI,
    login: Login,
    staff_elsewhere: StaffElsewhere,
) -> None:
    world = await assigned_mediation(session, app, login)
    sessions = f"{world.base}/sessions"
    body = in_person(soon(60 * 24))

    # Supervisors read but do not schedule; the parties neither.
    for headers in (world.admin, bearer(await login("demo-city-admin"))):
        assert_problem(
            await client.post(sessions, json=body, headers=headers), 403, "mediation.mediator_only"
        )
        assert ok(await client.get(sessions, headers=headers))["items"] == []
    for headers in (world.applicant, world.respondent):
        refused = private(await client.post(sessions, json=body, headers=headers))
        assert_problem(refused, 403, "mediation.mediator_only")

    # Nobody else learns it exists: a third user, a mediator of another area, the grid
    # worker and community staff of the place, staff of another district.
    await make_mediator(session, "med3-other-area", region=ELSEWHERE_STREET)
    await user_id_of(session, "med3-stranger")
    await session.commit()
    outsiders = [
        bearer(await login("med3-stranger")),
        bearer(await login("med3-other-area")),
        bearer(await login("demo-grid-worker")),
        bearer(await login("demo-community-staff")),
        await staff_elsewhere(),
    ]
    for headers in outsiders:
        assert_problem(
            await client.post(sessions, json=body, headers=headers), 404, "mediation.not_found"
        )
        assert_problem(await client.get(sessions, headers=headers), 404, "mediation.not_found")
    assert_problem(await client.post(sessions, json=body), 401, "auth.unauthenticated")

    # The mediator schedules: the mediation is in session and the case started.
    created = await client.post(sessions, json=body, headers=world.mediator)
    first = ok(created, 201)
    assert first["state"] == "scheduled" and first["mode"] == "in_person"
    assert first["place"] == body["place"] and first["attended"] == []
    assert datetime.fromisoformat(first["starts_at"]) == datetime.fromisoformat(body["starts_at"])
    mediation, case = await reload(session, world)
    assert mediation.state == MediationState.in_session
    assert case.state == "in_progress"
    timeline = await events(session, world)
    assert steps(timeline)[-1] == ("start", "session_scheduled")
    assert timeline[-1].data["session_id"] == first["id"]

    # A retry of the same request answers the same session, and makes no second one.
    again = await client.post(sessions, json=body, headers=world.mediator)
    assert ok(again)["id"] == first["id"]
    assert again.headers["Idempotent-Replay"] == "true"
    # Another session at that moment is a clash; a later one is a second session.
    clash = await client.post(
        sessions, json=in_person(body["starts_at"], "街道办三楼"), headers=world.mediator
    )
    assert assert_problem(clash, 409, "mediation.session_clash")["session_id"] == first["id"]
    online = await client.post(
        sessions,
        json={"starts_at": soon(60 * 48), "mode": "online"},
        headers=world.mediator,
    )
    assert ok(online, 201)["place"] is None
    assert steps(await events(session, world))[-1] == ("comment", "session_scheduled")
    _, case = await reload(session, world)
    assert case.state == "in_progress"

    # The parties see both sessions, and the supervisor too.
    for headers in (world.applicant, world.respondent, world.admin):
        listed = private(await client.get(sessions, headers=headers))
        assert [s["id"] for s in ok(listed)["items"]] == [ok(online, 201)["id"], first["id"]]


@pytest.mark.usefixtures("demo")
async def test_a_session_needs_a_future_time_and_a_place_in_person(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    sessions = f"{world.base}/sessions"
    past = (now() - timedelta(minutes=1)).isoformat()
    too_far = (now() + timedelta(days=400)).isoformat()
    # The edges of the calendar are refused as well, not sent to the database.
    edges = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59")
    for starts_at in (past, too_far, *edges):
        assert_problem(
            await client.post(sessions, json=in_person(starts_at), headers=world.mediator),
            422,
            "mediation.session_time_invalid",
        )
    assert_problem(
        await client.post(
            sessions, json={"starts_at": soon(), "mode": "in_person"}, headers=world.mediator
        ),
        422,
        "mediation.session_place_required",
    )
    assert_problem(
        await client.post(
            sessions, json={"starts_at": soon(), "mode": "by_phone"}, headers=world.mediator
        ),
        422,
        "request.invalid",
    )
    # Nothing was written by the refusals.
    mediation, case = await reload(session, world)
    assert mediation.state == MediationState.assigned and case.state == "accepted"
    assert ok(await client.get(sessions, headers=world.mediator))["items"] == []


@pytest.mark.usefixtures("demo")
async def test_attendance_and_minutes_are_recorded_and_the_minutes_stay_private(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    sessions = f"{world.base}/sessions"
    scheduled = ok(
        await client.post(sessions, json=in_person(soon(5)), headers=world.mediator), 201
    )
    record_url = f"{sessions}/{scheduled['id']}/record"
    record = {
        "attended": [str(world.applicant_party), str(world.respondent_party)],
        "minutes": MINUTES,
    }

    # Not before it starts; only by the mediator; only parties of this case attend.
    assert_problem(
        await client.post(record_url, json=record, headers=world.mediator),
        409,
        "mediation.session_not_started",
    )
    clock.advance(timedelta(minutes=6))
    for headers in (world.applicant, world.admin):
        assert_problem(
            await client.post(record_url, json=record, headers=headers),
            403,
            "mediation.mediator_only",
        )
    other = await make_mediation(
        session,
        app.state.personal_data,
        "med3-app-other",
        respondents=(("王五", "13700001111", None, Consent.pending),),
    )
    stranger_party = (
        (
            await session.execute(
                select(MediationParty.id).where(col(MediationParty.case_id) == other.case_id)
            )
        )
        .scalars()
        .first()
    )
    await session.commit()
    assert_problem(
        await client.post(
            record_url,
            json={"attended": [str(stranger_party)], "minutes": MINUTES},
            headers=world.mediator,
        ),
        422,
        "mediation.attendee_not_party",
    )

    held = ok(await client.post(record_url, json=record, headers=world.mediator))
    assert held["state"] == "held" and held["minutes"] == MINUTES
    assert {(a["role"], a["name"]) for a in held["attended"]} == {
        ("applicant", "张三"),
        ("respondent", "李四"),
    }
    # The same record again is a retry; another one does not rewrite the minutes.
    assert ok(await client.post(record_url, json=record, headers=world.mediator)) == held
    assert_problem(
        await client.post(
            record_url,
            json={"attended": [str(world.applicant_party)], "minutes": "改过的笔录"},
            headers=world.mediator,
        ),
        409,
        "mediation.session_already_recorded",
    )

    # The mediator and the supervising admin read the minutes ...
    for headers in (world.mediator, world.admin):
        listed = ok(await client.get(sessions, headers=headers))["items"]
        assert listed[0]["minutes"] == MINUTES
    # ... the parties see the session and who came, but never the minutes.
    for headers in (world.applicant, world.respondent):
        response = private(await client.get(sessions, headers=headers))
        assert MINUTES not in response.text and "MINUTES-7f3a" not in response.text
        seen = ok(response)["items"][0]
        assert seen["minutes"] is None and seen["state"] == "held"
        assert {a["name"] for a in seen["attended"]} == {"张三", "李四"}

    timeline = await events(session, world)
    assert steps(timeline)[-1] == ("comment", "session_held")
    assert timeline[-1].data["attendees"] == 2
    assert_timeline_discreet(timeline)


@pytest.mark.usefixtures("demo")
async def test_a_scheduled_session_is_moved_or_cancelled(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    sessions = f"{world.base}/sessions"
    first = ok(await client.post(sessions, json=in_person(soon(60)), headers=world.mediator), 201)
    second = ok(await client.post(sessions, json=in_person(soon(120)), headers=world.mediator), 201)
    url = f"{sessions}/{first['id']}"

    later = soon(180)
    moved = ok(await client.patch(url, json={"starts_at": later}, headers=world.mediator))
    assert datetime.fromisoformat(moved["starts_at"]) == datetime.fromisoformat(later)
    assert moved["place"] == first["place"]
    assert steps(await events(session, world))[-1] == ("comment", "session_rescheduled")
    # Online, without a place; but in person needs one.
    online = ok(
        await client.patch(url, json={"mode": "online", "place": None}, headers=world.mediator)
    )
    assert online["mode"] == "online" and online["place"] is None
    assert_problem(
        await client.patch(url, json={"mode": "in_person"}, headers=world.mediator),
        422,
        "mediation.session_place_required",
    )
    assert_problem(
        await client.patch(
            url, json={"starts_at": "9999-12-31T23:59:59-23:59"}, headers=world.mediator
        ),
        422,
        "mediation.session_time_invalid",
    )
    # Onto another session's time: a clash.
    assert_problem(
        await client.patch(url, json={"starts_at": second["starts_at"]}, headers=world.mediator),
        409,
        "mediation.session_clash",
    )
    assert_problem(
        await client.patch(
            url, json={"state": "cancelled", "starts_at": soon(240)}, headers=world.mediator
        ),
        422,
        "mediation.session_change_invalid",
    )
    assert_problem(
        await client.patch(url, json={"starts_at": soon(240)}, headers=world.applicant),
        403,
        "mediation.mediator_only",
    )
    assert_problem(
        await client.patch(f"{sessions}/{uuid.uuid4()}", json={}, headers=world.mediator),
        404,
        "mediation.session_not_found",
    )

    cancelled = ok(await client.patch(url, json={"state": "cancelled"}, headers=world.mediator))
    assert cancelled["state"] == "cancelled"
    assert ok(await client.patch(url, json={"state": "cancelled"}, headers=world.mediator)) == (
        cancelled
    )
    assert steps(await events(session, world))[-1] == ("comment", "session_cancelled")
    assert_problem(
        await client.patch(url, json={"starts_at": soon(300)}, headers=world.mediator),
        409,
        "mediation.session_not_scheduled",
    )
    assert_problem(
        await client.post(
            f"{url}/record", json={"attended": [], "minutes": "无人到场"}, headers=world.mediator
        ),
        409,
        "mediation.session_not_scheduled",
    )
    # A session of this mediation is not reachable through another one.
    other = await assigned_mediation(session, app, login, tag="b")
    assert_problem(
        await client.patch(
            f"{other.base}/sessions/{second['id']}",
            json={"state": "cancelled"},
            headers=other.mediator,
        ),
        404,
        "mediation.session_not_found",
    )


# --- the agreement -------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_an_agreement_confirmed_by_both_sides_concludes_the_mediation(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    agreement, confirm = f"{world.base}/agreement", f"{world.base}/agreement/confirm"
    upcoming = ok(
        await client.post(
            f"{world.base}/sessions", json=in_person(soon(60 * 24)), headers=world.mediator
        ),
        201,
    )

    # Nothing to confirm yet.
    assert_problem(
        private(await client.post(confirm, json={"version": 1}, headers=world.applicant)),
        409,
        "mediation.no_agreement_proposed",
    )
    # Only the mediator proposes.
    for headers in (world.applicant, world.admin):
        assert_problem(
            await client.put(agreement, json={"text": AGREEMENT}, headers=headers),
            403,
            "mediation.mediator_only",
        )
    proposed = ok(
        await client.put(
            agreement,
            json={"text": AGREEMENT, "judicial_confirmation": True},
            headers=world.mediator,
        )
    )
    assert proposed["state"] == "agreement_pending"
    assert proposed["agreement"]["version"] == 1
    assert proposed["agreement"]["judicial_confirmation"] is True
    assert [c["confirmed"] for c in proposed["agreement"]["confirmations"]] == [False, False]
    assert proposed["awaiting_your_confirmation"] is False  # the mediator confirms nothing

    # Neither the mediator nor a supervisor can confirm for a party.
    for headers in (world.mediator, world.admin):
        assert_problem(
            await client.post(confirm, json={"version": 1}, headers=headers),
            403,
            "mediation.party_only",
        )

    # The applicant reads and confirms; the mediation waits for the respondent.
    read = ok(private(await client.get(f"{world.base}/outcome", headers=world.applicant)))
    assert read["agreement"]["text"] == AGREEMENT and read["awaiting_your_confirmation"]
    one = ok(private(await client.post(confirm, json={"version": 1}, headers=world.applicant)))
    assert one["state"] == "agreement_pending" and not one["awaiting_your_confirmation"]
    by_role = {c["role"]: c for c in one["agreement"]["confirmations"]}
    assert by_role["applicant"]["confirmed"] and not by_role["respondent"]["confirmed"]
    assert by_role["respondent"]["name"] == "李四"
    assert (
        ok(private(await client.post(confirm, json={"version": 1}, headers=world.applicant)))[
            "agreement"
        ]
        == one["agreement"]
    )
    mediation, case = await reload(session, world)
    assert mediation.state == MediationState.agreement_pending and case.state == "in_progress"

    # The respondent confirms: concluded, and the case resolved.
    waiting = ok(private(await client.get(f"{world.base}/outcome", headers=world.respondent)))
    assert waiting["awaiting_your_confirmation"] is True
    done = ok(private(await client.post(confirm, json={"version": 1}, headers=world.respondent)))
    assert done["state"] == "concluded" and done["ended_at"] is not None
    assert done["agreement"]["confirmed_by_all"] is True
    # Confirming again answers the same.
    assert (
        ok(private(await client.post(confirm, json={"version": 1}, headers=world.respondent)))
        == done
    )

    mediation, case = await reload(session, world)
    assert mediation.state == MediationState.concluded and mediation.ended_at is not None
    assert case.state == "resolved" and case.resolved_at is not None
    timeline = await events(session, world)
    assert steps(timeline)[-4:] == [
        ("comment", "agreement_proposed"),
        ("comment", "agreement_confirmed"),
        ("comment", "agreement_confirmed"),
        ("resolve", None),
    ]
    assert timeline[-1].data == {
        "outcome": "agreement",
        "agreement_version": 1,
        "judicial_confirmation": True,
    }
    assert_timeline_discreet(timeline)
    # The session still ahead is called off.
    listed = ok(private(await client.get(f"{world.base}/sessions", headers=world.applicant)))
    assert [(s["id"], s["state"]) for s in listed["items"]] == [(upcoming["id"], "cancelled")]

    # After the end: no new agreement, no session, no other outcome.
    assert_problem(
        await client.put(agreement, json={"text": AGREEMENT + "补充"}, headers=world.mediator),
        409,
        "mediation.ended",
    )
    assert_problem(
        await client.post(
            f"{world.base}/sessions", json=in_person(soon(60)), headers=world.mediator
        ),
        409,
        "mediation.ended",
    )
    ended = await client.post(
        f"{world.base}/no-agreement", json={"referral": "court"}, headers=world.mediator
    )
    assert assert_problem(ended, 409, "mediation.ended")["state"] == "concluded"


@pytest.mark.usefixtures("demo")
async def test_a_changed_text_must_be_confirmed_again(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    agreement, confirm = f"{world.base}/agreement", f"{world.base}/agreement/confirm"
    ok(await client.put(agreement, json={"text": AGREEMENT}, headers=world.mediator))
    ok(await client.post(confirm, json={"version": 1}, headers=world.applicant))

    # The same text again changes nothing: the applicant's confirmation still counts.
    same = ok(await client.put(agreement, json={"text": AGREEMENT}, headers=world.mediator))
    assert same["agreement"]["version"] == 1
    assert {c["role"]: c["confirmed"] for c in same["agreement"]["confirmations"]} == {
        "applicant": True,
        "respondent": False,
    }
    assert steps(await events(session, world)).count(("comment", "agreement_proposed")) == 1

    changed = ok(
        await client.put(agreement, json={"text": AGREEMENT + "（第二稿）"}, headers=world.mediator)
    )
    assert changed["agreement"]["version"] == 2
    assert [c["confirmed"] for c in changed["agreement"]["confirmations"]] == [False, False]

    # The respondent confirming what they read before is told it changed.
    stale = await client.post(confirm, json={"version": 1}, headers=world.respondent)
    assert (
        assert_problem(private(stale), 409, "mediation.agreement_changed")["current_version"] == 2
    )
    half = ok(private(await client.post(confirm, json={"version": 2}, headers=world.respondent)))
    assert half["state"] == "agreement_pending"
    done = ok(private(await client.post(confirm, json={"version": 2}, headers=world.applicant)))
    assert done["state"] == "concluded"
    _, case = await reload(session, world)
    assert case.state == "resolved"
    assert (await events(session, world))[-1].data["agreement_version"] == 2


# --- no agreement --------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_no_agreement_ends_with_a_referral_the_parties_see(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    world = await assigned_mediation(session, app, login)
    url = f"{world.base}/no-agreement"
    held = ok(
        await client.post(
            f"{world.base}/sessions", json=in_person(soon(5)), headers=world.mediator
        ),
        201,
    )
    upcoming = ok(
        await client.post(
            f"{world.base}/sessions", json=in_person(soon(60 * 24)), headers=world.mediator
        ),
        201,
    )
    body = {"referral": "labour_arbitration", "note": "双方对欠薪数额分歧较大，建议申请劳动仲裁。"}

    for headers in (world.applicant, world.respondent, world.admin):
        assert_problem(
            await client.post(url, json=body, headers=headers), 403, "mediation.mediator_only"
        )
    assert_problem(
        await client.post(url, json={"referral": "moon_court"}, headers=world.mediator),
        422,
        "request.invalid",
    )
    clock.advance(timedelta(minutes=6))
    ended = ok(await client.post(url, json=body, headers=world.mediator))
    assert ended["state"] == "no_agreement" and ended["ended_at"] is not None
    assert ended["referral"]["route"] == "labour_arbitration"
    assert ended["referral"]["name"] == "劳动人事争议仲裁委员会"
    assert ended["referral"]["name_en"].startswith("Labour")
    assert ended["agreement"] is None

    # The parties see where to turn, and the mediator's note.
    for headers in (world.applicant, world.respondent):
        seen = ok(private(await client.get(f"{world.base}/outcome", headers=headers)))
        assert seen["referral"] == ended["referral"] and seen["note"] == body["note"]
        assert seen["awaiting_your_confirmation"] is False

    # A retry answers the same; another outcome is refused.
    assert ok(await client.post(url, json=body, headers=world.mediator)) == ended
    assert_problem(
        await client.post(url, json={"referral": "court"}, headers=world.mediator),
        409,
        "mediation.ended",
    )

    mediation, case = await reload(session, world)
    assert mediation.state == MediationState.no_agreement
    assert case.state == "resolved"
    timeline = await events(session, world)
    assert timeline[-1].action == "resolve"
    assert timeline[-1].data == {"outcome": "no_agreement", "referral": "labour_arbitration"}
    assert body["note"] not in str(timeline[-1].data) and timeline[-1].note is None

    # The session ahead is called off; the one that took place can still be recorded.
    states = {
        s["id"]: s["state"]
        for s in ok(await client.get(f"{world.base}/sessions", headers=world.mediator))["items"]
    }
    assert states == {held["id"]: "scheduled", upcoming["id"]: "cancelled"}
    recorded = await client.post(
        f"{world.base}/sessions/{held['id']}/record",
        json={"attended": [str(world.applicant_party)], "minutes": MINUTES},
        headers=world.mediator,
    )
    assert ok(recorded)["state"] == "held"
    # But nothing new is scheduled.
    assert_problem(
        await client.post(
            f"{world.base}/sessions", json=in_person(soon(60)), headers=world.mediator
        ),
        409,
        "mediation.ended",
    )


# --- illegal steps -------------------------------------------------------------------------


@pytest.mark.usefixtures("demo")
async def test_steps_out_of_turn_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    withdrawn = await assigned_mediation(
        session, app, login, tag="w", state=MediationState.withdrawn
    )
    for response in (
        await client.post(
            f"{withdrawn.base}/sessions", json=in_person(soon()), headers=withdrawn.mediator
        ),
        await client.put(
            f"{withdrawn.base}/agreement", json={"text": AGREEMENT}, headers=withdrawn.mediator
        ),
        await client.post(
            f"{withdrawn.base}/no-agreement", json={"referral": "court"}, headers=withdrawn.mediator
        ),
        private(
            await client.post(
                f"{withdrawn.base}/agreement/confirm",
                json={"version": 1},
                headers=withdrawn.applicant,
            )
        ),
    ):
        assert assert_problem(response, 409, "mediation.ended")["state"] == "withdrawn"

    # Confirming a version nobody proposed, while a mediation is in session.
    world = await assigned_mediation(session, app, login, tag="s")
    ok(
        await client.post(f"{world.base}/sessions", json=in_person(soon()), headers=world.mediator),
        201,
    )
    assert_problem(
        private(
            await client.post(
                f"{world.base}/agreement/confirm", json={"version": 1}, headers=world.respondent
            )
        ),
        409,
        "mediation.no_agreement_proposed",
    )
    # Malformed bodies are 422 without touching anything.
    for bad in ({"text": "太短"}, {"text": "x" * 20_001}, {}):
        assert_problem(
            await client.put(f"{world.base}/agreement", json=bad, headers=world.mediator),
            422,
            "request.invalid",
        )
    assert_problem(
        await client.post(
            f"{world.base}/agreement/confirm", json={"version": 0}, headers=world.applicant
        ),
        422,
        "request.invalid",
    )
    mediation, _ = await reload(session, world)
    assert mediation.state == MediationState.in_session and mediation.agreement_version == 0
    # The outcome so far, as a party sees it: nothing proposed, nothing ended.
    outcome = ok(private(await client.get(f"{world.base}/outcome", headers=world.respondent)))
    assert outcome == {
        "mediation_id": str(world.mediation_id),
        "state": "in_session",
        "agreement": None,
        "awaiting_your_confirmation": False,
        "referral": None,
        "note": None,
        "ended_at": None,
    }
    rows = (
        await session.execute(
            select(MediationSession).where(col(MediationSession.case_id) == world.mediation_id)
        )
    ).scalars()
    assert len(list(rows)) == 1


# --- at once (real commits, separate connections) ------------------------------------------


async def committed_mediation(factory: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """A mediation with its agreement on the table, committed in a place of its own."""
    tag = f"med3{secrets.token_hex(4)}"
    paths = (tag, f"{tag}.d", f"{tag}.d.s", f"{tag}.d.s.c", f"{tag}.d.s.c.g1")
    # A small square of sea far from the demo city, so no report ever lands in the grid.
    south, west = -30.0 - int(tag[-2:], 16) / 1000, 150.0
    ring = [
        [west, south],
        [west + 0.001, south],
        [west + 0.001, south + 0.001],
        [west, south + 0.001],
        [west, south],
    ]
    async with factory() as db:
        regions: list[Region] = []
        for path, level in zip(paths, RegionLevel, strict=True):
            region = Region(
                path=path,
                level=level,
                name=path,
                parent_id=regions[-1].id if regions else None,
                boundary={"type": "Polygon", "coordinates": [ring]}
                if level is RegionLevel.grid
                else None,
            )
            db.add(region)
            await db.flush()
            regions.append(region)
        applicant, respondent, mediator_user = (
            User(openid=f"{tag}-{who}", nickname=who)
            for who in ("applicant", "respondent", "mediator")
        )
        category = Category(
            kind=CaseKind.mediation,
            code=f"race_{tag}",
            name="测试纠纷",
            name_en="Test dispute",
            response_hours=72,
            resolution_hours=720,
            handling_unit="人民调解委员会",
            handling_unit_en="People's mediation committee",
        )
        db.add_all([applicant, respondent, mediator_user, category])
        await db.flush()
        mediator = Mediator(
            user_id=mediator_user.id,
            display_name="并发调解员",
            specialties=["neighbourhood"],
            region_id=regions[2].id,
            region_path=paths[2],
        )
        db.add(mediator)
        opened = await workflow.open_case(
            db,
            kind=CaseKind.mediation,
            category=category,
            description="并发确认调解协议",
            lat=south + 0.0005,
            lng=west + 0.0005,
            address=None,
            grid_id=regions[-1].id,
            grid_path=paths[-1],
            queue_path=paths[3],
            submitted_by=applicant.id,
            reporter_id=applicant.id,
            actor=workflow.Actor(applicant.id, workflow.RESIDENT),
            idempotency_key=tag,
            request_hash="race",
        )
        assert opened is not None
        case = opened[0]
        await workflow.apply(
            db, case, workflow.Action.accept, workflow.Actor(None, workflow.SYSTEM)
        )
        await db.flush()
        at = now()
        db.add(
            Mediation(
                case_id=case.id,
                dispute_type=DisputeType.neighbours,
                claim="停止夜间施工",
                state=MediationState.agreement_pending,
                applicant_id=applicant.id,
                region_path=paths[-1],
                mediator_id=mediator.id,
                assigned_at=at,
                consent_due_at=at + timedelta(hours=72),
                due_at=at + timedelta(days=30),
                agreement_text=AGREEMENT,
                agreement_version=1,
            )
        )
        await db.flush()
        db.add_all(
            MediationParty(
                case_id=case.id, role=role, user_id=user.id, name=name, consent=Consent.accepted
            )
            for role, user, name in (
                (PartyRole.applicant, applicant, "张三"),
                (PartyRole.respondent, respondent, "李四"),
            )
        )
        await db.commit()
    return {
        "case_id": case.id,
        "applicant": applicant.id,
        "respondent": respondent.id,
        "mediator": mediator_user.id,
    }


async def test_both_parties_confirming_at_once_conclude_it_once(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """Each request its own transaction: the row lock orders them, so the second sees the
    first's confirmation and concludes; retries of one scheduling make one session."""
    factory = create_sessionmaker(engine)
    made = await committed_mediation(factory)
    base = f"/v1/mediations/{made['case_id']}"

    def headers(user_id: uuid.UUID) -> dict[str, str]:
        token, _ = issue_access_token(user_id, app.state.settings, now())
        return {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        body = in_person(soon(60 * 24))
        scheduled = await asyncio.gather(
            *(
                http.post(f"{base}/sessions", json=body, headers=headers(made["mediator"]))
                for _ in range(4)
            )
        )
        assert sorted(r.status_code for r in scheduled) == [200, 200, 200, 201], [
            r.text for r in scheduled
        ]
        assert len({r.json()["id"] for r in scheduled}) == 1
        confirmed = await asyncio.gather(
            *(
                http.post(
                    f"{base}/agreement/confirm", json={"version": 1}, headers=headers(made[who])
                )
                for who in ("applicant", "respondent")
            )
        )
    assert [r.status_code for r in confirmed] == [200, 200], [r.text for r in confirmed]
    assert "concluded" in {r.json()["state"] for r in confirmed}

    async with factory() as db:
        mediation = await db.get(Mediation, made["case_id"])
        assert mediation is not None and mediation.state == MediationState.concluded
        timeline = (
            await db.execute(
                select(CaseEvent)
                .where(col(CaseEvent.case_id) == made["case_id"])
                .order_by(col(CaseEvent.seq))
            )
        ).scalars()
        actions = steps(list(timeline))
        assert actions.count(("resolve", None)) == 1
        assert actions.count(("comment", "agreement_confirmed")) == 2
        assert actions.count(("start", "session_scheduled")) == 1
        case = await db.get(Case, made["case_id"])
        assert case is not None and case.state == "resolved"
