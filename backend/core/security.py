"""Tokens and personal-data protection: JWTs, refresh secrets, phone encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken

from backend.core.config import Settings
from backend.core.errors import Unauthenticated

# One algorithm, fixed: a token claiming any other (or "none") is refused.
JWT_ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "access"


class TokenExpired(Unauthenticated):
    code = "auth.token_expired"
    message = {"zh-CN": "登录已过期，请重新登录", "en": "Your session has expired, log in again"}


class TokenInvalid(Unauthenticated):
    code = "auth.token_invalid"
    message = {"zh-CN": "登录凭证无效，请重新登录", "en": "Invalid credentials, log in again"}


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime


def issue_access_token(
    user_id: uuid.UUID, settings: Settings, at: datetime
) -> tuple[str, datetime]:
    expires_at = at + timedelta(minutes=settings.access_token_minutes)
    payload = {
        "sub": str(user_id),
        "iat": int(at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "typ": ACCESS_TOKEN_TYPE,
    }
    token = jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=JWT_ALGORITHM)
    return token, expires_at


def read_access_token(token: str, settings: Settings, at: datetime) -> AccessClaims:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[JWT_ALGORITHM],
            # Times are judged below by the project's clock (tests move it), not PyJWT's.
            options={"require": ["exp", "iat", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as error:
        raise TokenInvalid() from error
    if not isinstance(payload["exp"], int) or not isinstance(payload["iat"], int):
        raise TokenInvalid()
    if payload["exp"] <= int(at.timestamp()):
        raise TokenExpired()
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenInvalid()
    try:
        user_id = uuid.UUID(str(payload["sub"]))
    except ValueError as error:
        raise TokenInvalid() from error
    return AccessClaims(
        user_id=user_id,
        issued_at=datetime.fromtimestamp(payload["iat"], at.tzinfo),
        expires_at=datetime.fromtimestamp(payload["exp"], at.tzinfo),
    )


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    # The secret has 256 bits of entropy: a plain hash suffices and allows a unique index.
    return hashlib.sha256(secret.encode()).hexdigest()


class PersonalData:
    """Encrypts personal data (Fernet) and makes keyed lookup hashes (HMAC-SHA256)."""

    def __init__(self, data_key: str) -> None:
        root = data_key.encode()
        encryption_key = hmac.new(root, b"shanzhi/encrypt/v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(encryption_key))
        self._hash_key = hmac.new(root, b"shanzhi/lookup/v1", hashlib.sha256).digest()

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as error:
            raise ValueError("personal data was encrypted with another key") from error

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    """`13800135678` -> `138****5678`; shorter numbers keep only their last two digits."""
    digits = phone.strip()
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]
