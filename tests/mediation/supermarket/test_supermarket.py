"""The mediation supermarket through HTTP: studios and mediators kept by admins of an area,
the studios a resident may choose for a dispute, the applicant's choice (and the assignment
it makes), assignment by load, the supervisors' list and reassignment, the mediator's queue.

Every payload a party or a mediator reads is checked for the respondent's phone (digits and
masked form).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import Role, RoleGrant, User
from backend.cases import workflow
from backend.cases.models import CaseEvent, CaseKind, Category
from backend.core.clock import clock
from backend.core.database import create_sessionmaker
from backend.core.security import mask_phone
from backend.demo.loading import load_demo_data
from backend.demo.mediation import DEMO_STUDIO_NAME
from backend.mediation.models import (
    Consent,
    DisputeType,
    Mediation,
    MediationState,
    Mediator,
    Studio,
)
from backend.mediation.supermarket.assignment import pick_mediator
from backend.regions.models import Region, RegionLevel
from tests.conftest import Login, assert_problem, bearer
from tests.factories.mediation import (
    ELSEWHERE_STREET,
    GANGDING_GRID,
    SHIPAI,
    make_mediation,
    make_mediator,
    make_studio,
)
from tests.factories.volunteers import centre_of

pytestmark = pytest.mark.usefixtures("demo")

GANGDING = "gz.tianhe.shipai.gangding"
YUEXIU_GRID = "gz.yuexiu.beijing.fuqian.g01"
RESPONDENT_PHONE = "13912345678"
PHONES = (RESPONDENT_PHONE, mask_phone(RESPONDENT_PHONE))
STUDIOS = "/v1/admin/mediation-studios"
MEDIATORS = "/v1/admin/mediators"


def assert_no_phones(response: httpx.Response) -> None:
    for phone in PHONES:
        assert phone not in response.text, f"{phone} leaked: {response.text}"


async def headers_of(login: Login, openid: str) -> dict[str, str]:
    return bearer(await login(openid))


async def yuexiu_admin(client: httpx.AsyncClient, login: Login) -> dict[str, str]:
    """An admin of another district (Yuexiu), appointed by the city admin."""
    headers = await headers_of(login, "med-sm-yuexiu-admin")
    granted = await client.post(
        "/v1/admin/role-grants",
        json={"openid": "med-sm-yuexiu-admin", "role": "admin", "region_code": "gz.yuexiu"},
        headers=await headers_of(login, "demo-city-admin"),
    )
    assert granted.status_code == 201, granted.text
    return headers


async def carrying(
    session: AsyncSession, app: FastAPI, mediator: Mediator, cases: int
) -> list[Mediation]:
    """`cases` open mediations (neighbours, Gangding) assigned to `mediator`."""
    return [
        await make_mediation(
            session,
            app.state.personal_data,
            f"med-sm-load-{uuid.uuid4().hex[:8]}",
            respondents=(("李四", RESPONDENT_PHONE, None, Consent.accepted),),
            mediator=mediator,
        )
        for _ in range(cases)
    ]


async def waiting_for_mediator(
    session: AsyncSession, app: FastAPI, applicant: str, respondent: str | None = None
) -> Mediation:
    return await make_mediation(
        session,
        app.state.personal_data,
        applicant,
        respondents=(("李四", RESPONDENT_PHONE, respondent, Consent.accepted),),
        state=MediationState.awaiting_mediator,
    )


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["items"]]


# --- admins: studios -----------------------------------------------------------------------


async def test_admins_keep_the_studios_of_their_regions(
    client: httpx.AsyncClient, login: Login
) -> None:
    district = await headers_of(login, "demo-district-admin")
    city = await headers_of(login, "demo-city-admin")
    studio = {
        "name": "岗顶邻里调解室",
        "name_en": "Gangding Neighbours",
        "description": "社区里的老街坊帮忙说和",
        "specialties": ["neighbourhood", "family", "neighbourhood"],
        "area": GANGDING,
    }

    created = await client.post(STUDIOS, json=studio, headers=district)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["specialties"] == ["neighbourhood", "family"]
    assert body["area"] == {"code": GANGDING, "name": "岗顶社区", "name_en": "Gangding Community"}
    assert (body["active"], body["mediators"], body["load"], body["capacity"]) == (True, 0, 0, 0)

    # A retry answers the same studio; another studio of that name in the area is refused.
    again = await client.post(STUDIOS, json=studio, headers=district)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json()["id"] == body["id"]
    clash = await client.post(STUDIOS, json={**studio, "specialties": ["legal"]}, headers=district)
    assert_problem(clash, 409, "mediation.studio_name_taken")

    # The city admin opens one in Yuexiu; the Tianhe admin may not, nor see it.
    yuexiu = await client.post(
        STUDIOS,
        json={"name": "北京街调解室", "specialties": ["legal"], "area": ELSEWHERE_STREET},
        headers=city,
    )
    assert yuexiu.status_code == 201, yuexiu.text
    refused = await client.post(
        STUDIOS,
        json={"name": "越界调解室", "specialties": ["legal"], "area": ELSEWHERE_STREET},
        headers=district,
    )
    assert_problem(refused, 404, "regions.not_found")
    mine = await client.get(STUDIOS, headers=district)
    assert mine.status_code == 200, mine.text
    assert "岗顶邻里调解室" in names(mine.json()) and "北京街调解室" not in names(mine.json())
    everything = await client.get(STUDIOS, headers=city)
    assert {"岗顶邻里调解室", "北京街调解室"} <= set(names(everything.json()))
    outside = await client.patch(
        f"{STUDIOS}/{yuexiu.json()['id']}", json={"active": False}, headers=district
    )
    assert_problem(outside, 404, "mediation.studio_not_found")

    # Changing: a new description, then closing it.
    changed = await client.patch(
        f"{STUDIOS}/{body['id']}",
        json={"description": "周末也开门", "active": False},
        headers=district,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["active"]) == ("周末也开门", False)
    closed = await client.get(STUDIOS, params={"active": "false"}, headers=district)
    assert names(closed.json()) == ["岗顶邻里调解室"]

    # Staff who are no admins, and residents, manage nothing; no token is 401.
    for openid in ("demo-community-staff", "demo-grid-worker", "demo-mediator", "demo-resident"):
        headers = await headers_of(login, openid)
        assert_problem(await client.get(STUDIOS, headers=headers), 403, "mediation.admins_only")
        assert_problem(
            await client.post(STUDIOS, json=studio, headers=headers), 403, "mediation.admins_only"
        )
    assert_problem(await client.get(STUDIOS), 401, "auth.unauthenticated")


async def test_studio_names_clash_only_within_an_area(
    client: httpx.AsyncClient, login: Login
) -> None:
    district = await headers_of(login, "demo-district-admin")
    first = await client.post(
        STUDIOS,
        json={"name": "和事佬", "specialties": ["family"], "area": GANGDING},
        headers=district,
    )
    other = await client.post(
        STUDIOS,
        json={
            "name": "石牌东和事佬",
            "specialties": ["family"],
            "area": "gz.tianhe.shipai.shipaidong",
        },
        headers=district,
    )
    assert first.status_code == other.status_code == 201
    renamed = await client.patch(
        f"{STUDIOS}/{other.json()['id']}", json={"name": "和事佬"}, headers=district
    )
    assert renamed.status_code == 200, renamed.text
    same_area = await client.post(
        STUDIOS,
        json={"name": "二号", "specialties": ["family"], "area": GANGDING},
        headers=district,
    )
    clash = await client.patch(
        f"{STUDIOS}/{same_area.json()['id']}", json={"name": "和事佬"}, headers=district
    )
    assert_problem(clash, 409, "mediation.studio_name_taken")


# --- admins: mediators ---------------------------------------------------------------------


async def test_registering_a_mediator_grants_the_role(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    district = await headers_of(login, "demo-district-admin")
    newcomer = await headers_of(login, "med-sm-newcomer")
    studio = await make_studio(session, "石牌街法律服务室", region=SHIPAI, specialties=("legal",))
    entry = {
        "openid": "med-sm-newcomer",
        "display_name": "林律师",
        "title": "律师",
        "specialties": ["legal", "labour"],
        "area": GANGDING,
        "studio_id": str(studio.id),
        "max_active": 5,
    }

    created = await client.post(MEDIATORS, json=entry, headers=district)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["studio"]["name"] == "石牌街法律服务室"
    assert (body["area"]["code"], body["load"], body["max_active"]) == (GANGDING, 0, 5)
    me = await client.get("/v1/me", headers=newcomer)
    assert {"role": "mediator", "region_code": GANGDING, "region_name": "岗顶社区"} in me.json()[
        "roles"
    ]

    # A retry answers the same entry and adds no second grant; a different one is refused.
    again = await client.post(MEDIATORS, json=entry, headers=district)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    grants = await session.execute(
        select(func.count()).where(
            col(RoleGrant.user_id) == uuid.UUID(body["user_id"]),
            col(RoleGrant.role) == Role.mediator.value,
            col(RoleGrant.revoked_at).is_(None),
        )
    )
    assert grants.scalar_one() == 1
    assert_problem(
        await client.post(MEDIATORS, json={**entry, "max_active": 9}, headers=district),
        409,
        "mediation.mediator_exists",
    )

    # The studio's area must hold the mediator's; the admin's regions bound both.
    small = await make_studio(session, "岗顶小调解室", region=GANGDING, specialties=("legal",))
    await login("med-sm-second")
    second = {**entry, "openid": "med-sm-second", "area": SHIPAI, "studio_id": str(small.id)}
    assert_problem(
        await client.post(MEDIATORS, json=second, headers=district),
        409,
        "mediation.mediator_outside_studio",
    )
    assert_problem(
        await client.post(
            MEDIATORS,
            json={**second, "area": ELSEWHERE_STREET, "studio_id": None},
            headers=district,
        ),
        404,
        "regions.not_found",
    )
    assert_problem(
        await client.post(MEDIATORS, json={**second, "openid": "nobody-here"}, headers=district),
        404,
        "auth.user_not_found",
    )
    assert_problem(
        await client.post(
            MEDIATORS, json={**second, "studio_id": str(uuid.uuid4())}, headers=district
        ),
        404,
        "mediation.studio_not_found",
    )

    # Listed with their load; moving the area moves the role; deactivating keeps the entry.
    registered = await session.get(Mediator, uuid.UUID(body["id"]))
    assert registered is not None
    await carrying(session, app, registered, 2)
    listed = await client.get(MEDIATORS, params={"studio_id": str(studio.id)}, headers=district)
    assert [(m["display_name"], m["load"]) for m in listed.json()["items"]] == [("林律师", 2)]
    moved = await client.patch(
        f"{MEDIATORS}/{body['id']}", json={"area": SHIPAI, "active": False}, headers=district
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["area"]["code"], moved.json()["active"]) == (SHIPAI, False)
    roles = (await client.get("/v1/me", headers=newcomer)).json()["roles"]
    assert [(r["role"], r["region_code"]) for r in roles] == [("mediator", SHIPAI)]
    inactive = await client.get(MEDIATORS, params={"active": "false"}, headers=district)
    assert [m["id"] for m in inactive.json()["items"]] == [body["id"]]

    # Another district's admin finds none of it; staff are no admins.
    yuexiu = await yuexiu_admin(client, login)
    assert (await client.get(MEDIATORS, headers=yuexiu)).json()["items"] == []
    assert_problem(
        await client.patch(f"{MEDIATORS}/{body['id']}", json={"active": True}, headers=yuexiu),
        404,
        "mediation.mediator_not_found",
    )
    staff = await headers_of(login, "demo-community-staff")
    assert_problem(
        await client.post(MEDIATORS, json=second, headers=staff), 403, "mediation.admins_only"
    )


async def test_a_mediator_openid_with_a_nul_is_refused_before_the_database(
    client: httpx.AsyncClient, login: Login
) -> None:
    district = await headers_of(login, "demo-district-admin")
    entry = {
        "openid": "demo-resident\x002",
        "display_name": "林律师",
        "specialties": ["legal"],
        "area": GANGDING,
    }
    response = await client.post(MEDIATORS, json=entry, headers=district)
    assert_problem(response, 422, "request.invalid")


async def test_the_demo_has_a_studio_with_its_mediator(
    client: httpx.AsyncClient, login: Login, session: AsyncSession
) -> None:
    await load_demo_data(session)  # loading again adds nothing
    studios = await session.execute(
        select(func.count()).where(col(Studio.name) == DEMO_STUDIO_NAME)
    )
    assert studios.scalar_one() == 1
    listed = await client.get(MEDIATORS, headers=await headers_of(login, "demo-district-admin"))
    demo = [m for m in listed.json()["items"] if m["display_name"] == "周叔"]
    assert len(demo) == 1
    assert demo[0]["studio"]["name"] == DEMO_STUDIO_NAME
    assert set(demo[0]["specialties"]) == {"neighbourhood", "family", "property", "labour"}
    queue = await client.get(
        "/v1/mediator/mediations", headers=await headers_of(login, "demo-mediator")
    )
    assert queue.status_code == 200 and queue.json()["items"] == []


# --- residents: the studios that fit -------------------------------------------------------


async def test_only_fitting_studios_with_room_are_offered(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    fits = await make_studio(session, "岗顶邻里调解室", region=GANGDING)
    await make_mediator(session, "med-sm-fits", studio=fits, region=GANGDING, name="陈姐")
    legal = await make_studio(session, "石牌法律调解室", specialties=("legal",))
    await make_mediator(session, "med-sm-legal", studio=legal, specialties=("legal",))
    elsewhere = await make_studio(session, "北京街调解室", region=ELSEWHERE_STREET)
    await make_mediator(session, "med-sm-elsewhere", studio=elsewhere, region=ELSEWHERE_STREET)
    full = await make_studio(session, "满员调解室")
    await carrying(
        session, app, await make_mediator(session, "med-sm-full", studio=full, max_active=1), 1
    )
    closed = await make_studio(session, "停业调解室", active=False)
    await make_mediator(session, "med-sm-closed", studio=closed)
    empty = await make_studio(session, "无人调解室")
    busy = await make_studio(session, "繁忙调解室")
    await carrying(
        session, app, await make_mediator(session, "med-sm-busy", studio=busy, max_active=5), 4
    )
    resident = await headers_of(login, "demo-resident")
    lat, lng = await centre_of(session, GANGDING_GRID)

    found = await client.get(
        "/v1/mediation-studios",
        params={"dispute_type": "neighbours", "lat": lat, "lng": lng, "coord": "wgs84"},
        headers=resident,
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["place"]["code"] == GANGDING_GRID and body["specialty"] == "neighbourhood"
    # The closest available studio first, then the street's, then the busy one.
    assert names(body) == ["岗顶邻里调解室", DEMO_STUDIO_NAME, "繁忙调解室"]
    first = body["items"][0]
    assert first["mediators"] == [{"display_name": "陈姐", "title": None}]
    assert (first["mediator_count"], first["availability"]) == (1, "available")
    assert body["items"][2]["availability"] == "busy"
    assert "user_id" not in found.text and str(empty.id) not in found.text

    # Legal disputes: only the legal studio; at a place in another district, only its own.
    legal_found = await client.get(
        "/v1/mediation-studios",
        params={"dispute_type": "consumer", "lat": lat, "lng": lng, "coord": "wgs84"},
        headers=resident,
    )
    assert names(legal_found.json()) == ["石牌法律调解室"]
    y_lat, y_lng = await centre_of(session, YUEXIU_GRID)
    yuexiu = await client.get(
        "/v1/mediation-studios",
        params={"dispute_type": "neighbours", "lat": y_lat, "lng": y_lng, "coord": "wgs84"},
        headers=resident,
    )
    assert names(yuexiu.json()) == ["北京街调解室"]

    # A deactivated mediator leaves the studio without anyone: it is no longer offered.
    fitting_mediator = (
        await session.execute(select(Mediator).where(col(Mediator.display_name) == "陈姐"))
    ).scalar_one()
    district = await headers_of(login, "demo-district-admin")
    off = await client.patch(
        f"{MEDIATORS}/{fitting_mediator.id}", json={"active": False}, headers=district
    )
    assert off.status_code == 200, off.text
    again = await client.get(
        "/v1/mediation-studios",
        params={"dispute_type": "neighbours", "lat": lat, "lng": lng, "coord": "wgs84"},
        headers=resident,
    )
    assert "岗顶邻里调解室" not in names(again.json())

    nowhere = await client.get(
        "/v1/mediation-studios",
        params={"dispute_type": "neighbours", "lat": 39.9, "lng": 116.4},
        headers=resident,
    )
    assert_problem(nowhere, 404, "regions.outside_grids")
    assert_problem(
        await client.get(
            "/v1/mediation-studios", params={"dispute_type": "neighbours", "lat": lat, "lng": lng}
        ),
        401,
        "auth.unauthenticated",
    )


# --- residents: choosing a studio ----------------------------------------------------------


async def test_the_applicant_chooses_a_fitting_studio_before_assignment(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    studio = await make_studio(session, "岗顶邻里调解室", region=GANGDING)
    await make_mediator(session, "med-sm-chosen", studio=studio, region=GANGDING, name="陈姐")
    legal = await make_studio(session, "石牌法律调解室", specialties=("legal",))
    await make_mediator(session, "med-sm-legal", studio=legal, specialties=("legal",))
    applicant = await headers_of(login, "med-sm-applicant")
    respondent = await headers_of(login, "med-sm-respondent")
    third = await headers_of(login, "med-sm-third")
    mediation = await make_mediation(
        session,
        app.state.personal_data,
        "med-sm-applicant",
        respondents=(("李四", RESPONDENT_PHONE, "med-sm-respondent", Consent.pending),),
    )
    url = f"/v1/mediations/{mediation.case_id}/studio"

    chosen = await client.put(url, json={"studio_id": str(studio.id)}, headers=applicant)
    assert chosen.status_code == 200, chosen.text
    body = chosen.json()
    assert body["state"] == "awaiting_consent"
    assert body["preferred_studio"]["name"] == "岗顶邻里调解室"
    assert (body["mediator"], body["assigned_now"]) == (None, False)
    assert_no_phones(chosen)
    again = await client.put(url, json={"studio_id": str(studio.id)}, headers=applicant)
    assert again.status_code == 200 and again.json() == body

    assert_problem(
        await client.put(url, json={"studio_id": str(legal.id)}, headers=applicant),
        409,
        "mediation.studio_unfit",
    )
    assert_problem(
        await client.put(url, json={"studio_id": str(uuid.uuid4())}, headers=applicant),
        404,
        "mediation.studio_not_found",
    )
    refused = await client.put(url, json={"studio_id": str(studio.id)}, headers=respondent)
    assert_problem(refused, 403, "mediation.applicant_chooses_studio")
    assert_no_phones(refused)
    for outsider in (third, await headers_of(login, "demo-community-staff")):
        assert_problem(
            await client.put(url, json={"studio_id": str(studio.id)}, headers=outsider),
            404,
            "mediation.not_found",
        )
    stored = await session.get(Mediation, mediation.case_id)
    await session.refresh(stored)
    assert stored is not None and stored.preferred_studio_id == studio.id


async def test_choosing_while_waiting_for_a_mediator_assigns_at_once(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    studio = await make_studio(session, "岗顶邻里调解室", region=GANGDING)
    await make_mediator(session, "med-sm-chosen", studio=studio, region=GANGDING, name="陈姐")
    other = await make_studio(session, "石牌东调解室")
    await make_mediator(session, "med-sm-other", studio=other, name="黄伯")
    applicant = await headers_of(login, "med-sm-applicant")
    mediation = await waiting_for_mediator(session, app, "med-sm-applicant")
    url = f"/v1/mediations/{mediation.case_id}/studio"

    chosen = await client.put(url, json={"studio_id": str(studio.id)}, headers=applicant)
    assert chosen.status_code == 200, chosen.text
    body = chosen.json()
    assert (body["state"], body["assigned_now"]) == ("assigned", True)
    assert body["mediator"] == {"display_name": "陈姐", "title": None}
    assert body["studio"]["id"] == str(studio.id)
    assert_no_phones(chosen)
    queue = await client.get(
        "/v1/mediator/mediations", headers=await headers_of(login, "med-sm-chosen")
    )
    assert [item["id"] for item in queue.json()["items"]] == [str(mediation.case_id)]

    # Assigned: the choice is closed, even for the same studio.
    for choice in (other.id, studio.id):
        assert_problem(
            await client.put(url, json={"studio_id": str(choice)}, headers=applicant),
            409,
            "mediation.studio_choice_closed",
        )
    ended = await make_mediation(
        session, app.state.personal_data, "med-sm-applicant", state=MediationState.withdrawn
    )
    assert_problem(
        await client.put(
            f"/v1/mediations/{ended.case_id}/studio",
            json={"studio_id": str(studio.id)},
            headers=applicant,
        ),
        409,
        "mediation.studio_choice_closed",
    )


async def test_assignment_goes_to_the_lightest_mediator_with_room(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    studio = await make_studio(session, "岗顶邻里调解室", region=GANGDING)
    heavy = await make_mediator(session, "med-sm-heavy", studio=studio, region=GANGDING)
    light = await make_mediator(session, "med-sm-light", studio=studio, region=GANGDING)
    full = await make_mediator(session, "med-sm-full", studio=studio, region=GANGDING, max_active=1)
    await carrying(session, app, heavy, 3)
    await carrying(session, app, light, 2)
    await carrying(session, app, full, 1)  # the lightest load, but no room
    applicant = await headers_of(login, "med-sm-applicant")

    first = await waiting_for_mediator(session, app, "med-sm-applicant")
    chosen = await client.put(
        f"/v1/mediations/{first.case_id}/studio",
        json={"studio_id": str(studio.id)},
        headers=applicant,
    )
    assert chosen.status_code == 200, chosen.text
    await session.refresh(first)
    assert first.mediator_id == light.id

    # Now both carry 3: the tie goes to the first registered; the full one still gets none.
    second = await waiting_for_mediator(session, app, "med-sm-applicant")
    await client.put(
        f"/v1/mediations/{second.case_id}/studio",
        json={"studio_id": str(studio.id)},
        headers=applicant,
    )
    await session.refresh(second)
    assert second.mediator_id == heavy.id
    listed = await client.get(
        MEDIATORS,
        params={"studio_id": str(studio.id)},
        headers=await headers_of(login, "demo-district-admin"),
    )
    loads = {m["id"]: m["load"] for m in listed.json()["items"]}
    assert loads == {str(heavy.id): 4, str(light.id): 3, str(full.id): 1}


# --- supervisors ---------------------------------------------------------------------------


async def test_supervisors_list_and_reassign(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    first = await make_mediator(session, "med-sm-first", name="陈姐")
    second = await make_mediator(session, "med-sm-second", name="黄伯")
    legal_only = await make_mediator(session, "med-sm-legal", specialties=("legal",))
    far = await make_mediator(session, "med-sm-far", region=ELSEWHERE_STREET)
    retired = await make_mediator(session, "med-sm-retired")
    retired.active = False
    await session.flush()
    clock.freeze(clock.now())
    mediation = await make_mediation(
        session,
        app.state.personal_data,
        "med-sm-applicant",
        respondents=(("李四", RESPONDENT_PHONE, None, Consent.accepted),),
        mediator=first,
    )
    clock.advance(timedelta(days=3, hours=1))
    district = await headers_of(login, "demo-district-admin")
    city = await headers_of(login, "demo-city-admin")

    listed = await client.get("/v1/staff/mediations", headers=district)
    assert listed.status_code == 200, listed.text
    (item,) = [i for i in listed.json()["items"] if i["id"] == str(mediation.case_id)]
    assert (item["state"], item["dispute_type"], item["days_open"]) == ("assigned", "neighbours", 3)
    assert item["mediator"]["display_name"] == "陈姐"
    assert (item["escalated"], item["overdue"], item["place_code"]) == (False, False, GANGDING_GRID)
    assert_no_phones(listed)
    city_list = await client.get(
        "/v1/staff/mediations", params={"state": ["assigned"]}, headers=city
    )
    assert str(mediation.case_id) in city_list.text
    filtered = await client.get(
        "/v1/staff/mediations", params={"state": ["concluded"]}, headers=district
    )
    assert str(mediation.case_id) not in filtered.text

    url = f"/v1/staff/mediations/{mediation.case_id}/assign"
    moved = await client.post(
        url, json={"mediator_id": str(second.id), "note": "原调解员休假"}, headers=district
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["mediator"]["display_name"] == "黄伯"
    assert moved.json()["state"] == "assigned"
    first_queue = await client.get(
        "/v1/mediator/mediations", headers=await headers_of(login, "med-sm-first")
    )
    assert first_queue.json()["items"] == []
    second_queue = await client.get(
        "/v1/mediator/mediations", headers=await headers_of(login, "med-sm-second")
    )
    assert [i["id"] for i in second_queue.json()["items"]] == [str(mediation.case_id)]

    # The same mediator again: answered unchanged, nothing written.
    events = select(func.count()).where(col(CaseEvent.case_id) == mediation.case_id)
    before = (await session.execute(events)).scalar_one()
    same = await client.post(url, json={"mediator_id": str(second.id)}, headers=district)
    assert same.status_code == 200 and same.json() == moved.json()
    assert (await session.execute(events)).scalar_one() == before

    # Mediators who do not fit, with the reason.
    for mediator, code in (
        (legal_only, "mediation.mediator_wrong_specialty"),
        (far, "mediation.mediator_outside_area"),
        (retired, "mediation.mediator_inactive"),
    ):
        assert_problem(
            await client.post(url, json={"mediator_id": str(mediator.id)}, headers=district),
            409,
            code,
        )
    assert_problem(
        await client.post(url, json={"mediator_id": str(uuid.uuid4())}, headers=district),
        404,
        "mediation.mediator_not_found",
    )

    # Nobody but the admins above finds it here: not staff of the place, not the mediator,
    # not its applicant, not another district's admin.
    yuexiu = await yuexiu_admin(client, login)
    for outsider in (
        await headers_of(login, "demo-community-staff"),
        await headers_of(login, "demo-grid-worker"),
        await headers_of(login, "med-sm-second"),
        await headers_of(login, "med-sm-applicant"),
        yuexiu,
    ):
        assert_problem(
            await client.post(url, json={"mediator_id": str(first.id)}, headers=outsider),
            404,
            "mediation.not_found",
        )
    assert (
        str(mediation.case_id)
        not in (await client.get("/v1/staff/mediations", headers=yuexiu)).text
    )
    for openid in ("demo-community-staff", "demo-grid-worker", "med-sm-second"):
        assert_problem(
            await client.get("/v1/staff/mediations", headers=await headers_of(login, openid)),
            403,
            "mediation.supervisors_only",
        )

    # Past its time limit it shows as overdue.
    clock.advance(timedelta(days=30))
    district = await headers_of(login, "demo-district-admin")  # a fresh token
    late = await client.get("/v1/staff/mediations", headers=district)
    (item,) = [i for i in late.json()["items"] if i["id"] == str(mediation.case_id)]
    assert (item["overdue"], item["days_open"]) == (True, 33)


async def test_supervisors_assign_only_what_waits_or_is_open(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    mediator = await make_mediator(session, "med-sm-first", name="陈姐", max_active=1)
    await carrying(session, app, mediator, 1)  # full: a supervisor may still give it one
    district = await headers_of(login, "demo-district-admin")
    waiting = await waiting_for_mediator(session, app, "med-sm-applicant")

    assigned = await client.post(
        f"/v1/staff/mediations/{waiting.case_id}/assign",
        json={"mediator_id": str(mediator.id)},
        headers=district,
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["state"] == "assigned"
    events = await session.execute(
        select(CaseEvent.action).where(col(CaseEvent.case_id) == waiting.case_id)
    )
    assert list(events.scalars())[-1] == "accept"

    for state, reason in (
        (MediationState.awaiting_consent, "not all agreed"),
        (MediationState.withdrawn, "ended"),
    ):
        other = await make_mediation(
            session, app.state.personal_data, "med-sm-applicant", state=state
        )
        refused = await client.post(
            f"/v1/staff/mediations/{other.case_id}/assign",
            json={"mediator_id": str(mediator.id)},
            headers={**district, "Accept-Language": "en"},
        )
        body = assert_problem(refused, 409, "mediation.not_assignable")
        assert reason in body["detail"]


# --- the mediator's own queue --------------------------------------------------------------


async def test_the_mediator_sees_only_their_own_cases(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, app: FastAPI
) -> None:
    mine = await make_mediator(session, "med-sm-mine", name="陈姐")
    theirs = await make_mediator(session, "med-sm-theirs", name="黄伯")
    older, newer = await carrying(session, app, mine, 2)
    other = (await carrying(session, app, theirs, 1))[0]
    newer.state = MediationState.in_session
    await session.flush()
    headers = await headers_of(login, "med-sm-mine")

    queue = await client.get("/v1/mediator/mediations", headers=headers)
    assert queue.status_code == 200, queue.text
    items = queue.json()["items"]
    assert [i["id"] for i in items] == [str(newer.case_id), str(older.case_id)]
    assert items[0]["parties"] == [
        {"role": "applicant", "name": "申请人", "consent": "accepted"},
        {"role": "respondent", "name": "李四", "consent": "accepted"},
    ]
    assert items[0]["next_deadline"] is not None and items[0]["overdue"] is False
    assert str(other.case_id) not in queue.text
    assert_no_phones(queue)

    page = await client.get("/v1/mediator/mediations", params={"limit": 1}, headers=headers)
    assert [i["id"] for i in page.json()["items"]] == [str(newer.case_id)]
    rest = await client.get(
        "/v1/mediator/mediations",
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
        headers=headers,
    )
    assert [i["id"] for i in rest.json()["items"]] == [str(older.case_id)]
    assert rest.json()["next_cursor"] is None
    only = await client.get(
        "/v1/mediator/mediations", params={"state": ["assigned"]}, headers=headers
    )
    assert [i["id"] for i in only.json()["items"]] == [str(older.case_id)]

    for openid in ("demo-resident", "demo-community-staff", "demo-district-admin"):
        assert_problem(
            await client.get("/v1/mediator/mediations", headers=await headers_of(login, openid)),
            403,
            "mediation.not_a_mediator",
        )
    assert_problem(await client.get("/v1/mediator/mediations"), 401, "auth.unauthenticated")


# --- two assignments at once ---------------------------------------------------------------


async def _committed_mediator(engine: AsyncEngine) -> tuple[str, Mediator, Category, User]:
    """A one-grid city of its own with one mediator who has room for one case, committed."""
    city = f"zm{secrets.token_hex(4)}"
    grid = f"{city}.d.s.c.g1"
    async with create_sessionmaker(engine)() as session:
        parent_id = None
        for depth, level in enumerate(RegionLevel):
            path = ".".join(grid.split(".")[: depth + 1])
            region = Region(path=path, level=level, name=path, parent_id=parent_id)
            session.add(region)
            await session.flush()
            parent_id = region.id
        applicant = User(openid=f"med-sm-race-{secrets.token_hex(6)}", nickname="并发申请人")
        person = User(openid=f"med-sm-race-{secrets.token_hex(6)}", nickname="并发调解员")
        category = Category(
            kind=CaseKind.report,
            code=f"t_{secrets.token_hex(4)}",
            name="并发",
            name_en="Concurrency",
            response_hours=72,
            resolution_hours=720,
            handling_unit="调委会",
            handling_unit_en="Committee",
            # Committed for real: kept out of the public catalogue the other tests read.
            active=False,
        )
        session.add_all([applicant, person, category])
        await session.flush()
        mediator = Mediator(
            user_id=person.id,
            display_name="并发",
            specialties=["neighbourhood"],
            region_id=parent_id,
            region_path=city,
            max_active=1,
        )
        session.add(mediator)
        await session.commit()
    return grid, mediator, category, applicant


async def test_two_disputes_at_once_cannot_both_take_the_last_place(engine: AsyncEngine) -> None:
    grid, mediator, category, applicant = await _committed_mediator(engine)
    factory = create_sessionmaker(engine)

    async def carry(session: AsyncSession, picked: Mediator) -> None:
        """What an assignment writes: an open case given to the picked mediator."""
        opened = await workflow.open_case(
            session,
            kind=CaseKind.report,
            category=category,
            description="并发分配",
            lat=0.0,
            lng=0.0,
            address=None,
            grid_id=mediator.region_id,
            grid_path=grid,
            queue_path=grid,
            submitted_by=applicant.id,
            reporter_id=applicant.id,
            actor=workflow.Actor(applicant.id, workflow.RESIDENT),
            idempotency_key=secrets.token_hex(8),
            request_hash="0" * 64,
        )
        assert opened is not None
        at = clock.now()
        session.add(
            Mediation(
                case_id=opened[0].id,
                dispute_type=DisputeType.neighbours,
                claim="并发",
                state=MediationState.assigned,
                applicant_id=applicant.id,
                region_path=grid,
                mediator_id=picked.id,
                consent_due_at=at,
                due_at=at + timedelta(days=30),
            )
        )
        await session.flush()

    async with factory() as first, factory() as second:
        won = await pick_mediator(first, DisputeType.neighbours, grid)
        assert won is not None and won.id == mediator.id
        # The second request waits for the first one's lock ...
        waiting = asyncio.create_task(pick_mediator(second, DisputeType.neighbours, grid))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        # ... which then gives the mediator their last place and commits.
        await carry(first, won)
        await first.commit()
        assert await waiting is None
        await second.rollback()
