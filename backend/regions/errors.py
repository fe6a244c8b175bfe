"""Errors of the regions domain, each with its status, stable code and zh-CN/en message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import Forbidden, ShanzhiError
from backend.core.i18n import Language
from backend.core.ratelimit import RateLimited


class OutsideGrids(ShanzhiError):
    status = 404
    code = "regions.outside_grids"
    message = {
        "zh-CN": "该位置不在任何已划分的网格内，请确认定位是否准确，或手动选择所在社区",
        "en": "This location is not inside any grid; check the location or choose your "
        "community by hand",
    }


class RegionNotFound(ShanzhiError):
    status = 404
    code = "regions.not_found"
    message = {"zh-CN": "找不到区域 {code}", "en": "Region {code} not found"}


class RegionDuplicate(ShanzhiError):
    status = 409
    code = "regions.duplicate"
    message = {"zh-CN": "区域编码 {code} 已存在", "en": "Region code {code} already exists"}


class InvalidLevel(ShanzhiError):
    status = 422
    code = "regions.invalid_level"
    message = {
        "zh-CN": "不能在 {parent}（{parent_level_zh}）下建立该区域：{rule_zh}",
        "en": "Cannot create this region under {parent} (a {parent_level}): {rule_en}",
    }


class InvalidBoundary(ShanzhiError):
    status = 422
    code = "regions.invalid_boundary"
    message = {"zh-CN": "边界无效：{reason_zh}", "en": "Invalid boundary: {reason_en}"}


class ImportTooLarge(ShanzhiError):
    status = 413
    code = "regions.import_too_large"
    message = {
        "zh-CN": "一次最多导入 {limit} 个网格，本次提交了 {count} 个，请分批导入",
        "en": "At most {limit} grids can be imported at once, this import has {count}; "
        "split it into batches",
    }


@dataclass(frozen=True)
class FeatureIssue:
    """One problem of one feature of a grid import."""

    index: int
    code: str | None
    reason: str
    message: dict[Language, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "reason": self.reason,
            "message": dict(self.message),
        }


class GridImportInvalid(ShanzhiError):
    status = 422
    code = "regions.import_invalid"
    message = {
        "zh-CN": "导入未执行：{count} 个网格有问题（见 invalid_features），未写入任何数据",
        "en": "Import rejected: {count} features have problems (see invalid_features); "
        "nothing was written",
    }
    # Enough to fix a file; a wholly broken 50,000-feature file would otherwise answer megabytes.
    MAX_LISTED = 1000

    def __init__(self, issues: list[FeatureIssue]) -> None:
        self.issues = issues
        self.invalid_count = len({issue.index for issue in issues})
        super().__init__(count=self.invalid_count)

    def extra(self) -> dict[str, Any]:
        listed = self.issues[: self.MAX_LISTED]
        return {
            "invalid_count": self.invalid_count,
            "truncated": len(self.issues) > len(listed),
            "invalid_features": [issue.as_json() for issue in listed],
        }


STAFF_ERRORS = (*AUTH_ERRORS, Forbidden)


# --- what each route answers (its `responses=`) ----------------------------------------

LOCATE_GRID_ERRORS = (RateLimited, OutsideGrids)
GET_REGION_ERRORS = (RateLimited, RegionNotFound)
CREATE_REGION_ERRORS = (
    *STAFF_ERRORS,
    RegionNotFound,
    RegionDuplicate,
    InvalidLevel,
    InvalidBoundary,
)
UPDATE_REGION_ERRORS = (*STAFF_ERRORS, RegionNotFound, InvalidBoundary)
IMPORT_GRIDS_ERRORS = (*STAFF_ERRORS, ImportTooLarge, GridImportInvalid)
