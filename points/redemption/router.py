"""Rewards and redemption over HTTP: the member's catalog and redemptions, the counter, and
the catalog's administration. Thin: every rule lives in the services of `points.redemption`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import AwareDatetime

from backend.auth.principal import AUTH_ERRORS, CurrentPrincipal, RateLimit
from backend.core.clock import now
from backend.core.config import Settings
from backend.core.database import SessionDep
from backend.core.deps import SettingsDep, StoreDep
from backend.core.errors import problem_responses
from backend.core.idempotency import REPLAY_HEADER_DOC, created_or_replayed, replayable
from backend.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    cut_page,
    decode_cursor,
)
from backend.core.text import Verbatim
from backend.regions.coords import CoordSystem
from backend.regions.schemas import LocationIn
from points.models import RedemptionState
from points.redemption import catalog, codes, errors, export, schemas, service
from points.redemption.errors import (
    CatalogQueryInvalid,
    ExportPeriodInvalid,
    RewardNotFound,
    RewardNotOfferedHere,
    ServiceCenterNotFound,
    StockBelowReserved,
)

router = APIRouter()


IdempotencyKey = Annotated[
    Verbatim | None,
    Header(
        alias="Idempotency-Key",
        description="Required. 1–128 visible ASCII characters, new for each request and the "
        "same on every retry of it (e.g. a UUID made when the button is tapped).",
    ),
]


PickupCode = Annotated[
    Verbatim,
    Path(
        min_length=1,
        max_length=128,
        description="The six-digit pickup code, or the scanned QR payload.",
    ),
]


def _signer(settings: Settings) -> codes.Signer:
    return codes.signer_for(settings.data_key.get_secret_value())


# --- the member's side ---------------------------------------------------------------------


@router.get(
    "/rewards",
    operation_id="list_rewards",
    tags=["points"],
    summary="Rewards at a service center, or at the centers near me",
    response_model=schemas.Catalog,
    responses=problem_responses(*errors.LIST_REWARDS_ERRORS),
)
async def list_rewards(
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    center: Annotated[
        Verbatim | None,
        Query(min_length=1, max_length=64, description="A service center's id or code."),
    ] = None,
    lat: Annotated[
        float | None, Query(ge=-90, le=90, allow_inf_nan=False, description="Your latitude.")
    ] = None,
    lng: Annotated[
        float | None,
        Query(ge=-180, le=180, allow_inf_nan=False, description="Your longitude."),
    ] = None,
    coord: Annotated[
        CoordSystem, Query(description="Coordinate system of lat/lng: `gcj02` or `wgs84`.")
    ] = "gcj02",
    centers: Annotated[
        int,
        Query(ge=1, le=catalog.MAX_NEAREST_CENTERS, description="How many nearby centers."),
    ] = 3,
) -> schemas.Catalog:
    """What can be redeemed, center by center: each reward with its price in points, how
    many are left at that center, and how many more you may redeem this period.

    Give `center` (id or code) for one center, or `lat` and `lng` for the nearest active
    centers, nearest first. Only rewards in their redemption window are listed; one with
    nothing left shows `left: 0`.
    """
    location = None
    if center is None:
        if lat is None or lng is None:
            raise CatalogQueryInvalid()
        location = LocationIn(lat=lat, lng=lng, coord=coord)
    return await catalog.catalog(
        session,
        store,
        principal.user_id,
        center=center,
        location=location,
        centers=centers,
    )


@router.post(
    "/redemptions",
    operation_id="create_redemption",
    tags=["points"],
    summary="Redeem a reward: hold the points, reserve it, get a pickup code",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.RedemptionOut,
    responses=replayable(
        errors.CREATE_REDEMPTION_ERRORS,
        schemas.RedemptionOut,
        "A retry: the redemption this Idempotency-Key made before",
    ),
)
async def create_redemption(
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    body: schemas.RedemptionCreate,
    _: Annotated[None, RateLimit("points_redeem", "30/minute")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Reserve `quantity` of a reward at a service center and hold its points.

    Answers the six-digit pickup code (to read out) and a QR payload (to show), valid until
    `expires_at`; staff at that center hand the reward out against either. Refused when
    the reward is outside its window, the member's limit is reached, nothing is left
    (`points.out_of_stock`) or the points do not suffice (`points.insufficient_balance`);
    then nothing is held or reserved. A retry with the same `Idempotency-Key` and body
    answers the same redemption (200); the same key with another body is refused (409).
    """
    outcome = await service.create_redemption(
        session,
        signer=_signer(settings),
        member_id=principal.user_id,
        body=body,
        idempotency_key=idempotency_key,
        pickup_hours=settings.points_pickup_hours,
    )
    view = await service.redemption_view(session, outcome.redemption)
    return created_or_replayed(view, replayed=outcome.replayed)


