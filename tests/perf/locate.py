"""Benchmark: point -> grid over 20,000 grid polygons, against a brute-force scan.

Run with `python tests/perf/locate.py`. It builds a 200 x 100 tiling of slightly irregular
quadrilaterals (~300 m each) around Guangzhou, loads it into the same `GridMap` the API uses,
times seeded random lookups through `GridMap.locate`, times `polygon.covers(point)` over every
grid for a smaller sample, checks both answer the same grid for every sampled point, and ends
with one line: `result: grids=20000 lookup_ms=... brute_ms=... ratio=...`.
Exits non-zero if a lookup takes 0.2 ms or more, or if the two ever disagree.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.regions.service import GridRecord, RegionRef

COLUMNS, ROWS = 200, 100
SOUTH, WEST = 23.00, 113.10
DLAT, DLNG = 0.0027, 0.0029  # ~300 m
JITTER = 0.2  # inner vertices move up to 20% of a cell: irregular, still simple quads
BAR_MS = 0.2


def tiling(seed: int) -> list[tuple[str, list[list[float]]]]:
    """(code, ring) per grid; neighbours share their vertices exactly, so no gaps or overlaps."""
    rng = random.Random(seed)
    vertex: dict[tuple[int, int], tuple[float, float]] = {}
    for row in range(ROWS + 1):
        for column in range(COLUMNS + 1):
            inner_row = 0 < row < ROWS
            inner_column = 0 < column < COLUMNS
            dlat = rng.uniform(-JITTER, JITTER) * DLAT if inner_row else 0.0
            dlng = rng.uniform(-JITTER, JITTER) * DLNG if inner_column else 0.0
            vertex[row, column] = (WEST + column * DLNG + dlng, SOUTH + row * DLAT + dlat)
    cells: list[tuple[str, list[list[float]]]] = []
    for row in range(ROWS):
        for column in range(COLUMNS):
            corners = [(row, column), (row, column + 1), (row + 1, column + 1), (row + 1, column)]
            ring = [list(vertex[c]) for c in corners]
            code = (
                f"gz.bench.s{row // 25}.c{row // 10:02d}{column // 10:02d}.g{row:03d}{column:03d}"
            )
            cells.append((code, [*ring, ring[0]]))
    return cells


def records(
    cells: list[tuple[str, list[list[float]]]],
) -> tuple[list[GridRecord], list[RegionRef]]:
    from backend.regions.models import RegionLevel
    from backend.regions.service import GridRecord, RegionRef

    areas: dict[str, RegionRef] = {}
    levels = [RegionLevel.city, RegionLevel.district, RegionLevel.street, RegionLevel.community]
    grids: list[GridRecord] = []
    for code, ring in cells:
        labels = code.split(".")
        for depth, level in enumerate(levels, start=1):
            prefix = ".".join(labels[:depth])
            areas.setdefault(prefix, RegionRef(prefix, prefix, None, level))
        boundary: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
        grids.append(GridRecord(RegionRef(code, code, None, RegionLevel.grid), boundary))
    return grids, list(areas.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--brute", type=int, default=200, help="points for the brute force")
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()

    # Runs from a plain checkout too, not only an installed one.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import shapely

    from backend.regions.service import GridMap

    cells = tiling(args.seed)
    grids, areas = records(cells)
    started = time.perf_counter()
    grid_map = GridMap.from_records(grids, areas)
    print(f"built index of {grid_map.grid_count} grids in {time.perf_counter() - started:.2f} s")

    # Points over the tiling and a margin around it, so misses are measured too.
    rng = random.Random(args.seed + 1)
    margin_lat, margin_lng = 2 * DLAT, 2 * DLNG
    points = [
        (
            rng.uniform(SOUTH - margin_lat, SOUTH + ROWS * DLAT + margin_lat),
            rng.uniform(WEST - margin_lng, WEST + COLUMNS * DLNG + margin_lng),
        )
        for _ in range(args.lookups)
    ]
    for lat, lng in points[:1000]:  # warm-up
        grid_map.locate(lat, lng)
    started = time.perf_counter()
    answers = [grid_map.locate(lat, lng) for lat, lng in points]
    lookup_ms = (time.perf_counter() - started) * 1000 / len(points)
    hits = sum(answer is not None for answer in answers)
    print(f"GridMap.locate: {len(points)} lookups ({hits} inside a grid), {lookup_ms:.4f} ms each")

    polygons = [(code, shapely.Polygon(ring)) for code, ring in cells]
    sample = range(0, len(points), max(1, len(points) // args.brute))
    started = time.perf_counter()
    brute_answers: dict[int, str | None] = {}
    for i in sample:
        lat, lng = points[i]
        point = shapely.Point(lng, lat)
        covering = [code for code, polygon in polygons if polygon.covers(point)]
        brute_answers[i] = min(covering) if covering else None
    brute_ms = (time.perf_counter() - started) * 1000 / len(brute_answers)
    print(f"brute force:    {len(brute_answers)} lookups, {brute_ms:.3f} ms each")

    located = {i: answers[i] for i in brute_answers}
    disagree = [
        i
        for i, expected in brute_answers.items()
        if (found.grid.code if (found := located[i]) is not None else None) != expected
    ]
    if disagree:
        print(f"MISMATCH at {len(disagree)} of {len(brute_answers)} sampled points")
    else:
        print(f"both agree on all {len(brute_answers)} sampled points")
    ratio = brute_ms / lookup_ms
    print(
        f"result: grids={grid_map.grid_count} lookup_ms={lookup_ms:.3f} "
        f"brute_ms={brute_ms:.3f} ratio={ratio:.0f}"
    )
    return 0 if not disagree and lookup_ms < BAR_MS else 1


if __name__ == "__main__":
    sys.exit(main())
