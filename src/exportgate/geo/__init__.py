"""IP intelligence: client address -> country and anonymizer flags.

>>> from exportgate.geo import GeoLookup
>>> GeoLookup().lookup("::ffff:8.8.8.8").country
'US'
"""

from exportgate._types import GeoInfo
from exportgate.config import Settings

from ._address import Address, parse_address
from ._lookup import GeoLookup

__all__ = ["Address", "GeoInfo", "GeoLookup", "parse_address"]


def geo_from_settings(settings: Settings) -> GeoLookup:
    """Build the lookup the settings describe (bundled data and/or .mmdb files)."""
    return GeoLookup(
        embedded=bool(settings.geo_embedded),
        country_mmdb=settings.geo_country_mmdb,
        anonymous_mmdb=settings.geo_anonymous_mmdb,
    )


__all__ += ["geo_from_settings"]
