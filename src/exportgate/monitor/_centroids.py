"""Country centres and sizes (``data/country_centroids.csv``, source in its header) and the smallest
plausible distance between two countries: centre distance minus both equal-area radii."""

from __future__ import annotations

import csv
import math
from functools import cache
from importlib import resources

__all__ = ["min_distance_km"]

EARTH_KM = 6371.0


@cache
def _table() -> dict[str, tuple[float, float, float]]:
    text = resources.files(__package__ or "exportgate.monitor").joinpath("data/country_centroids.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    table = {}
    for row in rows:
        area = float(row["area_km2"] or 0)
        table[row["country"]] = (
            math.radians(float(row["lat"])),
            math.radians(float(row["lng"])),
            math.sqrt(area / math.pi),
        )
    return table


def min_distance_km(a: str, b: str) -> float | None:
    """Great-circle distance between the countries' centres less both radii (>= 0); None when unknown."""
    table = _table()
    if a not in table or b not in table:
        return None
    lat1, lng1, r1 = table[a]
    lat2, lng2, r2 = table[b]
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return max(0.0, 2 * EARTH_KM * math.asin(math.sqrt(h)) - r1 - r2)
