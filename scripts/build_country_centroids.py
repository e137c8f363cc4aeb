"""Rebuild src/exportgate/monitor/data/country_centroids.csv from the countryinfo package (run by hand:
``pip install countryinfo==1.0.1 && python scripts/build_country_centroids.py``)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "exportgate" / "monitor" / "data" / "country_centroids.csv"
HEADER = """\
# Approximate country centres (latitude, longitude, degrees) and land area (km2), by ISO 3166-1 alpha-2.
# Source: the `latlng` and `area` fields of countryinfo 1.0.1 (PyPI, MIT licence), extracted once by
# scripts/build_country_centroids.py. Used by the impossible-travel detector, which subtracts each
# country's equal-area radius from the centre distance so that large or neighbouring countries do not alert.
country,lat,lng,area_km2
"""


def main() -> None:
    rows: dict[str, str] = {}
    for item in resources.files("countryinfo").joinpath("data").iterdir():
        if not item.name.endswith(".json"):
            continue
        data = json.loads(item.read_text(encoding="utf-8"))
        iso, latlng = data.get("ISO", {}).get("alpha2"), data.get("latlng")
        if iso and latlng and len(latlng) == 2:
            lat, lng = float(latlng[0]), float(latlng[1])
            rows.setdefault(iso.upper(), f"{iso.upper()},{lat:g},{lng:g},{data.get('area') or ''}")
    OUT.write_text(HEADER + "".join(row + "\n" for _, row in sorted(rows.items())), encoding="utf-8")


if __name__ == "__main__":
    main()
