"""What can go wrong with points, in words a resident or a service-center clerk understands."""

from __future__ import annotations

from typing import Any

from backend.core.errors import NotFound, ShanzhiError

# --- the ledger --------------------------------------------------------------------------


class InsufficientBalance(ShanzhiError):
    status = 409
    code = "points.insufficient_balance"
    message = {
        "zh-CN": "积分不足：需要 {requested} 积分，当前可用 {available} 积分",
        "en": "Not enough points: {requested} needed, {available} available",
    }

    def __init__(self, *, available: int, requested: int) -> None:
        super().__init__(available=available, requested=requested)

    def extra(self) -> dict[str, Any]:
        return {"available": self.params["available"], "requested": self.params["requested"]}


class IdempotencyConflict(ShanzhiError):
    status = 409
    code = "points.idempotency_conflict"
    message = {
        "zh-CN": "该请求标识已用于另一笔不同的积分操作，请勿重复使用",
        "en": "This idempotency key was already used for a different points operation",
    }


class HoldNotFound(NotFound):
    code = "points.hold_not_found"
    message = {"zh-CN": "找不到该积分冻结记录", "en": "Points hold not found"}


class HoldNotPending(ShanzhiError):
    status = 409
    code = "points.hold_not_pending"
    message = {
        "zh-CN": "该笔冻结积分已{state_zh}，不能再处理",
        "en": "The points hold is already {state}; it cannot be settled again",
    }


class TransactionNotFound(NotFound):
    code = "points.transaction_not_found"
    message = {"zh-CN": "找不到该积分交易", "en": "Points transaction not found"}


class NotReversible(ShanzhiError):
    status = 409
    code = "points.not_reversible"
    message = {
        "zh-CN": "只有发放积分的交易可以冲正",
        "en": "Only a transaction that awarded points can be reversed",
    }


class AlreadyReversed(ShanzhiError):
    status = 409
    code = "points.already_reversed"
    message = {
        "zh-CN": "该笔积分交易已经冲正过了",
        "en": "This points transaction has already been reversed",
    }


class LedgerRequestInvalid(ShanzhiError):
    status = 422
    code = "points.request_invalid"
    message = {
        "zh-CN": "积分操作参数有误：{detail}",
        "en": "The points operation is invalid: {detail}",
    }


# --- earning rules -----------------------------------------------------------------------


class EarningRulesAdminOnly(ShanzhiError):
    status = 403
    code = "points.earning_rules_admin_only"
    message = {
        "zh-CN": "只有市级管理员可以设置积分规则",
        "en": "Only a city administrator can manage the earning rules",
    }


class EarningRuleDuplicate(ShanzhiError):
    status = 422
    code = "points.earning_rule_duplicate"
    message = {
        "zh-CN": "活动类型 {activity_type} 出现了不止一次",
        "en": "The activity type {activity_type} appears more than once",
    }


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
