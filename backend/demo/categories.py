"""Demo data: the report, complaint and mediation categories with their SLAs and handling units."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.models import CaseKind, Category
from backend.core.ids import new_id


@dataclass(frozen=True)
class DemoCategory:
    kind: CaseKind
    code: str
    name: str
    name_en: str
    response_hours: int
    resolution_hours: int
    handling_unit: str
    handling_unit_en: str


_POLICE = ("派出所", "Police station")


_URBAN_SQUAD = ("城管中队", "Urban management squad")


_ENFORCEMENT = ("街道综合执法队", "Subdistrict law-enforcement team")


_MEDIATION_COMMITTEE = ("人民调解委员会", "People's mediation committee")


DEMO_CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory(
        CaseKind.report, "public_security", "治安隐患", "Public-security hazard", 2, 24, *_POLICE
    ),
    DemoCategory(
        CaseKind.report,
        "fire_hazard",
        "消防隐患",
        "Fire hazard",
        2,
        24,
        "消防救援站",
        "Fire and rescue station",
    ),
    DemoCategory(
        CaseKind.report,
        "sanitation",
        "环境卫生",
        "Sanitation",
        4,
        48,
        "环卫站",
        "Sanitation station",
    ),
    DemoCategory(
        CaseKind.report,
        "road_facilities",
        "道路设施",
        "Road facilities (e.g. broken manhole cover)",
        4,
        72,
        "住建局道路养护所",
        "Road maintenance office",
    ),
    DemoCategory(
        CaseKind.report,
        "illegal_construction",
        "违章搭建",
        "Illegal construction",
        8,
        168,
        *_ENFORCEMENT,
    ),
    DemoCategory(CaseKind.report, "noise", "噪音扰民", "Noise nuisance", 2, 48, *_ENFORCEMENT),
    DemoCategory(
        CaseKind.report, "street_vending", "占道经营", "Street vending", 4, 48, *_URBAN_SQUAD
    ),
    DemoCategory(
        CaseKind.report,
        "municipal_facilities",
        "市政设施",
        "Municipal facilities (street lights, drains)",
        8,
        120,
        "市政设施养护所",
        "Municipal facilities maintenance office",
    ),
    DemoCategory(
        CaseKind.complaint,
        "property_management",
        "物业服务",
        "Property management",
        24,
        168,
        "住建局物业监管科",
        "Property supervision section",
    ),
    DemoCategory(
        CaseKind.complaint,
        "consumer_rights",
        "市场监管",
        "Consumer rights",
        24,
        168,
        "市场监督管理所",
        "Market supervision office",
    ),
    DemoCategory(
        CaseKind.complaint,
        "wages",
        "劳动保障",
        "Unpaid wages",
        24,
        120,
        "劳动保障监察大队",
        "Labour inspection brigade",
    ),
    DemoCategory(
        CaseKind.complaint,
        "urban_management",
        "城市管理",
        "Urban management",
        12,
        120,
        *_URBAN_SQUAD,
    ),
    # Mediation: the category is the dispute type; 30 days to settle, 3 to consent.
    *(
        DemoCategory(CaseKind.mediation, code, name, name_en, 72, 720, *_MEDIATION_COMMITTEE)
        for code, name, name_en in (
            ("neighbours", "邻里纠纷", "Neighbours"),
            ("family", "婚姻家庭纠纷", "Family"),
            ("labour_wages", "劳动争议与欠薪", "Labour and unpaid wages"),
            ("property_management", "物业纠纷", "Property management"),
            ("landlord_tenant", "房屋租赁纠纷", "Landlord and tenant"),
            ("consumer", "消费纠纷", "Consumer"),
            ("other", "其他民间纠纷", "Other civil disputes"),
        )
    ),
)


async def load_demo_categories(session: AsyncSession) -> None:
    """Add the demo categories that are missing; ones already there (maybe edited) stay."""
    rows = [
        {
            "id": new_id(),
            "kind": category.kind.value,
            "code": category.code,
            "name": category.name,
            "name_en": category.name_en,
            "response_hours": category.response_hours,
            "resolution_hours": category.resolution_hours,
            "handling_unit": category.handling_unit,
            "handling_unit_en": category.handling_unit_en,
            "position": 10 * (index + 1),
            "active": True,
        }
        for index, category in enumerate(DEMO_CATEGORIES)
    ]
    await session.execute(
        insert(Category).values(rows).on_conflict_do_nothing(index_elements=["kind", "code"])
    )
