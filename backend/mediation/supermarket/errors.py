"""What can go wrong in the mediation supermarket: managing studios and mediators, choosing a
studio, assigning a mediator, the mediator's own queue."""

from __future__ import annotations

from backend.auth.errors import UserNotFound
from backend.auth.principal import AUTH_ERRORS
from backend.cases.errors import CaseChangedMeanwhile
from backend.core.errors import Forbidden, ShanzhiError
from backend.core.pagination import CursorInvalid
from backend.mediation.errors import MediationNotFound, MediatorNotFound, StudioNotFound
from backend.regions.errors import OutsideGrids, RegionNotFound

# --- admins: studios and mediators ---------------------------------------------------------


class SupermarketAdminsOnly(Forbidden):
    code = "mediation.admins_only"
    message = {
        "zh-CN": "只有区域管理员可以管理调解工作室和调解员",
        "en": "Only admins of an area manage its mediation studios and mediators",
    }


class StudioNameTaken(ShanzhiError):
    status = 409
    code = "mediation.studio_name_taken"
    message = {
        "zh-CN": "该区域已有名为“{name}”的调解工作室",
        "en": "This area already has a mediation studio named “{name}”",
    }


class MediatorExists(ShanzhiError):
    status = 409
    code = "mediation.mediator_exists"
    message = {
        "zh-CN": "该用户已登记为调解员，请修改其现有登记",
        "en": "This user is already registered as a mediator; change the existing entry",
    }


class MediatorOutsideStudio(ShanzhiError):
    status = 409
    code = "mediation.mediator_outside_studio"
    message = {
        "zh-CN": "调解员的服务区域须在所属工作室的服务区域之内",
        "en": "A mediator's area must lie within the area of their studio",
    }


# --- residents: choosing a studio ----------------------------------------------------------


class ApplicantChoosesStudio(Forbidden):
    code = "mediation.applicant_chooses_studio"
    message = {
        "zh-CN": "只有申请人可以选择调解工作室",
        "en": "Only the applicant chooses the mediation studio",
    }


class StudioUnfit(ShanzhiError):
    status = 409
    code = "mediation.studio_unfit"
    message = {
        "zh-CN": "该工作室不受理此类纠纷或不服务该地点，或暂时没有可接案的调解员，请另选工作室",
        "en": "This studio does not take this kind of dispute at this place, or has no "
        "mediator with room now; choose another studio",
    }


class StudioChoiceClosed(ShanzhiError):
    status = 409
    code = "mediation.studio_choice_closed"
    message = {
        "zh-CN": "调解员已经确定或调解已经结束，不能再更换工作室",
        "en": "A mediator has already been assigned or the mediation has ended; the studio "
        "can no longer be changed",
    }


# --- supervisors: assigning ----------------------------------------------------------------


class SupervisorsOnly(Forbidden):
    code = "mediation.supervisors_only"
    message = {
        "zh-CN": "只有上级区域管理员可以查看和指派调解案件",
        "en": "Only admins of the regions above a mediation supervise and assign it",
    }


class NotAssignable(ShanzhiError):
    status = 409
    code = "mediation.not_assignable"
    message = {
        "zh-CN": "该调解案件现在不能指派调解员：{reason_zh}",
        "en": "A mediator cannot be assigned to this mediation now: {reason_en}",
    }


class MediatorInactive(ShanzhiError):
    status = 409
    code = "mediation.mediator_inactive"
    message = {
        "zh-CN": "该调解员（或其工作室）已停止接案",
        "en": "This mediator (or their studio) takes no new cases",
    }


class MediatorWrongSpecialty(ShanzhiError):
    status = 409
    code = "mediation.mediator_wrong_specialty"
    message = {
        "zh-CN": "该调解员不擅长此类纠纷（需要“{specialty_zh}”专长）",
        "en": "This mediator lacks the specialty this dispute needs ({specialty})",
    }


class MediatorOutsideArea(ShanzhiError):
    status = 409
    code = "mediation.mediator_outside_area"
    message = {
        "zh-CN": "该调解员的服务区域不包括纠纷发生地",
        "en": "This mediator's area does not cover the place of the dispute",
    }


# --- mediators: their own queue ------------------------------------------------------------


class NotAMediator(Forbidden):
    code = "mediation.not_a_mediator"
    message = {
        "zh-CN": "您还不是调解超市登记的调解员",
        "en": "You are not registered as a mediator",
    }


ADMIN_ERRORS = (*AUTH_ERRORS, SupermarketAdminsOnly)


# --- what each route answers (its `responses=`) ----------------------------------------

CREATE_MEDIATION_STUDIO_ERRORS = (*ADMIN_ERRORS, RegionNotFound, StudioNameTaken)
LIST_MEDIATION_STUDIOS_ERRORS = (*ADMIN_ERRORS, RegionNotFound, CursorInvalid)
UPDATE_MEDIATION_STUDIO_ERRORS = (*ADMIN_ERRORS, StudioNotFound, StudioNameTaken)
CREATE_MEDIATOR_ERRORS = (
    *ADMIN_ERRORS,
    RegionNotFound,
    UserNotFound,
    StudioNotFound,
    MediatorOutsideStudio,
    MediatorExists,
)
LIST_MEDIATORS_ERRORS = (*ADMIN_ERRORS, CursorInvalid)
UPDATE_MEDIATOR_ERRORS = (
    *ADMIN_ERRORS,
    MediatorNotFound,
    RegionNotFound,
    StudioNotFound,
    MediatorOutsideStudio,
)
LIST_FITTING_STUDIOS_ERRORS = (*AUTH_ERRORS, OutsideGrids)
CHOOSE_MEDIATION_STUDIO_ERRORS = (
    *AUTH_ERRORS,
    MediationNotFound,
    ApplicantChoosesStudio,
    StudioNotFound,
    StudioUnfit,
    StudioChoiceClosed,
    CaseChangedMeanwhile,
)
LIST_SUPERVISED_MEDIATIONS_ERRORS = (*AUTH_ERRORS, SupervisorsOnly, CursorInvalid)
ASSIGN_MEDIATION_ERRORS = (
    *AUTH_ERRORS,
    MediationNotFound,
    MediatorNotFound,
    NotAssignable,
    MediatorInactive,
    MediatorWrongSpecialty,
    MediatorOutsideArea,
    CaseChangedMeanwhile,
)
LIST_MY_MEDIATION_CASES_ERRORS = (*AUTH_ERRORS, NotAMediator, CursorInvalid)
