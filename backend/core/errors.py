"""Typed domain errors rendered as RFC 9457 problem+json in the caller's language.

Each error names its HTTP status, a stable `code` the mini-program switches on, and its
message in zh-CN and en. Domains declare theirs next to their service; one handler renders
them all, and `problem_responses()` documents them in the OpenAPI spec.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.core.i18n import Language, negotiate

log = logging.getLogger("shanzhi.errors")

PROBLEM_JSON = "application/problem+json"
UNAVAILABLE = Counter(
    "shanzhi_unavailable_total", "Requests refused because a part was down (503)", ["code"]
)
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


class ShanzhiError(Exception):
    """Base of every error a client may see. Subclasses set the class attributes."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "request.bad"
    message: ClassVar[dict[Language, str]] = {"zh-CN": "请求有误", "en": "Bad request"}
    headers: dict[str, str] | None = None
    # Some refusals are facts to keep (a reused refresh token revokes its family): the
    # request's transaction commits before the error is answered.
    commit_before_raising: ClassVar[bool] = False
    # Headers the error always carries, as OpenAPI header objects (documented in the spec).
    documented_headers: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, *, headers: dict[str, str] | None = None, **params: Any) -> None:
        self.params = params
        self.headers = headers
        super().__init__(self.render("en"))

    def render(self, language: Language) -> str:
        template = self.message.get(language) or self.message["zh-CN"]
        return template.format(**self.params) if self.params else template

    def extra(self) -> dict[str, Any]:
        """Machine-readable fields besides the message (e.g. `retry_after`)."""
        return {}


# What a refusal to be retried later carries (`RateLimited`, `Unavailable`, a WeChat quota
# reached).
RETRY_AFTER: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again (also `retry_after` in the body).",
        "schema": {"type": "integer", "minimum": 1},
    }
}


class NotFound(ShanzhiError):
    status = 404
    code = "request.not_found"
    message = {"zh-CN": "找不到该资源", "en": "Not found"}


class Unauthenticated(ShanzhiError):
    status = 401
    code = "auth.unauthenticated"
    message = {"zh-CN": "请先登录", "en": "Please log in first"}

    def __init__(self, **params: Any) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"}, **params)


class Forbidden(ShanzhiError):
    status = 403
    code = "auth.forbidden"
    message = {"zh-CN": "您无权执行此操作", "en": "You are not allowed to do this"}


class ValidationFailed(ShanzhiError):
    status = 422
    code = "request.invalid"
    message = {"zh-CN": "请求内容不符合要求：{summary}", "en": "The request is invalid: {summary}"}

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"loc": (), "msg": ""}
        where = ".".join(str(p) for p in first.get("loc", ()))
        super().__init__(summary=f"{where} {first.get('msg', '')}".strip())

    def extra(self) -> dict[str, Any]:
        return {
            "errors": [
                {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                for e in self.errors
            ]
        }


class MalformedRequest(ShanzhiError):
    status = 400
    code = "request.malformed"
    message = {
        "zh-CN": "请求内容无法解析，请检查是否为有效的 JSON",
        "en": "The request body could not be parsed; send valid JSON",
    }


class MethodNotAllowed(ShanzhiError):
    status = 405
    code = "request.method_not_allowed"
    message = {"zh-CN": "不支持该请求方法", "en": "This method is not allowed here"}


class Unavailable(ShanzhiError):
    """A part the request needs is down or overloaded: the client should try again after
    `Retry-After` seconds (every 503 carries the header and `retry_after` in the body)."""

    status = 503
    retry_after: ClassVar[int] = 5
    documented_headers = RETRY_AFTER

    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after_seconds}

    @property
    def retry_after_seconds(self) -> int:
        given = (self.headers or {}).get("Retry-After", "")
        return int(given) if given.isdigit() else self.retry_after


class ServiceUnavailable(Unavailable):
    code = "service.unavailable"
    message = {"zh-CN": "服务暂时不可用，请稍后再试", "en": "Service unavailable, try again later"}


class DatabaseUnavailable(Unavailable):
    """The database is down, restarting, out of connections or too slow (`core.faults`)."""

    code = "service.database_unavailable"
    message = {
        "zh-CN": "服务繁忙或正在维护，请稍后再试",
        "en": "The service is busy or under maintenance; try again in a moment",
    }
    retry_after = 2


class InternalError(ShanzhiError):
    status = 500
    code = "internal"
    message = {"zh-CN": "服务器出错了，请稍后再试", "en": "Something went wrong, try again later"}


_HTTP_CODES: dict[int, type[ShanzhiError]] = {
    400: MalformedRequest,
    404: NotFound,
    401: Unauthenticated,
    403: Forbidden,
    405: MethodNotAllowed,
}


