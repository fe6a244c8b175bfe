"""A local stand-in for WeChat's server API, for development and tests.

A real HTTP server on loopback, so the app talks to it exactly as it talks to WeChat:
same paths, field names, errcodes and errmsgs, HTTP 200 even on failure. It implements

- `GET  /sns/jscode2session`                 code2Session
- `POST /cgi-bin/stable_token`               getStableAccessToken
- `POST /wxa/business/getuserphonenumber`    getPhoneNumber
- `POST /cgi-bin/message/subscribe/send`     subscribeMessage.send
- `POST /wxa/msg_sec_check`                  msgSecCheck (v2, and v1's 87014)

and does what the phone does, so anyone can drive the API with curl:

- `POST /emulator/login-code  {"openid": "...", "unionid": "..."?}` -> `{"code"}` (wx.login)
- `POST /emulator/phone-code  {"openid": "...", "phone": "13800138000"}` -> `{"code"}`
  (the getPhoneNumber button)

For tests: `POST /emulator/faults {"api", "errcode"?, "delay"?, "times"?}` makes the next
calls of an api fail (or answer late), `DELETE /emulator/faults` clears them,
`GET /emulator/stats` counts calls per api, `GET /emulator/messages` lists the subscribe
messages sent, `POST /emulator/tokens/expire` expires every access token.

Time is `backend.core.clock.now()`, so tests that move the clock move WeChat's too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from backend.core.clock import now

# The apis as named in fault injection and stats (and in the client's logs).
APIS = ("jscode2session", "stable_token", "getuserphonenumber", "subscribe_send", "msg_sec_check")

CODE_TTL = timedelta(minutes=5)  # login and phone codes
TOKEN_TTL = timedelta(seconds=7200)
# Normal-mode stable_token issues the next token in the old one's last 5 minutes.
TOKEN_HANDOVER = timedelta(minutes=5)

# errmsg as WeChat words them (a ", rid: ..." request id is appended, as WeChat does).
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    40226: "high risk user, login blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
    61010: "user visit record expired",
    87014: "risky content",
}

# msgSecCheck's built-in lists: word -> label (WeChat's label numbers).
RISKY_WORDS: dict[str, int] = {
    "赌博": 20006,
    "毒品": 20006,
    "枪支": 20006,
    "代开发票": 20008,
    "办假证": 20008,
    "色情": 20002,
}
REVIEW_WORDS: dict[str, int] = {"加微信": 10001, "兼职日结": 10001}

MINIPROGRAM_STATES = frozenset({"developer", "trial", "formal"})
LANGS = frozenset({"zh_CN", "en_US", "zh_HK", "zh_TW"})

# Subscribe-message value rules, per the type prefix of a data key (`thing1` -> `thing`).
_HAN = "\u4e00-\u9fff"
_SYMBOLS = re.escape("""!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~""")
_DATE = r"\d{4}(?:年\d{1,2}月\d{1,2}日|[-/]\d{1,2}[-/]\d{1,2})"
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?"
_ONE_TIME = rf"(?:{_DATE}\s*)?{_TIME}"
_ONE_DATE = rf"{_DATE}(?:\s*{_TIME})?"


def _span(one: str) -> re.Pattern[str]:
    # Times and dates may be a range: two values joined by "~".
    return re.compile(rf"{one}(?:\s*~\s*{one})?")


VALUE_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"[+-]?\d+(?:\.\d+)?", v) is not None,
    "letter": lambda v: re.fullmatch(r"[A-Za-z]{1,32}", v) is not None,
    "symbol": lambda v: re.fullmatch(rf"[{_SYMBOLS}]{{1,5}}", v) is not None,
    "character_string": lambda v: (
        re.fullmatch(r"[0-9A-Za-z" + _SYMBOLS + r"]{1,32}", v) is not None
    ),
    "time": lambda v: _span(_ONE_TIME).fullmatch(v) is not None,
    "date": lambda v: _span(_ONE_DATE).fullmatch(v) is not None,
    "amount": lambda v: re.fullmatch(r"[¥￥$€£]?\d{1,10}(?:\.\d{1,2})?元?", v) is not None,
    "phone_number": lambda v: re.fullmatch(r"[0-9+\-() ]{1,17}", v) is not None,
    "car_number": lambda v: len(v) <= 8,
    # Up to 10 Chinese characters, or 20 letters and symbols; mixed counts as Chinese.
    "name": lambda v: len(v) <= 10 if re.search(f"[{_HAN}]", v) else len(v) <= 20,
    "phrase": lambda v: re.fullmatch(f"[{_HAN}]{{1,5}}", v) is not None,
}


@dataclass
class _LoginCode:
    openid: str
    unionid: str | None
    issued_at: datetime


@dataclass
class _PhoneCode:
    openid: str
    phone: str
    country_code: str
    issued_at: datetime


@dataclass
class _Token:
    expires_at: datetime
    revoked: bool = False


@dataclass
class _Fault:
    errcode: int | None
    delay: float
    times: int


@dataclass
class _State:
    """Everything one emulator remembers; every access holds `lock`."""

    appid: str
    secret: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    login_codes: dict[str, _LoginCode] = field(default_factory=dict)
    phone_codes: dict[str, _PhoneCode] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    current_token: str | None = None
    faults: dict[str, list[_Fault]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(APIS, 0))
    messages: list[dict[str, Any]] = field(default_factory=list)


class _WechatFailure(Exception):
    """Inside a handler: answer with this errcode, as WeChat does (HTTP 200)."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.detail = detail


