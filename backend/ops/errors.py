"""What the readiness check answers when a dependency is down."""

from __future__ import annotations

from backend.core.errors import ServiceUnavailable


class NotReady(ServiceUnavailable):
    code = "service.not_ready"
    message = {
        "zh-CN": "服务尚未就绪：{failed}",
        "en": "The service is not ready: {failed}",
    }


READINESS_ERRORS = (NotReady,)


# --- what each route answers (its `responses=`) ----------------------------------------

READINESS_ERRORS = (*READINESS_ERRORS,)