class Problem(BaseModel):
    """An RFC 9457 problem detail, as every error of this API is shaped."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI naming the problem type; derived from `code`.")
    title: str = Field(description="Short summary in the caller's language.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What happened, in the caller's language.")
    code: str = Field(description="Stable machine-readable code, e.g. `auth.token_expired`.")
    instance: str | None = Field(None, description="The request path.")
    request_id: str | None = Field(None, description="Quote this when reporting a problem.")


def problem_body(error: ShanzhiError, language: Language, instance: str | None) -> dict[str, Any]:
    return {
        "type": f"urn:shanzhi:problem:{error.code}",
        "title": _title(type(error), language),
        "status": error.status,
        "detail": error.render(language),
        "code": error.code,
        "instance": instance,
        "request_id": correlation_id.get(),
        **error.extra(),
    }


def _title(error: type[ShanzhiError], language: Language) -> str:
    # The title is the same for every occurrence of a code: the message up to its details.
    template = error.message.get(language) or error.message["zh-CN"]
    return _PLACEHOLDER.sub("…", template.split("：")[0].split(": ")[0])


def problem_response(error: ShanzhiError, request: Request) -> JSONResponse:
    language = negotiate(request.headers.get("accept-language"))
    headers = {"Content-Language": language, **(error.headers or {})}
    if isinstance(error, Unavailable):
        headers["Retry-After"] = str(error.retry_after_seconds)
        UNAVAILABLE.labels(error.code).inc()
    return JSONResponse(
        problem_body(error, language, request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API serves at this path, from its OpenAPI paths (Starlette's own
    `Allow` names only the first route that matched the path)."""
    templates: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        request.app.state, "allow_templates", None
    )
    if templates is None:
        templates = []
        for path, operations in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            methods = {method.upper() for method in operations}
            if "GET" in methods:
                methods.add("HEAD")
            templates.append((re.compile(f"^{pattern}$"), methods))
        request.app.state.allow_templates = templates
    allowed: set[str] = set()
    for template, methods in templates:
        if template.match(request.url.path):
            allowed |= methods
    return ", ".join(sorted(allowed)) if allowed else fallback


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ShanzhiError)
        # A part that is down logs one line where it is noticed, not one per request.
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            log.error("request failed: %s", exc.code)
        return problem_response(exc, request)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(ValidationFailed(list(exc.errors())), request)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error_type = _HTTP_CODES.get(exc.status_code)
        if error_type is not None:
            known = error_type()
            known.headers = {**(known.headers or {}), **(exc.headers or {})}
            if exc.status_code == 405:
                known.headers["Allow"] = _allowed_methods(
                    request, (exc.headers or {}).get("Allow", "")
                )
            return problem_response(known, request)
        error = ShanzhiError(headers=dict(exc.headers or {}))
        error.status = exc.status_code  # type: ignore[misc]  # one-off framework errors (405, ...)
        error.code = f"http.{exc.status_code}"  # type: ignore[misc]
        error.message = {"zh-CN": str(exc.detail), "en": str(exc.detail)}  # type: ignore[misc]
        return problem_response(error, request)

    app.add_exception_handler(ShanzhiError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    # Everything else (a database outage, a bug) is answered by `faults.ProblemMiddleware`:
    # a handler for `Exception` would run in Starlette's outermost middleware, which closes
    # the connection after answering.


def problem_responses(*errors: type[ShanzhiError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each error it may answer, with an example per code."""
    by_status: dict[int, list[type[ShanzhiError]]] = {}
    error: type[ShanzhiError]
    # Any route may meet malformed input or a database that is down.
    for error in (*errors, MalformedRequest, ValidationFailed, DatabaseUnavailable):
        if error not in by_status.get(error.status, []):
            by_status.setdefault(error.status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        examples = {
            error.code: {
                "summary": error.message["en"],
                "value": _example(error),
            }
            for error in group
        }
        responses[status] = {
            "model": Problem,
            "description": "; ".join(f"`{e.code}`: {e.message['en']}" for e in group),
            "content": {PROBLEM_JSON: {"examples": examples}},
        }
        headers = {
            name: header for error in group for name, header in error.documented_headers.items()
        }
        if headers:
            responses[status]["headers"] = headers
    return responses


def _example(error: type[ShanzhiError]) -> dict[str, Any]:
    text = _PLACEHOLDER.sub("…", error.message["zh-CN"])
    example: dict[str, Any] = {
        "type": f"urn:shanzhi:problem:{error.code}",
        "title": _title(error, "zh-CN"),
        "status": error.status,
        "detail": text,
        "code": error.code,
        "instance": "/v1/...",
        "request_id": "3f2b9c1e8a7d4e6f9b0a1c2d3e4f5a6b",
    }
    if issubclass(error, Unavailable):
        example["retry_after"] = error.retry_after
    return example
