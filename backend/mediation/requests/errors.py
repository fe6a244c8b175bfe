"""What a mediation request, an invitation or a withdrawal refuses."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.cases.errors import CaseChangedMeanwhile
from backend.core.errors import NotFound, ShanzhiError
from backend.core.pagination import CursorInvalid
from backend.core.ratelimit import RateLimited
from backend.mediation.errors import MediationEnded, MediationNotFound

# --- shared by every part of the domain ----------------------------------------------------


# --- requests ------------------------------------------------------------------------------


class PhoneRequired(ShanzhiError):
    status = 403
    code = "mediation.phone_required"
    message = {
        "zh-CN": "申请调解前请先绑定手机号（在“我的”页面点击“绑定手机号”），以便调解员与您联系",
        "en": "Bind your phone number first (Me > Bind phone) so the mediator can reach you",
    }


class RespondentIsYou(ShanzhiError):
    status = 422
    code = "mediation.respondent_is_you"
    message = {
        "zh-CN": "被申请人的手机号与您本人绑定的手机号相同，请填写对方的手机号",
        "en": "A respondent's phone is your own; enter the other party's phone number",
    }


class RespondentDuplicate(ShanzhiError):
    status = 422
    code = "mediation.respondent_duplicate"
    message = {
        "zh-CN": "同一手机号只能填写一位被申请人，请检查后重新填写",
        "en": "Two respondents have the same phone number; list each person once",
    }


class DisputeTypeUnavailable(ShanzhiError):
    status = 422
    code = "mediation.dispute_type_unavailable"
    message = {
        "zh-CN": "暂不受理该类纠纷的调解申请，请选择其他纠纷类型或拨打12345咨询",
        "en": "Mediation of this type of dispute is not offered at the moment; choose another "
        "type or call 12345",
    }


class PreferredStudioInvalid(ShanzhiError):
    status = 422
    code = "mediation.preferred_studio_invalid"
    message = {
        "zh-CN": "所选调解工作室不存在或已停止服务，请重新选择或不指定工作室",
        "en": "The chosen mediation studio does not exist or no longer takes cases; choose "
        "another one or none",
    }


class InvitationNotFound(NotFound):
    code = "mediation.invitation_not_found"
    message = {
        "zh-CN": "邀请码无效，请核对对方转发给您的邀请码",
        "en": "This invitation code is not valid; check the code you were sent",
    }


class InvitationUsed(ShanzhiError):
    status = 409
    code = "mediation.invitation_used"
    message = {
        "zh-CN": "该邀请码已被其他人使用；如您是被邀请人，请联系申请人重新发送邀请",
        "en": "This invitation has been answered by someone else; if it was meant for you, "
        "ask the applicant to send a new one",
    }


class OwnInvitation(ShanzhiError):
    status = 409
    code = "mediation.own_invitation"
    message = {
        "zh-CN": "这是您发出的调解邀请，请转发给被申请人本人确认",
        "en": "This is the invitation you sent; forward it to the respondent to answer",
    }


class AlreadyParty(ShanzhiError):
    status = 409
    code = "mediation.already_party"
    message = {
        "zh-CN": "您已是该调解案件的当事人，无需再使用此邀请码",
        "en": "You are already a party to this mediation; this invitation is for someone else",
    }


class ConsentClosed(ShanzhiError):
    status = 409
    code = "mediation.consent_closed"
    message = {
        "zh-CN": "该调解已不再等待确认（已过答复期限或已结束），无法再答复邀请",
        "en": "This mediation no longer waits for answers (the deadline passed or it ended)",
    }


class ConsentAlreadyGiven(ShanzhiError):
    status = 409
    code = "mediation.consent_already_given"
    message = {
        "zh-CN": "您已答复过该邀请（{consent_zh}），不能更改",
        "en": "You have already answered this invitation ({consent}); it cannot be changed",
    }


class ApplicantOnly(ShanzhiError):
    status = 403
    code = "mediation.applicant_only"
    message = {
        "zh-CN": "只有调解申请人本人可以进行此操作",
        "en": "Only the applicant of the mediation can do this",
    }


class PartyNotFound(NotFound):
    code = "mediation.party_not_found"
    message = {
        "zh-CN": "该调解案件中找不到这位被申请人",
        "en": "No such respondent in this mediation",
    }


class InvitationAnswered(ShanzhiError):
    status = 409
    code = "mediation.invitation_answered"
    message = {
        "zh-CN": "该被申请人已答复邀请，无需重新发送",
        "en": "This respondent has already answered; there is nothing to send again",
    }


ANSWER_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    InvitationNotFound,
    OwnInvitation,
    InvitationUsed,
    AlreadyParty,
    ConsentClosed,
    ConsentAlreadyGiven,
    CaseChangedMeanwhile,
)


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_MY_MEDIATIONS_ERRORS = (*AUTH_ERRORS, CursorInvalid)
GET_MEDIATION_ERRORS = (*AUTH_ERRORS, MediationNotFound)
WITHDRAW_MEDIATION_ERRORS = (
    *AUTH_ERRORS,
    MediationNotFound,
    ApplicantOnly,
    MediationEnded,
    CaseChangedMeanwhile,
)
REISSUE_INVITATION_ERRORS = (
    *AUTH_ERRORS,
    MediationNotFound,
    ApplicantOnly,
    PartyNotFound,
    InvitationAnswered,
    ConsentClosed,
    CaseChangedMeanwhile,
)
GET_MEDIATION_INVITATION_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    InvitationNotFound,
    OwnInvitation,
    InvitationUsed,
)
ACCEPT_MEDIATION_INVITATION_ERRORS = (*ANSWER_ERRORS,)
DECLINE_MEDIATION_INVITATION_ERRORS = (*ANSWER_ERRORS,)
