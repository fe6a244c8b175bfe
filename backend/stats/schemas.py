"""The staff figures: counts and rates per region, in aggregate only."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.regions.models import RegionLevel


class Rate(BaseModel):
    rate: float | None = Field(
        description="numerator / denominator, 0..1 rounded to 4 decimals; null when the "
        "denominator is 0."
    )
    numerator: int
    denominator: int


class ChannelCounts(BaseModel):
    miniapp: int = 0
    phone: int = 0
    counter: int = 0
    inspection: int = 0


class MediationStateCounts(BaseModel):
    """Mediations created in the period, by the state they are in now."""

    open: int = Field(
        description="Still under way: awaiting consent, awaiting a mediator, assigned, in "
        "session, or with an agreement waiting for every party's confirmation."
    )
    concluded: int = Field(description="Ended with an agreement every party confirmed.")
    no_agreement: int = Field(description="Ended without agreement, referred elsewhere.")
    withdrawn: int = Field(description="Withdrawn by the applicant.")
    not_mediated: int = Field(
        description="Ended before mediation: a respondent declined, or consent never came."
    )


class MediationFigures(BaseModel):
    """Mediation in one region, in aggregate only: no case, party or mediator is named.

    Counts the mediations whose dispute is located in the region and whose case was created
    in the period [from, to); states, consents and outcomes are as they stand now."""

    cases: int = Field(description="Mediations created in the period.")
    consent_rate: Rate = Field(
        description="Numerator: mediations in which every respondent accepted. Denominator: "
        "mediations whose consent is decided: every respondent accepted, or one declined or "
        "let the invitation expire (those end as not mediated). Mediations still waiting for "
        "an answer, and those withdrawn before every answer came, are left out."
    )
    success_rate: Rate = Field(
        description="Numerator: mediations concluded with an agreement. Denominator: "
        "mediations that ended after mediation: concluded or no agreement. Withdrawn and not "
        "mediated ones are left out (no mediation outcome), and so are open ones."
    )
    average_days_to_conclude: float | None = Field(
        description="Concluded mediations: the mean time from the case's creation to its "
        "end, in days, to one decimal; null when none concluded."
    )
    by_state: MediationStateCounts
    escalated: int = Field(
        description="Mediations escalated because their time limit passed while open, "
        "whatever their state now."
    )


class RegionFigures(BaseModel):
    """Figures of one region for the period [from, to): the report and complaint cases
    located in it and created in the period, and the same period's mediations in `mediation`.
    "Now" is the time of the request."""

    code: str
    name: str
    name_en: str | None
    level: RegionLevel
    cases: int = Field(
        description="Reports and complaints created in the period (mediations are counted "
        "apart, in `mediation`)."
    )
    response_rate: Rate = Field(
        description="Numerator: cases whose current round was accepted by its response "
        "deadline. Denominator: cases whose current round was accepted (any state but "
        "submitted and reopened, with an acceptance time), plus cases waiting for acceptance "
        "(submitted or reopened) whose response deadline has passed by now. A reopened case "
        "counts by its new round (it gets fresh deadlines); cases rejected without ever being "
        "accepted are left out."
    )
    on_time_resolution_rate: Rate = Field(
        description="Numerator: cases whose latest resolution came by their resolution "
        "deadline. Denominator: cases with a resolution standing (resolved or closed after "
        "one), plus open cases (submitted, accepted, in progress, reopened) without one whose "
        "resolution deadline has passed by now."
    )
    satisfaction_rate: Rate = Field(
        description="Numerator: cases rated 4 or 5. Denominator: cases with a rating."
    )
    reopen_rate: Rate = Field(
        description="Numerator: cases reopened at least once. Denominator: cases resolved at "
        "least once (resolved now, or reopened since)."
    )
    overdue_now: int = Field(
        description="Cases open now whose current deadline has passed: the response deadline "
        "while submitted or reopened, the resolution deadline while accepted or in progress."
    )
    by_channel: ChannelCounts = Field(description="Cases created in the period, per channel.")
    mediation: MediationFigures


_FIGURES_EXAMPLE = {
    "code": "gz.tianhe.shipai.gangding",
    "name": "岗顶社区",
    "name_en": "Gangding Community",
    "level": "community",
    "cases": 12,
    "response_rate": {"rate": 0.9, "numerator": 9, "denominator": 10},
    "on_time_resolution_rate": {"rate": 0.8571, "numerator": 6, "denominator": 7},
    "satisfaction_rate": {"rate": 0.75, "numerator": 3, "denominator": 4},
    "reopen_rate": {"rate": 0.1667, "numerator": 1, "denominator": 6},
    "overdue_now": 1,
    "by_channel": {"miniapp": 9, "phone": 2, "counter": 1, "inspection": 0},
    "mediation": {
        "cases": 8,
        "consent_rate": {"rate": 0.7143, "numerator": 5, "denominator": 7},
        "success_rate": {"rate": 0.6667, "numerator": 2, "denominator": 3},
        "average_days_to_conclude": 2.3,
        "by_state": {
            "open": 2,
            "concluded": 2,
            "no_agreement": 1,
            "withdrawn": 1,
            "not_mediated": 2,
        },
        "escalated": 1,
    },
}


class CaseStats(BaseModel):
    """A region's figures and those of each region directly below it."""

    period_from: datetime = Field(description="Start of the period (included).")
    period_to: datetime = Field(description="End of the period (excluded).")
    computed_at: datetime = Field(
        description="The “now” of the overdue figures and of the mediation states."
    )
    region: RegionFigures
    children: list[RegionFigures] = Field(
        description="Every region directly below, ordered by code; zero figures when it has "
        "no cases."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "period_from": "2026-11-01T00:00:00+08:00",
                "period_to": "2026-12-01T00:00:00+08:00",
                "computed_at": "2026-11-27T15:00:00+08:00",
                "region": {**_FIGURES_EXAMPLE, "code": "gz.tianhe.shipai", "level": "street"},
                "children": [_FIGURES_EXAMPLE],
            }
        }
    )
