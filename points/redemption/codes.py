"""Signed codes: the member's rotating code, the redemption QR, and pickup codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from points.redemption.errors import (
    MemberCodeExpired,
    MemberCodeInvalid,
)

PICKUP_CODE = re.compile(r"[0-9]{6}")


PICKUP_CODE_ATTEMPTS = 8


MEMBER_CODE_STEP = 60  # seconds; a code is accepted in its minute and the next one


MEMBER_CODE_PREFIX = "SZM1"


QR_PREFIX = "SZR1"


_MAC_BYTES = 12


# --- signed codes --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text_: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))
    except (ValueError, binascii.Error):
        return None


@dataclass(frozen=True)
class MemberCode:
    code: str
    expires_at: datetime
    refresh_after: datetime


class Signer:
    """Signs member codes and pickup QR payloads with keys derived from the data key.

    Nothing new to configure: each purpose gets its own key, derived with HMAC from
    `SHANZHI_DATA_KEY`, so a code of one kind can never pass as the other.
    """

    def __init__(self, data_key: str) -> None:
        root = data_key.encode()
        self._member_key = hmac.new(root, b"shanzhi/points/member-code/v1", hashlib.sha256).digest()
        self._qr_key = hmac.new(root, b"shanzhi/points/pickup-qr/v1", hashlib.sha256).digest()

    @staticmethod
    def _mac(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def member_code(self, member_id: uuid.UUID, at: datetime) -> MemberCode:
        """The member's code for the minute `at` falls in: member id, minute, and their MAC."""
        step = int(at.timestamp()) // MEMBER_CODE_STEP
        body = member_id.bytes + step.to_bytes(5, "big")
        start = datetime.fromtimestamp(step * MEMBER_CODE_STEP, at.tzinfo)
        return MemberCode(
            code=MEMBER_CODE_PREFIX + _b64(body + self._mac(self._member_key, body)),
            expires_at=start + timedelta(seconds=2 * MEMBER_CODE_STEP),
            refresh_after=start + timedelta(seconds=MEMBER_CODE_STEP),
        )

    def read_member_code(self, code: str, at: datetime) -> uuid.UUID:
        """The member a code names, if it is genuine and from this minute or the last."""
        raw = (
            _unb64(code[len(MEMBER_CODE_PREFIX) :]) if code.startswith(MEMBER_CODE_PREFIX) else None
        )
        if raw is None or len(raw) != 16 + 5 + _MAC_BYTES:
            raise MemberCodeInvalid()
        body, mac = raw[:21], raw[21:]
        if not hmac.compare_digest(mac, self._mac(self._member_key, body)):
            raise MemberCodeInvalid()
        age = int(at.timestamp()) // MEMBER_CODE_STEP - int.from_bytes(body[16:], "big")
        if age < 0:
            raise MemberCodeInvalid()  # from the future: not one this server issued
        if age > 1:
            raise MemberCodeExpired()
        return uuid.UUID(bytes=body[:16])

    def qr_payload(self, redemption_id: uuid.UUID) -> str:
        body = redemption_id.bytes
        return QR_PREFIX + _b64(body + self._mac(self._qr_key, body))

    def read_qr_payload(self, payload: str) -> uuid.UUID | None:
        raw = _unb64(payload[len(QR_PREFIX) :]) if payload.startswith(QR_PREFIX) else None
        if raw is None or len(raw) != 16 + _MAC_BYTES:
            return None
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(self._qr_key, body)):
            return None
        return uuid.UUID(bytes=body)


@lru_cache(maxsize=4)
def signer_for(data_key: str) -> Signer:
    return Signer(data_key)


def new_pickup_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
