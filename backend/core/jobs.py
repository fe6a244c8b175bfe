"""A periodic job of `shanzhi worker`: each domain's `tasks.jobs(settings)` lists its own."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import Unavailable
from backend.core.faults import is_database_outage


class Job(NamedTuple):
    name: str
    # What the count it returns is of, as the worker's log line says it ("escalated").
    counted: str
    # One run in its own session; commits what it finished, returns how many it handled.
    run: Callable[[AsyncSession], Awaitable[int]]


log = logging.getLogger("shanzhi.worker")


def is_transient(error: BaseException) -> bool:
    """A part that is down (the database, S3, WeChat), not a fault of the job: worth a
    later try, and worth one log line rather than a traceback."""
    return isinstance(error, Unavailable) or is_database_outage(error)


@dataclass
class Item:
    failed: bool = False


@asynccontextmanager
async def alone(session: AsyncSession, what: str, *args: object) -> AsyncIterator[Item]:
    """One item of a job's batch, in a savepoint of its own: if it fails, only it is rolled
    back and logged ("could not <what>"), and the batch goes on; it is tried again next run.
    `item.failed` says which way it went."""
    item = Item()
    try:
        async with session.begin_nested():
            yield item
    except Exception as error:
        if is_transient(error):
            raise  # the database or S3 is down: the whole run stops and is tried again
        log.exception("could not " + what, *args)
        item.failed = True


async def until_done(session: AsyncSession, batch: Callable[[], Awaitable[int]]) -> int:
    """Run `batch` and commit, again and again until one handles nothing; the total handled
    (so a killed worker loses at most the batch it was in)."""
    total = 0
    while True:
        handled = await batch()
        await session.commit()
        total += handled
        if handled == 0:
            return total
