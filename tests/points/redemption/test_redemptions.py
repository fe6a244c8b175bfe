"""Redemption: reserve with a pickup code, fulfil at the counter, cancel, expire, redeem in one
step with the member's code, the staff's export, and many members racing for the last items."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from backend.auth.models import Role, RoleGrant, User
from backend.core.clock import clock, now
from backend.core.database import create_sessionmaker
from backend.core.security import issue_access_token
from backend.regions.models import Region, RegionLevel
from points.ledger import queries as ledger_queries
from points.ledger import service as ledger_service
from points.models import (
    PointsAccount,
    PointsPosting,
    Redemption,
    Reward,
    RewardStock,
    ServiceCenter,
)
from points.redemption.tasks import expire_redemptions
from tests.conftest import Login, StaffElsewhere, assert_problem, bearer

# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Demo:
    """The demo's Gangding center and its rewards, by short name."""

    center: str
    rewards: dict[str, str]


@pytest.fixture
async def world(demo: None, session: AsyncSession) -> Demo:
    center = (
        await session.execute(
            select(col(ServiceCenter.id)).where(col(ServiceCenter.code) == "gangding-center")
        )
    ).scalar_one()
    rewards = await session.execute(select(col(Reward.name_en), col(Reward.id)))
    names = {"Northeast rice, 5 kg": "rice", "Cotton towel": "towel"}
    names |= {"Laundry detergent, 2 kg": "detergent", "Peanut oil, 1.8 L": "oil"}
    return Demo(
        center=str(center),
        rewards={names[name]: str(rid) for name, rid in rewards.all() if name in names},
    )


async def user_id(session: AsyncSession, openid: str) -> uuid.UUID:
    found = await session.execute(select(col(User.id)).where(col(User.openid) == openid))
    return found.scalar_one()


async def give(session: AsyncSession, member: uuid.UUID, points: int) -> None:
    """Award points through the ledger, as an activity would."""
    await ledger_service.award(
        session,
        member_id=member,
        points=points,
        reason="test",
        source_ref=f"test:{secrets.token_hex(4)}",
        idempotency_key=f"test-award:{secrets.token_hex(8)}",
    )
    await session.commit()


async def available(session: AsyncSession, member: uuid.UUID) -> int:
    result = await ledger_queries.balance(session, member)
    return int(result.available)


async def held(session: AsyncSession, member: uuid.UUID) -> int:
    result = await ledger_queries.balance(session, member)
    return int(result.held)


async def stock(session: AsyncSession, reward: str, center: str) -> tuple[int, int]:
    row = await session.get(
        RewardStock, (uuid.UUID(reward), uuid.UUID(center)), populate_existing=True
    )
    assert row is not None
    return row.on_hand, row.reserved


async def set_stock(session: AsyncSession, reward: str, center: str, on_hand: int) -> None:
    row = await session.get(RewardStock, (uuid.UUID(reward), uuid.UUID(center)))
    assert row is not None
    row.on_hand = on_hand
    await session.commit()


async def redeem(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    reward: str,
    center: str,
    quantity: int = 1,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/redemptions",
        json={"reward": reward, "center": center, "quantity": quantity},
        headers=headers | {"Idempotency-Key": key or secrets.token_hex(8)},
    )


async def redeemed(
    client: httpx.AsyncClient, headers: dict[str, str], reward: str, center: str, q: int = 1
) -> dict[str, Any]:
    response = await redeem(client, headers, reward, center, q)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def fulfil(
    client: httpx.AsyncClient, headers: dict[str, str], code: str, center: str
) -> httpx.Response:
    return await client.post(
        f"/v1/staff/redemptions/{code}/fulfil", json={"center": center}, headers=headers
    )


async def as_user(login: Login, openid: str) -> dict[str, str]:
    return bearer(await login(openid))


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


# --- the happy path -------------------------------------------------------------------------


