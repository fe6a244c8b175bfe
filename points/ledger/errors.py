"""What the ledger and the earning rules refuse."""

from __future__ import annotations

from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import NotFound, ShanzhiError
from backend.core.pagination import CursorInvalid

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


# --- what each route answers (its `responses=`) ----------------------------------------

GET_POINTS_BALANCE_ERRORS = (*AUTH_ERRORS,)
LIST_POINTS_ENTRIES_ERRORS = (*AUTH_ERRORS, CursorInvalid)
LIST_EARNING_RULES_ERRORS = (*AUTH_ERRORS, EarningRulesAdminOnly)
REPLACE_EARNING_RULES_ERRORS = (*AUTH_ERRORS, EarningRulesAdminOnly, EarningRuleDuplicate)
