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


class StatsPeriodInvalid(ShanzhiError):
    status = 422
    code = "case.stats_period_invalid"
    message = {
        "zh-CN": "统计时段的开始时间必须早于结束时间",
        "en": "The start of the period must be before its end",
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


class CategoryNotFound(NotFound):
    code = "case.category_not_found"
    message = {"zh-CN": "找不到该事项类别", "en": "Category not found"}


class CategoryDuplicate(ShanzhiError):
    status = 409
    code = "case.category_duplicate"
    message = {
        "zh-CN": "已有编码为 {code} 的{kind_zh}类别",
        "en": "A {kind} category with code {code} already exists",
    }


class CategorySlaInvalid(ShanzhiError):
    status = 422
    code = "case.category_sla_invalid"
    message = {
        "zh-CN": "办结时限（{resolution_hours} 小时）不能短于响应时限（{response_hours} 小时）",
        "en": "The resolution time ({resolution_hours} h) cannot be shorter than the response "
        "time ({response_hours} h)",
    }


class CatalogueAdminOnly(ShanzhiError):
    status = 403
    code = "case.category_admin_only"
    message = {
        "zh-CN": "只有市级管理员可以维护事项类别",
        "en": "Only a city administrator can manage the categories",
    }