def _wechat_error(errcode: int, detail: str = "") -> JSONResponse:
    text = ERRMSG.get(errcode, "unknown error")
    if detail:
        text = f"{text} {detail}"
    rid = "-".join(secrets.token_hex(4) for _ in range(3))
    return JSONResponse({"errcode": errcode, "errmsg": f"{text}, rid: {rid}"})


def _helper_error(message: str) -> JSONResponse:
    # The emulator's own endpoints answer like an ordinary API, not like WeChat.
    return JSONResponse({"error": message}, status_code=400)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise _WechatFailure(44002)
    try:
        body = json.loads(raw)
    except ValueError:
        raise _WechatFailure(47001) from None
    if not isinstance(body, dict):
        raise _WechatFailure(47001)
    return body


def _new_code() -> str:
    # WeChat's codes are 32 opaque characters.
    return secrets.token_hex(16)


def create_emulator_app(appid: str, secret: str) -> ASGIApp:
    """The emulator as an ASGI app, with its own state, for this AppID and AppSecret."""
    return _build_app(_State(appid=appid, secret=secret))


def _build_app(state: _State) -> Starlette:
    Handler = Callable[[Request], Awaitable[Response]]

    def wechat_api(api: str, handler: Callable[[Request], Awaitable[dict[str, Any]]]) -> Handler:
        """Count the call, apply an injected fault, turn `_WechatFailure` into errcode JSON."""

        async def endpoint(request: Request) -> Response:
            with state.lock:
                state.calls[api] += 1
                fault = _take_fault(state, api)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.errcode is not None:
                return _wechat_error(fault.errcode)
            try:
                return JSONResponse(await handler(request))
            except _WechatFailure as failure:
                return _wechat_error(failure.errcode, failure.detail)

        return endpoint

    def check_token(request: Request) -> None:
        value = request.query_params.get("access_token")
        if not value:
            raise _WechatFailure(41001)
        token = state.tokens.get(value)
        if token is None or token.revoked:
            raise _WechatFailure(40001)
        if now() >= token.expires_at:
            raise _WechatFailure(42001)

    def check_app(appid: Any, secret: Any) -> None:
        if not appid:
            raise _WechatFailure(41002)
        if appid != state.appid:
            raise _WechatFailure(40013)
        if not secret:
            raise _WechatFailure(41004)
        if secret != state.secret:
            raise _WechatFailure(40125)

    # --- WeChat's APIs ------------------------------------------------------------------

    async def jscode2session(request: Request) -> dict[str, Any]:
        query = request.query_params
        with state.lock:
            check_app(query.get("appid"), query.get("secret"))
            if query.get("grant_type") != "authorization_code":
                raise _WechatFailure(40002)
            js_code = query.get("js_code")
            if not js_code:
                raise _WechatFailure(41008)
            # Single use: a code is gone once presented, valid or not.
            issued = state.login_codes.pop(js_code, None)
            if issued is None or now() >= issued.issued_at + CODE_TTL:
                raise _WechatFailure(40029)
        body: dict[str, Any] = {
            "session_key": base64.b64encode(secrets.token_bytes(16)).decode(),
            "openid": issued.openid,
        }
        if issued.unionid:
            body["unionid"] = issued.unionid
        return body

    async def stable_token(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            raise _WechatFailure(47001)
        with state.lock:
            if body.get("grant_type") != "client_credential":
                raise _WechatFailure(40002)
            check_app(body.get("appid"), body.get("secret"))
            at = now()
            current = state.tokens.get(state.current_token or "")
            if force:
                # Forced mode cuts off every earlier token at once.
                for token in state.tokens.values():
                    token.revoked = True
            elif (
                current is not None
                and not current.revoked
                and current.expires_at - at > TOKEN_HANDOVER
            ):
                assert state.current_token is not None
                remaining = int((current.expires_at - at).total_seconds())
                return {"access_token": state.current_token, "expires_in": remaining}
            # A new token; in normal mode the old one keeps working until its own expiry.
            _forget_dead_tokens(state, at)
            value = secrets.token_urlsafe(48)
            state.tokens[value] = _Token(expires_at=at + TOKEN_TTL)
            state.current_token = value
        return {"access_token": value, "expires_in": int(TOKEN_TTL.total_seconds())}

    async def getuserphonenumber(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        with state.lock:
            check_token(request)
            code = body.get("code")
            if not code or not isinstance(code, str):
                raise _WechatFailure(41008)
            issued = state.phone_codes.pop(code, None)
            at = now()
            if issued is None or at >= issued.issued_at + CODE_TTL:
                raise _WechatFailure(40029)
        # Numbers outside mainland China carry their country code in phoneNumber.
        full = (
            issued.phone if issued.country_code == "86" else f"+{issued.country_code}{issued.phone}"
        )
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": full,
                "purePhoneNumber": issued.phone,
                "countryCode": issued.country_code,
                "watermark": {"timestamp": int(at.timestamp()), "appid": state.appid},
            },
        }

    async def subscribe_send(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        with state.lock:
            check_token(request)
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            raise _WechatFailure(40003)
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            raise _WechatFailure(40037)
        data = body.get("data")
        if not isinstance(data, dict) or not data:
            raise _WechatFailure(47003, "data is empty")
        for key, item in data.items():
            _check_subscribe_value(key, item)
        page = body.get("page")
        if page is not None and not isinstance(page, str):
            raise _WechatFailure(47003, "page invalid")
        state_name = body.get("miniprogram_state", "formal")
        if state_name not in MINIPROGRAM_STATES:
            raise _WechatFailure(47003, "miniprogram_state invalid")
        lang = body.get("lang", "zh_CN")
        if lang not in LANGS:
            raise _WechatFailure(47003, "lang invalid")
        with state.lock:
            state.messages.append(
                {
                    "touser": touser,
                    "template_id": template_id,
                    "page": page,
                    "data": {key: {"value": str(item["value"])} for key, item in data.items()},
                    "miniprogram_state": state_name,
                    "lang": lang,
                    "sent_at": now().isoformat(),
                }
            )
        return {"errcode": 0, "errmsg": "ok"}

    async def msg_sec_check(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        with state.lock:
            check_token(request)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise _WechatFailure(47001)
        if len(content) > 2500:
            raise _WechatFailure(47003, "content exceeds limit")
        suggest, label, keyword = _judge(content)
        if body.get("version") != 2:
            # v1 has no verdict, only 87014 for risky content.
            if suggest == "risky":
                raise _WechatFailure(87014)
            return {"errcode": 0, "errmsg": "ok"}
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            raise _WechatFailure(40003)
        scene = body.get("scene")
        if scene not in (1, 2, 3, 4) or isinstance(scene, bool):
            raise _WechatFailure(47001)
        detail: list[dict[str, Any]] = [
            {
                "strategy": "content_model",
                "errcode": 0,
                "suggest": suggest,
                "label": label,
                "prob": 90 if keyword else 0,
            }
        ]
        if keyword:
            detail.append(
                {
                    "strategy": "keyword",
                    "errcode": 0,
                    "suggest": suggest,
                    "label": label,
                    "level": 20,
                    "keyword": keyword,
                }
            )
        return {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": label},
            "detail": detail,
            "trace_id": secrets.token_hex(12),
        }

    # --- the phone's side ---------------------------------------------------------------

    async def login_code(request: Request) -> Response:
        body = await _helper_body(request)
        if isinstance(body, Response):
            return body
        openid, unionid = body.get("openid"), body.get("unionid")
        if not isinstance(openid, str) or not openid:
            return _helper_error("openid is required")
        if unionid is not None and (not isinstance(unionid, str) or not unionid):
            return _helper_error("unionid must be a non-empty string when given")
        code = _new_code()
        with state.lock:
            _forget_dead_codes(state)
            state.login_codes[code] = _LoginCode(openid, unionid, issued_at=now())
        return JSONResponse({"code": code})

    async def phone_code(request: Request) -> Response:
        body = await _helper_body(request)
        if isinstance(body, Response):
            return body
        openid, phone = body.get("openid"), body.get("phone")
        country_code = body.get("country_code", "86")
        if not isinstance(openid, str) or not openid:
            return _helper_error("openid is required")
        if not isinstance(phone, str) or not re.fullmatch(r"\d{5,20}", phone):
            return _helper_error("phone must be 5 to 20 digits, without the country code")
        if not isinstance(country_code, str) or not re.fullmatch(r"\d{1,4}", country_code):
            return _helper_error("country_code must be 1 to 4 digits")
        code = _new_code()
        with state.lock:
            _forget_dead_codes(state)
            state.phone_codes[code] = _PhoneCode(openid, phone, country_code, issued_at=now())
        return JSONResponse({"code": code})

    # --- test controls --------------------------------------------------------------------

    async def add_fault(request: Request) -> Response:
        body = await _helper_body(request)
        if isinstance(body, Response):
            return body
        api, errcode = body.get("api"), body.get("errcode")
        times, delay = body.get("times", 1), body.get("delay", 0)
        if api not in APIS:
            return _helper_error(f"api must be one of {', '.join(APIS)}")
        if errcode is not None and (not isinstance(errcode, int) or errcode == 0):
            return _helper_error("errcode must be a non-zero integer")
        if not isinstance(times, int) or times < 1:
            return _helper_error("times must be a positive integer")
        if not isinstance(delay, int | float) or not 0 <= delay <= 60:
            return _helper_error("delay must be between 0 and 60 seconds")
        if errcode is None and not delay:
            return _helper_error("give an errcode, a delay, or both")
        with state.lock:
            state.faults.setdefault(api, []).append(_Fault(errcode, float(delay), times))
        return JSONResponse({"api": api, "errcode": errcode, "delay": delay, "times": times})

    async def clear_faults(request: Request) -> Response:
        with state.lock:
            cleared = sum(len(queue) for queue in state.faults.values())
            state.faults.clear()
        return JSONResponse({"cleared": cleared})

    async def stats(request: Request) -> Response:
        with state.lock:
            return JSONResponse(dict(state.calls))

    async def messages(request: Request) -> Response:
        touser = request.query_params.get("touser")
        with state.lock:
            found = [m for m in state.messages if touser is None or m["touser"] == touser]
        return JSONResponse({"messages": found})

    async def clear_messages(request: Request) -> Response:
        with state.lock:
            cleared = len(state.messages)
            state.messages.clear()
        return JSONResponse({"cleared": cleared})

    async def expire_tokens(request: Request) -> Response:
        with state.lock:
            at = now()
            live = [t for t in state.tokens.values() if not t.revoked and t.expires_at > at]
            for token in live:
                token.expires_at = at
        return JSONResponse({"expired": len(live)})

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "emulator": "WeChat server API",
                "appid": state.appid,
                "apis": list(APIS),
                "phone": ["POST /emulator/login-code", "POST /emulator/phone-code"],
            }
        )

    routes = [
        Route("/", index),
        Route("/sns/jscode2session", wechat_api("jscode2session", jscode2session)),
        Route(
            "/cgi-bin/stable_token",
            wechat_api("stable_token", stable_token),
            methods=["POST"],
        ),
        Route(
            "/wxa/business/getuserphonenumber",
            wechat_api("getuserphonenumber", getuserphonenumber),
            methods=["POST"],
        ),
        Route(
            "/cgi-bin/message/subscribe/send",
            wechat_api("subscribe_send", subscribe_send),
            methods=["POST"],
        ),
        Route("/wxa/msg_sec_check", wechat_api("msg_sec_check", msg_sec_check), methods=["POST"]),
        Route("/emulator/login-code", login_code, methods=["POST"]),
        Route("/emulator/phone-code", phone_code, methods=["POST"]),
        Route("/emulator/faults", add_fault, methods=["POST"]),
        Route("/emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/emulator/stats", stats, methods=["GET"]),
        Route("/emulator/messages", messages, methods=["GET"]),
        Route("/emulator/messages", clear_messages, methods=["DELETE"]),
        Route("/emulator/tokens/expire", expire_tokens, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _helper_body(request: Request) -> dict[str, Any] | Response:
    try:
        return await _json_body(request)
    except _WechatFailure:
        return _helper_error("send a JSON object")


def _take_fault(state: _State, api: str) -> _Fault | None:
    queue = state.faults.get(api)
    if not queue:
        return None
    fault = queue[0]
    fault.times -= 1
    if fault.times <= 0:
        queue.pop(0)
    return fault


def _forget_dead_codes(state: _State) -> None:
    # Keeps a long-running dev emulator's memory bounded.
    cutoff = now() - CODE_TTL
    for codes in (state.login_codes, state.phone_codes):
        for code in [c for c, issued in codes.items() if issued.issued_at < cutoff]:
            del codes[code]


def _forget_dead_tokens(state: _State, at: datetime) -> None:
    # Dead tokens are kept a while so that they still answer 40001/42001, not "unknown".
    cutoff = at - timedelta(days=1)
    for value in [v for v, t in state.tokens.items() if t.expires_at < cutoff]:
        del state.tokens[value]


def _check_subscribe_value(key: Any, item: Any) -> None:
    where = f"data.{key}.value"
    match = re.fullmatch(r"([a-z_]+?)(\d*)", key) if isinstance(key, str) else None
    rule = VALUE_RULES.get(match.group(1)) if match else None
    if rule is None:
        raise _WechatFailure(47003, f"data.{key} is not a template key")
    if not isinstance(item, dict) or "value" not in item:
        raise _WechatFailure(47003, f"{where} missing")
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _WechatFailure(47003, f"{where} invalid")
    text = str(value)
    if not text:
        raise _WechatFailure(47003, f"{where} is empty")
    if not rule(text):
        raise _WechatFailure(47003, f"{where} exceeds limit or has invalid characters")


def _judge(content: str) -> tuple[str, int, str | None]:
    """msgSecCheck's verdict: (suggest, label, the keyword that decided it)."""
    for word, label in RISKY_WORDS.items():
        if word in content:
            return "risky", label, word
    for word, label in REVIEW_WORDS.items():
        if word in content:
            return "review", label, word
    return "pass", 100, None


class _QuietH11Protocol(H11Protocol):
    """uvicorn's HTTP protocol without access-log lines, whatever the logging setup.

    The emulator's request lines carry the AppSecret, login codes and access tokens in
    their query strings. uvicorn logs them whenever `uvicorn.access` has a handler, a
    process-wide setting this server must not depend on (nor change for its host).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class EmulatorServer:
    """The emulator served by uvicorn in a background thread, with its own event loop.

    `port=0` picks a free port. State belongs to this instance; the async helpers go over
    real HTTP, exactly as a phone or a test script would.
    """

    def __init__(self, appid: str, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.appid = appid
        self.secret = secret
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the WeChat emulator is not started")
        return f"http://{self.host}:{self._port}"

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the WeChat emulator is already started")
        # Binding here tells us the port before uvicorn starts, even when it is 0.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_emulator_app(self.appid, self.secret),
            http=_QuietH11Protocol,
            lifespan="off",
            # None: leave the host process's logging configuration and levels alone.
            log_config=None,
            log_level=None,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only on the main thread, so none are installed.
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"wechat-emulator-{self._port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError("the WeChat emulator failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the WeChat emulator did not start within {timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._server = None
        self._thread = None

    # --- over HTTP, as a phone or a test would ------------------------------------------

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._request("POST", path, body)

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        # trust_env=False: a proxy from the environment must not intercept loopback calls.
        async with httpx.AsyncClient(base_url=self.url, trust_env=False) as http:
            response = await http.request(method, path, json=body, params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def login_code(self, openid: str, unionid: str | None = None) -> str:
        """A fresh single-use login code for `openid`, as `wx.login` would give."""
        body: dict[str, Any] = {"openid": openid}
        if unionid is not None:
            body["unionid"] = unionid
        return str((await self._post("/emulator/login-code", body))["code"])

    async def phone_code(self, openid: str, phone: str) -> str:
        """A single-use code for `phone`, as the getPhoneNumber button would give."""
        result = await self._post("/emulator/phone-code", {"openid": openid, "phone": phone})
        return str(result["code"])

    async def inject_fault(
        self, api: str, errcode: int | None, times: int = 1, *, delay: float = 0.0
    ) -> None:
        """The next `times` calls of `api` answer `errcode` (after `delay` seconds, if any)."""
        await self._post(
            "/emulator/faults", {"api": api, "errcode": errcode, "times": times, "delay": delay}
        )

    async def clear_faults(self) -> None:
        await self._request("DELETE", "/emulator/faults")

    async def stats(self) -> dict[str, int]:
        """Calls received per api since the emulator started."""
        counts = await self._request("GET", "/emulator/stats")
        return {api: int(count) for api, count in counts.items()}

    async def messages(self, touser: str | None = None) -> list[dict[str, Any]]:
        """The subscribe messages sent so far, oldest first."""
        params = {"touser": touser} if touser else None
        return list((await self._request("GET", "/emulator/messages", params=params))["messages"])

    async def expire_tokens(self) -> None:
        """Expire every access token now, so the next call that uses one gets 42001."""
        await self._post("/emulator/tokens/expire")


__all__ = ["APIS", "EmulatorServer", "create_emulator_app"]
