"""What can go wrong with inspections, in words a volunteer on a stairwell understands."""

from __future__ import annotations

from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import ShanzhiError
from backend.core.pagination import CursorInvalid
from volunteers.errors import ActivityNotFound, NotSignedUp


class NotAnInspection(ShanzhiError):
    status = 409
    code = "inspection.not_an_inspection"
    message = {
        "zh-CN": "该活动不是出租屋检查或消防安全检查，没有检查清单",
        "en": "This activity is not a rental-house inspection or fire-safety check; "
        "it has no checklist",
    }


class ActivityNotOpen(ShanzhiError):
    status = 409
    code = "inspection.activity_not_open"
    message = {
        "zh-CN": "活动已取消，不能再提交检查结果",
        "en": "The activity has been cancelled; inspections can no longer be filed",
    }


class NotCheckedIn(ShanzhiError):
    status = 409
    code = "inspection.not_checked_in"
    message = {
        "zh-CN": "请先扫码签到，再提交检查结果",
        "en": "Check in at the activity first, then file the inspection",
    }


class AlreadyCheckedOut(ShanzhiError):
    status = 409
    code = "inspection.checked_out"
    message = {
        "zh-CN": "您已签退，不能再提交检查结果；如有遗漏请随手拍上报",
        "en": "You have already checked out; inspections can no longer be filed here "
        "(report anything missed as a normal report)",
    }


class ItemUnknown(ShanzhiError):
    status = 422
    code = "inspection.item_unknown"
    message = {
        "zh-CN": "检查项 {items} 不在本次活动的检查清单中，请更新小程序后重试",
        "en": "{items} is not on this activity's checklist; update the app and try again",
    }

    def __init__(self, *, items: list[str]) -> None:
        super().__init__(items=", ".join(items))
        self.items = items

    def extra(self) -> dict[str, Any]:
        return {"items": self.items}


class HouseOutsideServiceArea(ShanzhiError):
    status = 422
    code = "inspection.outside_service_area"
    message = {
        "zh-CN": "该房屋位置不在服务范围内，请在地图上重新选择房屋位置",
        "en": "The house is outside the service area; choose its place on the map again",
    }


class CategoryUnavailable(ShanzhiError):
    status = 409
    code = "inspection.category_unavailable"
    message = {
        "zh-CN": "检查项“{label}”对应的事项类别（{category}）不存在或已停用，"
        "暂不能上报，请联系社区工作人员",
        "en": "The report category of “{label_en}” ({category}) does not exist or is no "
        "longer in use, so it cannot be reported; tell the community staff",
    }

    def __init__(self, *, item: str, label: str, label_en: str, category: str) -> None:
        super().__init__(item=item, label=label, label_en=label_en, category=category)

    def extra(self) -> dict[str, Any]:
        return {"item": self.params["item"], "category": self.params["category"]}


class IdempotencyConflict(ShanzhiError):
    status = 409
    code = "inspection.idempotency_conflict"
    message = {
        "zh-CN": "这次提交与之前用同一标识提交的检查结果不同，请作为新的检查重新提交",
        "en": "This inspection differs from the one sent earlier with the same key; "
        "file it again as a new one",
    }


# --- what each route answers (its `responses=`) ----------------------------------------

GET_INSPECTION_CHECKLIST_ERRORS = (*AUTH_ERRORS, ActivityNotFound, NotAnInspection)
LIST_MY_INSPECTIONS_ERRORS = (*AUTH_ERRORS, ActivityNotFound, NotSignedUp, CursorInvalid)
LIST_ACTIVITY_INSPECTIONS_ERRORS = (*AUTH_ERRORS, ActivityNotFound, CursorInvalid)
