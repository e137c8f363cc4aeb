"""IP intelligence: client address -> country and anonymizer flags.

>>> from exportgate.geo import GeoLookup
>>> GeoLookup().lookup("::ffff:8.8.8.8").country
'US'
"""

from exportgate._types import GeoInfo

from ._address import Address, parse_address
from ._lookup import GeoLookup, geo_from_settings

__all__ = ["Address", "GeoInfo", "GeoLookup", "geo_from_settings", "parse_address"]