async def test_redeem_pick_up_and_the_books_balance(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    rice = world.rewards["rice"]

    reservation = await redeemed(client, alice, rice, world.center, 2)
    assert reservation["state"] == "pending" and reservation["channel"] == "app"
    assert reservation["quantity"] == 2 and reservation["points_total"] == 600
    assert reservation["unit_price"] == 300
    assert reservation["reward"]["name_en"] == "Northeast rice, 5 kg"
    assert reservation["center"]["code"] == "gangding-center"
    code = reservation["pickup_code"]
    assert len(code) == 6 and code.isdigit()
    assert reservation["qr_payload"].startswith("SZR1")
    expires = reservation["expires_at"]
    hours = (_parse(expires) - _parse(reservation["created_at"])).total_seconds() / 3600
    assert hours == 72
    # Points held, stock reserved.
    assert await available(session, alice_id) == 400
    assert await held(session, alice_id) == 600
    assert await stock(session, rice, world.center) == (40, 2)
    catalog = await client.get("/v1/rewards", params={"center": world.center}, headers=alice)
    [item] = [r for r in catalog.json()["centers"][0]["rewards"] if r["id"] == rice]
    assert item["left"] == 38 and item["allowance"] == 0

    staff = await as_user(login, "demo-community-staff")
    done = await fulfil(client, staff, code, world.center)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "fulfilled" and done.json()["id"] == reservation["id"]
    assert done.json()["fulfilled_at"] and done.json()["pickup_code"] is None
    assert await stock(session, rice, world.center) == (38, 0)
    assert await available(session, alice_id) == 400
    assert await held(session, alice_id) == 0
    # The points went to the center's redemption account (its postings: a system account's
    # balance column moves at commit, which this test's transaction never reaches).
    account = await session.execute(
        select(func.sum(col(PointsPosting.amount)))
        .join(PointsAccount, col(PointsAccount.id) == col(PointsPosting.account_id))
        .where(col(PointsAccount.code) == f"redemption:{world.center}")
    )
    assert account.scalar_one() == 600

    # The same staff member scanning again is answered the same; another is told it's done.
    again = await fulfil(client, staff, code, world.center)
    assert again.status_code == 200 and again.json()["id"] == reservation["id"]
    district = await as_user(login, "demo-district-admin")
    other = await fulfil(client, district, code, world.center)
    assert_problem(other, 409, "points.redemption_not_pending")
    assert await stock(session, rice, world.center) == (38, 0)

    mine = await client.get("/v1/me/redemptions", headers=alice)
    assert [r["state"] for r in mine.json()["items"]] == ["fulfilled"]
    one = await client.get(f"/v1/redemptions/{reservation['id']}", headers=alice)
    assert one.json()["state"] == "fulfilled"
    bob = await as_user(login, "demo-resident-2")
    hidden = await client.get(f"/v1/redemptions/{reservation['id']}", headers=bob)
    assert_problem(hidden, 404, "points.redemption_not_found")


async def test_staff_can_scan_the_qr_instead_of_typing_the_code(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    await give(session, await user_id(session, "demo-resident"), 100)
    reservation = await redeemed(client, alice, world.rewards["towel"], world.center)
    staff = await as_user(login, "demo-community-staff")
    forged = reservation["qr_payload"][:-2] + (
        "AA" if reservation["qr_payload"][-2:] != "AA" else "BB"
    )
    assert_problem(
        await fulfil(client, staff, forged, world.center), 404, "points.redemption_not_found"
    )
    done = await fulfil(client, staff, reservation["qr_payload"], world.center)
    assert done.status_code == 200 and done.json()["state"] == "fulfilled"


async def test_my_redemptions_newest_first_page_by_page(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    await give(session, await user_id(session, "demo-resident"), 1000)
    made = [
        (await redeemed(client, alice, world.rewards["towel"], world.center))["id"]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/me/redemptions", params=params, headers=alice)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    pending = await client.get("/v1/me/redemptions", params={"state": "fulfilled"}, headers=alice)
    assert pending.json()["items"] == []
    bad = await client.get("/v1/me/redemptions", params={"cursor": "nope"}, headers=alice)
    assert_problem(bad, 400, "request.cursor_invalid")


# --- cancel and expire ----------------------------------------------------------------------


async def test_cancel_gives_points_and_stock_back(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 500)
    oil = world.rewards["oil"]
    reservation = await redeemed(client, alice, oil, world.center)
    assert await available(session, alice_id) == 250
    assert await stock(session, oil, world.center) == (30, 1)

    bob = await as_user(login, "demo-resident-2")
    hidden = await client.post(f"/v1/redemptions/{reservation['id']}/cancel", headers=bob)
    assert_problem(hidden, 404, "points.redemption_not_found")

    cancelled = await client.post(f"/v1/redemptions/{reservation['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["cancelled_at"]
    assert cancelled.json()["pickup_code"] is None
    assert await available(session, alice_id) == 500
    assert await held(session, alice_id) == 0
    assert await stock(session, oil, world.center) == (30, 0)
    # Cancelling again changes nothing; the code no longer fetches anything.
    again = await client.post(f"/v1/redemptions/{reservation['id']}/cancel", headers=alice)
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert await available(session, alice_id) == 500
    staff = await as_user(login, "demo-community-staff")
    late = await fulfil(client, staff, reservation["pickup_code"], world.center)
    assert_problem(late, 409, "points.redemption_not_pending")

    # A fulfilled one cannot be cancelled.
    second = await redeemed(client, alice, oil, world.center)
    assert (await fulfil(client, staff, second["pickup_code"], world.center)).status_code == 200
    refused = await client.post(f"/v1/redemptions/{second['id']}/cancel", headers=alice)
    assert_problem(refused, 409, "points.redemption_not_pending")
    assert await available(session, alice_id) == 250


async def test_unclaimed_reservations_expire_and_give_everything_back(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    rice = world.rewards["rice"]
    reservation = await redeemed(client, alice, rice, world.center, 2)
    assert await stock(session, rice, world.center) == (40, 2)

    clock.advance(timedelta(hours=71))
    assert await expire_redemptions(session, now()) == 0
    clock.advance(timedelta(hours=1, seconds=1))
    # Due, but the worker has not run yet: staff cannot hand it out any more.
    staff = await as_user(login, "demo-community-staff")
    late = await fulfil(client, staff, reservation["pickup_code"], world.center)
    assert_problem(late, 409, "points.redemption_not_pending")

    assert await expire_redemptions(session, now()) == 1
    assert await expire_redemptions(session, now()) == 0
    assert await stock(session, rice, world.center) == (40, 0)
    assert await available(session, alice_id) == 1000
    assert await held(session, alice_id) == 0
    alice = await as_user(login, "demo-resident")
    seen = await client.get(f"/v1/redemptions/{reservation['id']}", headers=alice)
    assert seen.json()["state"] == "expired" and seen.json()["expired_at"]
    refused = await client.post(f"/v1/redemptions/{reservation['id']}/cancel", headers=alice)
    assert_problem(refused, 409, "points.redemption_not_pending")
    # What expired no longer counts against the monthly limit.
    catalog = await client.get("/v1/rewards", params={"center": world.center}, headers=alice)
    [item] = [r for r in catalog.json()["centers"][0]["rewards"] if r["id"] == rice]
    assert item["allowance"] == 2


# --- idempotency ----------------------------------------------------------------------------


async def test_a_retry_answers_the_same_redemption(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    towel = world.rewards["towel"]
    first = await redeem(client, alice, towel, world.center, 2, key="tap-1")
    assert first.status_code == 201 and "Idempotent-Replay" not in first.headers
    retry = await redeem(client, alice, towel, world.center, 2, key="tap-1")
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replay"] == "true"
    assert retry.json() == first.json()
    assert await available(session, alice_id) == 880
    assert await stock(session, towel, world.center) == (100, 2)

    conflict = await redeem(client, alice, towel, world.center, 3, key="tap-1")
    assert_problem(conflict, 409, "points.idempotency_conflict")
    # Keys are per member: another member's identical key is a new redemption.
    bob = await as_user(login, "demo-resident-2")
    await give(session, await user_id(session, "demo-resident-2"), 60)
    theirs = await redeem(client, bob, towel, world.center, 1, key="tap-1")
    assert theirs.status_code == 201
    assert await stock(session, towel, world.center) == (100, 3)

    for headers, code in (
        ({}, "request.idempotency_key_required"),
        ({"Idempotency-Key": "has space"}, "request.idempotency_key_invalid"),
    ):
        response = await client.post(
            "/v1/redemptions",
            json={"reward": towel, "center": world.center},
            headers=alice | headers,
        )
        assert_problem(response, 400, code)


# --- refusals -------------------------------------------------------------------------------


async def test_out_of_stock_holds_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    towel = world.rewards["towel"]
    await set_stock(session, towel, world.center, 2)
    refused = await redeem(client, alice, towel, world.center, 3)
    assert_problem(refused, 409, "points.out_of_stock")
    assert await available(session, alice_id) == 1000
    assert (await redeem(client, alice, towel, world.center, 2)).status_code == 201
    last = await redeem(client, alice, towel, world.center, 1)
    assert_problem(last, 409, "points.out_of_stock")
    assert await stock(session, towel, world.center) == (2, 2)
    assert await available(session, alice_id) == 880
    # A reward never stocked at a center is out of stock there.
    fuqian = (
        await session.execute(
            select(col(ServiceCenter.id)).where(col(ServiceCenter.code) == "fuqian-center")
        )
    ).scalar_one()
    await session.execute(
        RewardStock.__table__.delete().where(  # type: ignore[attr-defined]
            RewardStock.__table__.c.center_id == fuqian  # type: ignore[attr-defined]
        )
    )
    await session.commit()
    assert_problem(await redeem(client, alice, towel, str(fuqian)), 409, "points.out_of_stock")


async def test_not_enough_points_reserves_nothing(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 299)
    rice = world.rewards["rice"]
    refused = await redeem(client, alice, rice, world.center)
    body = assert_problem(refused, 409, "points.insufficient_balance")
    assert body["available"] == 299 and body["requested"] == 300
    assert await stock(session, rice, world.center) == (40, 0)
    assert await available(session, alice_id) == 299
    count = await session.execute(select(func.count()).select_from(Redemption))
    assert count.scalar_one() == 0


async def test_the_limit_per_member_and_period(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    # Thursday noon, China time: the week started on Monday.
    clock.freeze(_parse("2026-12-03T12:00:00+08:00"))
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    detergent = world.rewards["detergent"]  # one per member per week
    assert_problem(
        await redeem(client, alice, detergent, world.center, 2), 409, "points.limit_reached"
    )
    first = await redeemed(client, alice, detergent, world.center)
    refused = await redeem(client, alice, detergent, world.center)
    body = assert_problem(refused, 409, "points.limit_reached")
    assert "1" in body["detail"]
    # Cancelled ones do not count.
    await client.post(f"/v1/redemptions/{first['id']}/cancel", headers=alice)
    second = await redeemed(client, alice, detergent, world.center)
    # Fulfilled ones do.
    staff = await as_user(login, "demo-community-staff")
    assert (await fulfil(client, staff, second["pickup_code"], world.center)).status_code == 200
    assert_problem(
        await redeem(client, alice, detergent, world.center), 409, "points.limit_reached"
    )
    # Others have their own allowance.
    bob = await as_user(login, "demo-resident-2")
    await give(session, await user_id(session, "demo-resident-2"), 200)
    assert (await redeem(client, bob, detergent, world.center)).status_code == 201
    # Next Monday, a new week.
    clock.freeze(_parse("2026-12-07T00:00:01+08:00"))
    alice = await as_user(login, "demo-resident")
    assert (await redeem(client, alice, detergent, world.center)).status_code == 201


async def test_outside_the_window_or_inactive_is_refused(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    towel = await session.get(Reward, uuid.UUID(world.rewards["towel"]))
    assert towel is not None
    towel.active_from = now() + timedelta(days=1)
    await session.commit()
    refused = await redeem(client, alice, str(towel.id), world.center)
    assert_problem(refused, 409, "points.reward_not_available")
    towel.active_from = None
    towel.active_until = now() - timedelta(seconds=1)
    await session.commit()
    assert_problem(
        await redeem(client, alice, str(towel.id), world.center), 409, "points.reward_not_available"
    )
    towel.active_until = None
    towel.active = False
    await session.commit()
    assert_problem(
        await redeem(client, alice, str(towel.id), world.center), 409, "points.reward_not_available"
    )
    towel.active = True
    center = await session.get(ServiceCenter, uuid.UUID(world.center))
    assert center is not None
    center.active = False
    await session.commit()
    assert_problem(
        await redeem(client, alice, str(towel.id), world.center), 409, "points.center_closed"
    )
    unknown = await redeem(client, alice, str(uuid.uuid4()), world.center)
    assert_problem(unknown, 404, "points.reward_not_found")
    nowhere = await redeem(client, alice, str(towel.id), str(uuid.uuid4()))
    assert_problem(nowhere, 404, "points.center_not_found")
    assert await available(session, alice_id) == 1000


# --- staff scope ----------------------------------------------------------------------------


async def test_staff_of_another_center_find_nothing(
    client: httpx.AsyncClient,
    login: Login,
    session: AsyncSession,
    world: Demo,
    staff_elsewhere: StaffElsewhere,
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    reservation = await redeemed(client, alice, world.rewards["towel"], world.center)
    code = reservation["pickup_code"]
    outsider = await staff_elsewhere()
    grid_worker = await as_user(login, "demo-grid-worker")  # not a role that hands out goods
    bob = await as_user(login, "demo-resident-2")
    for headers in (outsider, grid_worker, bob):
        for value in (code, reservation["qr_payload"]):
            response = await fulfil(client, headers, value, world.center)
            assert_problem(response, 404, "points.redemption_not_found")
    # Naming their own center does not find a redemption of another center either.
    fuqian = (
        await session.execute(
            select(col(ServiceCenter.id)).where(col(ServiceCenter.code) == "fuqian-center")
        )
    ).scalar_one()
    for value in (code, reservation["qr_payload"]):
        response = await fulfil(client, outsider, value, str(fuqian))
        assert_problem(response, 404, "points.redemption_not_found")
    export = await client.get(
        f"/v1/staff/service-centers/{world.center}/redemptions.csv", headers=outsider
    )
    assert_problem(export, 404, "points.center_not_found")
    assert await held(session, alice_id) == 60
    # Staff never hand out to themselves.
    staff = await as_user(login, "demo-community-staff")
    await give(session, await user_id(session, "demo-community-staff"), 100)
    own = await redeemed(client, staff, world.rewards["towel"], world.center)
    refused = await fulfil(client, staff, own["pickup_code"], world.center)
    assert_problem(refused, 403, "points.own_redemption")


# --- at the counter -------------------------------------------------------------------------


async def counter(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    member_code: str,
    reward: str,
    center: str,
    quantity: int = 1,
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/staff/counter-redemptions",
        json={"member_code": member_code, "reward": reward, "center": center, "quantity": quantity},
        headers=headers | {"Idempotency-Key": key or secrets.token_hex(8)},
    )


async def test_counter_redemption_with_the_members_rotating_code(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    bob_id = await user_id(session, "demo-resident-2")
    await give(session, alice_id, 500)
    await give(session, bob_id, 500)
    oil = world.rewards["oil"]
    shown = await client.get("/v1/me/member-code", headers=alice)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    member_code = shown.json()["code"]
    assert _parse(shown.json()["expires_at"]) - now() <= timedelta(minutes=2)

    staff = await as_user(login, "demo-community-staff")
    done = await counter(client, staff, member_code, oil, world.center, key="counter-1")
    assert done.status_code == 201, done.text
    assert done.json()["state"] == "fulfilled" and done.json()["channel"] == "counter"
    assert done.json()["points_total"] == 250
    assert await available(session, alice_id) == 250
    assert await held(session, alice_id) == 0
    assert await available(session, bob_id) == 500
    assert await stock(session, oil, world.center) == (29, 0)
    mine = await client.get("/v1/me/redemptions", headers=alice)
    assert [r["id"] for r in mine.json()["items"]] == [done.json()["id"]]

    # Two minutes later the code is refused, but a retry of the first request still answers.
    clock.advance(timedelta(minutes=2))
    staff = await as_user(login, "demo-community-staff")
    expired = await counter(client, staff, member_code, oil, world.center)
    assert_problem(expired, 422, "points.member_code_expired")
    retry = await counter(client, staff, member_code, oil, world.center, key="counter-1")
    assert retry.status_code == 200 and retry.json()["id"] == done.json()["id"]
    assert retry.headers["Idempotent-Replay"] == "true"
    assert await available(session, alice_id) == 250

    # Another member's code charges that member, never the one before.
    bob = await as_user(login, "demo-resident-2")
    bobs_code = (await client.get("/v1/me/member-code", headers=bob)).json()["code"]
    for_bob = await counter(client, staff, bobs_code, oil, world.center)
    assert for_bob.status_code == 201
    assert await available(session, bob_id) == 250
    assert await available(session, alice_id) == 250
    # A code altered to name someone else is not accepted.
    raw = bobs_code[4:]
    forged = "SZM1" + ("A" if raw[0] != "A" else "B") + raw[1:]
    assert_problem(
        await counter(client, staff, forged, oil, world.center), 422, "points.member_code_invalid"
    )
    assert_problem(
        await counter(client, staff, "hello", oil, world.center), 422, "points.member_code_invalid"
    )
    # Not for oneself, and not at another center.
    own = (await client.get("/v1/me/member-code", headers=staff)).json()["code"]
    assert_problem(
        await counter(client, staff, own, oil, world.center), 403, "points.own_redemption"
    )
    fresh = (await client.get("/v1/me/member-code", headers=bob)).json()["code"]
    fuqian = (
        await session.execute(
            select(col(ServiceCenter.id)).where(col(ServiceCenter.code) == "fuqian-center")
        )
    ).scalar_one()
    elsewhere = await counter(client, staff, fresh, oil, str(fuqian))
    assert_problem(elsewhere, 404, "points.center_not_found")
    # The checks of a reservation apply: the limit, the points.
    assert (await counter(client, staff, fresh, oil, world.center)).status_code == 201
    assert await available(session, bob_id) == 0
    assert_problem(
        await counter(client, staff, fresh, oil, world.center), 409, "points.limit_reached"
    )
    assert_problem(
        await counter(client, staff, fresh, world.rewards["towel"], world.center),
        409,
        "points.insufficient_balance",
    )
    assert await stock(session, oil, world.center) == (27, 0)


# --- the staff's export ---------------------------------------------------------------------


async def test_csv_export_of_a_centers_redemptions(
    client: httpx.AsyncClient, login: Login, session: AsyncSession, world: Demo
) -> None:
    alice = await as_user(login, "demo-resident")
    alice_id = await user_id(session, "demo-resident")
    await give(session, alice_id, 1000)
    user = await session.get(User, alice_id)
    assert user is not None
    user.nickname = '=HYPERLINK("x")'  # a formula must not reach a spreadsheet as one
    await session.commit()
    start = now()
    towel, rice = world.rewards["towel"], world.rewards["rice"]
    picked = await redeemed(client, alice, towel, world.center, 3)
    waiting = await redeemed(client, alice, rice, world.center)
    staff = await as_user(login, "demo-community-staff")
    assert (await fulfil(client, staff, picked["pickup_code"], world.center)).status_code == 200

    response = await client.get(
        f"/v1/staff/service-centers/{world.center}/redemptions.csv",
        params={"from": start.isoformat(), "to": (now() + timedelta(minutes=1)).isoformat()},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["redemption_id"], r["state"], r["quantity"]) for r in rows] == [
        (picked["id"], "fulfilled", "3"),
        (waiting["id"], "pending", "1"),
    ]
    assert rows[0]["reward_name"] == "纯棉毛巾" and rows[0]["points_total"] == "180"
    assert rows[0]["member_nickname"] == '\'=HYPERLINK("x")'
    assert rows[0]["fulfilled_at"].endswith("+08:00") and rows[1]["fulfilled_at"] == ""

    # Another period: nothing. A backwards or too long one: refused.
    before = await client.get(
        f"/v1/staff/service-centers/{world.center}/redemptions.csv",
        params={"to": start.isoformat()},
        headers=staff,
    )
    assert before.status_code == 200
    assert len(list(csv.reader(io.StringIO(before.content.decode("utf-8-sig"))))) == 1
    for params in (
        {"from": now().isoformat(), "to": start.isoformat()},
        {"from": (now() - timedelta(days=400)).isoformat(), "to": now().isoformat()},
        # Past the last instant PostgreSQL can store, once in UTC.
        {"from": "9999-12-30T00:00:00-12:00", "to": "9999-12-31T23:59:59-12:00"},
    ):
        bad = await client.get(
            f"/v1/staff/service-centers/{world.center}/redemptions.csv",
            params=params,
            headers=staff,
        )
        assert_problem(bad, 422, "points.export_period_invalid")
    resident = await client.get(
        f"/v1/staff/service-centers/{world.center}/redemptions.csv", headers=alice
    )
    assert_problem(resident, 404, "points.center_not_found")


# --- many members at once (real commits, separate connections) -----------------------------


@dataclass
class Shop:
    """A center of its own with one reward, members with points, and a staff member."""

    center: ServiceCenter
    reward: Reward
    members: list[User]
    staff: User


async def committed_shop(
    engine: AsyncEngine,
    *,
    stock: int,
    price: int,
    points: list[int],
    limit: tuple[int, str] | None = None,
) -> Shop:
    factory = create_sessionmaker(engine)
    tag = secrets.token_hex(4)
    async with factory() as db:
        parent = None
        paths = (f"sh{tag}", f"sh{tag}.d", f"sh{tag}.d.s", f"sh{tag}.d.s.c")
        for path, level in zip(paths, RegionLevel, strict=False):
            region = Region(path=path, level=level, name=path, parent_id=parent)
            db.add(region)
            await db.flush()
            parent = region.id
        assert parent is not None
        center = ServiceCenter(
            code=f"shop-{tag}",
            name="测试服务站",
            name_en="Test center",
            region_id=parent,
            region_path=paths[-1],
            lat=0.0,
            lng=0.0,
            address="测试",
        )
        reward = Reward(
            name="测试商品",
            name_en="Test goods",
            price=price,
            region_id=parent,
            region_path=paths[0],
            limit_count=limit[0] if limit else None,
            limit_period=limit[1] if limit else None,
        )
        db.add_all([center, reward])
        await db.flush()
        db.add(RewardStock(reward_id=reward.id, center_id=center.id, on_hand=stock, reserved=0))
        members = [User(openid=f"shop-{tag}-{i}", nickname=f"居民{i}") for i in range(len(points))]
        staff = User(openid=f"shop-{tag}-staff", nickname="店员")
        db.add_all([*members, staff])
        await db.flush()
        db.add(
            RoleGrant(
                user_id=staff.id, role=Role.community_staff, region_id=parent, region_path=paths[-1]
            )
        )
        await db.commit()
    async with factory() as db:
        for i, (member, amount) in enumerate(zip(members, points, strict=True)):
            await ledger_service.award(
                db,
                member_id=member.id,
                points=amount,
                reason="test",
                source_ref=f"shop:{tag}",
                idempotency_key=f"shop:{tag}:{i}",
            )
        await db.commit()
    return Shop(center, reward, members, staff)


def token_of(app: FastAPI, user: User) -> dict[str, str]:
    token, _ = issue_access_token(user.id, app.state.settings, now())
    return {"Authorization": f"Bearer {token}"}


def asgi(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_members_racing_for_the_last_items_never_oversell(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """20 members at once for the last 3 items: exactly 3 get one, nobody goes negative,
    every other one is told why (out of stock, or not enough points)."""
    price = 70
    # Most have just enough; every fourth is one point short.
    points = [price - 1 if i % 4 == 3 else price for i in range(20)]
    shop = await committed_shop(engine, stock=3, price=price, points=points)
    body = {"reward": str(shop.reward.id), "center": str(shop.center.id), "quantity": 1}
    async with asgi(app) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/v1/redemptions",
                    json=body,
                    headers=token_of(app, member) | {"Idempotency-Key": "race"},
                )
                for member in shop.members
            )
        )

    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 3, [a.text for a in answers]
    assert statuses.count(409) == 17, [a.text for a in answers]
    codes = {a.json()["code"] for a in answers if a.status_code == 409}
    assert codes <= {"points.out_of_stock", "points.insufficient_balance"}
    winners = {uuid.UUID(a.json()["id"]) for a in answers if a.status_code == 201}
    async with create_sessionmaker(engine)() as db:
        shelf = await db.get(RewardStock, (shop.reward.id, shop.center.id))
        assert shelf is not None and (shelf.on_hand, shelf.reserved) == (3, 3)
        rows = (
            (
                await db.execute(
                    select(Redemption).where(col(Redemption.reward_id) == shop.reward.id)
                )
            )
            .scalars()
            .all()
        )
        assert {r.id for r in rows} == winners
        short = {m.id for m, p in zip(shop.members, points, strict=True) if p < price}
        assert not {r.member_id for r in rows} & short
        for member, given in zip(shop.members, points, strict=True):
            balance = await ledger_queries.balance(db, member.id)
            won = any(r.member_id == member.id for r in rows)
            assert balance.available >= 0 and balance.held == (price if won else 0)
            assert balance.available + balance.held == given
        negative = await db.execute(
            select(func.count()).where(
                col(PointsAccount.kind) == "member", col(PointsAccount.balance) < 0
            )
        )
        assert negative.scalar_one() == 0


async def test_one_member_tapping_twice_at_once_stays_within_the_limit(
    app: FastAPI, engine: AsyncEngine
) -> None:
    """Five requests with different keys at once, for a reward limited to one a week."""
    shop = await committed_shop(engine, stock=10, price=10, points=[100], limit=(1, "week"))
    body = {"reward": str(shop.reward.id), "center": str(shop.center.id), "quantity": 1}
    headers = token_of(app, shop.members[0])
    async with asgi(app) as http:
        answers = await asyncio.gather(
            *(
                http.post("/v1/redemptions", json=body, headers=headers | {"Idempotency-Key": k})
                for k in ("a", "b", "c", "d", "e")
            )
        )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"points.limit_reached"}
    async with create_sessionmaker(engine)() as db:
        balance = await ledger_queries.balance(db, shop.members[0].id)
        assert (balance.available, balance.held) == (90, 10)


async def test_a_busy_counter_keeps_the_books_straight(app: FastAPI, engine: AsyncEngine) -> None:
    """Reservations, cancellations, fulfilments, counter redemptions and the expiry job, all
    at once on one center: no request fails for a lock, and stock and points add up."""
    price, start_stock, start_points = 10, 50, 100
    shop = await committed_shop(engine, stock=start_stock, price=price, points=[start_points] * 12)
    body = {"reward": str(shop.reward.id), "center": str(shop.center.id)}
    factory = create_sessionmaker(engine)
    async with asgi(app) as http:

        async def reserve(member: User, n: int) -> httpx.Response:
            return await http.post(
                "/v1/redemptions",
                json=body | {"quantity": 1 + n % 2},
                headers=token_of(app, member) | {"Idempotency-Key": f"busy-{n}"},
            )

        pairs = [(m, n) for m in shop.members for n in range(2)]
        first = await asyncio.gather(*(reserve(m, n) for m, n in pairs))
        assert all(r.status_code == 201 for r in first), [r.text for r in first]
        made = [(m, r.json()) for (m, _), r in zip(pairs, first, strict=True)]

        async def expire() -> int:
            async with factory() as db:
                return await expire_redemptions(db, now() + timedelta(days=10), batch_size=3)

        async def settle(i: int, member: User, redemption: dict[str, Any]) -> httpx.Response:
            if i % 3 == 0:
                return await http.post(
                    f"/v1/redemptions/{redemption['id']}/cancel", headers=token_of(app, member)
                )
            if i % 3 == 1:
                return await http.post(
                    f"/v1/staff/redemptions/{redemption['pickup_code']}/fulfil",
                    json={"center": str(shop.center.id)},
                    headers=token_of(app, shop.staff),
                )
            shown = await http.get("/v1/me/member-code", headers=token_of(app, member))
            return await http.post(
                "/v1/staff/counter-redemptions",
                json=body | {"member_code": shown.json()["code"], "quantity": 1},
                headers=token_of(app, shop.staff) | {"Idempotency-Key": f"busy-counter-{i}"},
            )

        settled, _ = await asyncio.gather(
            asyncio.gather(*(settle(i, m, r) for i, (m, r) in enumerate(made))), expire()
        )
    # The expiry job may win a race: that answers 409 (no longer pending), never a 500.
    assert {r.status_code for r in settled} <= {200, 201, 409}, [r.text for r in settled]
    for response in settled:
        if response.status_code == 409:
            assert response.json()["code"] == "points.redemption_not_pending", response.text

    async with factory() as db:
        rows = (
            (
                await db.execute(
                    select(Redemption).where(col(Redemption.reward_id) == shop.reward.id)
                )
            )
            .scalars()
            .all()
        )
        assert not [r for r in rows if r.state == "pending"]  # each was settled or expired
        shelf = await db.get(RewardStock, (shop.reward.id, shop.center.id))
        assert shelf is not None
        handed_out = sum(r.quantity for r in rows if r.state == "fulfilled")
        assert (shelf.on_hand, shelf.reserved) == (start_stock - handed_out, 0)
        for member in shop.members:
            balance = await ledger_queries.balance(db, member.id)
            spent = sum(
                r.points_total for r in rows if r.member_id == member.id and r.state == "fulfilled"
            )
            assert (balance.available, balance.held) == (start_points - spent, 0)
        counter_account = await db.execute(
            select(col(PointsAccount.balance)).where(
                col(PointsAccount.code) == f"redemption:{shop.center.id}"
            )
        )
        assert counter_account.scalar_one() == price * handed_out
