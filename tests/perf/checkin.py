"""Check-in burst: 2,000 volunteers check in to 100 activities at once on the real server.

Run: `python tests/perf/checkin.py [--volunteers 2000] [--activities 100] [--concurrency 64]`

PostgreSQL is embedded, or `SHANZHI_TEST_DATABASE_URL`'s server (a scratch database in
it). The demo city is loaded; 100 published patrols spread over its communities, each with
its enrolled volunteers, start now. Then, as phones would:
  1. the ceiling: a bare FastAPI + asyncpg endpoint doing the same database work as a
     check-in (find the volunteer's enrolment and the activity, insert the attendance row
     ON CONFLICT DO NOTHING) for every volunteer, as fast as the clients go;
  2. every volunteer checks in on the app (`POST /v1/activities/{id}/check-in`) with the
     code the leader's screen shows right now and a location inside the fence;
  3. a tenth of them tap again (the same check-in must come back);
  4. a minute later (service counts in whole minutes) every volunteer checks out, a fifth
     of them twice at the same moment (a retry racing the original), so each attendance is
     verified and paid through the ledger.
Afterwards SQL checks each verified attendance: one ledger transaction under its key
`attendance:<id>`, the member's balance equal to its points, the volunteer's minutes and
activity count moved once. The last line:
`result: checkins=2000 rps=... p99_ms=... paid_once=2000 double_paid=0`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.core.config import Environment, Settings  # noqa: E402
from backend.core.database import create_engine, create_sessionmaker  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.core.security import issue_access_token  # noqa: E402
from backend.demo.loading import load_demo_data  # noqa: E402
from tests.perf.harness import free_port, open_stack, pct  # noqa: E402
from volunteers.attendance import codes  # noqa: E402

POINTS = 10  # the earning rule of a patrol in this run

BARE_APP = textwrap.dedent(
    '''
    """The ceiling: a check-in's database work behind a bare FastAPI + asyncpg endpoint."""
    import os, uuid
    from datetime import datetime, timezone
    import asyncpg
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.on_event("startup")
    async def start() -> None:
        dsn = os.environ["BENCH_DSN"]
        app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)

    @app.post("/bare/activities/{activity_id}/check-in")
    async def check_in(activity_id: uuid.UUID, request: Request) -> JSONResponse:
        body = await request.json()
        at = datetime.now(timezone.utc)
        async with app.state.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchrow(
                """SELECT e.id AS enrolment_id, e.volunteer_id, a.region_path::text AS path
                   FROM volunteer v
                   JOIN volunteer_enrolment e ON e.volunteer_id = v.id
                   JOIN volunteer_activity a ON a.id = e.activity_id
                   WHERE v.user_id = $1 AND v.state = 'approved' AND a.id = $2
                     AND e.state = 'enrolled' AND a.state = 'published'
                     AND $3 BETWEEN a.starts_at - interval '15 minutes' AND a.ends_at""",
                uuid.UUID(body["user_id"]), activity_id, at,
            )
            if found is None:
                return JSONResponse({"detail": "not enrolled"}, status_code=409)
            loc = body["location"]
            await conn.execute(
                """INSERT INTO bench_attendance (id, activity_id, volunteer_id, enrolment_id,
                   region_path, state, flags, checked_in_at, check_in_lat, check_in_lng,
                   check_in_accuracy_m, created_at)
                   VALUES ($1, $2, $3, $4, $5::ltree, 'checked_in', '[]'::jsonb, $6, $7, $8,
                   $9, $6) ON CONFLICT DO NOTHING""",
                uuid.uuid4(), activity_id, found["volunteer_id"], found["enrolment_id"],
                found["path"], at, loc["lat"], loc["lng"], loc["accuracy_m"],
            )
        return JSONResponse({"state": "checked_in"}, status_code=201)
    '''
)


@dataclass(frozen=True)
class Place:
    activity_id: uuid.UUID
    secret: bytes
    lat: float
    lng: float


@dataclass(frozen=True)
class Volunteer:
    user_id: uuid.UUID
    place: Place
    token: str
    lat: float
    lng: float


async def prepare(
    url: str, dsn: str, volunteers: int, activities: int
) -> tuple[list[Volunteer], dict[uuid.UUID, Place]]:
    """The demo city, the patrols and their enrolled volunteers, written in bulk."""
    engine = create_engine(url, pool_size=2)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        await load_demo_data(session)
        await session.commit()
    await engine.dispose()

    settings = Settings(env=Environment.test, access_token_minutes=240)
    rng = random.Random(5)
    conn = await asyncpg.connect(dsn)
    try:
        communities = await conn.fetch(
            "SELECT id, path::text AS path, boundary FROM region "
            "WHERE level = 'community' AND boundary IS NOT NULL ORDER BY path"
        )
        creator = await conn.fetchval(
            "SELECT id FROM user_account WHERE openid = 'demo-community-staff'"
        )
        await conn.execute(
            """INSERT INTO points_earning_rule (id, activity_type, points, daily_cap, active,
               created_at) VALUES ($1, 'public_security_patrol', $2, NULL, true, now())
               ON CONFLICT (activity_type) DO UPDATE
               SET points = excluded.points, daily_cap = NULL, active = true""",
            uuid.uuid4(),
            POINTS,
        )
        now = datetime.now(UTC)
        places: list[Place] = []
        rows = []
        for i in range(activities):
            community = communities[i % len(communities)]
            ring = json.loads(community["boundary"])["coordinates"][0]
            lng = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
            lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
            place = Place(uuid.uuid4(), codes.new_secret(), lat, lng)
            places.append(place)
            per = volunteers // activities + (1 if i < volunteers % activities else 0)
            rows.append(
                (
                    place.activity_id,
                    f"治安巡逻 {i + 1}",
                    community["id"],
                    community["path"],
                    lat,
                    lng,
                    now - timedelta(minutes=5),
                    now + timedelta(hours=2),
                    per + 5,
                    per,
                    place.secret,
                    creator,
                )
            )
        await conn.executemany(
            """INSERT INTO volunteer_activity (id, type, title, region_id, region_path,
               place_name, lat, lng, fence_radius_m, starts_at, ends_at, capacity, enrolled,
               waitlisted, state, code_secret, created_by, created_at, published_at)
               VALUES ($1, 'public_security_patrol', $2, $3, $4::ltree, '巡逻集合点', $5, $6,
               300, $7, $8, $9, $10, 0, 'published', $11, $12, now(), now())""",
            rows,
        )
        people: list[Volunteer] = []
        users, registrations, enrolments = [], [], []
        for n in range(volunteers):
            place = places[n % activities]
            community = communities[(n % activities) % len(communities)]
            user_id, volunteer_id = uuid.uuid4(), uuid.uuid4()
            users.append((user_id, f"bench-volunteer-{n}"))
            registrations.append(
                (volunteer_id, user_id, f"V-BENCH-{n:06d}", community["id"], community["path"])
            )
            enrolments.append((uuid.uuid4(), place.activity_id, volunteer_id))
            token, _ = issue_access_token(user_id, settings, now)
            # Somewhere within 100 m of the meeting point: inside the 300 m fence.
            people.append(
                Volunteer(
                    user_id,
                    place,
                    token,
                    place.lat + rng.uniform(-0.0006, 0.0006),
                    place.lng + rng.uniform(-0.0006, 0.0006),
                )
            )
        await conn.executemany(
            "INSERT INTO user_account (id, openid, is_active, created_at) "
            "VALUES ($1, $2, true, now())",
            users,
        )
        await conn.executemany(
            """INSERT INTO volunteer (id, user_id, number, real_name, skills, availability,
               community_id, community_path, state, service_minutes, activities_attended,
               created_at) VALUES ($1, $2, $3, '压测志愿者', '["patrol"]', '{}', $4,
               $5::ltree, 'approved', 0, 0, now())""",
            registrations,
        )
        await conn.executemany(
            """INSERT INTO volunteer_enrolment (id, activity_id, volunteer_id, state,
               queued_at, created_at) VALUES ($1, $2, $3, 'enrolled', now(), now())""",
            enrolments,
        )
        await conn.execute(
            "CREATE TABLE bench_attendance (LIKE volunteer_attendance INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        )
    finally:
        await conn.close()
    return people, {place.activity_id: place for place in places}


def scanned(place: Place) -> str:
    """What the volunteer's phone reads off the leader's screen right now."""
    return codes.code_at(place.secret, place.activity_id, datetime.now(UTC)).qr


def location(person: Volunteer) -> dict[str, object]:
    return {"lat": person.lat, "lng": person.lng, "coord": "wgs84", "accuracy_m": 12.0}


@dataclass
class Outcome:
    latencies: list[float]
    statuses: dict[int, int]
    bodies: dict[uuid.UUID, dict[str, object]]
    seconds: float
    lost: int  # connections lost and sent again


Send = Callable[[httpx.AsyncClient, Volunteer], Awaitable[httpx.Response]]


async def burst(base: str, people: list[Volunteer], concurrency: int, send: Send) -> Outcome:
    """Every person's request, as fast as `concurrency` phones get answers."""
    queue: asyncio.Queue[Volunteer] = asyncio.Queue()
    for person in people:
        queue.put_nowait(person)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: dict[uuid.UUID, dict[str, object]] = {}
    lost = [0]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def phone() -> None:
            while not queue.empty():
                person = queue.get_nowait()
                started = time.perf_counter()
                for attempt in range(3):
                    try:
                        response = await send(http, person)
                        break
                    except httpx.TransportError as error:
                        # A phone that lost the connection sends again (the writes are
                        # idempotent); counted, and the latency includes the retry.
                        lost[0] += 1
                        if attempt == 2:
                            raise
                        print(f"  connection lost ({error!r}), sending again")
                elapsed = time.perf_counter() - started
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code in (200, 201):
                    latencies.append(elapsed)
                    bodies[person.user_id] = response.json()
                elif statuses[response.status_code] <= 3:
                    print(f"  {response.status_code}: {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(phone() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Outcome(latencies, statuses, bodies, seconds, lost[0])


async def check(http: httpx.AsyncClient, person: Volunteer, action: str) -> httpx.Response:
    return await http.post(
        f"/v1/activities/{person.place.activity_id}/{action}",
        json={"code": scanned(person.place), "location": location(person)},
        headers={"Authorization": f"Bearer {person.token}"},
    )


async def check_in(http: httpx.AsyncClient, person: Volunteer) -> httpx.Response:
    return await check(http, person, "check-in")


async def check_out(http: httpx.AsyncClient, person: Volunteer) -> httpx.Response:
    return await check(http, person, "check-out")


async def bare_check_in(http: httpx.AsyncClient, person: Volunteer) -> httpx.Response:
    return await http.post(
        f"/bare/activities/{person.place.activity_id}/check-in",
        json={"user_id": str(person.user_id), "location": location(person)},
    )


PAYMENTS = """
    WITH mine AS (
        SELECT a.id, a.state, a.points, a.minutes, v.user_id, v.service_minutes,
               v.activities_attended,
               (SELECT count(*) FROM points_transaction t
                 WHERE t.idempotency_key = 'attendance:' || a.id::text) AS awards,
               coalesce((SELECT balance FROM points_account p
                          WHERE p.owner_id = v.user_id), 0) AS balance
        FROM volunteer_attendance a JOIN volunteer v ON v.id = a.volunteer_id
        WHERE v.number LIKE 'V-BENCH-%'
    )
    SELECT count(*) AS checkins,
           count(*) FILTER (WHERE state = 'verified') AS verified,
           count(*) FILTER (WHERE state = 'verified' AND awards = 1 AND balance = points
                            AND points = $1 AND service_minutes = minutes
                            AND activities_attended = 1) AS paid_once,
           count(*) FILTER (WHERE awards > 1 OR balance > points
                            OR activities_attended > 1 OR service_minutes > minutes)
               AS double_paid
    FROM mine
"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volunteers", type=int, default=2000)
    parser.add_argument("--activities", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    async with AsyncExitStack() as stack:
        bench = await open_stack(stack, Path(tempfile.mkdtemp(prefix="shanzhi-bench-")))
        print(f"preparing {args.activities} patrols and {args.volunteers} volunteers ...")
        people, _ = await prepare(bench.url, bench.dsn, args.volunteers, args.activities)
        app_base = bench.serve(stack, bench.app_env(free_port()))
        bare_base = bench.serve_bare(stack, BARE_APP, {})
        rng = random.Random(11)

        print(f"bare: {len(people)} check-ins by {args.concurrency} phones ...")
        bare = await burst(bare_base, people, args.concurrency, bare_check_in)
        bare_rps = len(bare.latencies) / bare.seconds

        print(f"app:  {len(people)} check-ins by {args.concurrency} phones ...")
        app = await burst(app_base, people, args.concurrency, check_in)
        burst_ended = time.perf_counter()
        app_rps = len(app.latencies) / app.seconds

        again = rng.sample(people, len(people) // 10)
        print(f"app:  {len(again)} volunteers tap check-in again ...")
        retried = await burst(app_base, again, args.concurrency, check_in)
        same = sum(
            1
            for person in again
            if retried.bodies.get(person.user_id, {}).get("id")
            == app.bodies.get(person.user_id, {}).get("id")
        )

        # Service is counted in whole minutes: everyone stays on patrol a minute at least.
        on_patrol = 61 - (time.perf_counter() - burst_ended)
        if on_patrol > 0:
            print(f"on patrol: {on_patrol:.0f} s until everyone has served a minute ...")
            await asyncio.sleep(on_patrol)

        racing = rng.sample(people, len(people) // 5)
        print(f"app:  {len(people)} check-outs, {len(racing)} of them sent twice at once ...")
        out = await burst(app_base, people + racing, args.concurrency * 2, check_out)

        conn = await asyncpg.connect(bench.dsn)
        try:
            paid = await conn.fetchrow(PAYMENTS, POINTS)
        finally:
            await conn.close()

        ratio = app_rps / bare_rps if bare_rps else 0.0
        print(
            f"bare       {bare_rps:8.1f} check-ins/s  p50 {pct(bare.latencies, 0.5):6.1f} ms  "
            f"p99 {pct(bare.latencies, 0.99):6.1f} ms  in {bare.seconds:.1f} s"
        )
        print(
            f"check-in   {app_rps:8.1f} check-ins/s  p50 {pct(app.latencies, 0.5):6.1f} ms  "
            f"p99 {pct(app.latencies, 0.99):6.1f} ms  in {app.seconds:.1f} s  {app.statuses}"
            f"  lost connections sent again: {app.lost}"
        )
        print(f"again      {same} of {len(again)} taps answered the same check-in")
        print(
            f"check-out  {len(out.latencies) / out.seconds:8.1f} answers/s  p50 "
            f"{pct(out.latencies, 0.5):6.1f} ms  p99 {pct(out.latencies, 0.99):6.1f} ms  "
            f"{out.statuses}  lost connections sent again: {out.lost}"
        )
        print(
            f"ratio {ratio:.2f} of the bare ceiling; the burst took {app.seconds:.1f} s "
            f"(within one minute: {'yes' if app.seconds <= 60 else 'no'}); "
            f"verified {paid['verified']} of {paid['checkins']}"
        )
        print(
            f"result: checkins={paid['checkins']} rps={app_rps:.1f} "
            f"p99_ms={pct(app.latencies, 0.99):.1f} paid_once={paid['paid_once']} "
            f"double_paid={paid['double_paid']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
