"""Report intake: `POST /v1/reports` on the real server against a bare FastAPI + asyncpg insert.

Run: `python tests/perf/report_intake.py [--seconds 15] [--concurrency 32]`

Both servers run as separate uvicorn processes on the same PostgreSQL database (embedded,
or `SHANZHI_TEST_DATABASE_URL`'s server) and take the same load from one generator:
  1. the app, posting authenticated reports with idempotency keys (auth, grid placement,
     duplicates lookup, number, case row and timeline event);
  2. a bare FastAPI + asyncpg endpoint inserting the same case row and event row;
  3. the app again, at half its measured throughput, open loop, for the latency bar.
The last line is the summary: `result: app_rps=... bare_rps=... ratio=... p50_ms=...
p99_ms=... p99_half_load_ms=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import textwrap
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.core.database import create_engine, create_sessionmaker  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.demo.loading import load_demo_data  # noqa: E402
from tests.perf.harness import closed_loop, free_port, open_loop, open_stack, pct  # noqa: E402

# Filled by prepare(): the demo grids' boxes and the report categories. Reports are spread
# over the whole demo city and its categories, as a city's reports are.
GRID_BOXES: list[tuple[float, float, float, float]] = []
CATEGORIES: list[str] = []

BARE_APP = textwrap.dedent(
    '''
    """The ceiling: the same rows inserted by a bare FastAPI + asyncpg endpoint."""
    import json, os, uuid
    from datetime import datetime, timedelta, timezone
    import asyncpg
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    DSN = os.environ["BENCH_DSN"]
    GRID_ID = uuid.UUID(os.environ["BENCH_GRID_ID"])
    GRID_PATH = os.environ["BENCH_GRID_PATH"]
    USER_ID = uuid.UUID(os.environ["BENCH_USER_ID"])
    CATEGORY_ID = uuid.UUID(os.environ["BENCH_CATEGORY_ID"])

    @app.on_event("startup")
    async def start() -> None:
        app.state.pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10)

    @app.post("/bare/reports", status_code=201)
    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        now = datetime.now(timezone.utc)
        case_id = uuid.uuid4()
        async with app.state.pool.acquire() as conn, conn.transaction():
            serial = await conn.fetchval("SELECT nextval('case_number_report_seq')")
            number = f"RPT-{now:%Y%m%d}-{serial:06d}"
            await conn.execute(
                """INSERT INTO case_file (id, number, kind, category_id, description, state,
                   priority, channel, reporter_id, submitted_by, anonymous, idempotency_key,
                   request_hash, lat, lng, address, grid_id, location_path, queue_path,
                   escalation_level, supporters, version, response_due_at,
                   resolution_due_at, reopen_count, created_at)
                   VALUES ($1,$2,'report',$3,$4,'submitted','normal','miniapp',$5,$5,false,
                   $6,'bare',$7,$8,$9,$10,$11::ltree,$12::ltree,0,0,1,$13,$14,0,$15)""",
                case_id, number, CATEGORY_ID, body["description"], USER_ID,
                request.headers["idempotency-key"], body["location"]["lat"],
                body["location"]["lng"], body.get("address"), GRID_ID, GRID_PATH,
                GRID_PATH.rsplit(".", 1)[0], now + timedelta(hours=2),
                now + timedelta(hours=48), now,
            )
            await conn.execute(
                """INSERT INTO case_event (id, case_id, seq, action, to_state, actor_id,
                   actor_role, data, created_at)
                   VALUES ($1,$2,1,'submit','submitted',$3,'resident',$4::jsonb,$5)""",
                uuid.uuid4(), case_id, USER_ID, json.dumps({"channel": "miniapp"}), now,
            )
        return JSONResponse({"id": str(case_id), "number": number}, status_code=201)
    '''
)


def report_body(rng: random.Random) -> dict[str, object]:
    south, west, north, east = rng.choice(GRID_BOXES)
    # Inside the grid, away from its edges.
    lat = south + (0.1 + 0.8 * rng.random()) * (north - south)
    lng = west + (0.1 + 0.8 * rng.random()) * (east - west)
    return {
        "category": rng.choice(CATEGORIES),
        "description": "井盖破损，行人容易踩空，请尽快处理",
        "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
        "address": "天河区石牌街岗顶",
        "anonymous": False,
    }


async def prepare(url: str) -> dict[str, str]:
    engine = create_engine(url, pool_size=2)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        await load_demo_data(session)
        await session.commit()
    async with engine.connect() as conn:
        grid = (
            await conn.exec_driver_sql(
                "SELECT id, path::text FROM region WHERE path = 'gz.tianhe.shipai.gangding.g05'"
            )
        ).one()
        category = (
            await conn.exec_driver_sql(
                "SELECT id FROM case_category WHERE kind = 'report' AND code = 'road_facilities'"
            )
        ).scalar_one()
        CATEGORIES.extend(
            (
                await conn.exec_driver_sql(
                    "SELECT code FROM case_category WHERE kind = 'report' AND active"
                )
            ).scalars()
        )
        for (boundary,) in await conn.exec_driver_sql(
            "SELECT boundary FROM region WHERE level = 'grid' AND boundary IS NOT NULL"
        ):
            ring = boundary["coordinates"][0]
            lngs, lats = [p[0] for p in ring], [p[1] for p in ring]
            GRID_BOXES.append((min(lats), min(lngs), max(lats), max(lngs)))
    await engine.dispose()
    return {"grid_id": str(grid[0]), "grid_path": grid[1], "category_id": str(category)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    async with AsyncExitStack() as stack:
        bench = await open_stack(stack, Path(tempfile.mkdtemp(prefix="shanzhi-bench-")))
        ids = await prepare(bench.url)
        # The per-user submission limit would throttle the load generator's users, and the
        # per-address login limit its logins (all from one address).
        env = bench.app_env(
            free_port(),
            rate_limits='{"case_submit": "1000000/minute", "login_address": "1000000/minute"}',
        )
        app_base = bench.serve(stack, env)

        # One resident per client, logged in through the emulator as a phone would.
        tokens: list[str] = []
        bare_env = {
            "BENCH_GRID_ID": ids["grid_id"],
            "BENCH_GRID_PATH": ids["grid_path"],
            "BENCH_CATEGORY_ID": ids["category_id"],
        }
        async with httpx.AsyncClient(base_url=app_base) as http:
            for i in range(args.concurrency):
                code = await bench.emulator.login_code(f"bench-resident-{i}")
                response = await http.post("/v1/auth/wechat/login", json={"code": code})
                response.raise_for_status()
                tokens.append(response.json()["access_token"])
                if i == 0:
                    bare_env["BENCH_USER_ID"] = response.json()["user"]["id"]
        bare_base = bench.serve_bare(stack, BARE_APP, bare_env)

        rng = random.Random(7)

        async def send_app(http: httpx.AsyncClient, worker: int) -> int:
            headers = {
                "Authorization": f"Bearer {tokens[worker % len(tokens)]}",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            response = await http.post("/v1/reports", json=report_body(rng), headers=headers)
            return response.status_code

        async def send_bare(http: httpx.AsyncClient, worker: int) -> int:
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            response = await http.post("/bare/reports", json=report_body(rng), headers=headers)
            return response.status_code

        # A short warm-up of each, so connection pools and caches are filled.
        await closed_loop(send_app, app_base, args.concurrency, 2)
        await closed_loop(send_bare, bare_base, args.concurrency, 2)

        print(f"app:  {args.concurrency} clients for {args.seconds:.0f} s ...")
        app_lat = await closed_loop(send_app, app_base, args.concurrency, args.seconds)
        app_rps = len(app_lat) / args.seconds
        print(f"bare: {args.concurrency} clients for {args.seconds:.0f} s ...")
        bare_lat = await closed_loop(send_bare, bare_base, args.concurrency, args.seconds)
        bare_rps = len(bare_lat) / args.seconds
        half = app_rps / 2
        print(f"app at half load: {half:.0f} requests/s for {args.seconds:.0f} s ...")
        half_lat = await open_loop(send_app, app_base, half, args.seconds)
        print(f"bare at the same rate: {half:.0f} requests/s for {args.seconds:.0f} s ...")
        bare_half_lat = await open_loop(send_bare, bare_base, half, args.seconds)

        ratio = app_rps / bare_rps if bare_rps else 0.0
        print(
            f"app   {app_rps:8.1f} req/s  p50 {pct(app_lat, 0.5):6.1f} ms  "
            f"p99 {pct(app_lat, 0.99):6.1f} ms  ({len(app_lat)} reports)"
        )
        print(
            f"bare  {bare_rps:8.1f} req/s  p50 {pct(bare_lat, 0.5):6.1f} ms  "
            f"p99 {pct(bare_lat, 0.99):6.1f} ms  ({len(bare_lat)} inserts)"
        )
        print(
            f"half  {len(half_lat) / args.seconds:8.1f} req/s  p50 "
            f"{statistics.median(half_lat) * 1000:6.1f} ms  p99 {pct(half_lat, 0.99):6.1f} ms"
        )
        print(
            f"bare  {len(bare_half_lat) / args.seconds:8.1f} req/s  p50 "
            f"{statistics.median(bare_half_lat) * 1000:6.1f} ms  p99 "
            f"{pct(bare_half_lat, 0.99):6.1f} ms  (the same rate, for reference)"
        )
        print(f"ratio {ratio:.2f} (bar: at least 0.60); p99 at half load bar: under 50 ms")
        print(
            f"result: app_rps={app_rps:.1f} bare_rps={bare_rps:.1f} ratio={ratio:.2f} "
            f"p50_ms={pct(app_lat, 0.5):.1f} p99_ms={pct(app_lat, 0.99):.1f} "
            f"p99_half_load_ms={pct(half_lat, 0.99):.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
