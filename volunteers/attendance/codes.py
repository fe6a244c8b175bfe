"""The rotating check-in code: TOTP (RFC 6238) over a per-activity secret, 30-second steps.

The leader's or the service center's phone shows the code (and a QR of it); the volunteer's
phone sends what it scanned. The server judges with its own clock: the current step and the
one before it are accepted (one step of grace for the time it takes to scan and send).
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import pyotp

STEP_SECONDS = 30


DIGITS = 6


GRACE_STEPS = 1


# A code this many steps old is called expired rather than wrong (a clearer reason).
EXPIRED_LOOKBACK_STEPS = 20


QR_PREFIX = "shanzhi:checkin:"


_QR = re.compile(r"^shanzhi:checkin:([0-9a-fA-F-]{36}):([0-9]{6})$")


def new_secret() -> bytes:
    return secrets.token_bytes(20)


def _totp(secret: bytes) -> pyotp.TOTP:
    return pyotp.TOTP(base64.b32encode(secret).decode(), digits=DIGITS, interval=STEP_SECONDS)


@dataclass(frozen=True)
class ShownCode:
    code: str
    qr: str  # what the QR encodes: the activity and the code
    valid_from: datetime
    refresh_at: datetime  # when the next code shows


def code_at(secret: bytes, activity_id: uuid.UUID, at: datetime) -> ShownCode:
    """The code to show at `at`."""
    totp = _totp(secret)
    step = totp.timecode(at)
    valid_from = datetime.fromtimestamp(step * STEP_SECONDS, tz=at.tzinfo)
    code = totp.at(at)
    return ShownCode(
        code=code,
        qr=f"{QR_PREFIX}{activity_id}:{code}",
        valid_from=valid_from,
        refresh_at=valid_from + timedelta(seconds=STEP_SECONDS),
    )


@dataclass(frozen=True)
class Scanned:
    code: str
    activity_id: uuid.UUID | None  # named by a scanned QR; None when the digits were typed


def parse_scanned(text: str) -> Scanned | None:
    """What the phone sent: a QR payload or the six digits; None when it is neither."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{6}", text):
        return Scanned(code=text, activity_id=None)
    match = _QR.fullmatch(text)
    if match is None:
        return None
    return Scanned(code=match.group(2), activity_id=uuid.UUID(match.group(1)))


class CodeVerdict(StrEnum):
    valid = "valid"  # the current step or the one before
    expired = "expired"  # a code this activity showed a while ago
    wrong = "wrong"  # never shown by this activity lately


def judge(secret: bytes, code: str, at: datetime) -> CodeVerdict:
    totp = _totp(secret)
    if totp.verify(code, for_time=at, valid_window=0) or any(
        secrets.compare_digest(totp.at(at, counter_offset=-k), code)
        for k in range(1, GRACE_STEPS + 1)
    ):
        return CodeVerdict.valid
    for k in range(GRACE_STEPS + 1, EXPIRED_LOOKBACK_STEPS + 1):
        if secrets.compare_digest(totp.at(at, counter_offset=-k), code):
            return CodeVerdict.expired
    return CodeVerdict.wrong
