"""Where a dispute can go besides mediation, described once: the advice given when a
dispute was not mediated, and the referral when mediation ended without agreement."""

from __future__ import annotations

from dataclasses import dataclass

from backend.mediation.models import DisputeType, Referral
from backend.mediation.requests.schemas import RouteOut


@dataclass(frozen=True)
class Route:
    name: str
    name_en: str
    how: str
    how_en: str


ROUTES: dict[Referral, Route] = {
    Referral.labour_inspection: Route(
        "劳动保障监察",
        "Labour inspection",
        "拖欠工资可向用人单位所在地人力资源和社会保障部门的劳动保障监察机构投诉，或拨打12333咨询",
        "Report unpaid wages to the labour inspection office of the local human resources "
        "and social security bureau, or call 12333",
    ),
    Referral.labour_arbitration: Route(
        "劳动人事争议仲裁委员会",
        "Labour dispute arbitration committee",
        "可自争议发生之日起一年内，向当地劳动人事争议仲裁委员会申请仲裁",
        "Apply for arbitration at the local labour dispute arbitration committee within one "
        "year of the dispute",
    ),
    Referral.housing_authority: Route(
        "住建部门（物业监管）",
        "Housing authority (property management supervision)",
        "可向所在区住房和城乡建设部门投诉物业服务问题，或拨打12345",
        "Complain about the property management to the district housing authority, or call 12345",
    ),
    Referral.consumer_association: Route(
        "12315 消费者协会",
        "Consumer association (12315)",
        "可拨打12315或通过全国12315平台投诉，由市场监管部门和消费者协会处理",
        "Call 12315 or file on the national 12315 platform; the market regulator and the "
        "consumer association handle it",
    ),
    Referral.court: Route(
        "法院诉讼服务中心",
        "Court litigation service center",
        "可携带身份证和相关证据到当地法院诉讼服务中心咨询立案",
        "Bring your ID and the evidence to the local court's litigation service center",
    ),
    Referral.other: Route(
        "其他途径",
        "Other routes",
        "请参阅调解员的说明，选择合适的途径解决纠纷",
        "See the mediator's note for where to turn next",
    ),
    Referral.legal_aid: Route(
        "法律援助中心",
        "Legal aid center",
        "经济困难的，可向当地法律援助中心申请免费法律帮助，或拨打12348咨询",
        "If you cannot afford a lawyer, ask the local legal aid center for free help, or "
        "call 12348",
    ),
}


_COURT_AND_LEGAL_AID = (Referral.court, Referral.legal_aid)


ADVICE: dict[DisputeType, tuple[Referral, ...]] = {
    DisputeType.labour_wages: (Referral.labour_inspection, Referral.labour_arbitration),
    DisputeType.property_management: (Referral.housing_authority,),
    DisputeType.consumer: (Referral.consumer_association,),
    DisputeType.landlord_tenant: _COURT_AND_LEGAL_AID,
    DisputeType.neighbours: _COURT_AND_LEGAL_AID,
    DisputeType.family: _COURT_AND_LEGAL_AID,
    DisputeType.other: _COURT_AND_LEGAL_AID,
}


def route_out(referral: Referral | str) -> RouteOut:
    route = ROUTES[Referral(referral)]
    return RouteOut(
        route=Referral(referral),
        name=route.name,
        name_en=route.name_en,
        how=route.how,
        how_en=route.how_en,
    )


def advice_for(dispute_type: DisputeType | str) -> list[RouteOut]:
    """Where a dispute may go instead, when mediation did not take it up."""
    return [route_out(route) for route in ADVICE[DisputeType(dispute_type)]]
