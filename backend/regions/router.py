"""Regions over HTTP: public locate and read, admin create/update/import under /admin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from backend.auth.principal import CurrentPrincipal
from backend.core.database import SessionDep
from backend.core.deps import GridMapDep
from backend.core.errors import problem_responses
from backend.core.ratelimit import AddressRateLimit
from backend.core.text import RegionCode
from backend.regions import errors, grid_import, schemas, service
from backend.regions.coords import CoordSystem

router = APIRouter(prefix="/regions", tags=["regions"])
admin_router = APIRouter(prefix="/admin/regions", tags=["regions-admin"])


# Public reads are counted per client address. A mini-program makes a few when it starts,
# and a carrier's NAT may put thousands of phones behind one address: room for a crowd.
LocateAddressLimit = Annotated[None, AddressRateLimit("locate_address", "600/minute")]
RegionAddressLimit = Annotated[None, AddressRateLimit("region_address", "600/minute")]

RegionPath = Annotated[
    RegionCode,
    Path(
        description="The region's code (its path), e.g. `gz.tianhe.shipai`.",
        examples=["gz.tianhe.shipai"],
    ),
]
AdminCoord = Annotated[
    CoordSystem,
    Query(description="Coordinate system of the boundaries sent: `wgs84` or `gcj02`."),
]


@router.get(
    "/locate",
    operation_id="locate_grid",
    summary="Find the grid containing a point",
    response_model=schemas.LocateResult,
    responses=problem_responses(*errors.LOCATE_GRID_ERRORS),
)
async def locate_grid(
    _: LocateAddressLimit,
    grid_map: GridMapDep,
    lat: Annotated[
        float, Query(ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees.")
    ],
    lng: Annotated[
        float, Query(ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees.")
    ],
    coord: Annotated[
        CoordSystem,
        Query(
            description="System of `lat`/`lng`: `gcj02` (what wx.getLocation gives by "
            "default) or `wgs84`."
        ),
    ],
) -> schemas.LocateResult:
    """The grid (and its city, district, street and community) that covers the point.

    Public: the mini-program calls it before a report to fill in the place. A point on the
    border of two grids always answers the same grid (the one with the smaller code).
    """
    return service.locate(grid_map, lat, lng, coord)


@router.get(
    "/{code}",
    operation_id="get_region",
    summary="Read a region with its ancestors and children",
    response_model=schemas.RegionDetail,
    responses=problem_responses(*errors.GET_REGION_ERRORS),
)
async def get_region(
    _: RegionAddressLimit,
    session: SessionDep,
    code: RegionPath,
    include: Annotated[
        Literal["boundary"] | None,
        Query(description="`boundary` adds the region's GeoJSON boundary (WGS-84)."),
    ] = None,
) -> schemas.RegionDetail:
    return await service.get_region(session, code, include_boundary=include == "boundary")


@admin_router.post(
    "",
    operation_id="create_region",
    summary="Create a region under a parent",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.RegionDetail,
    responses=problem_responses(*errors.CREATE_REGION_ERRORS),
)
async def create_region(
    session: SessionDep,
    principal: CurrentPrincipal,
    grid_map: GridMapDep,
    body: schemas.RegionCreate,
    coord: AdminCoord = "wgs84",
) -> schemas.RegionDetail:
    """Needs the admin role on the parent or above. Its level is the parent's child level."""
    return await service.create_region(session, principal, body, coord, grid_map)


@admin_router.patch(
    "/{code}",
    operation_id="update_region",
    summary="Rename a region or replace its boundary",
    response_model=schemas.RegionDetail,
    responses=problem_responses(*errors.UPDATE_REGION_ERRORS),
)
async def update_region(
    session: SessionDep,
    principal: CurrentPrincipal,
    grid_map: GridMapDep,
    code: RegionPath,
    body: schemas.RegionUpdate,
    coord: AdminCoord = "wgs84",
) -> schemas.RegionDetail:
    """Needs the admin role on the region's parent or above."""
    return await service.update_region(session, principal, code, body, coord, grid_map)


def _import_responses() -> dict[int | str, dict[str, Any]]:
    responses = problem_responses(*errors.IMPORT_GRIDS_ERRORS)
    # The 422 body lists the bad features: document its extra members.
    responses[422]["model"] = schemas.GridImportProblem
    return responses


@admin_router.post(
    "/grids/import",
    operation_id="import_grids",
    summary="Create or update grids from a GeoJSON FeatureCollection",
    response_model=schemas.GridImportResult,
    responses=_import_responses(),
)
async def import_grids(
    session: SessionDep,
    principal: CurrentPrincipal,
    grid_map: GridMapDep,
    body: schemas.GridFeatureCollection,
    coord: AdminCoord = "wgs84",
) -> schemas.GridImportResult:
    """All or nothing: every feature is checked first (geometry, parent community, rights,
    duplicates); if any is bad the answer lists each one and nothing is written. Needs the
    admin role on each grid's community or above. At most 50,000 features per request.
    """
    return await grid_import.import_grids(session, principal, body, coord, grid_map)
