"""The `Idempotency-Key` header every retryable write carries, and the request fingerprint
stored beside it (a retry must be the same request to get the first answer)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from backend.core.errors import ShanzhiError

# Visible ASCII, as a phone generates it (a UUID, or `report-<timestamp>-<random>`).
_KEY = re.compile(r"[\x21-\x7e]{1,128}")


class IdempotencyKeyRequired(ShanzhiError):
    status = 400
    code = "request.idempotency_key_required"
    message = {
        "zh-CN": "提交时缺少 Idempotency-Key 请求头，请更新小程序后重试",
        "en": "The Idempotency-Key header is missing; update the app and try again",
    }


class IdempotencyKeyInvalid(ShanzhiError):
    status = 400
    code = "request.idempotency_key_invalid"
    message = {
        "zh-CN": "Idempotency-Key 请求头须为 1 到 128 个可见字符",
        "en": "The Idempotency-Key header must be 1 to 128 visible characters",
    }


KEY_ERRORS = (IdempotencyKeyRequired, IdempotencyKeyInvalid)


def check_idempotency_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyRequired()
    if not _KEY.fullmatch(key):
        raise IdempotencyKeyInvalid()
    return key


def request_hash(kind: str, payload: dict[str, Any]) -> str:
    """sha256 of the canonical request: the same request gives the same hash, byte for byte."""
    canonical = json.dumps(
        {"kind": kind, **payload}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
