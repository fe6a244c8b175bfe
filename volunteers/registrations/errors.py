"""What sign-up, review, teams and records refuse."""

from __future__ import annotations

from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, NotFound, ShanzhiError
from backend.core.pagination import CursorInvalid
from volunteers.errors import NotSignedUp, TeamNotFound, VolunteerNotFound

# --- registry ------------------------------------------------------------------------------


class PhoneRequired(ShanzhiError):
    status = 403
    code = "volunteer.phone_required"
    message = {
        "zh-CN": "报名志愿者前请先绑定手机号（在“我的”页面点击“绑定手机号”），以便社区与您联系",
        "en": "Bind your phone number first (Me > Bind phone) so the community can reach you",
    }


class CommunityInvalid(ShanzhiError):
    status = 422
    code = "volunteer.community_invalid"
    message = {
        "zh-CN": "请选择您所在的社区：{code} 不是一个社区",
        "en": "Choose your home community: {code} is not a community",
    }

    def extra(self) -> dict[str, Any]:
        return {"community": self.params["code"]}


class AlreadyApproved(ShanzhiError):
    status = 409
    code = "volunteer.already_approved"
    message = {
        "zh-CN": "您已经是审核通过的志愿者，无需再次报名；如需修改资料请联系社区",
        "en": "You are already an approved volunteer; ask your community to change your details",
    }


class RegistrationSuspended(ShanzhiError):
    status = 409
    code = "volunteer.suspended"
    message = {
        "zh-CN": "您的志愿者资格已被社区暂停，不能重新报名，请联系社区工作人员",
        "en": "Your volunteer registration is suspended; contact your community staff",
    }


class ReviewNotAllowed(ShanzhiError):
    status = 403
    code = "volunteer.review_not_allowed"
    message = {
        "zh-CN": "只有该志愿者所在社区的工作人员可以审核、驳回或暂停志愿者",
        "en": "Only staff of the volunteer's home community may approve, reject or suspend",
    }


class ReviewClosed(ShanzhiError):
    status = 409
    code = "volunteer.review_closed"
    message = {
        "zh-CN": "该志愿者已{state_zh}，不能驳回；如需停止其服务请使用“暂停”",
        "en": "This volunteer is already {state}; it cannot be rejected (suspend instead)",
    }

    def extra(self) -> dict[str, Any]:
        return {"state": self.params["state"]}


class NotSuspendable(ShanzhiError):
    status = 409
    code = "volunteer.not_suspendable"
    message = {
        "zh-CN": "只有审核通过的志愿者可以暂停，该报名当前为{state_zh}",
        "en": "Only an approved volunteer can be suspended; this registration is {state}",
    }

    def extra(self) -> dict[str, Any]:
        return {"state": self.params["state"]}


class CommunityNotFound(NotFound):
    code = "volunteer.community_not_found"
    message = {"zh-CN": "找不到社区 {code}", "en": "Community {code} not found"}

    def extra(self) -> dict[str, Any]:
        return {"community": self.params["code"]}


class LeaderboardCommunityRequired(ShanzhiError):
    status = 422
    code = "volunteer.leaderboard_community_required"
    message = {
        "zh-CN": "请指定要查看的社区（您还没有报名志愿者，没有默认社区）",
        "en": "Name a community: you have not signed up, so there is no home community to show",
    }


class TeamManageNotAllowed(ShanzhiError):
    status = 403
    code = "team.manage_not_allowed"
    message = {
        "zh-CN": "只有社区工作人员可以组建和调整该社区的队伍",
        "en": "Only community staff may form and change this community's teams",
    }


class TeamCommunityInvalid(ShanzhiError):
    status = 422
    code = "team.community_invalid"
    message = {
        "zh-CN": "队伍须属于一个社区：{code} 不是社区",
        "en": "A team belongs to a community: {code} is not one",
    }

    def extra(self) -> dict[str, Any]:
        return {"community": self.params["code"]}


class TeamNameTaken(ShanzhiError):
    status = 409
    code = "team.name_taken"
    message = {
        "zh-CN": "本社区已有名为“{name}”的队伍，请换一个名称",
        "en": "This community already has a team named “{name}”",
    }


class TeamMemberNotApproved(ShanzhiError):
    status = 409
    code = "team.volunteer_not_approved"
    message = {
        "zh-CN": "只有审核通过的志愿者可以加入队伍或担任队长",
        "en": "Only an approved volunteer can join a team or lead it",
    }


class LeaderNotMember(ShanzhiError):
    status = 409
    code = "team.leader_not_member"
    message = {
        "zh-CN": "队长须是本队队员，请先把该志愿者加入队伍",
        "en": "The leader must be a member of the team; add the volunteer first",
    }


class NoServiceRecord(NotFound):
    code = "volunteer.no_service_record"
    message = {
        "zh-CN": "该志愿者在您所辖社区组织的活动中没有已认定的服务记录",
        "en": "This volunteer has no verified service in activities organised in your regions",
    }


class CertifyNotAllowed(ShanzhiError):
    status = 403
    code = "volunteer.certify_not_allowed"
    message = {
        "zh-CN": "只有组织活动的社区工作人员可以出具志愿服务记录",
        "en": "Only staff of the organising community may certify service records",
    }


REVIEW_ERRORS = (*AUTH_ERRORS, VolunteerNotFound, ReviewNotAllowed)

STAFF_ERRORS = (*AUTH_ERRORS, Forbidden)

TEAM_ERRORS = (*AUTH_ERRORS, TeamNotFound, TeamManageNotAllowed)


# --- what each route answers (its `responses=`) ----------------------------------------

GET_MY_VOLUNTEER_PROFILE_ERRORS = (*AUTH_ERRORS, NotSignedUp)
LIST_MY_SERVICE_RECORDS_ERRORS = (*AUTH_ERRORS, NotSignedUp, CursorInvalid)
GET_VOLUNTEER_LEADERBOARD_ERRORS = (*AUTH_ERRORS, CommunityNotFound, LeaderboardCommunityRequired)
LIST_STAFF_VOLUNTEERS_ERRORS = (*STAFF_ERRORS, CursorInvalid)
GET_STAFF_VOLUNTEER_ERRORS = (*AUTH_ERRORS, VolunteerNotFound)
APPROVE_VOLUNTEER_ERRORS = (*REVIEW_ERRORS,)
REJECT_VOLUNTEER_ERRORS = (*REVIEW_ERRORS, ReviewClosed)
SUSPEND_VOLUNTEER_ERRORS = (*REVIEW_ERRORS, NotSuspendable)
LIST_TEAMS_ERRORS = (*STAFF_ERRORS, CursorInvalid)
GET_TEAM_ERRORS = (*AUTH_ERRORS, TeamNotFound)
ADD_TEAM_MEMBER_ERRORS = (*TEAM_ERRORS, VolunteerNotFound, TeamMemberNotApproved)
REMOVE_TEAM_MEMBER_ERRORS = (*TEAM_ERRORS,)
SET_TEAM_LEADER_ERRORS = (*TEAM_ERRORS, LeaderNotMember, TeamMemberNotApproved)
