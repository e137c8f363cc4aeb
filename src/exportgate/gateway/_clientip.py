"""The client's IP address (docs/gateway.md, Per request): the socket peer, unless it is a trusted proxy.

When the peer is inside a ``--trusted-proxy`` CIDR, ``X-Forwarded-For`` is
read from the right, skipping trusted hops; the first untrusted address is
the client. Headers from an untrusted peer are ignored entirely (LiteLLM's
spoofable allow-list, its issue #33324, is the failure this prevents).

Fail closed: a malformed hop where the client should be yields ``None``
(unknown), which the decision core turns into ``location_unknown`` for any
tier with a location rule. Nothing left of a malformed hop is believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from exportgate.errors import ConfigError

__all__ = ["ClientIpResolver", "parse_hop"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_hop(text: str) -> _Address | None:
    """One X-Forwarded-For entry: ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]:80``."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    def __init__(self, trusted: Iterable[str] = ()) -> None:
        networks: list[_Network] = []
        for cidr in trusted:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"trusted proxy {cidr!r} is not an IP address or CIDR") from None
        self.trusted = tuple(networks)
        self._hop_memo: dict[str, tuple[str, bool] | None] = {}

    def is_trusted(self, address: _Address) -> bool:
        return any(address in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: Sequence[bytes] = ()) -> str | None:
        """The client address as text, or ``None`` when it cannot be established."""
        if not self.trusted or peer is None:
            return peer
        known_peer = self._hop(peer)
        if known_peer is None or not known_peer[1]:
            return peer
        hops = [hop for header in forwarded_for for hop in header.decode("latin-1").split(",")]
        for hop in reversed(hops):
            known = self._hop(hop)
            if known is None:
                return None  # a malformed hop: nothing to its left can be believed
            if not known[1]:
                return known[0]
        if hops:  # every hop is a trusted proxy: the leftmost is as close to the client as we know
            return self._hop(hops[0])[0]  # type: ignore[index]  # parsed above
        return peer

    def _hop(self, hop: str) -> tuple[str, bool] | None:
        """An address's text and whether it is trusted (memoized: peers and clients repeat)."""
        try:
            return self._hop_memo[hop]
        except KeyError:
            pass
        address = parse_hop(hop)
        known = None if address is None else (str(address), self.is_trusted(address))
        if len(self._hop_memo) >= 65536:
            self._hop_memo.clear()
        self._hop_memo[hop] = known
        return known
