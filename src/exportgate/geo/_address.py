"""Strict IP address parsing and the special-purpose ranges that have no country.

Parsing uses ``inet_pton``, which refuses the shorthand forms ``inet_aton``
accepts (``127.1``, octal ``0177.0.0.1``), so an address cannot be spelt in a
way that reaches a different lookup than the one the peer really has.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

from exportgate.errors import InvalidAddressError

__all__ = ["Address", "parse_address", "RESERVED_V4", "RESERVED_V6"]

_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
_MAX_LEN = 64

#: IANA special-purpose and non-routable ranges: no country, no flags.
RESERVED_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
RESERVED_V6 = (
    "::/127",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)


class Address(NamedTuple):
    """A parsed address: version (4 or 6), integer value, canonical text."""

    version: int
    value: int
    text: str


def parse_address(raw: str) -> Address:
    """Parse an IPv4 or IPv6 address; IPv4-mapped IPv6 answers as its IPv4.

    Surrounding whitespace, IPv6 brackets and an IPv6 zone (``%eth0``) are
    removed. Anything else that is not an address raises
    :class:`InvalidAddressError`.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, raw)
        return Address(4, int.from_bytes(packed, "big"), raw)
    except (OSError, TypeError, ValueError):
        pass
    return _parse_slow(raw)


def _parse_slow(raw: object) -> Address:
    if not isinstance(raw, str) or len(raw) > _MAX_LEN:
        raise InvalidAddressError(f"not an IP address: {_show(raw)}")
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
        return Address(4, int.from_bytes(packed, "big"), text)
    except (OSError, ValueError):
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        raise InvalidAddressError(f"not an IP address: {_show(raw)}") from None
    if packed.startswith(_V4_MAPPED_PREFIX):
        v4 = packed[12:]
        return Address(4, int.from_bytes(v4, "big"), socket.inet_ntop(socket.AF_INET, v4))
    return Address(6, int.from_bytes(packed, "big"), socket.inet_ntop(socket.AF_INET6, packed))


def _show(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


def network_range(cidr: str) -> tuple[int, int, int]:
    """(version, first, last) of a CIDR block as integers."""
    net = ipaddress.ip_network(cidr)
    return net.version, int(net.network_address), int(net.broadcast_address)
