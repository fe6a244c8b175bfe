"""`shanzhi worker`: runs the periodic jobs every domain declares (`tasks.jobs(settings)`).

Each job runs in its own session and commits its own batches; one that fails is logged and
the others still run. One log line per run says how many rows each job handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.cases import tasks as cases_tasks
from backend.core.config import Settings
from backend.core.database import create_engine, create_sessionmaker
from backend.core.errors import ShanzhiError
from backend.core.jobs import Job, is_transient
from backend.mediation import tasks as mediation_tasks
from backend.storage import tasks as storage_tasks
from points import tasks as points_tasks
from volunteers import tasks as volunteers_tasks

log = logging.getLogger("shanzhi.worker")

# In the order they run.
DOMAINS = (cases_tasks, storage_tasks, points_tasks, volunteers_tasks, mediation_tasks)


def all_jobs(settings: Settings) -> list[Job]:
    return [job for domain in DOMAINS for job in domain.jobs(settings)]


class Run(NamedTuple):
    healthy: bool  # every job finished
    outage: bool  # a job met a part that is down (the database, S3): try again soon


async def run_jobs(factory: async_sessionmaker[AsyncSession], jobs: list[Job]) -> Run:
    """Run every job once, each in its own session."""
    healthy, outage = True, False
    counts: dict[str, int | None] = {}
    for job in jobs:
        try:
            async with factory() as session:
                counts[job.counted] = await job.run(session)
        except Exception as error:
            counts[job.counted] = None
            healthy = False
            if is_transient(error):
                outage = True
                log.warning("job %s: %s", job.name, _outage(error))
            else:
                log.exception("job %s failed; it runs again next time", job.name)
    # One line per run: how many rows each job handled ("failed" for a job that broke).
    log.info(
        "worker run: %s",
        ", ".join(f"{name} {'failed' if n is None else n}" for name, n in counts.items()),
        extra={"counts": counts},
    )
    return Run(healthy, outage)


def _outage(error: BaseException) -> str:
    if isinstance(error, ShanzhiError):
        return error.code
    return "service.database_unavailable"


# After a run that met an outage the next one comes sooner, then ever later: 1, 2, 4, ...
# seconds, up to the usual interval.
def next_wait(interval: float, outages_in_a_row: int) -> float:
    if outages_in_a_row == 0:
        return interval
    return min(interval, float(2 ** (outages_in_a_row - 1)))


async def run_worker(settings: Settings, *, once: bool, interval: float) -> bool:
    """Run the jobs every `interval` seconds until SIGINT or SIGTERM (or once).

    A signal stops the loop between runs or cuts the wait short; a run in progress is
    cancelled, and its open batch rolls back (what it already committed stays).
    Answers whether the last run succeeded.
    """
    assert settings.database_url
    engine = create_engine(
        settings.database_url,
        pool_size=2,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
        idle_in_transaction_timeout=settings.database_idle_in_transaction_timeout_seconds,
    )
    factory = create_sessionmaker(engine)
    jobs = all_jobs(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    healthy = True
    outages = 0
    try:
        while not stop.is_set():
            run = asyncio.create_task(run_jobs(factory, jobs))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                break
            stopped.cancel()
            healthy, outage = run.result()
            outages = outages + 1 if outage else 0
            if once:
                break
            wait = next_wait(interval, outages)
            if outage:
                log.warning("a part is down; next run in %.0f s", wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await engine.dispose()
    log.info("worker stopped")
    return healthy
