"""Per-user rate limits (the `limits` library): in memory, or in Redis across replicas."""

from __future__ import annotations

import math
import time
from typing import Any, cast

from fastapi import Request
from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from backend.core.errors import ShanzhiError


class RateLimited(ShanzhiError):
    status = 429
    code = "request.rate_limited"
    message = {
        "zh-CN": "操作太频繁了，请 {seconds} 秒后再试",
        "en": "Too many requests; try again in {seconds} seconds",
    }

    def __init__(self, seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(seconds)}, seconds=seconds)

    def extra(self) -> dict[str, Any]:
        return {"retry_after": int(self.params["seconds"])}


def create_limiter(redis_url: str | None) -> MovingWindowRateLimiter:
    """Redis needs the `redis` extra (`pip install 'shanzhi[redis]'`)."""
    # The "async+" scheme makes `limits` build its asyncio storage.
    storage = (
        cast(Storage, storage_from_string(f"async+{redis_url}")) if redis_url else MemoryStorage()
    )
    return MovingWindowRateLimiter(storage)


async def check_rate(request: Request, name: str, rule: str, key: str) -> None:
    """Count one call of `name` by `key` (e.g. a user id) against `rule` ("20/minute").

    The rule can be overridden per deployment with `settings.rate_limits[name]`.
    """
    limiter: MovingWindowRateLimiter = request.app.state.rate_limiter
    configured: dict[str, str] = request.app.state.settings.rate_limits
    item = parse(configured.get(name, rule))
    if not await limiter.hit(item, name, key):
        reset_at, _ = await limiter.get_window_stats(item, name, key)
        # `limits` keeps wall-clock windows, so the wait is measured by the wall clock.
        seconds = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(seconds)
