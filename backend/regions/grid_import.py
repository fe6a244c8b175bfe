"""Grid import: a city's grids from one GeoJSON feature collection, checked as a whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.auth.models import Role
from backend.auth.principal import Principal
from backend.core.clock import now
from backend.core.database import Ltree
from backend.core.errors import Forbidden
from backend.core.ids import new_id
from backend.core.text import is_region_code, is_text
from backend.regions import schemas
from backend.regions.boundaries import parse_boundary
from backend.regions.coords import CoordSystem
from backend.regions.errors import (
    FeatureIssue,
    GridImportInvalid,
    ImportTooLarge,
)
from backend.regions.models import Region, RegionLevel
from backend.regions.service import (
    LEVEL_ZH,
    WRITE_CHUNK,
    GridMap,
    announce_change,
    parent_path,
)

# --- Admin: grid import ----------------------------------------------------------------------


@dataclass(frozen=True)
class _GridRow:
    index: int
    code: str
    name: str
    name_en: str | None
    has_name_en: bool
    boundary: dict[str, Any]


def _issue(index: int, code: str | None, reason: str, zh: str, en: str) -> FeatureIssue:
    return FeatureIssue(index=index, code=code, reason=reason, message={"zh-CN": zh, "en": en})


def _check_features(
    features: Sequence[schemas.GridFeature], coord: CoordSystem
) -> tuple[list[_GridRow], list[FeatureIssue]]:
    """Everything that needs no database: properties, geometry, duplicates within the file."""
    rows: list[_GridRow] = []
    issues: list[FeatureIssue] = []
    for index, feature in enumerate(features):
        properties = feature.properties or {}
        raw_code = properties.get("code")
        code = raw_code.strip() if isinstance(raw_code, str) else None
        bad = False
        if not code:
            bad = True
            issues.append(
                _issue(
                    index,
                    None,
                    "code_missing",
                    "缺少 properties.code（网格的完整编码）",
                    "properties.code (the grid's full code) is missing",
                )
            )
        elif not is_region_code(code) or "." not in code:
            bad = True
            issues.append(
                _issue(
                    index,
                    code,
                    "code_invalid",
                    f"编码 {code} 格式不正确：应为以点分隔的完整路径，"
                    "每段只含小写字母、数字和下划线",
                    f"Code {code} is malformed: expected a dotted full path of lower-case "
                    "letters, digits and underscores",
                )
            )
        raw_name = properties.get("name")
        name = raw_name.strip() if isinstance(raw_name, str) else ""
        if not 1 <= len(name) <= 100 or not is_text(name):
            bad = True
            issues.append(
                _issue(
                    index,
                    code,
                    "name_invalid",
                    "properties.name 须为 1 到 100 个字的名称",
                    "properties.name must be a name of 1 to 100 characters",
                )
            )
        raw_name_en = properties.get("name_en")
        name_en = (raw_name_en.strip() or None) if isinstance(raw_name_en, str) else None
        if (
            (raw_name_en is not None and not isinstance(raw_name_en, str))
            or len(name_en or "") > 100
            or not is_text(name_en or "")
        ):
            bad = True
            issues.append(
                _issue(
                    index,
                    code,
                    "name_en_invalid",
                    "properties.name_en 须为不超过 100 个字符的文本",
                    "properties.name_en must be text of at most 100 characters",
                )
            )
        boundary, problem = parse_boundary(feature.geometry, coord)
        if problem is not None:
            bad = True
            issues.append(_issue(index, code, problem.reason, problem.zh, problem.en))
        if not bad:
            assert code is not None
            rows.append(
                _GridRow(
                    index=index,
                    code=code,
                    name=name,
                    name_en=name_en,
                    has_name_en="name_en" in properties,
                    boundary=boundary,
                )
            )
    seen: dict[str, list[int]] = {}
    for index, feature in enumerate(features):
        code = (feature.properties or {}).get("code")
        if isinstance(code, str) and code.strip():
            seen.setdefault(code.strip(), []).append(index)
    for code, indexes in seen.items():
        if len(indexes) > 1:
            where = ", ".join(str(i) for i in indexes)
            for index in indexes:
                issues.append(
                    _issue(
                        index,
                        code,
                        "duplicate_code",
                        f"编码 {code} 在文件中出现了 {len(indexes)} 次（第 {where} 个要素）",
                        f"Code {code} appears {len(indexes)} times in the file (features {where})",
                    )
                )
    return rows, issues


def _in_paths(name: str, paths: Sequence[str]) -> Any:
    """`region.path IN (...)` for up to 50,000 paths: one array parameter, unnested so the
    planner can hash-join instead of scanning the array for every row."""
    array = bindparam(name, list(paths), type_=ARRAY(Ltree()))
    return col(Region.path).in_(select(func.unnest(array)))


async def import_grids(
    session: AsyncSession,
    principal: Principal,
    collection: schemas.GridFeatureCollection,
    coord: CoordSystem,
    grid_map: GridMap | None,
) -> schemas.GridImportResult:
    """Create or update every grid of the collection, or nothing if any feature is bad."""
    features = collection.features
    if len(features) > schemas.MAX_IMPORT_FEATURES:
        raise ImportTooLarge(limit=schemas.MAX_IMPORT_FEATURES, count=len(features))
    if not principal.paths_for((Role.admin,)):
        raise Forbidden()
    rows, issues = await asyncio.to_thread(_check_features, features, coord)

    allowed: list[_GridRow] = []
    for row in rows:
        parent = parent_path(row.code) or ""
        if principal.can((Role.admin,), parent):
            allowed.append(row)
        else:
            # Said the same whether or not the community exists, so nothing leaks.
            issues.append(
                _issue(
                    row.index,
                    row.code,
                    "parent_forbidden",
                    f"您不是 {parent} 的管理员，不能导入其网格",
                    f"You are not an admin of {parent} and cannot import its grids",
                )
            )

    parents: dict[str, tuple[uuid.UUID, str]] = {}
    parent_paths = sorted({parent_path(row.code) or "" for row in allowed})
    if parent_paths:
        result = await session.execute(
            select(col(Region.path), col(Region.id), col(Region.level)).where(
                _in_paths("parents", parent_paths)
            )
        )
        parents = {path: (region_id, level) for path, region_id, level in result.all()}
    existing: dict[str, tuple[str, str, str | None, Any]] = {}
    if allowed:
        result = await session.execute(
            select(
                col(Region.path),
                col(Region.level),
                col(Region.name),
                col(Region.name_en),
                col(Region.boundary),
            ).where(_in_paths("codes", [row.code for row in allowed]))
        )
        existing = {path: (level, name, en, boundary) for path, level, name, en, boundary in result}  # type: ignore[misc]

    writable: list[tuple[_GridRow, uuid.UUID]] = []
    for row in allowed:
        parent = parent_path(row.code) or ""
        found = parents.get(parent)
        if found is None:
            issues.append(
                _issue(
                    row.index,
                    row.code,
                    "parent_missing",
                    f"上级社区 {parent} 不存在",
                    f"The parent community {parent} does not exist",
                )
            )
        elif found[1] != RegionLevel.community:
            level = RegionLevel(found[1])
            issues.append(
                _issue(
                    row.index,
                    row.code,
                    "parent_not_community",
                    f"上级 {parent} 是{LEVEL_ZH[level]}，网格只能建在社区之下",
                    f"The parent {parent} is a {level.value}; grids belong under a community",
                )
            )
        elif row.code in existing and existing[row.code][0] != RegionLevel.grid:
            issues.append(
                _issue(
                    row.index,
                    row.code,
                    "code_taken",
                    f"编码 {row.code} 已被非网格区域使用",
                    f"Code {row.code} is already used by a region that is not a grid",
                )
            )
        else:
            writable.append((row, found[0]))

    if issues:
        issues.sort(key=lambda issue: issue.index)
        raise GridImportInvalid(issues)

    created = updated = unchanged = 0
    for row, _ in writable:
        before = existing.get(row.code)
        if before is None:
            created += 1
        elif (
            before[1] == row.name
            and before[3] == row.boundary
            and (not row.has_name_en or before[2] == row.name_en)
        ):
            unchanged += 1
        else:
            updated += 1

    await _upsert_grids(session, writable)
    if created or updated:
        await announce_change(session, grid_map)
    return schemas.GridImportResult(created=created, updated=updated, unchanged=unchanged)


async def _upsert_grids(session: AsyncSession, rows: list[tuple[_GridRow, uuid.UUID]]) -> None:
    at = now()
    table = Region.__table__  # type: ignore[attr-defined]
    # Rows without `name_en` keep the stored one: a boundary-only file must not erase it.
    for with_name_en in (True, False):
        group = [(row, parent_id) for row, parent_id in rows if row.has_name_en is with_name_en]
        if not group:
            continue
        # One statement, executed for many parameter sets (the driver pipelines them).
        statement = insert(table)
        excluded = statement.excluded
        values: dict[str, Any] = {
            "name": excluded.name,
            "boundary": excluded.boundary,
            "updated_at": at,
        }
        changed = table.c.name.is_distinct_from(excluded.name) | table.c.boundary.is_distinct_from(
            excluded.boundary
        )
        if with_name_en:
            values["name_en"] = excluded.name_en
            changed = changed | table.c.name_en.is_distinct_from(excluded.name_en)
        upsert = statement.on_conflict_do_update(
            index_elements=["path"],
            set_=values,
            where=(table.c.level == RegionLevel.grid.value) & changed,
        )
        for start in range(0, len(group), WRITE_CHUNK):
            await session.execute(
                upsert,
                [
                    {
                        "id": new_id(),
                        "path": row.code,
                        "parent_id": parent_id,
                        "level": RegionLevel.grid.value,
                        "name": row.name,
                        "name_en": row.name_en,
                        "boundary": row.boundary,
                    }
                    for row, parent_id in group[start : start + WRITE_CHUNK]
                ],
            )
