"""What can go wrong at check-in, check-out and review, in words a volunteer or staff member
understands. Each refusal names what to do next; doubtful locations are never refused here
(they go to staff review), only what the server can judge for sure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, ShanzhiError
from backend.core.pagination import CursorInvalid
from backend.core.ratelimit import RateLimited
from volunteers.errors import (
    ActivityNotFound,
    AttendanceNotFound,
    NotSignedUp,
    VolunteerNotApproved,
)

# --- the code on the leader's screen --------------------------------------------------------


class ActivityNotPublished(ShanzhiError):
    status = 409
    code = "attendance.activity_not_published"
    message = {
        "zh-CN": "活动尚未发布或已结束，不能显示签到码",
        "en": "The check-in code is shown only for a published activity",
    }


class CodeClosed(ShanzhiError):
    status = 409
    code = "attendance.code_closed"
    message = {
        "zh-CN": "活动签到签退时间已过，签到码已停止显示",
        "en": "Check-in and check-out are closed for this activity; no code is shown",
    }

    def __init__(self, *, closed_at: datetime) -> None:
        super().__init__(closed_at=closed_at.isoformat())

    def extra(self) -> dict[str, Any]:
        return {"closed_at": self.params["closed_at"]}


# --- the activity and the enrolment ---------------------------------------------------------


class ActivityCancelled(ShanzhiError):
    status = 409
    code = "attendance.activity_cancelled"
    message = {
        "zh-CN": "该活动已取消，无需签到",
        "en": "This activity has been cancelled; there is nothing to check in to",
    }


class ActivityFinished(ShanzhiError):
    status = 409
    code = "attendance.activity_finished"
    message = {
        "zh-CN": "该活动已结束，不能再签到",
        "en": "This activity has finished; check-in is closed",
    }


class NotEnrolled(Forbidden):
    code = "attendance.not_enrolled"
    message = {
        "zh-CN": "您没有报名该活动，请先报名",
        "en": "You are not enrolled in this activity; enrol first",
    }


class OnWaitlist(ShanzhiError):
    status = 409
    code = "attendance.on_waitlist"
    message = {
        "zh-CN": "您还在候补名单中，尚未获得名额，暂不能签到",
        "en": "You are on the waitlist and have no place yet, so you cannot check in",
    }


class EnrolmentCancelled(ShanzhiError):
    status = 409
    code = "attendance.enrolment_cancelled"
    message = {
        "zh-CN": "您的报名已取消，不能签到",
        "en": "Your enrolment was cancelled, so you cannot check in",
    }


class NoShowRecorded(ShanzhiError):
    status = 409
    code = "attendance.no_show_recorded"
    message = {
        "zh-CN": "该活动已记为您缺席，不能再签到",
        "en": "You were recorded as absent from this activity; check-in is closed",
    }


# --- the time window ------------------------------------------------------------------------


class TooEarly(ShanzhiError):
    status = 409
    code = "attendance.too_early"
    message = {
        "zh-CN": "还没到签到时间，请在 {opens_at} 之后签到",
        "en": "Check-in has not opened yet; it opens at {opens_at}",
    }

    def __init__(self, *, opens_at: datetime) -> None:
        super().__init__(opens_at=opens_at.isoformat())

    def extra(self) -> dict[str, Any]:
        return {"opens_at": self.params["opens_at"]}


class TooLate(ShanzhiError):
    status = 409
    code = "attendance.too_late"
    message = {
        "zh-CN": "已超过时间（截止于 {closed_at}），不能再操作",
        "en": "It is too late: this closed at {closed_at}",
    }

    def __init__(self, *, closed_at: datetime) -> None:
        super().__init__(closed_at=closed_at.isoformat())

    def extra(self) -> dict[str, Any]:
        return {"closed_at": self.params["closed_at"]}


# --- the code the volunteer scanned ---------------------------------------------------------


class CodeUnreadable(ShanzhiError):
    status = 422
    code = "attendance.code_unreadable"
    message = {
        "zh-CN": "无法识别签到码，请扫描现场二维码或输入 6 位数字",
        "en": "The code cannot be read; scan the QR on site or type the six digits",
    }


class CodeExpired(ShanzhiError):
    status = 409
    code = "attendance.code_expired"
    message = {
        "zh-CN": "签到码已更新，请重新扫描现场的二维码",
        "en": "The code has changed; scan again",
    }


class CodeWrong(ShanzhiError):
    status = 409
    code = "attendance.code_wrong"
    message = {
        "zh-CN": "签到码不正确，请扫描本活动现场的二维码",
        "en": "This is not the code of this activity; scan the code shown on site",
    }


# --- attendance state -----------------------------------------------------------------------


class NotCheckedIn(ShanzhiError):
    status = 409
    code = "attendance.not_checked_in"
    message = {
        "zh-CN": "您还没有签到该活动，请先签到",
        "en": "You have not checked in to this activity yet",
    }


class AlreadyCheckedOut(ShanzhiError):
    status = 409
    code = "attendance.already_checked_out"
    message = {
        "zh-CN": "您已签退，不能再上传轨迹",
        "en": "You have already checked out; the track can no longer be added to",
    }


class TrackPointInFuture(ShanzhiError):
    status = 422
    code = "attendance.track_point_in_future"
    message = {
        "zh-CN": "第 {index} 个轨迹点的时间 {at} 晚于服务器时间，请检查手机时间",
        "en": "Track point {index} is dated {at}, in the future; check the phone's clock",
    }

    def __init__(self, *, index: int, at: datetime) -> None:
        super().__init__(index=index, at=at.isoformat())

    def extra(self) -> dict[str, Any]:
        return {"index": self.params["index"], "at": self.params["at"]}


class TrackPointTooEarly(ShanzhiError):
    status = 422
    code = "attendance.track_point_too_early"
    message = {
        "zh-CN": "第 {index} 个轨迹点的时间 {at} 早于签到时间，不能计入本次活动",
        "en": "Track point {index} is dated {at}, before the check-in; it is not part of it",
    }

    def __init__(self, *, index: int, at: datetime) -> None:
        super().__init__(index=index, at=at.isoformat())

    def extra(self) -> dict[str, Any]:
        return {"index": self.params["index"], "at": self.params["at"]}


# --- staff review ---------------------------------------------------------------------------


class IllegalTransition(ShanzhiError):
    status = 409
    code = "attendance.illegal_transition"
    message = {
        "zh-CN": "该签到记录已{state_zh}，不能再{action_zh}",
        "en": "This attendance is already {state}; it cannot be {action}",
    }

    def __init__(self, *, state: str, action: str) -> None:
        super().__init__(
            state=state,
            action=action,
            state_zh=STATE_ZH.get(state, state),
            action_zh=ACTION_ZH.get(action, action),
        )

    def extra(self) -> dict[str, Any]:
        return {"state": self.params["state"]}


STATE_ZH = {"verified": "核验通过", "rejected": "被驳回", "checked_in": "签到", "review": "待审核"}


ACTION_ZH = {"approved": "核验通过", "rejected": "驳回"}


class MinutesOutsideWindow(ShanzhiError):
    status = 422
    code = "attendance.minutes_outside_window"
    message = {
        "zh-CN": "服务时长不能超过活动时段的 {max_minutes} 分钟",
        "en": "The service minutes cannot exceed the activity's {max_minutes} minutes",
    }

    def __init__(self, *, max_minutes: int) -> None:
        super().__init__(max_minutes=max_minutes)

    def extra(self) -> dict[str, Any]:
        return {"max_minutes": self.params["max_minutes"]}


class OwnAttendance(Forbidden):
    code = "attendance.own_attendance"
    message = {
        "zh-CN": "不能审核自己的签到记录，请由其他工作人员审核",
        "en": "You cannot review your own attendance; another staff member must",
    }


CODE_ERRORS = (CodeUnreadable, CodeExpired, CodeWrong)

VOLUNTEER_ERRORS = (*AUTH_ERRORS, NotSignedUp, VolunteerNotApproved, ActivityNotFound)


# --- what each route answers (its `responses=`) ----------------------------------------

GET_CHECKIN_CODE_ERRORS = (*AUTH_ERRORS, ActivityNotFound, ActivityNotPublished, CodeClosed)
CHECK_OUT_ERRORS = (
    *VOLUNTEER_ERRORS,
    RateLimited,
    NotCheckedIn,
    ActivityCancelled,
    TooLate,
    *CODE_ERRORS,
)
UPLOAD_TRACK_ERRORS = (
    *VOLUNTEER_ERRORS,
    RateLimited,
    NotCheckedIn,
    AlreadyCheckedOut,
    TrackPointInFuture,
    TrackPointTooEarly,
)
GET_MY_ATTENDANCE_ERRORS = (*AUTH_ERRORS, NotSignedUp, ActivityNotFound, AttendanceNotFound)
LIST_ATTENDANCE_ERRORS = (*AUTH_ERRORS, CursorInvalid)
GET_ATTENDANCE_ERRORS = (*AUTH_ERRORS, AttendanceNotFound)
APPROVE_ATTENDANCE_ERRORS = (
    *AUTH_ERRORS,
    AttendanceNotFound,
    OwnAttendance,
    IllegalTransition,
    MinutesOutsideWindow,
)
REJECT_ATTENDANCE_ERRORS = (*AUTH_ERRORS, AttendanceNotFound, OwnAttendance, IllegalTransition)
