"""A periodic job of `shanzhi worker`: each domain's `tasks.jobs(settings)` lists its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession


class Job(NamedTuple):
    name: str
    # What the count it returns is of, as the worker's log line says it ("escalated").
    counted: str
    # One run in its own session; commits what it finished, returns how many it handled.
    run: Callable[[AsyncSession], Awaitable[int]]
