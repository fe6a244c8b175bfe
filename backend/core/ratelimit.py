"""Rate limits per user or per client address (the `limits` library): in memory, or in
Redis across replicas.

A route with a bearer token counts calls against the user (`auth.principal.RateLimit`); a
route without one counts them against the address they come from (`AddressRateLimit`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import Depends, Request
from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from backend.core.errors import RETRY_AFTER, ShanzhiError


class RateLimited(ShanzhiError):
    status = 429
    code = "request.rate_limited"
    message = {
        "zh-CN": "操作太频繁了，请 {seconds} 秒后再试",
        "en": "Too many requests; try again in {seconds} seconds",
    }
    documented_headers = RETRY_AFTER

    def __init__(self, seconds: int) -> None:
        super().__init__(headers={"Retry-After": str(seconds)}, seconds=seconds)

    def extra(self) -> dict[str, Any]:
        return {"retry_after": int(self.params["seconds"])}


def create_limiter(redis_url: str | None) -> MovingWindowRateLimiter:
    """Redis needs the `redis` extra (`pip install 'shanzhi[redis]'`)."""
    # The "async+" scheme makes `limits` build its asyncio storage.
    storage = (
        cast(Storage, storage_from_string(f"async+{redis_url}", wrap_exceptions=True))
        if redis_url
        else MemoryStorage()
    )
    return MovingWindowRateLimiter(storage)


log = logging.getLogger("shanzhi.ratelimit")
_COUNTER_DOWN_LOG_SECONDS = 10.0
_counter_down_logged_at = -_COUNTER_DOWN_LOG_SECONDS


async def check_rate(request: Request, name: str, rule: str, key: str) -> None:
    """Count one call of `name` by `key` (a user id, a client address) against `rule`
    ("20/minute"); past it, `RateLimited` with the seconds until a call is allowed again.

    The rule can be overridden per deployment with `settings.rate_limits[name]`.
    """
    limiter: MovingWindowRateLimiter = request.app.state.rate_limiter
    configured: dict[str, str] = request.app.state.settings.rate_limits
    item = parse(configured.get(name, rule))
    try:
        allowed = await limiter.hit(item, name, key)
    except StorageError as error:
        # The limits protect the service; with their counter (Redis) down the calls go
        # through uncounted rather than every resident being refused. One line per 10 s.
        global _counter_down_logged_at
        if time.monotonic() - _counter_down_logged_at > _COUNTER_DOWN_LOG_SECONDS:
            _counter_down_logged_at = time.monotonic()
            log.warning("rate-limit store unreachable, calls not counted: %r", error.storage_error)
        return
    if not allowed:
        reset_at, _ = await limiter.get_window_stats(item, name, key)
        # `limits` keeps wall-clock windows, so the wait is measured by the wall clock.
        seconds = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(seconds)


# IPv6 is handed out by the /64 (one phone, one home): within it an address is one client.
_IPV6_CLIENT_PREFIX = 64


def client_address(request: Request) -> str:
    """The client as per-address limits count it: its IPv4 address, or its IPv6 /64.

    `request.client` is the peer, or the address a trusted proxy forwarded when uvicorn
    is told to trust it (`proxy_headers` with `FORWARDED_ALLOW_IPS`). Counting single IPv6
    addresses would let one client rotate through the 2^64 of its own network.
    """
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{_IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def address_rate_limit(name: str, rule: str) -> Callable[..., Awaitable[None]]:
    """A dependency allowing each client address `rule` (e.g. "30/minute") calls of `name`."""

    async def check(request: Request) -> None:
        await check_rate(request, name, rule, client_address(request))

    return check


def AddressRateLimit(name: str, rule: str) -> Any:
    """`Annotated[None, AddressRateLimit("login_address", "30/minute")]`: a parameter that
    counts the call against its client address's limit, for routes without a bearer token.

    Declare it before the parameters that do work (the body is parsed first in any case),
    so a refused call costs no database or upstream call. Many residents may share one
    address (a carrier's NAT, a community center's Wi-Fi): rules here are for a crowd.
    """
    return Depends(address_rate_limit(name, rule))
