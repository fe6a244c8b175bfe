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
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.core.database import create_engine, create_sessionmaker  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.demo import load_demo_data  # noqa: E402
from backend.embedded import EmbeddedPostgres, EmbeddedS3  # noqa: E402
from backend.wechat.emulator import EmulatorServer  # noqa: E402

APPID, SECRET = "wx-bench", "bench-secret"
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


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(20)


def start(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(240):
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not ready:\n{log.read_text()[-3000:]}")


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


Send = Callable[[httpx.AsyncClient, int], Awaitable[int]]


async def closed_loop(send: Send, base: str, concurrency: int, seconds: float) -> list[float]:
    """As fast as `concurrency` clients can go; returns latencies of successful requests."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def client(worker: int) -> None:
            nonlocal failures
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await send(http, worker)
                if status in (200, 201):
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        await asyncio.gather(*(client(w) for w in range(concurrency)))
    if failures:
        print(f"  {failures} requests failed")
    return latencies


async def open_loop(send: Send, base: str, rate: float, seconds: float) -> list[float]:
    """A fixed arrival rate, whatever the latency (so queueing shows in the figures)."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def one(i: int) -> None:
            started = time.perf_counter()
            if await send(http, i) in (200, 201):
                latencies.append(time.perf_counter() - started)

        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


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

    work = Path(tempfile.mkdtemp(prefix="shanzhi-bench-"))
    cleanups: list[Callable[[], object]] = []
    try:
        server_url = os.environ.get("SHANZHI_TEST_DATABASE_URL")
        if server_url:
            server_url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            postgres = EmbeddedPostgres(work)
            cleanups.append(postgres.stop)
            server_url = postgres.start()
        name = f"shanzhi_bench_{uuid.uuid4().hex[:8]}"
        parsed = make_url(server_url)
        connect = {
            "host": parsed.query.get("host") or parsed.host,
            "port": parsed.port,
            "user": parsed.username,
            "password": parsed.password,
        }
        admin = await asyncpg.connect(database="postgres", **connect)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()

        async def drop() -> None:
            conn = await asyncpg.connect(database="postgres", **connect)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()

        cleanups.append(drop)
        url = parsed.set(database=name).render_as_string(hide_password=False)
        ids = await prepare(url)

        s3 = EmbeddedS3(work)
        cleanups.append(s3.stop)
        s3.start()
        emulator = EmulatorServer(APPID, SECRET)
        emulator.start()
        cleanups.append(emulator.stop)

        app_port, bare_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHANZHI_")}
        env.update(
            SHANZHI_ENV="test",
            SHANZHI_DATABASE_URL=url,
            SHANZHI_S3_ENDPOINT=s3.endpoint,
            SHANZHI_S3_ACCESS_KEY=s3.access_key,
            SHANZHI_S3_SECRET_KEY=s3.secret_key,
            SHANZHI_WECHAT_APPID=APPID,
            SHANZHI_WECHAT_SECRET=SECRET,
            SHANZHI_WECHAT_API_BASE=emulator.url,
            SHANZHI_PORT=str(app_port),
            SHANZHI_LOG_LEVEL="WARNING",
            # The per-user submission limit would throttle the load generator's users.
            SHANZHI_RATE_LIMITS='{"case_submit": "1000000/minute"}',
        )
        app_log = work / "app.log"
        app = start(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve", "--no-demo"],
            env=env,
            cwd=ROOT,
            log=app_log,
        )
        cleanups.append(lambda: stop(app))
        wait_ready(f"http://127.0.0.1:{app_port}/readyz", app, app_log)

        bare_file = work / "bare_app.py"
        bare_file.write_text(BARE_APP)
        dsn_params = make_url(url)
        bare_env = dict(env)
        bare_env.update(
            BENCH_DSN=f"postgresql://{dsn_params.username}@/{name}?host="
            f"{dsn_params.query.get('host') or dsn_params.host}"
            + (f"&port={dsn_params.port}" if dsn_params.port else ""),
            BENCH_GRID_ID=ids["grid_id"],
            BENCH_GRID_PATH=ids["grid_path"],
            BENCH_CATEGORY_ID=ids["category_id"],
        )

        # One resident per client, logged in through the emulator as a phone would.
        tokens: list[str] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}") as http:
            for i in range(args.concurrency):
                code = await emulator.login_code(f"bench-resident-{i}")
                response = await http.post("/v1/auth/wechat/login", json={"code": code})
                response.raise_for_status()
                tokens.append(response.json()["access_token"])
                if i == 0:
                    bare_env["BENCH_USER_ID"] = response.json()["user"]["id"]

        bare_log = work / "bare.log"
        bare = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
            ],
            env=bare_env,
            cwd=work,
            log=bare_log,
        )
        cleanups.append(lambda: stop(bare))
        wait_ready(f"http://127.0.0.1:{bare_port}/docs", bare, bare_log)

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

        app_base, bare_base = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
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
    finally:
        for cleanup in reversed(cleanups):
            try:
                result = cleanup()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as error:  # keep cleaning up the rest
                print(f"cleanup failed: {error!r}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
