"""What can go wrong with a case, in words a resident or a grid worker understands."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import NotFound, ShanzhiError
from backend.core.pagination import CursorInvalid


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


# --- Submission, the resident's side and the category catalogue --------------------------


class IdempotencyConflict(ShanzhiError):
    status = 409
    code = "case.idempotency_conflict"
    message = {
        "zh-CN": "这次提交与之前用同一标识提交的内容不同，请重新提交",
        "en": "This submission differs from the earlier one sent with the same key; "
        "submit it again as a new one",
    }


class OutsideServiceArea(ShanzhiError):
    status = 422
    code = "case.outside_grids"
    message = {
        "zh-CN": "所选位置不在服务范围内，请在地图上选择服务区域内的地点",
        "en": "This place is outside the service area; choose a spot inside the service area "
        "on the map",
    }


class CategoryInvalid(ShanzhiError):
    status = 422
    code = "case.category_invalid"
    message = {
        "zh-CN": "所选类别不存在或已停用，请重新选择",
        "en": "This category does not exist or is no longer in use; choose another one",
    }


class CaseNotOpen(ShanzhiError):
    status = 409
    code = "case.not_open"
    message = {
        "zh-CN": "该事项已{state_zh}，不能再附议",
        "en": "The case is {state}; it can no longer be supported",
    }


class CannotSupportOwnCase(ShanzhiError):
    status = 403
    code = "case.own_case"
    message = {
        "zh-CN": "这是您自己提交的事项，无需附议",
        "en": "This is your own case; there is no need to support it",
    }


class NotReporter(ShanzhiError):
    status = 403
    code = "case.not_reporter"
    message = {
        "zh-CN": "只有提交人本人可以评价或重新打开该事项",
        "en": "Only the person who submitted the case can rate or reopen it",
    }


class AlreadyRated(ShanzhiError):
    status = 409
    code = "case.already_rated"
    message = {
        "zh-CN": "该事项已经评价过了，不能修改评价",
        "en": "The case has already been rated; the rating cannot be changed",
    }


class ReopenWindowPassed(ShanzhiError):
    status = 409
    code = "case.reopen_window_passed"
    message = {
        "zh-CN": "办结已超过 {days} 天，不能再重新打开，如问题仍在请重新提交",
        "en": "More than {days} days have passed since the case was resolved; it can no "
        "longer be reopened, submit a new one if the problem remains",
    }


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_MY_CASES_ERRORS = (*AUTH_ERRORS, CursorInvalid)
GET_CASE_ERRORS = (*AUTH_ERRORS, CaseNotFound)
SUPPORT_CASE_ERRORS = (*AUTH_ERRORS, CaseNotFound, CannotSupportOwnCase, CaseNotOpen)
RATE_CASE_ERRORS = (
    *AUTH_ERRORS,
    CaseNotFound,
    NotReporter,
    CaseTransitionNotAllowed,
    AlreadyRated,
    CaseChangedMeanwhile,
)
REOPEN_CASE_ERRORS = (
    *AUTH_ERRORS,
    CaseNotFound,
    NotReporter,
    CaseTransitionNotAllowed,
    ReopenWindowPassed,
    CaseChangedMeanwhile,
)
