"""What can go wrong with a case, in words a resident or a grid worker understands."""

from __future__ import annotations

from backend.core.errors import NotFound, ShanzhiError


class CaseNotFound(NotFound):
    code = "case.not_found"
    message = {"zh-CN": "找不到该事项", "en": "Case not found"}


class CaseTransitionNotAllowed(ShanzhiError):
    status = 409
    code = "case.illegal_transition"
    message = {
        "zh-CN": "事项当前状态为“{state_zh}”，不能执行“{action_zh}”",
        "en": "The case is {state}; it cannot be {action_en}",
    }


class CaseChangedMeanwhile(ShanzhiError):
    status = 409
    code = "case.version_conflict"
    message = {
        "zh-CN": "该事项刚刚已被他人处理，请刷新后再试",
        "en": "Someone else just acted on this case; reload it and try again",
    }
