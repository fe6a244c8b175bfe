"""One log line and one metric sample per request, tagged with the route, not the raw path."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("shanzhi.request")

REQUESTS = Counter("shanzhi_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "shanzhi_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RequestLogMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it adds nothing to the hot path but a timer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            log.info(
                "%s %s -> %s in %.1f ms",
                method,
                scope["path"],
                status,
                elapsed * 1000,
                extra={"method": method, "route": template, "status": status},
            )