@router.get(
    "/me/redemptions",
    operation_id="list_my_redemptions",
    tags=["points"],
    summary="List my redemptions",
    response_model=Page[schemas.RedemptionOut],
    responses=problem_responses(*errors.LIST_MY_REDEMPTIONS_ERRORS),
)
async def list_my_redemptions(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: Annotated[
        RedemptionState | None, Query(description="Only redemptions in this state.")
    ] = None,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.RedemptionOut]:
    """The caller's redemptions, newest first."""
    found = await service.my_redemptions(
        session, principal.user_id, state=state, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(
        items=await service.redemption_views(session, page),
        next_cursor=next_cursor,
    )


@router.get(
    "/redemptions/{redemption_id}",
    operation_id="get_redemption",
    tags=["points"],
    summary="Read one of my redemptions",
    response_model=schemas.RedemptionOut,
    responses=problem_responses(*errors.GET_REDEMPTION_ERRORS),
)
async def get_redemption(
    redemption_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.RedemptionOut:
    """One of the caller's redemptions; anyone else's does not exist (404)."""
    redemption = await service.my_redemption(session, principal.user_id, redemption_id)
    return await service.redemption_view(session, redemption)


@router.post(
    "/redemptions/{redemption_id}/cancel",
    operation_id="cancel_redemption",
    tags=["points"],
    summary="Cancel my redemption before pickup",
    response_model=schemas.RedemptionOut,
    responses=problem_responses(*errors.CANCEL_REDEMPTION_ERRORS),
)
async def cancel_redemption(
    redemption_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> schemas.RedemptionOut:
    """Cancel a redemption waiting for pickup: the points and the item come back at once.

    Cancelling a cancelled one answers it unchanged; a fulfilled or expired one is 409.
    """
    redemption = await service.cancel_redemption(session, principal.user_id, redemption_id)
    return await service.redemption_view(session, redemption)


@router.get(
    "/me/member-code",
    operation_id="get_member_code",
    tags=["points"],
    summary="My rotating member code for redeeming at the counter",
    response_model=schemas.MemberCodeOut,
    responses=problem_responses(*errors.GET_MEMBER_CODE_ERRORS),
)
async def get_member_code(
    response: Response, principal: CurrentPrincipal, settings: SettingsDep
) -> schemas.MemberCodeOut:
    """A code to show as a QR at a service center's counter, where staff redeem in one step.

    It names the caller and the current minute, signed by the server; staff can scan it
    until `expires_at` (about a minute after the app should have refreshed it).
    """
    code = _signer(settings).member_code(principal.user_id, now())
    response.headers["Cache-Control"] = "no-store"
    return schemas.MemberCodeOut(
        code=code.code, expires_at=code.expires_at, refresh_after=code.refresh_after
    )


# --- staff at the counter ------------------------------------------------------------------


@router.post(
    "/staff/redemptions/{code}/fulfil",
    operation_id="fulfil_redemption",
    tags=["staff"],
    summary="Hand out a reserved reward against its pickup code or QR",
    response_model=schemas.RedemptionOut,
    responses=problem_responses(*errors.FULFIL_REDEMPTION_ERRORS),
)
async def fulfil_redemption(
    code: PickupCode,
    body: schemas.FulfilIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    _: Annotated[None, RateLimit("points_fulfil", "120/minute")],
) -> schemas.RedemptionOut:
    """Fulfil a pending redemption of your service center: the item leaves the stock and
    the held points are captured.

    `code` is the six-digit pickup code the member reads out, or the QR payload scanned
    from their phone. Only community staff (or admins) whose regions cover `center` find
    it; for anyone else the code does not exist (404). Sending it again answers the
    fulfilled redemption unchanged, for the staff member who fulfilled it.
    """
    outcome = await service.fulfil_redemption(
        session,
        signer=_signer(settings),
        principal=principal,
        code=code,
        center_id=body.center,
    )
    return await service.redemption_view(session, outcome.redemption)


@router.post(
    "/staff/counter-redemptions",
    operation_id="create_counter_redemption",
    tags=["staff"],
    summary="Redeem in one step at the counter with the member's code",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.RedemptionOut,
    responses=replayable(
        errors.CREATE_COUNTER_REDEMPTION_ERRORS,
        schemas.RedemptionOut,
        "A retry: the redemption this Idempotency-Key made before",
    ),
)
async def create_counter_redemption(
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    body: schemas.CounterRedemptionCreate,
    _: Annotated[None, RateLimit("points_counter", "120/minute")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Scan the member's code (`GET /v1/me/member-code` on their phone) and hand the reward
    out at once: the points are taken and the item leaves the stock in one transaction.

    Only community staff (or admins) whose regions cover `center`; never for oneself. The
    code is accepted for about a minute. A retry with the same `Idempotency-Key` and body
    answers the same redemption (200), even once the code has expired.
    """
    outcome = await service.counter_redemption(
        session,
        signer=_signer(settings),
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
    )
    view = await service.redemption_view(session, outcome.redemption)
    return created_or_replayed(view, replayed=outcome.replayed)


class CsvResponse(Response):
    media_type = "text/csv"
    charset = "utf-8"


@router.get(
    "/staff/service-centers/{center_id}/redemptions.csv",
    operation_id="export_center_redemptions",
    tags=["staff"],
    summary="Export a service center's redemptions of a period as CSV",
    # The plain class has no media type of its own, so the errors stay problem+json only.
    response_class=Response,
    responses={
        200: {
            "description": "One row per redemption made in the period, oldest first "
            "(UTF-8 with a byte-order mark; times in China time).",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": ",".join(export.CSV_COLUMNS) + "\r\n",
                }
            },
        },
        **problem_responses(*AUTH_ERRORS, ServiceCenterNotFound, ExportPeriodInvalid),
    },
)
async def export_center_redemptions(
    center_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    start: Annotated[
        AwareDatetime | None,
        Query(
            alias="from",
            description="Start of the period (inclusive); default: 30 days before `to`.",
        ),
    ] = None,
    end: Annotated[
        AwareDatetime | None,
        Query(alias="to", description="End of the period (exclusive); default: now."),
    ] = None,
) -> Response:
    """Every redemption made at the center in the period (at most a year), for the books.

    Only community staff (or admins) whose regions cover the center; for anyone else the
    center does not exist (404).
    """
    until = end or now()
    since = start or _days_before(until, 30)
    center, content = await export.export_csv(session, principal, center_id, since, until)
    filename = f"redemptions-{center.code}-{since:%Y%m%d}-{until:%Y%m%d}.csv"
    return CsvResponse(
        content=content, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _days_before(moment: Any, days: int) -> Any:
    try:
        return moment - timedelta(days=days)
    except OverflowError:
        # A `to` at the very start of the calendar: refused as an empty period.
        return moment


# --- administration ------------------------------------------------------------------------


@router.get(
    "/admin/service-centers",
    operation_id="list_service_centers",
    tags=["admin"],
    summary="List the service centers in my regions",
    response_model=Page[schemas.ServiceCenterOut],
    responses=problem_responses(*errors.LIST_SERVICE_CENTERS_ERRORS),
)
async def list_service_centers(
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.ServiceCenterOut]:
    """The service centers in the regions where you are admin, inactive ones included."""
    found = await catalog.admin_centers(
        session, principal, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    return Page(
        items=[catalog.center_out(c) for c in page],
        next_cursor=next_cursor,
    )


@router.post(
    "/admin/service-centers",
    operation_id="create_service_center",
    tags=["admin"],
    summary="Open a service center",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.ServiceCenterOut,
    responses=problem_responses(*errors.CREATE_SERVICE_CENTER_ERRORS),
)
async def create_service_center(
    body: schemas.ServiceCenterCreate, session: SessionDep, principal: CurrentPrincipal
) -> schemas.ServiceCenterOut:
    """A service center serving a community where you are admin (or below one)."""
    return catalog.center_out(await catalog.create_center(session, principal, body))


@router.patch(
    "/admin/service-centers/{center_id}",
    operation_id="update_service_center",
    tags=["admin"],
    summary="Change a service center",
    response_model=schemas.ServiceCenterOut,
    responses=problem_responses(*errors.UPDATE_SERVICE_CENTER_ERRORS),
)
async def update_service_center(
    center_id: uuid.UUID,
    body: schemas.ServiceCenterUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> schemas.ServiceCenterOut:
    """Rename, move, re-time or (de)activate a center in your regions. An inactive center
    takes no new redemptions; those waiting for pickup can still be handed out."""
    return catalog.center_out(await catalog.update_center(session, principal, center_id, body))


@router.get(
    "/admin/rewards",
    operation_id="list_admin_rewards",
    tags=["admin"],
    summary="List the rewards in my regions",
    response_model=Page[schemas.RewardOut],
    responses=problem_responses(*errors.LIST_ADMIN_REWARDS_ERRORS),
)
async def list_admin_rewards(
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
    cursor: CursorParam = None,
    limit: LimitParam = 20,
) -> Page[schemas.RewardOut]:
    """The rewards of the regions where you are admin, inactive ones included."""
    found = await catalog.admin_rewards(
        session, principal, after=decode_cursor(cursor), limit=limit + 1
    )
    page, next_cursor = cut_page(found, limit)
    photos = await catalog.reward_photos(session, page)
    return Page(
        items=[catalog.reward_out(store, r, photos.get(r.id)) for r in page],
        next_cursor=next_cursor,
    )


@router.post(
    "/admin/rewards",
    operation_id="create_reward",
    tags=["admin"],
    summary="Add a reward to the catalog",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.RewardOut,
    responses=problem_responses(*errors.CREATE_REWARD_ERRORS),
)
async def create_reward(
    body: schemas.RewardCreate,
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
) -> schemas.RewardOut:
    """A reward offered at the service centers of a region where you are admin. It is
    listed at a center once stocked there (`POST /v1/admin/rewards/{id}/stock`)."""
    reward = await catalog.create_reward(session, store, principal, body)
    return catalog.reward_out(store, reward, await catalog.reward_photo(session, reward))


@router.patch(
    "/admin/rewards/{reward_id}",
    operation_id="update_reward",
    tags=["admin"],
    summary="Change a reward",
    response_model=schemas.RewardOut,
    responses=problem_responses(*errors.UPDATE_REWARD_ERRORS),
)
async def update_reward(
    reward_id: uuid.UUID,
    body: schemas.RewardUpdate,
    session: SessionDep,
    store: StoreDep,
    principal: CurrentPrincipal,
) -> schemas.RewardOut:
    """Change a reward of your regions: a new price applies from now on (what is reserved
    keeps its price); null `limit` removes the limit, null window ends open the window."""
    reward = await catalog.update_reward(session, store, principal, reward_id, body)
    return catalog.reward_out(store, reward, await catalog.reward_photo(session, reward))


@router.post(
    "/admin/rewards/{reward_id}/stock",
    operation_id="restock_reward",
    tags=["admin"],
    summary="Restock a reward at a service center",
    response_model=schemas.StockOut,
    responses={
        200: {
            "description": "The stock at the center after the change (after the first "
            "request's change, with the header `Idempotent-Replay: true`, on a retry).",
            "headers": REPLAY_HEADER_DOC,
        },
        **problem_responses(
            *errors.ADMIN_ERRORS,
            *errors.RETRY_ERRORS,
            RewardNotFound,
            ServiceCenterNotFound,
            RewardNotOfferedHere,
            StockBelowReserved,
        ),
    },
)
async def restock_reward(
    reward_id: uuid.UUID,
    body: schemas.RestockIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add `add` items at a center (negative: write them off, never below what is reserved
    for pickup). You must be admin over the center, and it must lie in the reward's region.
    Idempotent: a retry with the same `Idempotency-Key` and body changes nothing again."""
    stock, replayed = await catalog.restock(session, principal, reward_id, body, idempotency_key)
    return created_or_replayed(stock, replayed=replayed, created=status.HTTP_200_OK)
