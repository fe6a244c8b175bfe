"""What can go wrong for volunteers, in words a volunteer or community staff understands."""

from __future__ import annotations

from backend.core.errors import NotFound, ShanzhiError

# --- shared by every part of the domain ----------------------------------------------------


class VolunteerNotFound(NotFound):
    code = "volunteer.not_found"
    message = {"zh-CN": "找不到该志愿者", "en": "Volunteer not found"}


class NotSignedUp(NotFound):
    code = "volunteer.not_signed_up"
    message = {
        "zh-CN": "您还没有注册志愿者，请先提交志愿者报名",
        "en": "You have not signed up as a volunteer yet",
    }


class VolunteerNotApproved(ShanzhiError):
    status = 403
    code = "volunteer.not_approved"
    message = {
        "zh-CN": "您的志愿者报名尚未通过社区审核，暂不能参加活动",
        "en": "Your volunteer registration has not been approved yet",
    }


class ActivityNotFound(NotFound):
    code = "activity.not_found"
    message = {"zh-CN": "找不到该活动", "en": "Activity not found"}


class TeamNotFound(NotFound):
    code = "team.not_found"
    message = {"zh-CN": "找不到该队伍", "en": "Team not found"}


class AttendanceNotFound(NotFound):
    code = "attendance.not_found"
    message = {"zh-CN": "找不到该签到记录", "en": "Attendance record not found"}
