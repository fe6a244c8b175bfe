"""What can go wrong with activities and enrolments, in words a volunteer or staff member
understands. The errors every part of the domain shares are in `volunteers.errors`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, NotFound, ShanzhiError
from backend.core.idempotency import KEY_ERRORS
from backend.core.pagination import CursorInvalid
from backend.regions.errors import RegionNotFound
from volunteers.errors import ActivityNotFound, NotSignedUp, TeamNotFound, VolunteerNotApproved

# --- staff managing activities -------------------------------------------------------------


class ActivityManagersOnly(ShanzhiError):
    status = 403
    code = "activity.managers_only"
    message = {
        "zh-CN": "只有社区工作人员（或上级管理员）可以发布和管理志愿活动",
        "en": "Only community staff (or admins above them) create and manage activities",
    }


class OrganiserOutsideScope(ShanzhiError):
    status = 403
    code = "activity.organiser_outside_scope"
    message = {
        "zh-CN": "您只能为自己负责的社区组织活动，{code} 不在您的范围内",
        "en": "You can only organise activities for your own communities; {code} is not one",
    }


class OrganiserNotCommunity(ShanzhiError):
    status = 422
    code = "activity.organiser_not_community"
    message = {
        "zh-CN": "活动须由一个社区组织，{code} 不是社区，请选择社区",
        "en": "An activity is organised by a community; {code} is not a community",
    }


class FenceInvalid(ShanzhiError):
    status = 422
    code = "activity.fence_invalid"
    message = {
        "zh-CN": "签到范围（电子围栏）不正确：{reason_zh}",
        "en": "The check-in area (geofence) is not valid: {reason}",
    }

    def __init__(self, *, reason: str, reason_zh: str) -> None:
        super().__init__(reason=reason, reason_zh=reason_zh)


class WindowInvalid(ShanzhiError):
    status = 422
    code = "activity.window_invalid"
    message = {
        "zh-CN": "活动时间不正确：{reason_zh}",
        "en": "The activity's time window is not valid: {reason}",
    }

    def __init__(self, *, reason: str, reason_zh: str) -> None:
        super().__init__(reason=reason, reason_zh=reason_zh)


class ActivityIdempotencyConflict(ShanzhiError):
    status = 409
    code = "activity.idempotency_conflict"
    message = {
        "zh-CN": "该请求标识已用于创建另一个内容不同的活动，请勿重复使用",
        "en": "This Idempotency-Key already created an activity with different details",
    }


class IllegalTransition(ShanzhiError):
    status = 409
    code = "activity.illegal_transition"
    message = {
        "zh-CN": "活动当前为“{from_zh}”，不能改为“{to_zh}”",
        "en": "The activity is {from_state}; it cannot become {to_state}",
    }

    def extra(self) -> dict[str, Any]:
        return {"from": self.params["from_state"], "to": self.params["to_state"]}


class StartPassed(ShanzhiError):
    status = 409
    code = "activity.start_passed"
    message = {
        "zh-CN": "活动开始时间已过，不能发布；请先修改开始时间",
        "en": "The activity's start has passed; change the start before publishing",
    }


class NotStarted(ShanzhiError):
    status = 409
    code = "activity.not_started"
    message = {
        "zh-CN": "活动还没有开始，不能结束；如不再举办请取消活动",
        "en": "The activity has not started yet; cancel it instead if it will not take place",
    }


class NotEditable(ShanzhiError):
    status = 409
    code = "activity.not_editable"
    message = {
        "zh-CN": "活动已{state_zh}，不能再修改",
        "en": "The activity is {state}; it can no longer be changed",
    }


class FieldsLocked(ShanzhiError):
    status = 409
    code = "activity.fields_locked"
    message = {
        "zh-CN": "活动已发布，只能修改说明、地址、名额和延后结束时间；不能修改：{fields}",
        "en": "A published activity only takes changes to its description, address, "
        "capacity and a later end; not to: {fields}",
    }

    def extra(self) -> dict[str, Any]:
        return {"fields": self.params["fields"].split(", ")}


class CapacityBelowEnrolled(ShanzhiError):
    status = 409
    code = "activity.capacity_below_enrolled"
    message = {
        "zh-CN": "已有 {enrolled} 人报名，名额不能少于 {enrolled}",
        "en": "{enrolled} volunteers hold a place; capacity cannot go below {enrolled}",
    }

    def extra(self) -> dict[str, Any]:
        return {"enrolled": self.params["enrolled"]}


class EndNotLater(ShanzhiError):
    status = 409
    code = "activity.end_not_later"
    message = {
        "zh-CN": "活动已发布，结束时间只能延后，不能提前",
        "en": "A published activity's end can only move later, not earlier",
    }


# --- volunteers finding activities ---------------------------------------------------------


class PlaceRequired(ShanzhiError):
    status = 422
    code = "activity.place_required"
    message = {
        "zh-CN": "请提供您的位置（lat、lng），或选择一个社区",
        "en": "Give your location (lat and lng) or choose a community",
    }


class PeriodInvalid(ShanzhiError):
    status = 422
    code = "activity.period_invalid"
    message = {
        "zh-CN": "查询时段不正确：开始须早于结束，且在可识别的日期范围内",
        "en": "The period is not valid: it must start before it ends, within a usable date range",
    }


# --- enrolment -----------------------------------------------------------------------------


class EnrolmentNotFound(NotFound):
    code = "enrolment.not_found"
    message = {"zh-CN": "找不到该报名记录", "en": "Enrolment not found"}


class TeamOnly(ShanzhiError):
    status = 403
    code = "enrolment.team_only"
    message = {
        "zh-CN": "该活动仅限“{team}”队员报名",
        "en": "Only members of the team “{team}” can enrol in this activity",
    }


class EnrolmentClosed(ShanzhiError):
    status = 409
    code = "enrolment.closed"
    message = {
        "zh-CN": "该活动{why_zh}，不能再报名",
        "en": "Enrolment is closed: the activity {why}",
    }


class TooLateToCancel(ShanzhiError):
    status = 409
    code = "enrolment.too_late_to_cancel"
    message = {
        "zh-CN": "活动开始前 {hours} 小时内不能取消报名（截止时间 {deadline_local}），"
        "如有特殊情况请联系社区",
        "en": "Enrolment can be cancelled until {hours} h before the start "
        "(deadline {deadline_local}); contact the community if something came up",
    }

    def __init__(self, *, deadline: datetime, hours: float, deadline_local: str) -> None:
        super().__init__(deadline=deadline, hours=f"{hours:g}", deadline_local=deadline_local)

    def extra(self) -> dict[str, Any]:
        return {"deadline": self.params["deadline"].isoformat()}


class EnrolmentNotCancellable(ShanzhiError):
    status = 409
    code = "enrolment.not_cancellable"
    message = {
        "zh-CN": "活动已结束（{state_zh}），不能再取消报名",
        "en": "The activity is over ({state}); the enrolment can no longer be cancelled",
    }


MANAGE_ERRORS = (*AUTH_ERRORS, ActivityManagersOnly, ActivityNotFound)

SHAPE_ERRORS = (
    RegionNotFound,
    OrganiserOutsideScope,
    OrganiserNotCommunity,
    TeamNotFound,
    FenceInvalid,
    WindowInvalid,
)


# --- what each route answers (its `responses=`) ----------------------------------------

CREATE_ACTIVITY_ERRORS = (
    *AUTH_ERRORS,
    *KEY_ERRORS,
    ActivityManagersOnly,
    ActivityIdempotencyConflict,
    *SHAPE_ERRORS,
)
LIST_STAFF_ACTIVITIES_ERRORS = (*AUTH_ERRORS, Forbidden, CursorInvalid, PeriodInvalid)
GET_STAFF_ACTIVITY_ERRORS = (*AUTH_ERRORS, Forbidden, ActivityNotFound)
UPDATE_ACTIVITY_ERRORS = (
    *MANAGE_ERRORS,
    *SHAPE_ERRORS,
    NotEditable,
    FieldsLocked,
    CapacityBelowEnrolled,
    EndNotLater,
)
PUBLISH_ACTIVITY_ERRORS = (*MANAGE_ERRORS, IllegalTransition, StartPassed)
CANCEL_ACTIVITY_ERRORS = (*MANAGE_ERRORS, IllegalTransition)
FINISH_ACTIVITY_ERRORS = (*MANAGE_ERRORS, IllegalTransition, NotStarted)
LIST_ACTIVITY_ENROLMENTS_ERRORS = (*AUTH_ERRORS, Forbidden, ActivityNotFound, CursorInvalid)
LIST_ACTIVITIES_ERRORS = (*AUTH_ERRORS, PlaceRequired, RegionNotFound, CursorInvalid)
GET_ACTIVITY_ERRORS = (*AUTH_ERRORS, ActivityNotFound)
ENROL_IN_ACTIVITY_ERRORS = (
    *AUTH_ERRORS,
    NotSignedUp,
    VolunteerNotApproved,
    ActivityNotFound,
    TeamOnly,
    EnrolmentClosed,
)
CANCEL_ENROLMENT_ERRORS = (
    *AUTH_ERRORS,
    EnrolmentNotFound,
    TooLateToCancel,
    EnrolmentNotCancellable,
)
LIST_MY_ENROLMENTS_ERRORS = (*AUTH_ERRORS, NotSignedUp, CursorInvalid)
