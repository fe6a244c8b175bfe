"""What redemption refuses: service centers, rewards, stock, redemptions, member codes."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import NotFound, ShanzhiError
from backend.core.idempotency import KEY_ERRORS
from backend.core.pagination import CursorInvalid
from backend.core.ratelimit import RateLimited
from backend.regions.errors import RegionNotFound
from backend.storage.errors import CLAIM_ERRORS
from points.ledger.errors import IdempotencyConflict, InsufficientBalance

# --- rewards and redemptions ---------------------------------------------------------------


class ServiceCenterNotFound(NotFound):
    code = "points.center_not_found"
    message = {"zh-CN": "找不到该服务站", "en": "Service center not found"}


class ServiceCenterClosed(ShanzhiError):
    status = 409
    code = "points.center_closed"
    message = {
        "zh-CN": "该服务站暂停兑换，请选择其他服务站",
        "en": "This service center is not redeeming at the moment; choose another one",
    }


class ServiceCenterCodeTaken(ShanzhiError):
    status = 409
    code = "points.center_code_taken"
    message = {
        "zh-CN": "服务站编号“{code}”已被使用",
        "en": "The service center code “{code}” is already in use",
    }


class ServiceCenterRegionInvalid(ShanzhiError):
    status = 422
    code = "points.center_region_invalid"
    message = {
        "zh-CN": "服务站须设在一个社区，请选择社区",
        "en": "A service center serves a community; choose a community",
    }


class RewardNotFound(NotFound):
    code = "points.reward_not_found"
    message = {"zh-CN": "找不到该兑换商品", "en": "Reward not found"}


class RewardNotAvailable(ShanzhiError):
    status = 409
    code = "points.reward_not_available"
    message = {
        "zh-CN": "该商品当前不在兑换期内",
        "en": "This reward cannot be redeemed at the moment",
    }


class RewardNotOfferedHere(ShanzhiError):
    status = 422
    code = "points.reward_not_offered_here"
    message = {
        "zh-CN": "该商品不在这个服务站所在区域提供",
        "en": "This reward is not offered in the area of this service center",
    }


class RewardWindowInvalid(ShanzhiError):
    status = 422
    code = "points.reward_window_invalid"
    message = {
        "zh-CN": "兑换期的开始时间须早于结束时间",
        "en": "The start of the redemption window must be before its end",
    }


class CatalogAdminOnly(ShanzhiError):
    status = 403
    code = "points.catalog_admin_only"
    message = {
        "zh-CN": "只有该区域的管理员可以管理服务站和兑换商品",
        "en": "Only admins of this area manage service centers and rewards",
    }


class OutOfStock(ShanzhiError):
    status = 409
    code = "points.out_of_stock"
    message = {
        "zh-CN": "该服务站的库存不足，请减少数量或选择其他服务站",
        "en": "Not enough left at this service center; take fewer or choose another center",
    }


class StockBelowReserved(ShanzhiError):
    status = 409
    code = "points.stock_below_reserved"
    message = {
        "zh-CN": "库存不能少于已被预约待领取的数量",
        "en": "Stock cannot go below what is reserved for pickup",
    }


class RedemptionLimitReached(ShanzhiError):
    status = 409
    code = "points.limit_reached"
    message = {
        "zh-CN": "该商品每人每{period_zh}限兑 {limit} 件，您本{period_zh}还可兑换 {left} 件",
        "en": "This reward is limited to {limit} per member per {period}; "
        "you have {left} left this {period}",
    }


class RedemptionNotFound(NotFound):
    code = "points.redemption_not_found"
    message = {"zh-CN": "找不到该兑换记录", "en": "Redemption not found"}


class RedemptionNotPending(ShanzhiError):
    status = 409
    code = "points.redemption_not_pending"
    message = {
        "zh-CN": "该兑换{state_zh}，不能再操作",
        "en": "This redemption is {state}; nothing more can be done with it",
    }


class OwnRedemption(ShanzhiError):
    status = 403
    code = "points.own_redemption"
    message = {
        "zh-CN": "工作人员不能为自己办理兑换，请由其他工作人员办理",
        "en": "Staff cannot hand out rewards to themselves; ask a colleague",
    }


class MemberCodeInvalid(ShanzhiError):
    status = 422
    code = "points.member_code_invalid"
    message = {
        "zh-CN": "会员码无法识别，请让居民刷新后重新出示",
        "en": "The member code is not valid; ask the member to refresh it and show it again",
    }


class MemberCodeExpired(ShanzhiError):
    status = 422
    code = "points.member_code_expired"
    message = {
        "zh-CN": "会员码已过期，请让居民刷新后重新出示",
        "en": "The member code has expired; ask the member to refresh it",
    }


class CatalogQueryInvalid(ShanzhiError):
    status = 422
    code = "points.catalog_query_invalid"
    message = {
        "zh-CN": "请指定服务站，或提供所在位置（lat、lng）",
        "en": "Name a service center, or give your location (lat and lng)",
    }


class ExportPeriodInvalid(ShanzhiError):
    status = 422
    code = "points.export_period_invalid"
    message = {
        "zh-CN": "导出时段的开始时间须早于结束时间，且不超过一年",
        "en": "The period must start before it ends and span at most a year",
    }


ADMIN_ERRORS = (*AUTH_ERRORS, CatalogAdminOnly)

RETRY_ERRORS = (*KEY_ERRORS, IdempotencyConflict)

REDEEM_ERRORS = (
    RewardNotFound,
    ServiceCenterNotFound,
    ServiceCenterClosed,
    RewardNotAvailable,
    RedemptionLimitReached,
    OutOfStock,
    InsufficientBalance,
)


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_REWARDS_ERRORS = (*AUTH_ERRORS, ServiceCenterNotFound, CatalogQueryInvalid)
CREATE_REDEMPTION_ERRORS = (*AUTH_ERRORS, RateLimited, *RETRY_ERRORS, *REDEEM_ERRORS)
LIST_MY_REDEMPTIONS_ERRORS = (*AUTH_ERRORS, CursorInvalid)
GET_REDEMPTION_ERRORS = (*AUTH_ERRORS, RedemptionNotFound)
CANCEL_REDEMPTION_ERRORS = (*AUTH_ERRORS, RedemptionNotFound, RedemptionNotPending)
GET_MEMBER_CODE_ERRORS = (*AUTH_ERRORS,)
FULFIL_REDEMPTION_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    RedemptionNotFound,
    RedemptionNotPending,
    OwnRedemption,
)
CREATE_COUNTER_REDEMPTION_ERRORS = (
    *AUTH_ERRORS,
    RateLimited,
    *RETRY_ERRORS,
    MemberCodeInvalid,
    MemberCodeExpired,
    OwnRedemption,
    *REDEEM_ERRORS,
)
LIST_SERVICE_CENTERS_ERRORS = (*ADMIN_ERRORS, CursorInvalid)
CREATE_SERVICE_CENTER_ERRORS = (
    *ADMIN_ERRORS,
    RegionNotFound,
    ServiceCenterRegionInvalid,
    ServiceCenterCodeTaken,
)
UPDATE_SERVICE_CENTER_ERRORS = (*ADMIN_ERRORS, ServiceCenterNotFound)
LIST_ADMIN_REWARDS_ERRORS = (*ADMIN_ERRORS, CursorInvalid)
CREATE_REWARD_ERRORS = (*ADMIN_ERRORS, RegionNotFound, RewardWindowInvalid, *CLAIM_ERRORS)
UPDATE_REWARD_ERRORS = (*ADMIN_ERRORS, RewardNotFound, RewardWindowInvalid, *CLAIM_ERRORS)
