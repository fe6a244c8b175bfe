"""What the staff workbench refuses."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.cases import errors as cases_errors
from backend.core.errors import Forbidden, ShanzhiError
from backend.core.idempotency import KEY_ERRORS
from backend.core.pagination import CursorInvalid
from backend.core.ratelimit import RateLimited
from backend.regions.errors import RegionNotFound
from backend.storage.errors import CLAIM_ERRORS

# --- The staff workbench ----------------------------------------------------------------


class CaseActionForbidden(ShanzhiError):
    status = 403
    code = "case.action_forbidden"
    message = {
        "zh-CN": "您在该区域的角色不能对事项执行“{action_zh}”，请联系社区工作人员处理",
        "en": "Your role here does not allow this action ({action}); ask the community staff",
    }


class AssigneeRequired(ShanzhiError):
    status = 422
    code = "case.assignee_required"
    message = {
        "zh-CN": "请选择要指派的工作人员",
        "en": "Choose the staff member to assign the case to",
    }


class AssigneeNotStaffHere(ShanzhiError):
    status = 422
    code = "case.assignee_not_staff_here"
    message = {
        "zh-CN": "只能指派给负责该事项所在区域的工作人员",
        "en": "The case can only be assigned to staff who cover the place where it is",
    }


class CannotEscalate(ShanzhiError):
    status = 409
    code = "case.cannot_escalate"
    message = {
        "zh-CN": "该事项已由市级处理，不能再向上报送",
        "en": "The case is already handled at city level; it cannot be escalated further",
    }


class ResolutionNeedsNote(ShanzhiError):
    status = 422
    code = "case.resolution_needs_note"
    message = {
        "zh-CN": "办结时请写明处理结果，方便居民了解",
        "en": "Describe what was done when resolving, so the resident knows",
    }


class ResolutionNeedsPhoto(ShanzhiError):
    status = 422
    code = "case.resolution_needs_photo"
    message = {
        "zh-CN": "办结时请至少上传一张处理后的现场照片",
        "en": "Add at least one photo of the result when resolving",
    }


class RejectReasonRequired(ShanzhiError):
    status = 422
    code = "case.reject_reason_required"
    message = {
        "zh-CN": "请选择不予受理的原因",
        "en": "Choose why the case is rejected",
    }


class RejectNeedsNote(ShanzhiError):
    status = 422
    code = "case.reject_needs_note"
    message = {
        "zh-CN": "选择“其他原因”时，请写明不予受理的具体原因",
        "en": "When the reason is “other”, explain why the case is rejected",
    }


class CommentNeedsNote(ShanzhiError):
    status = 422
    code = "case.comment_needs_note"
    message = {
        "zh-CN": "备注内容不能为空",
        "en": "A comment needs some text",
    }


class AttachmentsNotExpected(ShanzhiError):
    status = 422
    code = "case.attachments_not_expected"
    message = {
        "zh-CN": "只有办结时可以上传照片",
        "en": "Photos can only be added when resolving a case",
    }


class LocationOutsideYourArea(ShanzhiError):
    status = 403
    code = "case.location_outside_your_area"
    message = {
        "zh-CN": "该位置不在您负责的区域内，请转给所在区域的工作人员登记",
        "en": "This place is outside the area you cover; ask the staff there to register it",
    }


STAFF_ERRORS = (*AUTH_ERRORS, Forbidden)


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_STAFF_CASES_ERRORS = (*STAFF_ERRORS, RegionNotFound, CursorInvalid)
REGISTER_CASE_ERRORS = (
    *STAFF_ERRORS,
    *KEY_ERRORS,
    cases_errors.IdempotencyConflict,
    LocationOutsideYourArea,
    cases_errors.CategoryInvalid,
    cases_errors.OutsideServiceArea,
    RateLimited,
)
ACT_ON_CASE_ERRORS = (
    *STAFF_ERRORS,
    cases_errors.CaseNotFound,
    CaseActionForbidden,
    cases_errors.CaseTransitionNotAllowed,
    cases_errors.CaseChangedMeanwhile,
    CannotEscalate,
    AssigneeRequired,
    AssigneeNotStaffHere,
    ResolutionNeedsNote,
    ResolutionNeedsPhoto,
    RejectReasonRequired,
    RejectNeedsNote,
    CommentNeedsNote,
    AttachmentsNotExpected,
    *CLAIM_ERRORS,
    RateLimited,
)
