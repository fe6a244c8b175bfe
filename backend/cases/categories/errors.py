"""What the catalogue refuses."""

from __future__ import annotations

from backend.auth.principal import AUTH_ERRORS
from backend.core.errors import NotFound, ShanzhiError
from backend.core.ratelimit import RateLimited


class CategoryNotFound(NotFound):
    code = "case.category_not_found"
    message = {"zh-CN": "找不到该事项类别", "en": "Category not found"}


class CategoryDuplicate(ShanzhiError):
    status = 409
    code = "case.category_duplicate"
    message = {
        "zh-CN": "已有编码为 {code} 的{kind_zh}类别",
        "en": "A {kind} category with code {code} already exists",
    }


class CategorySlaInvalid(ShanzhiError):
    status = 422
    code = "case.category_sla_invalid"
    message = {
        "zh-CN": "办结时限（{resolution_hours} 小时）不能短于响应时限（{response_hours} 小时）",
        "en": "The resolution time ({resolution_hours} h) cannot be shorter than the response "
        "time ({response_hours} h)",
    }


class CatalogueAdminOnly(ShanzhiError):
    status = 403
    code = "case.category_admin_only"
    message = {
        "zh-CN": "只有市级管理员可以维护事项类别",
        "en": "Only a city administrator can manage the categories",
    }


# --- what each route answers (its `responses=`) ----------------------------------------

LIST_CATEGORIES_ERRORS = (RateLimited,)
LIST_ALL_CATEGORIES_ERRORS = (*AUTH_ERRORS, CatalogueAdminOnly)
CREATE_CATEGORY_ERRORS = (*AUTH_ERRORS, CatalogueAdminOnly, CategoryDuplicate, CategorySlaInvalid)
UPDATE_CATEGORY_ERRORS = (*AUTH_ERRORS, CatalogueAdminOnly, CategoryNotFound, CategorySlaInvalid)
