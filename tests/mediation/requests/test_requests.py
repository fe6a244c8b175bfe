"""Mediation requests: the request and its idempotency, invitations and consent, assignment
once everyone agreed, decline and timeout (not mediated, with advice), the time limit,
withdrawal, re-issued codes, and who sees what.

Every payload any caller receives here goes through `Caller`, which fails the test when a
phone the caller may not see is in it: nobody ever gets a full number, a party sees only
their own masked phone, the mediator and supervisors every party's masked phone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlmodel import col

from backend import worker
from backend.auth.models import User
from backend.cases import workflow
from backend.cases.categories.service import forget_catalogue
from backend.cases.models import Case, CaseKind, Category
from backend.core.clock import clock, now
from backend.core.config import Settings
from backend.core.database import create_sessionmaker
from backend.core.security import issue_access_token, mask_phone
from backend.mediation import tasks as mediation_tasks
from backend.mediation.models import (
    Consent,
    DisputeType,
    Mediation,
    MediationParty,
    MediationState,
    Mediator,
    PartyRole,
)
from backend.mediation.requests.invitations import new_invitation_code
from backend.regions.models import Region
from backend.wechat.emulator import EmulatorServer
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer
from tests.factories.cases import committed_world
from tests.factories.mediation import ELSEWHERE_STREET, make_mediation, make_mediator, make_studio
from tests.factories.storage import uploaded_photo
from tests.factories.volunteers import user_id_of

GANGDING = "gz.tianhe.shipai.gangding"
SHIPAI = "gz.tianhe.shipai"
# The middle of Gangding's grid g05 (WGS-84), as in the case tests.
G05 = (23.1300 + 1.5 * 0.0027, 113.3250 + 1.5 * 0.0029)
BEIJING = (39.9087, 116.3975)  # far outside the demo city

APPLICANT_PHONE = "13800001111"
RESPONDENT_PHONE = "13912345678"
SECOND_PHONE = "13712340000"
FACTORY_PHONE = "13912345678"  # what `make_mediation` gives its respondent
PHONES = (APPLICANT_PHONE, RESPONDENT_PHONE, SECOND_PHONE)
CODE = re.compile(r"^[2-9A-HJ-NP-Z]{10}$")


# --- confidentiality, asserted on every payload ----------------------------------------------


def assert_no_phone_leak(
    response: httpx.Response, *, own: str | None = None, sees_masked: bool = False
) -> None:
    """No full phone ever; a masked one only the caller's own, or any for the mediator and
    supervisors."""
    for number in PHONES:
        assert number not in response.text, f"a full phone leaked: {response.text}"
        if not sees_masked and number != own:
            assert mask_phone(number) not in response.text, (
                f"the other side's phone leaked: {response.text}"
            )


@dataclass
class Caller:
    """Someone using the API; whatever they receive is checked for phones."""

    client: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)
    own: str | None = None  # the phone on their own party row
    sees_masked: bool = False  # the mediator and supervisors

    def checked(self, response: httpx.Response) -> httpx.Response:
        assert_no_phone_leak(response, own=self.own, sees_masked=self.sees_masked)
        return response

    async def get(self, url: str, **params: Any) -> httpx.Response:
        return self.checked(await self.client.get(url, params=params, headers=self.headers))

    async def post(self, url: str, json: Any = None, *, key: str | None = None) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.checked(await self.client.post(url, json=json, headers=headers))


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dispute_type": "neighbours",
        "description": "楼上邻居装修，每天晚上十点后仍在施工，噪音扰民，多次沟通无果",
        "claim": "请求对方晚上十点后停止施工",
        "location": {"lat": G05[0], "lng": G05[1], "coord": "wgs84"},
        "address": "岗顶某小区3栋",
        "applicant_name": "张三",
        "respondents": [{"name": "李四", "phone": RESPONDENT_PHONE}],
    }
    body.update(overrides)
    return body


async def requested(applicant: Caller, **overrides: Any) -> dict[str, Any]:
    response = await applicant.post(
        "/v1/mediations", json=request_body(**overrides), key=uuid.uuid4().hex
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def by_role(mediation: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [p for p in mediation["parties"] if p["role"] == role]


def steps(mediation: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e["action"], e["by"], e["data"]) for e in mediation["timeline"]]


def near(value: str, expected: datetime, slack: timedelta = timedelta(minutes=1)) -> bool:
    return abs(datetime.fromisoformat(value) - expected) < slack


async def mediations_of(session: AsyncSession, openid: str) -> int:
    applicant_id = await user_id_of(session, openid)
    counted = await session.execute(
        select(func.count())
        .select_from(Mediation)
        .where(col(Mediation.applicant_id) == applicant_id)
    )
    return int(counted.scalar_one())


async def case_of(session: AsyncSession, mediation_id: str) -> Case:
    case = await session.get(Case, uuid.UUID(mediation_id), populate_existing=True)
    assert case is not None
    return case


@dataclass
class People:
    client: httpx.AsyncClient
    login: Login
    applicant: Caller
    respondent: Caller

    async def caller(self, openid: str, **kwargs: Any) -> Caller:
        return Caller(self.client, bearer(await self.login(openid)), **kwargs)

    async def log_in_again(self) -> None:
        """Fresh tokens for the applicant and the respondent after the clock moved on."""
        self.applicant.headers = bearer(await self.login("med-app-1"))
        self.respondent.headers = bearer(await self.login("med-res-1"))


async def with_phone(
    client: httpx.AsyncClient, login: Login, emulator: EmulatorServer, openid: str, number: str
) -> dict[str, str]:
    """Log in and bind a phone as the mini-program does (getPhoneNumber's code)."""
    headers = bearer(await login(openid))
    code = await emulator.phone_code(openid, number)
    bound = await client.post("/v1/me/phone", json={"code": code}, headers=headers)
    assert bound.status_code == 200
    return headers


@pytest.fixture
async def people(
    demo: None,
    client: httpx.AsyncClient,
    login: Login,
    emulator: EmulatorServer,
    session: AsyncSession,
) -> People:
    # The supermarket holds only the mediators each test makes (the demo's are set aside),
    # so who gets a dispute follows from the test alone.
    await session.execute(update(Mediator).values(active=False))
    await session.commit()
    applicant = Caller(
        client,
        await with_phone(client, login, emulator, "med-app-1", APPLICANT_PHONE),
        own=APPLICANT_PHONE,
    )
    respondent = Caller(client, bearer(await login("med-res-1")), own=RESPONDENT_PHONE)
    return People(client, login, applicant, respondent)


@pytest.fixture
def worker_factory(connection: AsyncConnection) -> Any:
    """Sessions for the worker, inside this test's transaction."""

    def make() -> AsyncSession:
        return AsyncSession(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        )

    return make


# --- the request -----------------------------------------------------------------------------


async def test_a_request_shows_the_codes_once_and_a_retry_answers_the_same_mediation(
    people: People, session: AsyncSession
) -> None:
    applicant = people.applicant
    body = request_body(
        respondents=[
            {"name": "李四", "phone": RESPONDENT_PHONE},
            {"name": "王五", "phone": SECOND_PHONE},
        ]
    )
    key = uuid.uuid4().hex
    first = await applicant.post("/v1/mediations", json=body, key=key)
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["number"].startswith("MED-")
    assert (made["state"], made["viewer"], made["dispute_type"]) == (
        "awaiting_consent",
        "applicant",
        "neighbours",
    )
    assert made["place"]["code"] == GANGDING and made["grid"]["code"] == f"{GANGDING}.g05"
    assert made["claim"] == body["claim"] and made["address"] == body["address"]
    assert near(made["consent_due_at"], now() + timedelta(hours=72))
    assert near(made["due_at"], now() + timedelta(days=30))
    [me] = by_role(made, "applicant")
    assert (me["name"], me["consent"], me["is_you"]) == ("张三", "accepted", True)
    assert me["phone"] == mask_phone(APPLICANT_PHONE)  # my own, masked
    respondents = by_role(made, "respondent")
    assert [(p["name"], p["consent"], p["phone"]) for p in respondents] == [
        ("李四", "pending", None),
        ("王五", "pending", None),
    ]
    invitations = made["invitations"]
    assert [i["name"] for i in invitations] == ["李四", "王五"]
    assert [i["party_id"] for i in invitations] == [p["id"] for p in respondents]
    for invitation in invitations:
        assert CODE.match(invitation["code"]), invitation["code"]
        assert invitation["code"] in invitation["share_text"]
        assert made["number"] in invitation["share_text"] and "张三" in invitation["share_text"]
    assert invitations[0]["code"] != invitations[1]["code"]
    assert made["hint"] is None

    # A retry from a flaky network: the same mediation, but the codes are gone for good.
    retry = await applicant.post("/v1/mediations", json=body, key=key)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replay"] == "true"
    again = retry.json()
    assert again["id"] == made["id"] and again["number"] == made["number"]
    assert again["invitations"] == [] and again["hint"]
    assert all(i["code"] not in retry.text for i in invitations)
    assert await mediations_of(session, "med-app-1") == 1

    changed = await applicant.post("/v1/mediations", json={**body, "claim": "赔偿损失"}, key=key)
    assert_problem(changed, 409, "case.idempotency_conflict")
    assert await mediations_of(session, "med-app-1") == 1

    # Reading it later never shows a code either.
    read = await applicant.get(f"/v1/mediations/{made['id']}")
    assert read.status_code == 200
    assert all(i["code"] not in read.text for i in invitations)
    assert read.json()["timeline"][0]["action"] == "submit"
    assert read.json()["timeline"][0]["by"] == "applicant"


async def test_a_request_with_evidence(
    people: People, phone: httpx.AsyncClient, session: AsyncSession
) -> None:
    photo = await uploaded_photo(people.client, phone, people.applicant.headers)
    made = await requested(people.applicant, upload_ids=[photo])
    [evidence] = made["evidence"]
    assert evidence["id"] == photo and evidence["content_type"] == "image/jpeg"
    fetched = await phone.get(evidence["url"])
    assert fetched.status_code == 200
    # The same upload cannot be evidence twice.
    reused = await people.applicant.post(
        "/v1/mediations", json=request_body(upload_ids=[photo]), key=uuid.uuid4().hex
    )
    assert_problem(reused, 409, "upload.already_attached")
    assert await mediations_of(session, "med-app-1") == 1


async def test_a_request_is_refused_with_a_clear_reason(
    people: People,
    session: AsyncSession,
    client: httpx.AsyncClient,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applicant = people.applicant
    monkeypatch.setitem(app.state.settings.rate_limits, "mediation_request", "100/hour")

    async def refused(body: dict[str, Any], caller: Caller = applicant) -> httpx.Response:
        return await caller.post("/v1/mediations", json=body, key=uuid.uuid4().hex)

    no_phone = await people.caller("med-nophone")
    body = assert_problem(await refused(request_body(), no_phone), 403, "mediation.phone_required")
    assert "绑定手机号" in body["detail"]
    assert_problem(
        await refused(request_body(respondents=[{"name": "我", "phone": APPLICANT_PHONE}])),
        422,
        "mediation.respondent_is_you",
    )
    twice = [
        {"name": "李四", "phone": RESPONDENT_PHONE},
        {"name": "老李", "phone": RESPONDENT_PHONE},
    ]
    assert_problem(
        await refused(request_body(respondents=twice)), 422, "mediation.respondent_duplicate"
    )
    far = {"lat": BEIJING[0], "lng": BEIJING[1], "coord": "wgs84"}
    assert_problem(await refused(request_body(location=far)), 422, "case.outside_grids")
    assert_problem(
        await refused(request_body(preferred_studio_id=str(uuid.uuid4()))),
        422,
        "mediation.preferred_studio_invalid",
    )
    closed = await make_studio(session, "已停业调解室", active=False)
    await session.commit()
    assert_problem(
        await refused(request_body(preferred_studio_id=str(closed.id))),
        422,
        "mediation.preferred_studio_invalid",
    )
    # Malformed: pydantic's 422.
    for malformed in (
        request_body(respondents=[]),
        request_body(respondents=[{"name": "李四", "phone": "12345678901"}]),
        request_body(respondents=[{"name": f"人{i}", "phone": f"1391234567{i}"} for i in range(6)]),
        request_body(dispute_type="murder"),
        request_body(description="短"),
    ):
        assert_problem(await refused(malformed), 422, "request.invalid")
    missing_key = await client.post(
        "/v1/mediations", json=request_body(), headers=applicant.headers
    )
    applicant.checked(missing_key)
    assert_problem(missing_key, 400, "request.idempotency_key_required")
    anonymous = await client.post("/v1/mediations", json=request_body())
    assert_problem(anonymous, 401, "auth.unauthenticated")
    assert await mediations_of(session, "med-app-1") == 0


async def test_a_dispute_type_no_longer_offered_is_a_clear_error(
    people: People, session: AsyncSession, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await session.execute(
        update(Category)
        .where(col(Category.kind) == CaseKind.mediation.value, col(Category.code) == "family")
        .values(active=False)
    )
    await session.commit()
    forget_catalogue()
    response = await people.applicant.post(
        "/v1/mediations", json=request_body(dispute_type="family"), key=uuid.uuid4().hex
    )
    assert_problem(response, 422, "mediation.dispute_type_unavailable")

    # And requests are rate-limited per user.
    monkeypatch.setitem(app.state.settings.rate_limits, "mediation_request", "1/hour")
    await requested(people.applicant)
    limited = await people.applicant.post(
        "/v1/mediations", json=request_body(), key=uuid.uuid4().hex
    )
    assert_problem(limited, 429, "request.rate_limited")


# --- invitations and consent -----------------------------------------------------------------


async def test_the_invited_respondent_sees_a_summary_without_the_applicants_contact(
    people: People, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await requested(people.applicant)
    code = made["invitations"][0]["code"]
    response = await people.respondent.get(f"/v1/mediation-invitations/{code}")
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["number"] == made["number"]
    assert (summary["dispute_type"], summary["dispute_type_name"]) == ("neighbours", "邻里纠纷")
    assert summary["description"] == made["description"] and summary["claim"] == made["claim"]
    assert (summary["applicant_name"], summary["invited_as"]) == ("张三", "李四")
    assert summary["place"]["code"] == GANGDING and summary["place"]["name"]
    assert (summary["consent"], summary["state"], summary["mediation_id"]) == (
        "pending",
        "awaiting_consent",
        None,
    )
    assert summary["consent_due_at"] == made["consent_due_at"]
    # The applicant's name only: no phone (checked by `Caller`), no account id.
    applicant_party = by_role(made, "applicant")[0]
    assert applicant_party["id"] not in response.text
    assert "applicant_id" not in response.text

    # Typed from a chat: any case, with spaces or a dash.
    typed = f"{code[:5].lower()}-{code[5:]} "
    assert (await people.respondent.get(f"/v1/mediation-invitations/{typed}")).status_code == 200
    assert_problem(
        await people.respondent.get("/v1/mediation-invitations/ABCDEFGHJK"),
        404,
        "mediation.invitation_not_found",
    )
    assert_problem(
        await people.respondent.get("/v1/mediation-invitations/not-a-code"),
        404,
        "mediation.invitation_not_found",
    )
    assert_problem(
        await people.applicant.get(f"/v1/mediation-invitations/{code}"),
        409,
        "mediation.own_invitation",
    )

    # Codes cannot be guessed: lookups are rate-limited per user.
    monkeypatch.setitem(app.state.settings.rate_limits, "mediation_invitation", "2/minute")
    guesser = await people.caller("med-guesser")
    for _ in range(2):
        await guesser.get("/v1/mediation-invitations/ABCDEFGHJK")
    assert_problem(
        await guesser.get(f"/v1/mediation-invitations/{code}"), 429, "request.rate_limited"
    )


async def test_accepting_assigns_a_fitting_mediator_the_preferred_studio_first(
    people: People, session: AsyncSession, app: FastAPI
) -> None:
    studio = await make_studio(session, "石牌邻里调解工作室")
    # Passed over: the wrong specialty here, the right one in another district.
    await make_mediator(session, "med-labour", specialties=("labour",), name="劳动调解员")
    await make_mediator(session, "med-yuexiu", region=ELSEWHERE_STREET, name="越秀调解员")
    await make_mediator(session, "med-light", name="陈调解员")
    preferred = await make_mediator(session, "med-studio", studio=studio, name="林调解员")
    # The studio's mediator carries a case already; the preference still wins.
    await make_mediation(session, app.state.personal_data, "med-app-old", mediator=preferred)
    await session.commit()

    made = await requested(people.applicant, preferred_studio_id=str(studio.id))
    assert made["preferred_studio_name"] == "石牌邻里调解工作室"
    code = made["invitations"][0]["code"]
    accepted = await people.respondent.post(f"/v1/mediation-invitations/{code}/accept")
    assert accepted.status_code == 200, accepted.text
    answer = accepted.json()
    assert (answer["consent"], answer["state"], answer["mediation_id"]) == (
        "accepted",
        "assigned",
        made["id"],
    )
    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert view["state"] == "assigned" and view["assigned_at"]
    assert view["mediator"] == {
        "display_name": "林调解员",
        "title": None,
        "studio_name": "石牌邻里调解工作室",
    }
    assert ("comment", "respondent", {"step": "consent", "consent": "accepted"}) in steps(view)
    assert [(a, b) for a, b, _ in steps(view)][-1] == ("accept", "system")
    assert by_role(view, "respondent")[0]["consent"] == "accepted"
    assert (await case_of(session, made["id"])).state == "accepted"

    # Sent again: the same answer. Anyone else with the code, or the applicant: refused.
    again = await people.respondent.post(f"/v1/mediation-invitations/{code}/accept")
    assert again.status_code == 200 and again.json() == answer
    intruder = await people.caller("med-intruder")
    assert_problem(
        await intruder.post(f"/v1/mediation-invitations/{code}/accept"),
        409,
        "mediation.invitation_used",
    )
    assert_problem(
        await intruder.get(f"/v1/mediation-invitations/{code}"), 409, "mediation.invitation_used"
    )
    assert_problem(
        await people.applicant.post(f"/v1/mediation-invitations/{code}/accept"),
        409,
        "mediation.own_invitation",
    )
    assert_problem(
        await people.respondent.post(f"/v1/mediation-invitations/{code}/decline"),
        409,
        "mediation.consent_already_given",
    )

    # Without a preference, the least loaded mediator who fits takes the next one.
    second = await requested(people.applicant, claim="请求对方赔礼道歉")
    other = await people.caller("med-res-2", own=RESPONDENT_PHONE)
    code = second["invitations"][0]["code"]
    assert (await other.post(f"/v1/mediation-invitations/{code}/accept")).status_code == 200
    view = (await people.applicant.get(f"/v1/mediations/{second['id']}")).json()
    assert view["mediator"]["display_name"] == "陈调解员"
    assert view["mediator"]["studio_name"] is None


async def test_every_respondent_must_agree_and_without_a_fitting_mediator_it_waits(
    people: People, session: AsyncSession
) -> None:
    made = await requested(
        people.applicant,
        dispute_type="labour_wages",
        respondents=[
            {"name": "李老板", "phone": RESPONDENT_PHONE},
            {"name": "王经理", "phone": SECOND_PHONE},
        ],
    )
    first_code, second_code = (i["code"] for i in made["invitations"])
    first = await people.respondent.post(f"/v1/mediation-invitations/{first_code}/accept")
    assert first.json()["state"] == "awaiting_consent"
    # One person, one side: the first respondent cannot also answer for the second.
    assert_problem(
        await people.respondent.post(f"/v1/mediation-invitations/{second_code}/accept"),
        409,
        "mediation.already_party",
    )
    second = await people.caller("med-res-2", own=SECOND_PHONE)
    answer = (await second.post(f"/v1/mediation-invitations/{second_code}/accept")).json()
    # Nobody in the supermarket handles labour disputes here yet: the supervisors assign.
    assert answer["state"] == "awaiting_mediator"
    view = (await second.get(f"/v1/mediations/{made['id']}")).json()
    assert (view["state"], view["mediator"], view["viewer"]) == (
        "awaiting_mediator",
        None,
        "respondent",
    )
    mine = [p for p in view["parties"] if p["is_you"]]
    assert [(p["name"], p["phone"]) for p in mine] == [("王经理", mask_phone(SECOND_PHONE))]
    assert all(p["phone"] is None for p in view["parties"] if not p["is_you"])
    assert (await case_of(session, made["id"])).state == "submitted"


async def test_a_decline_ends_it_not_mediated_with_advice_on_other_routes(
    people: People, session: AsyncSession
) -> None:
    made = await requested(people.applicant, dispute_type="labour_wages")
    code = made["invitations"][0]["code"]
    declined = await people.respondent.post(
        f"/v1/mediation-invitations/{code}/decline", json={"reason": "我们已经私下协商"}
    )
    assert declined.status_code == 200, declined.text
    answer = declined.json()
    assert (answer["consent"], answer["state"], answer["mediation_id"]) == (
        "declined",
        "not_mediated",
        None,
    )
    routes = ["labour_inspection", "labour_arbitration"]
    assert [a["route"] for a in answer["advice"]] == routes
    assert answer["advice"][0]["name"] == "劳动保障监察" and answer["advice"][0]["how_en"]

    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert view["state"] == "not_mediated" and view["ended_at"]
    assert [a["route"] for a in view["advice"]] == routes
    [respondent] = by_role(view, "respondent")
    assert (respondent["consent"], respondent["decline_reason"]) == ("declined", "我们已经私下协商")
    assert ("comment", "respondent", {"step": "consent", "consent": "declined"}) in steps(view)
    assert steps(view)[-1] == ("reject", "system", {"reason": "declined"})
    case = await case_of(session, made["id"])
    assert (case.state, case.rejected_reason) == ("rejected", "declined")

    # Sent again: the same. Having declined, they are no party to it any more.
    again = await people.respondent.post(f"/v1/mediation-invitations/{code}/decline")
    assert again.status_code == 200 and again.json() == answer
    assert_problem(
        await people.respondent.post(f"/v1/mediation-invitations/{code}/accept"),
        409,
        "mediation.consent_already_given",
    )
    assert_problem(
        await people.respondent.get(f"/v1/mediations/{made['id']}"), 404, "mediation.not_found"
    )

    # A consumer dispute points to 12315; a family one to the court and legal aid.
    consumer = await requested(people.applicant, dispute_type="consumer")
    other = await people.caller("med-res-2", own=RESPONDENT_PHONE)
    code = consumer["invitations"][0]["code"]
    answer = (await other.post(f"/v1/mediation-invitations/{code}/decline")).json()
    assert [a["route"] for a in answer["advice"]] == ["consumer_association"]


async def test_no_answer_in_time_ends_it_not_mediated(
    people: People,
    session: AsyncSession,
    settings: Settings,
    worker_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = await requested(people.applicant, dispute_type="family")
    code = made["invitations"][0]["code"]
    party_id = made["invitations"][0]["party_id"]

    clock.advance(timedelta(hours=71))
    caplog.set_level(logging.INFO, logger="shanzhi.worker")
    assert (await worker.run_jobs(worker_factory, worker.all_jobs(settings))).healthy
    await people.log_in_again()
    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert view["state"] == "awaiting_consent"  # not yet

    clock.advance(timedelta(hours=1, minutes=1))
    await people.log_in_again()
    assert_problem(
        await people.respondent.post(f"/v1/mediation-invitations/{code}/accept"),
        409,
        "mediation.consent_closed",
    )
    assert_problem(
        await people.applicant.post(
            f"/v1/mediations/{made['id']}/respondents/{party_id}/invitation"
        ),
        409,
        "mediation.consent_closed",
    )
    assert (await worker.run_jobs(worker_factory, worker.all_jobs(settings))).healthy
    assert re.search(r"mediation: [1-9]\d* not mediated", caplog.text)
    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert view["state"] == "not_mediated" and view["ended_at"]
    assert by_role(view, "respondent")[0]["consent"] == "expired"
    assert [a["route"] for a in view["advice"]] == ["court", "legal_aid"]
    assert steps(view)[-1] == ("reject", "system", {"reason": "consent_expired"})
    events = len(view["timeline"])

    # The job does it once.
    async with worker_factory() as worker_session:
        assert await mediation_tasks.expire_consents(worker_session, now()) == 0
    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert len(view["timeline"]) == events
    summary = (await people.respondent.get(f"/v1/mediation-invitations/{code}")).json()
    assert (summary["consent"], summary["state"]) == ("expired", "not_mediated")
    assert [a["route"] for a in summary["advice"]] == ["court", "legal_aid"]


async def test_past_the_time_limit_it_is_escalated_to_the_supervisors_once(
    people: People, session: AsyncSession, app: FastAPI, login: Login
) -> None:
    mediator = await make_mediator(session, "med-slow")
    mediation = await make_mediation(
        session, app.state.personal_data, "med-app-1", mediator=mediator
    )
    await session.commit()
    mediation_id = str(mediation.case_id)

    async def escalated_at() -> datetime | None:
        row = await session.get(Mediation, mediation.case_id, populate_existing=True)
        assert row is not None
        return row.escalated_at

    clock.advance(timedelta(days=29, hours=23))
    await mediation_tasks.escalate_overdue(session, now())
    assert await escalated_at() is None
    clock.advance(timedelta(hours=1, minutes=1))
    assert await mediation_tasks.escalate_overdue(session, now()) >= 1
    assert await escalated_at() is not None
    assert await mediation_tasks.escalate_overdue(session, now()) == 0
    await people.log_in_again()

    supervisor = await people.caller("demo-district-admin", sees_masked=True)
    view = (await supervisor.get(f"/v1/mediations/{mediation_id}")).json()
    assert view["viewer"] == "supervisor" and view["escalated_at"]
    escalations = [e for e in view["timeline"] if e["action"] == "escalate"]
    assert [
        (e["by"], e["data"]["reason"], e["data"]["from"], e["data"]["to"]) for e in escalations
    ] == [("system", "mediation_overdue", GANGDING, SHIPAI)]
    case = await case_of(session, mediation_id)
    assert (case.queue_path, case.escalation_level, case.state) == (SHIPAI, 1, "accepted")
    # Still the mediator's; the parties see that it was escalated too.
    applicant = Caller(people.client, people.applicant.headers, own=None)
    assert (await applicant.get(f"/v1/mediations/{mediation_id}")).json()["escalated_at"]


# --- withdrawal and re-issued codes ----------------------------------------------------------


async def test_the_applicant_withdraws_and_nobody_else_can(
    people: People, session: AsyncSession, client: httpx.AsyncClient
) -> None:
    made = await requested(people.applicant)
    code = made["invitations"][0]["code"]
    await people.respondent.post(f"/v1/mediation-invitations/{code}/accept")
    url = f"/v1/mediations/{made['id']}/withdraw"
    assert_problem(await people.respondent.post(url), 403, "mediation.applicant_only")
    third = await people.caller("med-third")
    assert_problem(await third.post(url), 404, "mediation.not_found")
    assert_problem(await client.post(url), 401, "auth.unauthenticated")

    withdrawn = await people.applicant.post(url, json={"reason": "双方已自行和解"})
    assert withdrawn.status_code == 200, withdrawn.text
    view = withdrawn.json()
    assert view["state"] == "withdrawn" and view["ended_at"]
    assert view["advice"] == []
    last = view["timeline"][-1]
    assert (last["action"], last["by"], last["note"], last["data"]) == (
        "reject",
        "applicant",
        "双方已自行和解",
        {"reason": "withdrawn"},
    )
    case = await case_of(session, made["id"])
    assert (case.state, case.rejected_reason) == ("rejected", "withdrawn")
    again = await people.applicant.post(url)
    assert again.status_code == 200 and again.json()["timeline"] == view["timeline"]
    # The respondent sees it withdrawn.
    seen = (await people.respondent.get(f"/v1/mediations/{made['id']}")).json()
    assert seen["state"] == "withdrawn"


async def test_withdrawing_during_sessions_resolves_the_case_and_an_ended_one_stays(
    demo: None, client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    mediator = await make_mediator(session, "med-busy")
    personal_data = app.state.personal_data
    in_session = await make_mediation(
        session, personal_data, "med-app-2", mediator=mediator, state=MediationState.in_session
    )
    case = await session.get(Case, in_session.case_id)
    assert case is not None
    await workflow.apply(
        session, case, workflow.Action.start, workflow.Actor(mediator.user_id, "mediator")
    )
    concluded = await make_mediation(
        session, personal_data, "med-app-2", mediator=mediator, state=MediationState.concluded
    )
    await session.commit()
    # The factory's respondent has the factory's phone: the applicant must never see it.
    applicant = Caller(client, bearer(await login("med-app-2")))

    withdrawn = await applicant.post(f"/v1/mediations/{in_session.case_id}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    assert steps(withdrawn.json())[-1] == ("resolve", "applicant", {"outcome": "withdrawn"})
    assert (await case_of(session, str(in_session.case_id))).state == "resolved"

    ended = await applicant.post(f"/v1/mediations/{concluded.case_id}/withdraw")
    assert_problem(ended, 409, "mediation.ended")
    view = (await applicant.get(f"/v1/mediations/{concluded.case_id}")).json()
    assert view["state"] == "concluded"


async def test_a_lost_code_is_reissued_and_the_old_one_stops_working(
    people: People, session: AsyncSession
) -> None:
    made = await requested(people.applicant)
    old = made["invitations"][0]["code"]
    party_id = made["invitations"][0]["party_id"]
    url = f"/v1/mediations/{made['id']}/respondents/{party_id}/invitation"
    # Before they accept, the respondent is nobody to the mediation.
    assert_problem(await people.respondent.post(url), 404, "mediation.not_found")

    reissued = await people.applicant.post(url)
    assert reissued.status_code == 201, reissued.text
    new = reissued.json()
    assert new["party_id"] == party_id and new["name"] == "李四"
    assert CODE.match(new["code"]) and new["code"] != old and new["code"] in new["share_text"]
    assert_problem(
        await people.respondent.get(f"/v1/mediation-invitations/{old}"),
        404,
        "mediation.invitation_not_found",
    )
    assert_problem(
        await people.respondent.post(f"/v1/mediation-invitations/{old}/accept"),
        404,
        "mediation.invitation_not_found",
    )
    view = (await people.applicant.get(f"/v1/mediations/{made['id']}")).json()
    assert new["code"] not in str(view)
    assert ("comment", "applicant", {"step": "invitation_reissued"}) in steps(view)

    applicant_party = by_role(made, "applicant")[0]["id"]
    assert_problem(
        await people.applicant.post(
            f"/v1/mediations/{made['id']}/respondents/{applicant_party}/invitation"
        ),
        404,
        "mediation.party_not_found",
    )
    accepted = await people.respondent.post(f"/v1/mediation-invitations/{new['code']}/accept")
    assert accepted.status_code == 200
    assert_problem(await people.respondent.post(url), 403, "mediation.applicant_only")
    assert_problem(await people.applicant.post(url), 409, "mediation.invitation_answered")


# --- who sees what ---------------------------------------------------------------------------


async def test_each_viewer_sees_what_they_may_and_everyone_else_nothing(
    people: People, session: AsyncSession, staff_elsewhere: StaffElsewhere
) -> None:
    await make_mediator(session, "med-shipai", name="石牌调解员")
    await make_mediator(session, "med-yuexiu", region=ELSEWHERE_STREET)
    await session.commit()
    made = await requested(people.applicant)
    code = made["invitations"][0]["code"]
    await people.respondent.post(f"/v1/mediation-invitations/{code}/accept")
    url = f"/v1/mediations/{made['id']}"

    def phones(view: dict[str, Any]) -> dict[str, str | None]:
        return {p["role"]: p["phone"] for p in view["parties"]}

    as_applicant = (await people.applicant.get(url)).json()
    assert as_applicant["viewer"] == "applicant"
    assert phones(as_applicant) == {"applicant": mask_phone(APPLICANT_PHONE), "respondent": None}
    as_respondent = (await people.respondent.get(url)).json()
    assert as_respondent["viewer"] == "respondent"
    assert phones(as_respondent) == {"applicant": None, "respondent": mask_phone(RESPONDENT_PHONE)}
    assert [p["name"] for p in as_respondent["parties"]] == ["张三", "李四"]  # names are shown
    assert as_respondent["description"] == as_applicant["description"]

    mediator = await people.caller("med-shipai", sees_masked=True)
    as_mediator = (await mediator.get(url)).json()
    assert as_mediator["viewer"] == "mediator"
    assert as_mediator["mediator"]["display_name"] == "石牌调解员"
    every_masked = {
        "applicant": mask_phone(APPLICANT_PHONE),
        "respondent": mask_phone(RESPONDENT_PHONE),
    }
    assert phones(as_mediator) == every_masked
    for openid in ("demo-district-admin", "demo-city-admin"):
        supervisor = await people.caller(openid, sees_masked=True)
        as_supervisor = (await supervisor.get(url)).json()
        assert as_supervisor["viewer"] == "supervisor"
        assert phones(as_supervisor) == every_masked
    # The timeline names roles, never people or their ids.
    for entry in as_mediator["timeline"]:
        assert entry["by"] in {"applicant", "respondent", "mediator", "supervisor", "system"}
        assert not any(key.endswith("_id") for key in entry["data"])

    nobody = [
        await people.caller("med-third"),
        await people.caller("demo-community-staff"),
        await people.caller("demo-grid-worker"),
        await people.caller("med-yuexiu"),
        Caller(people.client, await staff_elsewhere()),
    ]
    for outsider in nobody:
        assert_problem(await outsider.get(url), 404, "mediation.not_found")
        assert_problem(await outsider.post(f"{url}/withdraw"), 404, "mediation.not_found")
    assert_problem(await Caller(people.client).get(url), 401, "auth.unauthenticated")
    assert_problem(
        await people.applicant.get(f"/v1/mediations/{uuid.uuid4()}"), 404, "mediation.not_found"
    )


async def test_my_mediations_lists_only_mine_newest_first(
    people: People, session: AsyncSession, app: FastAPI
) -> None:
    first = await requested(people.applicant)
    second = await requested(people.applicant, dispute_type="consumer")
    # Invited to someone else's, but not (yet) accepted: not listed for the respondent.
    pending = await requested(people.applicant, dispute_type="family")
    await people.respondent.post(
        f"/v1/mediation-invitations/{first['invitations'][0]['code']}/accept"
    )
    # Someone else's mediation.
    await make_mediation(session, app.state.personal_data, "med-app-stranger")
    await session.commit()

    page = await people.applicant.get("/v1/me/mediations", limit=2)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [m["id"] for m in body["items"]] == [pending["id"], second["id"]]
    assert body["items"][0]["role"] == "applicant" and body["items"][0]["summary"]
    rest = (
        await people.applicant.get("/v1/me/mediations", limit=2, cursor=body["next_cursor"])
    ).json()
    assert [m["id"] for m in rest["items"]] == [first["id"]] and rest["next_cursor"] is None

    as_respondent = (await people.respondent.get("/v1/me/mediations")).json()
    assert [(m["id"], m["role"]) for m in as_respondent["items"]] == [(first["id"], "respondent")]
    filtered = (await people.applicant.get("/v1/me/mediations", state="awaiting_mediator")).json()
    assert [m["id"] for m in filtered["items"]] == [first["id"]]
    stranger = await people.caller("med-third")
    assert (await stranger.get("/v1/me/mediations")).json()["items"] == []
    assert_problem(
        await people.applicant.get("/v1/me/mediations", cursor="!!"), 400, "request.cursor_invalid"
    )


# --- answers at the same moment --------------------------------------------------------------


@dataclass
class Committed:
    """A mediation committed for real (separate connections see it), awaiting consent."""

    mediation_id: uuid.UUID
    codes: list[str]
    mediator_id: uuid.UUID


async def committed_mediation(engine: AsyncEngine, app: FastAPI, respondents: int) -> Committed:
    world = await committed_world(engine)
    personal_data = app.state.personal_data
    async with create_sessionmaker(engine)() as session:
        category = Category(
            kind=CaseKind.mediation,
            code=f"t_{secrets.token_hex(4)}",
            name="并发调解",
            name_en="Concurrent mediation",
            response_hours=72,
            resolution_hours=720,
            handling_unit="人民调解委员会",
            handling_unit_en="People's mediation committee",
        )
        mediator_user = User(openid=f"med-conc-{secrets.token_hex(6)}", nickname="并发调解员")
        session.add_all([category, mediator_user])
        await session.flush()
        community = (
            await session.execute(select(Region).where(col(Region.path) == world.community))
        ).scalar_one()
        mediator = Mediator(
            user_id=mediator_user.id,
            display_name="并发调解员",
            specialties=["neighbourhood"],
            region_id=community.id,
            region_path=community.path,
        )
        session.add(mediator)
        opened = await workflow.open_case(
            session,
            kind=CaseKind.mediation,
            category=category,
            description="并发答复测试",
            lat=0.0,
            lng=0.0,
            address=None,
            grid_id=world.grid_id,
            grid_path=world.grid,
            queue_path=world.community,
            submitted_by=world.resident.id,
            reporter_id=world.resident.id,
            actor=workflow.Actor(world.resident.id, workflow.RESIDENT),
            idempotency_key=secrets.token_hex(8),
            request_hash="0" * 64,
        )
        assert opened is not None
        case = opened[0]
        at = now()
        session.add(
            Mediation(
                case_id=case.id,
                dispute_type=DisputeType.neighbours,
                claim="请求停止施工",
                state=MediationState.awaiting_consent,
                applicant_id=world.resident.id,
                region_path=world.grid,
                consent_due_at=at + timedelta(hours=72),
                due_at=at + timedelta(days=30),
            )
        )
        await session.flush()
        session.add(
            MediationParty(
                case_id=case.id,
                role=PartyRole.applicant,
                user_id=world.resident.id,
                name="申请人",
                consent=Consent.accepted,
                consent_at=at,
            )
        )
        codes = [new_invitation_code() for _ in range(respondents)]
        session.add_all(
            MediationParty(
                case_id=case.id,
                role=PartyRole.respondent,
                name=f"被申请人{i}",
                invitation_hash=personal_data.lookup_hash(code),
                invited_at=at,
                consent=Consent.pending,
            )
            for i, code in enumerate(codes)
        )
        await session.commit()
    return Committed(case.id, codes, mediator.id)


async def committed_users(engine: AsyncEngine, app: FastAPI, count: int) -> list[dict[str, str]]:
    """Headers of `count` new users, committed."""
    async with create_sessionmaker(engine)() as session:
        users = [User(openid=f"med-conc-{secrets.token_hex(6)}") for _ in range(count)]
        session.add_all(users)
        await session.commit()
    return [
        {"Authorization": f"Bearer {issue_access_token(u.id, app.state.settings, now())[0]}"}
        for u in users
    ]


async def test_the_last_two_respondents_accepting_at_once_assign_the_mediator_once(
    app: FastAPI, engine: AsyncEngine
) -> None:
    committed = await committed_mediation(engine, app, respondents=2)
    first, second = await committed_users(engine, app, 2)
    # Real requests, each with its own connection and transaction.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        answers = await asyncio.gather(
            http.post(f"/v1/mediation-invitations/{committed.codes[0]}/accept", headers=first),
            http.post(f"/v1/mediation-invitations/{committed.codes[1]}/accept", headers=second),
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert_no_phone_leak(answer)
    # Whoever came second saw the first one's consent, and assigned the mediator.
    assert sorted(a.json()["state"] for a in answers) == ["assigned", "awaiting_consent"]
    async with create_sessionmaker(engine)() as session:
        mediation = await session.get(Mediation, committed.mediation_id)
        assert mediation is not None and mediation.state == MediationState.assigned
        assert mediation.mediator_id == committed.mediator_id
        timeline = await workflow.timeline(session, committed.mediation_id)
        assert [e.action for e in timeline].count("accept") == 1
        assert [e.data.get("consent") for e in timeline if e.action == "comment"] == [
            "accepted",
            "accepted",
        ]


async def test_two_people_answering_with_one_code_at_once_one_wins(
    app: FastAPI, engine: AsyncEngine
) -> None:
    committed = await committed_mediation(engine, app, respondents=1)
    first, second = await committed_users(engine, app, 2)
    url = f"/v1/mediation-invitations/{committed.codes[0]}"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        answers = await asyncio.gather(
            http.post(f"{url}/accept", headers=first),
            http.post(f"{url}/decline", headers=second),
        )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    [loser] = [a for a in answers if a.status_code == 409]
    assert_problem(loser, 409, "mediation.invitation_used")
    async with create_sessionmaker(engine)() as session:
        timeline = await workflow.timeline(session, committed.mediation_id)
        assert [e.action for e in timeline].count("comment") == 1
