"""MaxMind-format databases (GeoIP2/GeoLite2 Country, Anonymous IP) via ``maxminddb``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import maxminddb

from exportgate.errors import GeoDataError

__all__ = ["MmdbDatabase", "ANONYMOUS_FIELDS"]

#: Anonymous-IP database field -> exportgate flag. Public and residential
#: proxies hide the person as a VPN does.
ANONYMOUS_FIELDS: dict[str, str] = {
    "is_tor_exit_node": "tor",
    "is_anonymous_vpn": "vpn",
    "is_public_proxy": "vpn",
    "is_residential_proxy": "vpn",
    "is_hosting_provider": "hosting",
}


class MmdbDatabase:
    """One open ``.mmdb`` file; answers country codes or anonymizer flags."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.name = Path(path).name
        try:
            self._reader = maxminddb.open_database(self.path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDataError(f"cannot open MaxMind database {self.path}: {exc}") from None
        self.database_type = str(self._reader.metadata().database_type)

    def _get(self, text: str) -> Any:
        try:
            return self._reader.get(text)
        except (ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDataError(f"{self.name}: lookup failed: {exc}") from None

    def country(self, text: str) -> str | None:
        record = self._get(text)
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            node = record.get(key)
            if isinstance(node, dict) and isinstance(node.get("iso_code"), str):
                return str(node["iso_code"]).upper()
        return None

    def anonymizers(self, text: str) -> frozenset[str]:
        record = self._get(text)
        if not isinstance(record, dict):
            return frozenset()
        flags = {flag for field, flag in ANONYMOUS_FIELDS.items() if record.get(field) is True}
        if not flags and record.get("is_anonymous") is True:
            flags.add("vpn")
        return frozenset(flags)

    def info(self) -> dict[str, object]:
        meta = self._reader.metadata()
        return {"path": self.path, "type": self.database_type, "build_epoch": meta.build_epoch}

    def close(self) -> None:
        self._reader.close()
