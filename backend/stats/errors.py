"""What the staff figures refuse."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, ShanzhiError
from backend.regions.errors import RegionNotFound


class StatsPeriodInvalid(ShanzhiError):
    status = 422
    code = "case.stats_period_invalid"
    message = {
        "zh-CN": "统计时段须为有效的时间，且开始时间早于结束时间",
        "en": "The period must be valid times, and its start before its end",
    }


STATS_ERRORS = (*AUTH_ERRORS, Forbidden, RegionNotFound, StatsPeriodInvalid)


# --- what each route answers (its `responses=`) ----------------------------------------

GET_CASE_STATS_ERRORS = (*STATS_ERRORS,)
